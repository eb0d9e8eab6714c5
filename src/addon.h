// Shared pieces of the N-API addon: promise-returning background work and argument checks.
// The addon is thin by design: it marshals buffers and calls the engine's C API; all model
// logic lives in native/ (engine) or lib/ (TypeScript).
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "healthgpt.h"

namespace hgnode {

// An error with a `code` property, as the TypeScript layer expects.
Napi::Error make_error(Napi::Env env, const std::string &code, const std::string &message);
[[noreturn]] void throw_error(Napi::Env env, const std::string &code, const std::string &message);

// Runs `work` on libuv's thread pool and settles the returned promise with
// `done(env, result)` or with an Error carrying the message `work` threw. `result` is a JS
// value (typically the output buffer `work` fills) held alive until then; `inputs` are held
// alive too, so buffers `work` reads are not collected meanwhile. `work` is destroyed on the
// pool's thread once it has run, so what it captured (an engine object's last reference) is
// freed there, not on the JS thread.
Napi::Promise run_async(Napi::Env env, const char *name, std::function<void()> work,
                        std::function<Napi::Value(Napi::Env, Napi::Value result)> done, Napi::Value result,
                        std::vector<Napi::Value> inputs = {});

// The JS error code of an hg_status (lib/errors.ts, ErrorCode).
const char *status_code(int status);

// A failed engine call inside a job: hg_last_error() and hg_last_status() of the thread
// that made it, so the promise rejects with the cause's own code.
struct native_failure : std::runtime_error {
    int status;
    native_failure(const std::string &msg, int status) : std::runtime_error(msg), status(status) {}
};
native_failure native_error();

// A job that found its object disposed: the promise rejects with ERR_DISPOSED.
struct disposed_failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Throws hg_last_error() with its status's code as a JS error when status < 0 (synchronous calls).
void check_status(Napi::Env env, int status);

// A pool per thread count, each used by one job at a time.
struct pool_lease {
    hg_pool *pool;
    std::unique_lock<std::mutex> lock;
};
pool_lease lease_pool(int n_threads);

// Argument readers that name the argument in their error.
int64_t arg_int(const Napi::CallbackInfo &info, size_t i, const char *name);
int arg_int32(const Napi::CallbackInfo &info, size_t i, const char *name); // fits a C int
std::string arg_string(const Napi::CallbackInfo &info, size_t i, const char *name);
// An optional number option of an options object into out (left as it is when absent).
void opt_int(Napi::Env env, Napi::Object options, const char *name, int &out);

void init_gguf(Napi::Env env, Napi::Object exports);
void init_ops(Napi::Env env, Napi::Object exports);
void init_model(Napi::Env env, Napi::Object exports);
void init_clip(Napi::Env env, Napi::Object exports);
void init_vqgan(Napi::Env env, Napi::Object exports);

} // namespace hgnode
