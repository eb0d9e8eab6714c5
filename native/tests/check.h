// A minimal test harness for the native unit tests: TEST(name) registers a function,
// CHECK* record failures with file:line and go on, SKIP(reason) ends a test as skipped (what
// it checks cannot be checked here: no such processor feature, no fixture), main() runs all
// (or those whose name contains argv[1]) and prints "N passed, N skipped, N failed".
// Exit status: 1 when a test failed or a filter matched no test (a typo must not pass), 77
// (ctest's SKIP_RETURN_CODE) when every test that ran was skipped, else 0.
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace hgtest {

struct test_case {
    const char *name;
    std::function<void()> fn;
};

inline std::vector<test_case> &registry() {
    static std::vector<test_case> r;
    return r;
}
inline int &failures() {
    static int n = 0;
    return n;
}
struct registrar {
    registrar(const char *name, std::function<void()> fn) { registry().push_back({name, fn}); }
};

// Thrown by SKIP: the test stops and counts as skipped, not passed.
struct skipped {
    std::string reason;
};

inline void report(const char *file, int line, const std::string &what) {
    failures()++;
    std::fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, what.c_str());
}

} // namespace hgtest

#define HG_CAT2(a, b) a##b
#define HG_CAT(a, b) HG_CAT2(a, b)
#define TEST(name)                                                                                                     \
    static void name();                                                                                                \
    static hgtest::registrar HG_CAT(reg_, name)(#name, name);                                                          \
    static void name()

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) hgtest::report(__FILE__, __LINE__, #cond);                                                        \
    } while (0)

#define CHECK_MSG(cond, msg)                                                                                           \
    do {                                                                                                               \
        if (!(cond)) hgtest::report(__FILE__, __LINE__, std::string(#cond) + ": " + (msg));                            \
    } while (0)

// Ends the current test as skipped, printing why (a check this machine cannot make).
#define SKIP(reason)                                                                                                   \
    throw hgtest::skipped { std::string(reason) }

// |a - b| <= tol (absolute)
#define CHECK_NEAR(a, b, tol)                                                                                          \
    do {                                                                                                               \
        double _a = (a), _b = (b), _t = (tol);                                                                         \
        if (!(std::fabs(_a - _b) <= _t)) {                                                                             \
            char _buf[256];                                                                                            \
            std::snprintf(_buf, sizeof _buf, "%s = %.9g, %s = %.9g, tol %.3g", #a, _a, #b, _b, _t);                    \
            hgtest::report(__FILE__, __LINE__, _buf);                                                                  \
        }                                                                                                              \
    } while (0)

// Defines main(); include in exactly one file per test executable.
#define HG_TEST_MAIN()                                                                                                 \
    int main(int argc, char **argv) {                                                                                  \
        int passed = 0, failed = 0, skipped = 0;                                                                       \
        for (auto &t : hgtest::registry()) {                                                                           \
            if (argc > 1 && std::string(t.name).find(argv[1]) == std::string::npos) continue;                          \
            int before = hgtest::failures();                                                                           \
            std::string why;                                                                                           \
            bool skip = false;                                                                                         \
            try {                                                                                                      \
                t.fn();                                                                                                \
            } catch (const hgtest::skipped &s) {                                                                       \
                skip = true;                                                                                           \
                why = s.reason;                                                                                        \
            } catch (const std::exception &e) {                                                                        \
                hgtest::report(__FILE__, __LINE__, std::string("exception: ") + e.what());                             \
            }                                                                                                          \
            bool ok = hgtest::failures() == before;                                                                    \
            if (ok && skip) {                                                                                          \
                std::printf("skip %s: %s\n", t.name, why.c_str());                                                     \
                skipped++;                                                                                             \
                continue;                                                                                              \
            }                                                                                                          \
            std::printf("%s %s\n", ok ? "ok  " : "FAIL", t.name);                                                      \
            (ok ? passed : failed)++;                                                                                  \
        }                                                                                                              \
        std::printf("%d passed, %d skipped, %d failed\n", passed, skipped, failed);                                    \
        if (passed + skipped + failed == 0) {                                                                          \
            std::printf("no test matches \"%s\"\n", argc > 1 ? argv[1] : "");                                          \
            return 1;                                                                                                  \
        }                                                                                                              \
        if (failed) return 1;                                                                                          \
        return passed == 0 ? 77 : 0;                                                                                   \
    }
