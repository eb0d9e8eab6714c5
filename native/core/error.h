// Errors inside the engine are C++ exceptions of one type; the C API catches them at its
// boundary and turns them into a status plus hg_last_error(), so nothing escapes to the host.
#pragma once

#include <stdexcept>
#include <string>

namespace hg {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string &msg);

// Records the message for hg_last_error() on this thread.
void set_last_error(const std::string &msg);

// Runs fn, turning any exception into set_last_error(); returns fallback on failure.
template <class T, class Fn> T guarded(T fallback, Fn &&fn) noexcept {
    try {
        return fn();
    } catch (const std::bad_alloc &) {
        set_last_error("out of memory");
    } catch (const std::exception &e) {
        set_last_error(e.what());
    } catch (...) {
        set_last_error("unknown native error");
    }
    return fallback;
}

} // namespace hg
