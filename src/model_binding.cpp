// Model: a JS handle on a loaded language model (weights mapped, KV cache, thread pool;
// src/handle.h). Every call that computes runs off the JS thread; calls on one model are
// serialised by the box's lock (the TypeScript layer also queues whole requests, so they
// never interleave in the cache).
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "addon.h"
#include "handle.h"

namespace hgnode {

namespace {

// The native model plus the lock that keeps two jobs off its KV cache at once.
struct model_box {
    hg_model *model = nullptr;
    std::mutex busy;
    ~model_box() { hg_model_free(model); }
};
using model_ptr = std::shared_ptr<model_box>;

class Model : public EngineObject<Model, model_box> {
  public:
    static constexpr const char *kName = "Model";
    static constexpr const char *kWhat = "the model";
    static Napi::FunctionReference &ctor(constructors &c) { return c.model; }

    static Napi::Function Define(Napi::Env env) {
        return DefineClass(env, "Model",
                           {
                               StaticMethod("load", &Model::Load),
                               InstanceMethod("eval", &Model::Eval),
                               InstanceMethod("loadPlugin", &Model::LoadPlugin),
                               InstanceMethod("info", &Model::Info),
                               InstanceMethod("dispose", &Model::Dispose),
                           });
    }

    using EngineObject::EngineObject;

  private:
    // load(path, {contextSize, threads, kvType, repack, gpu, gpuLayers}): Promise<Model>
    static Napi::Value Load(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        const std::string path = arg_string(info, 0, "path");
        hg_model_params p = hg_model_default_params();
        if (info.Length() > 1 && info[1].IsObject()) {
            Napi::Object o = info[1].As<Napi::Object>();
            auto opt_int = [&](const char *name, int &out) {
                if (!o.Has(name) || o.Get(name).IsUndefined()) return;
                Napi::Value v = o.Get(name);
                if (!v.IsNumber()) throw_error(env, "ERR_INVALID_ARG", std::string(name) + " must be a number");
                out = v.As<Napi::Number>().Int32Value();
            };
            opt_int("contextSize", p.n_ctx);
            opt_int("threads", p.n_threads);
            opt_int("kvType", p.kv_type);
            opt_int("repack", p.repack);
            opt_int("gpu", p.gpu);
            opt_int("gpuLayers", p.gpu_layers);
        }
        return load(env, "healthgpt.Model.load", [path, p](model_box &box) {
            box.model = hg_model_load(path.c_str(), &p);
            if (!box.model) throw native_error();
        });
    }

    // Sizes fixed at load: read without the lock, so the JS thread never waits on a job.
    Napi::Value Info(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        model_ptr b = live(env);
        Napi::Object o = Napi::Object::New(env);
        o.Set("nVocab", hg_model_n_vocab(b->model));
        o.Set("nEmbd", hg_model_n_embd(b->model));
        o.Set("nCtx", hg_model_n_ctx(b->model));
        o.Set("backend", hg_model_backend(b->model));
        return o;
    }

    // eval(tokens: Int32Array, startPos, allLogits, plugin = -1, embd?: Float32Array):
    // Promise<Float32Array>. Forgets cached positions >= startPos first (prefix reuse: in the
    // job, so the JS thread never waits for the model's lock), then runs the tokens from
    // there. Logits of the last token (n_vocab) or of every token (n * n_vocab) when
    // allLogits. plugin: an id from loadPlugin, -1 for the base alone.
    // embd: one row of nEmbd floats for each token that is -1, in order.
    Napi::Value Eval(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        model_ptr b = live(env);
        if (info.Length() < 1 || !info[0].IsTypedArray() ||
            info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
            throw_error(env, "ERR_INVALID_ARG", "tokens must be an Int32Array");
        Napi::Int32Array tokens = info[0].As<Napi::Int32Array>();
        const int start = arg_int32(info, 1, "startPos");
        const bool all = info.Length() > 2 && info[2].ToBoolean().Value();
        const int plugin = info.Length() > 3 && !info[3].IsUndefined() ? arg_int32(info, 3, "plugin") : -1;
        const int n = (int)tokens.ElementLength();
        if (n <= 0) throw_error(env, "ERR_INVALID_ARG", "tokens is empty");
        const int32_t *in = tokens.Data();
        size_t n_rows = 0;
        for (int i = 0; i < n; i++) n_rows += in[i] == -1;
        const float *embd = nullptr;
        std::vector<Napi::Value> inputs = {tokens};
        if (info.Length() > 4 && !info[4].IsUndefined()) {
            if (!info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
                throw_error(env, "ERR_INVALID_ARG", "embd must be a Float32Array");
            Napi::Float32Array e = info[4].As<Napi::Float32Array>();
            const size_t want = n_rows * (size_t)hg_model_n_embd(b->model);
            if (e.ElementLength() != want)
                throw_error(env, "ERR_INVALID_ARG",
                            "embd has " + std::to_string(e.ElementLength()) + " floats, expected " +
                                std::to_string(n_rows) + " rows of " + std::to_string(hg_model_n_embd(b->model)) +
                                " (one per token -1)");
            embd = e.Data();
            inputs.push_back(e);
        }
        const int n_vocab = hg_model_n_vocab(b->model);
        Napi::Float32Array logits = Napi::Float32Array::New(env, (size_t)n_vocab * (all ? n : 1));
        float *out = logits.Data();
        return job(
            env, "healthgpt.Model.eval",
            [in, embd, n, start, out, all, plugin](model_box &b) {
                if (hg_model_kv_clear(b.model, start) < 0 ||
                    hg_model_eval_embd(b.model, plugin, in, embd, n, start, out, all ? 1 : 0) < 0)
                    throw native_error();
            },
            [](Napi::Env, Napi::Value kept) { return kept; }, logits, inputs);
    }

    // loadPlugin(path, {adapterType, fused}): Promise<{id, name}>, the plugin's id for eval
    // and the name its file gives (hlora.plugin).
    Napi::Value LoadPlugin(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        live(env);
        const std::string path = arg_string(info, 0, "path");
        hg_plugin_params p = hg_plugin_default_params();
        if (info.Length() > 1 && info[1].IsObject()) {
            Napi::Object o = info[1].As<Napi::Object>();
            if (o.Has("adapterType") && !o.Get("adapterType").IsUndefined()) {
                if (!o.Get("adapterType").IsNumber())
                    throw_error(env, "ERR_INVALID_ARG", "adapterType must be a number");
                p.adapter_type = o.Get("adapterType").As<Napi::Number>().Int32Value();
            }
            if (o.Has("fused") && !o.Get("fused").IsUndefined()) p.fused = o.Get("fused").ToBoolean().Value() ? 1 : 0;
        }
        auto result = std::make_shared<std::pair<int, std::string>>(-1, "");
        return job(
            env, "healthgpt.Model.loadPlugin",
            [path, p, result](model_box &b) {
                const int id = hg_model_load_plugin(b.model, path.c_str(), &p);
                if (id < 0) throw native_error();
                result->first = id;
                result->second = hg_model_plugin_name(b.model, id);
            },
            [result](Napi::Env env, Napi::Value) -> Napi::Value {
                Napi::Object o = Napi::Object::New(env);
                o.Set("id", result->first);
                o.Set("name", result->second);
                return o;
            },
            env.Undefined());
    }
};

} // namespace

void init_model(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = Model::Define(env);
    ctors(env).model = Napi::Persistent(ctor);
    exports.Set("Model", ctor);
}

} // namespace hgnode
