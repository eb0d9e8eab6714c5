// One handle mechanism for the engine's objects (the language model, CLIP, the VQGAN): a JS
// class per object (Napi::ObjectWrap), made only by its static load(), whose instances share
// a box with their jobs. The box holds the native object and the lock that runs its jobs one
// at a time; the last holder frees it. Every job runs off the JS thread; dispose() marks the
// handle disposed (a job in flight rejects with ERR_DISPOSED, later calls throw it) and lets
// the box go in a job of its own, so freeing weights and joining threads never blocks the JS
// thread.
#pragma once

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "addon.h"

namespace hgnode {

// The handle classes' constructors, per environment (each worker_thread has its own): the
// addon's instance data, set once by the module's Init.
struct constructors {
    Napi::FunctionReference model, clip, vqgan;
};
constructors &ctors(Napi::Env env);

// Box: a struct with `std::mutex busy` whose destructor frees the native object.
// Self: the handle class; it names itself (kName, for "use Model.load(...)"), says what it
// holds (kWhat, for "the model has been disposed") and where its constructor lives (ctor).
template <class Self, class Box> class EngineObject : public Napi::ObjectWrap<Self> {
  public:
    using box_ptr = std::shared_ptr<Box>;

    explicit EngineObject(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Self>(info) {
        if (info.Length() < 1 || !info[0].IsExternal())
            throw_error(info.Env(), "ERR_INVALID_ARG", std::string("use ") + Self::kName + ".load(path, options)");
        box_ = *info[0].template As<Napi::External<box_ptr>>().Data();
    }

  protected:
    // Runs open(box) in a job (it fills the box, or throws), then settles with a new handle.
    static Napi::Value load(Napi::Env env, const char *job_name, std::function<void(Box &)> open) {
        auto box = std::make_shared<Box>();
        return run_async(
            env, job_name, [box, open] { open(*box); },
            [box](Napi::Env env, Napi::Value) -> Napi::Value {
                box_ptr holder = box;
                return Self::ctor(ctors(env)).New({Napi::External<box_ptr>::New(env, &holder)});
            },
            env.Undefined());
    }

    // The box of a live handle, or ERR_DISPOSED.
    box_ptr live(Napi::Env env) const {
        if (!box_) throw_error(env, "ERR_DISPOSED", std::string(Self::kWhat) + " has been disposed");
        return box_;
    }

    // A job on this object: waits for the jobs before it (the box's lock), is skipped when
    // dispose() came meanwhile, and rejects with ERR_DISPOSED when dispose() came while it
    // ran; else settles as run_async does.
    Napi::Promise job(Napi::Env env, const char *job_name, std::function<void(Box &)> work,
                      std::function<Napi::Value(Napi::Env, Napi::Value)> done, Napi::Value result,
                      std::vector<Napi::Value> inputs = {}) {
        box_ptr b = live(env);
        std::shared_ptr<std::atomic<bool>> gone = disposed_;
        return run_async(
            env, job_name,
            [b, gone, work] {
                std::lock_guard<std::mutex> lk(b->busy);
                if (gone->load()) throw disposed_failure(std::string(Self::kWhat) + " has been disposed");
                work(*b);
            },
            [gone, done](Napi::Env env, Napi::Value kept) -> Napi::Value {
                if (gone->load())
                    throw make_error(env, "ERR_DISPOSED", std::string(Self::kWhat) + " has been disposed");
                return done(env, kept);
            },
            result, std::move(inputs));
    }

    // dispose(): the object is freed off the JS thread once no job holds it. Twice is harmless.
    Napi::Value Dispose(const Napi::CallbackInfo &info) {
        if (box_) {
            disposed_->store(true);
            run_async(
                info.Env(), "healthgpt.dispose", [last = std::move(box_)]() mutable { last.reset(); },
                [](Napi::Env env, Napi::Value) { return env.Undefined(); }, info.Env().Undefined());
        }
        return info.Env().Undefined();
    }

  private:
    box_ptr box_;
    std::shared_ptr<std::atomic<bool>> disposed_ = std::make_shared<std::atomic<bool>>(false);
};

} // namespace hgnode
