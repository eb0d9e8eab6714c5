#include "addon.h"

#include "handle.h"

#include <climits>
#include <map>
#include <mutex>
#include <stdexcept>

namespace hgnode {

Napi::Error make_error(Napi::Env env, const std::string &code, const std::string &message) {
    Napi::Error e = Napi::Error::New(env, message);
    e.Set("code", Napi::String::New(env, code));
    return e;
}

void throw_error(Napi::Env env, const std::string &code, const std::string &message) {
    throw make_error(env, code, message);
}

const char *status_code(int status) {
    switch (status) {
    case HG_ERR_FILE: return "ERR_INVALID_FILE";
    case HG_ERR_NO_MEMORY: return "ERR_NO_MEMORY";
    case HG_ERR_CONTEXT_FULL: return "ERR_CONTEXT";
    case HG_ERR_UNSUPPORTED: return "ERR_UNSUPPORTED";
    default: return "ERR_INVALID_ARG";
    }
}

native_failure native_error() { return native_failure(hg_last_error(), hg_last_status()); }

void check_status(Napi::Env env, int status) {
    if (status < 0) throw_error(env, status_code(hg_last_status()), hg_last_error());
}

namespace {

class PromiseWorker : public Napi::AsyncWorker {
  public:
    PromiseWorker(Napi::Env env, const char *name, std::function<void()> work,
                  std::function<Napi::Value(Napi::Env, Napi::Value)> done, Napi::Value result,
                  std::vector<Napi::Value> inputs)
        : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
          done_(std::move(done)) {
        // references to primitives need Node-API 10: keep objects only (results are buffers)
        if (result.IsObject()) result_ = Napi::Persistent(result);
        for (auto &v : inputs) inputs_.push_back(Napi::Persistent(v));
    }
    Napi::Promise promise() { return deferred_.Promise(); }

    void Execute() override {
        try {
            work_();
        } catch (const disposed_failure &e) {
            code_ = "ERR_DISPOSED";
            SetError(e.what());
        } catch (const native_failure &e) {
            code_ = status_code(e.status);
            SetError(e.what());
        } catch (const std::bad_alloc &) {
            code_ = status_code(HG_ERR_NO_MEMORY);
            SetError("out of memory");
        } catch (const std::exception &e) {
            SetError(e.what());
        } catch (...) {
            SetError("unknown native error");
        }
        work_ = nullptr; // its captures are let go here, off the JS thread
    }
    void OnOK() override {
        Napi::Env env = Env();
        try {
            deferred_.Resolve(done_(env, result_.IsEmpty() ? env.Undefined() : result_.Value()));
        } catch (const Napi::Error &e) {
            deferred_.Reject(e.Value());
        }
    }
    void OnError(const Napi::Error &e) override {
        Napi::Error err = make_error(Env(), code_, e.Message());
        deferred_.Reject(err.Value());
    }

  private:
    Napi::Promise::Deferred deferred_;
    // the cause's code; a job's own checks (sizes, a disposed handle) are argument errors
    const char *code_ = "ERR_INVALID_ARG";
    std::function<void()> work_;
    std::function<Napi::Value(Napi::Env, Napi::Value)> done_;
    Napi::Reference<Napi::Value> result_;
    std::vector<Napi::Reference<Napi::Value>> inputs_;
};

struct pool_slot {
    hg_pool *pool = nullptr;
    std::mutex busy;
};

} // namespace

Napi::Promise run_async(Napi::Env env, const char *name, std::function<void()> work,
                        std::function<Napi::Value(Napi::Env, Napi::Value)> done, Napi::Value result,
                        std::vector<Napi::Value> inputs) {
    auto *w = new PromiseWorker(env, name, std::move(work), std::move(done), result, std::move(inputs));
    Napi::Promise p = w->promise();
    w->Queue(); // the worker deletes itself when settled
    return p;
}

pool_lease lease_pool(int n_threads) {
    static std::mutex map_mutex;
    static std::map<int, pool_slot> pools; // node-stable addresses: slots never move
    pool_slot *slot;
    {
        std::lock_guard<std::mutex> lk(map_mutex);
        slot = &pools[n_threads];
        if (!slot->pool) {
            slot->pool = hg_pool_create(n_threads);
            if (!slot->pool) throw native_error();
        }
    }
    return pool_lease{slot->pool, std::unique_lock<std::mutex>(slot->busy)};
}

int64_t arg_int(const Napi::CallbackInfo &info, size_t i, const char *name) {
    if (info.Length() <= i || !info[i].IsNumber())
        throw_error(info.Env(), "ERR_INVALID_ARG", std::string(name) + " must be a number");
    const double v = info[i].As<Napi::Number>().DoubleValue();
    // range first: casting a double outside int64 to an integer is undefined behaviour
    if (!(v >= -9007199254740991.0 && v <= 9007199254740991.0) || v != (double)(int64_t)v)
        throw_error(info.Env(), "ERR_INVALID_ARG", std::string(name) + " must be a safe integer");
    return (int64_t)v;
}

int arg_int32(const Napi::CallbackInfo &info, size_t i, const char *name) {
    const int64_t v = arg_int(info, i, name);
    if (v < INT32_MIN || v > INT32_MAX)
        throw_error(info.Env(), "ERR_INVALID_ARG", std::string(name) + " is out of range: " + std::to_string(v));
    return (int)v;
}

std::string arg_string(const Napi::CallbackInfo &info, size_t i, const char *name) {
    if (info.Length() <= i || !info[i].IsString())
        throw_error(info.Env(), "ERR_INVALID_ARG", std::string(name) + " must be a string");
    return info[i].As<Napi::String>().Utf8Value();
}

void opt_int(Napi::Env env, Napi::Object options, const char *name, int &out) {
    if (!options.Has(name) || options.Get(name).IsUndefined()) return;
    Napi::Value v = options.Get(name);
    if (!v.IsNumber()) throw_error(env, "ERR_INVALID_ARG", std::string(name) + " must be a number");
    // checked, not Int32Value(): that wraps 4294967297 to 1 and 3e9 to a negative
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= INT32_MIN && d <= INT32_MAX) || d != (double)(int64_t)d)
        throw_error(env, "ERR_INVALID_ARG",
                    std::string(name) + " must be an integer in " + std::to_string(INT32_MIN) + ".." +
                        std::to_string(INT32_MAX));
    out = (int)d;
}

constructors &ctors(Napi::Env env) { return *env.GetInstanceData<constructors>(); }

} // namespace hgnode

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    env.SetInstanceData(new hgnode::constructors()); // the environment frees it
    hgnode::init_gguf(env, exports);
    hgnode::init_ops(env, exports);
    hgnode::init_model(env, exports);
    hgnode::init_clip(env, exports);
    hgnode::init_vqgan(env, exports);
    return exports;
}

NODE_API_MODULE(healthgpt, Init)
