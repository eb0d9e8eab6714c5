// Errors inside the engine are C++ exceptions of one type; the C API catches them at its
// boundary and turns them into a status plus hg_last_error(), so nothing escapes to the host.
#pragma once

#include <new>
#include <stdexcept>
#include <string>

#include "healthgpt.h"

namespace hg {

// status: an hg_status naming the cause, or HG_OK to let the C API entry decide (a fault
// found while loading a file is the file's, anything else a bad argument).
struct Error : std::runtime_error {
    int status;
    Error(const std::string &msg, int status = HG_OK) : std::runtime_error(msg), status(status) {}
};

[[noreturn]] void fail(const std::string &msg);
[[noreturn]] void fail(int status, const std::string &msg);

// Records the message and the status for hg_last_error() / hg_last_status() on this thread.
void set_last_error(const std::string &msg, int status = HG_ERR_INVALID_ARG);

// Runs fn, turning any exception into set_last_error(); returns fallback on failure. cause:
// the status of a failure that does not name its own (HG_ERR_FILE for the loaders).
template <class T, class Fn> T guarded(T fallback, Fn &&fn, int cause = HG_ERR_INVALID_ARG) noexcept {
    try {
        return fn();
    } catch (const std::bad_alloc &) {
        set_last_error("out of memory", HG_ERR_NO_MEMORY);
    } catch (const Error &e) {
        set_last_error(e.what(), e.status != HG_OK ? e.status : cause);
    } catch (const std::exception &e) {
        set_last_error(e.what(), cause);
    } catch (...) {
        set_last_error("unknown native error", cause);
    }
    return fallback;
}

// guarded() for the loaders: a fault that names no cause of its own is the file's.
template <class T, class Fn> T guarded_load(T fallback, Fn &&fn) noexcept {
    return guarded(fallback, static_cast<Fn &&>(fn), HG_ERR_FILE);
}

} // namespace hg
