// Model: a JS handle on a loaded language model (weights mapped, KV cache, thread pool;
// src/handle.h). Every call that computes runs off the JS thread; calls on one model are
// serialised by the box's lock (the TypeScript layer also queues whole requests, so they
// never interleave in the cache).
#include <algorithm>
#include <climits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "addon.h"
#include "handle.h"

namespace hgnode {

namespace {

// The native model plus the lock that keeps two jobs off its KV cache at once. seqClear on
// the JS thread must not wait for a running job: it records the clear, and the next job
// applies it under the lock before it runs (seqNPast counts it at once).
struct model_box {
    hg_model *model = nullptr;
    std::mutex busy;
    std::mutex pending_mu;
    std::vector<int> pending_clear; // per slot: clear from this position, INT_MAX: none
    ~model_box() { hg_model_free(model); }

    // under `busy`
    void apply_pending_clears() {
        std::lock_guard<std::mutex> lk(pending_mu);
        for (size_t s = 0; s < pending_clear.size(); s++) {
            if (pending_clear[s] == INT_MAX) continue;
            if (hg_model_seq_clear(model, (int)s, pending_clear[s]) < 0) throw native_error();
            pending_clear[s] = INT_MAX;
        }
    }
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
                               InstanceMethod("evalBatch", &Model::EvalBatch),
                               InstanceMethod("seqNPast", &Model::SeqNPast),
                               InstanceMethod("seqClear", &Model::SeqClear),
                               InstanceMethod("loadPlugin", &Model::LoadPlugin),
                               InstanceMethod("info", &Model::Info),
                               InstanceMethod("dispose", &Model::Dispose),
                           });
    }

    using EngineObject::EngineObject;

  private:
    // load(path, {contextSize, threads, kvType, repack, gpu, gpuLayers, sequences}): Promise<Model>
    static Napi::Value Load(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        const std::string path = arg_string(info, 0, "path");
        hg_model_params p = hg_model_default_params();
        if (info.Length() > 1 && info[1].IsObject()) {
            Napi::Object o = info[1].As<Napi::Object>();
            opt_int(env, o, "contextSize", p.n_ctx);
            opt_int(env, o, "threads", p.n_threads);
            opt_int(env, o, "kvType", p.kv_type);
            opt_int(env, o, "repack", p.repack);
            opt_int(env, o, "gpu", p.gpu);
            opt_int(env, o, "gpuLayers", p.gpu_layers);
            opt_int(env, o, "sequences", p.n_seq);
        }
        return load(env, "healthgpt.Model.load", [path, p](model_box &box) {
            box.model = hg_model_load(path.c_str(), &p);
            if (!box.model) throw native_error();
            box.pending_clear.assign((size_t)hg_model_n_seq(box.model), INT_MAX);
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
        o.Set("nSeq", hg_model_n_seq(b->model));
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
                b.apply_pending_clears();
                if (hg_model_kv_clear(b.model, start) < 0 ||
                    hg_model_eval_embd(b.model, plugin, in, embd, n, start, out, all ? 1 : 0) < 0)
                    throw native_error();
            },
            [](Napi::Env, Napi::Value kept) { return kept; }, logits, inputs);
    }

    // evalBatch(segments: {seq, startPos, tokens, plugin?, embd?, logits, greedy?}[]): Promise<Float32Array>.
    // Like eval for each segment (its slot's positions >= startPos are forgotten first), all in
    // one pass over the weights; the logits rows of every segment that asked, in order. greedy
    // {lo, hi, next}: the engine picks the last row's token in [lo, hi) into next[0] (an
    // Int32Array) and the row is not returned.
    Napi::Value EvalBatch(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        model_ptr b = live(env);
        if (info.Length() < 1 || !info[0].IsArray()) throw_error(env, "ERR_INVALID_ARG", "segments must be an array");
        Napi::Array arr = info[0].As<Napi::Array>();
        const uint32_t n_segs = arr.Length();
        if (n_segs == 0) throw_error(env, "ERR_INVALID_ARG", "segments is empty");
        const int n_seq = hg_model_n_seq(b->model), n_embd = hg_model_n_embd(b->model);
        std::vector<hg_batch_seq> segs(n_segs);
        std::vector<Napi::Value> inputs;
        std::vector<bool> seen((size_t)n_seq, false);
        size_t n_rows = 0;
        for (uint32_t i = 0; i < n_segs; i++) {
            const std::string who = "segments[" + std::to_string(i) + "]";
            if (!arr.Get(i).IsObject()) throw_error(env, "ERR_INVALID_ARG", who + " must be an object");
            Napi::Object o = arr.Get(i).As<Napi::Object>();
            auto get_int = [&](const char *name, bool required, int dflt) {
                Napi::Value v = o.Get(name);
                if (v.IsUndefined() && !required) return dflt;
                if (!v.IsNumber()) throw_error(env, "ERR_INVALID_ARG", who + "." + name + " must be a number");
                const double d = v.As<Napi::Number>().DoubleValue();
                if (!(d >= INT_MIN && d <= INT_MAX) || d != (double)(int)d)
                    throw_error(env, "ERR_INVALID_ARG", who + "." + name + " must be an integer");
                return (int)d;
            };
            hg_batch_seq &s = segs[i];
            s.seq = get_int("seq", true, 0);
            s.start_pos = get_int("startPos", true, 0);
            s.plugin = get_int("plugin", false, -1);
            s.logits = get_int("logits", true, 0);
            if (s.seq < 0 || s.seq >= n_seq)
                throw_error(env, "ERR_INVALID_ARG",
                            who + ".seq " + std::to_string(s.seq) +
                                " is not a slot of this model (sequences: " + std::to_string(n_seq) + ")");
            if (seen[(size_t)s.seq])
                throw_error(env, "ERR_INVALID_ARG",
                            who + ".seq " + std::to_string(s.seq) + " appears twice in one batch");
            seen[(size_t)s.seq] = true;
            if (s.start_pos < 0) throw_error(env, "ERR_INVALID_ARG", who + ".startPos must be >= 0");
            if (s.logits < 0 || s.logits > 2) throw_error(env, "ERR_INVALID_ARG", who + ".logits must be 0, 1 or 2");
            Napi::Value t = o.Get("tokens");
            if (!t.IsTypedArray() || t.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
                throw_error(env, "ERR_INVALID_ARG", who + ".tokens must be an Int32Array");
            Napi::Int32Array tokens = t.As<Napi::Int32Array>();
            s.n_tokens = (int)tokens.ElementLength();
            if (s.n_tokens <= 0) throw_error(env, "ERR_INVALID_ARG", who + ".tokens is empty");
            s.tokens = tokens.Data();
            inputs.push_back(tokens);
            s.embd = nullptr;
            Napi::Value e = o.Get("embd");
            if (!e.IsUndefined()) {
                if (!e.IsTypedArray() || e.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
                    throw_error(env, "ERR_INVALID_ARG", who + ".embd must be a Float32Array");
                Napi::Float32Array ef = e.As<Napi::Float32Array>();
                size_t want = 0;
                for (int j = 0; j < s.n_tokens; j++) want += s.tokens[j] == -1;
                if (ef.ElementLength() != want * (size_t)n_embd)
                    throw_error(env, "ERR_INVALID_ARG",
                                who + ".embd has " + std::to_string(ef.ElementLength()) + " floats, expected " +
                                    std::to_string(want) + " rows of " + std::to_string(n_embd) +
                                    " (one per token -1)");
                s.embd = ef.Data();
                inputs.push_back(ef);
            }
            Napi::Value g = o.Get("greedy");
            if (!g.IsUndefined()) {
                if (!g.IsObject())
                    throw_error(env, "ERR_INVALID_ARG", who + ".greedy must be an object {lo, hi, next}");
                Napi::Object go = g.As<Napi::Object>();
                auto get_bound = [&](const char *name) {
                    Napi::Value v = go.Get(name);
                    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
                    if (!(d >= 0 && d <= INT_MAX) || d != (double)(int)d)
                        throw_error(env, "ERR_INVALID_ARG", who + ".greedy." + name + " must be an integer >= 0");
                    return (int)d;
                };
                s.greedy_lo = get_bound("lo");
                s.greedy_hi = get_bound("hi");
                Napi::Value nx = go.Get("next");
                if (!nx.IsTypedArray() || nx.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
                    nx.As<Napi::Int32Array>().ElementLength() < 1)
                    throw_error(env, "ERR_INVALID_ARG", who + ".greedy.next must be an Int32Array of at least 1");
                if (s.logits != 1) throw_error(env, "ERR_INVALID_ARG", who + ".greedy needs logits 1");
                s.next = nx.As<Napi::Int32Array>().Data();
                inputs.push_back(nx);
            }
            n_rows += s.logits == 2 ? (size_t)s.n_tokens : s.next ? 0 : (size_t)s.logits;
        }
        const int n_vocab = hg_model_n_vocab(b->model);
        Napi::Float32Array logits = Napi::Float32Array::New(env, (size_t)n_vocab * n_rows);
        float *out = n_rows ? logits.Data() : nullptr;
        return job(
            env, "healthgpt.Model.evalBatch",
            [segs, out](model_box &b) {
                b.apply_pending_clears();
                for (const hg_batch_seq &s : segs)
                    if (hg_model_seq_clear(b.model, s.seq, s.start_pos) < 0) throw native_error();
                if (hg_model_eval_batch(b.model, segs.data(), (int)segs.size(), out) < 0) throw native_error();
            },
            [](Napi::Env, Napi::Value kept) { return kept; }, logits, inputs);
    }

    int arg_seq(const Napi::CallbackInfo &info, const model_ptr &b) {
        const int seq = arg_int32(info, 0, "seq");
        const int n_seq = hg_model_n_seq(b->model);
        if (seq < 0 || seq >= n_seq)
            throw_error(info.Env(), "ERR_INVALID_ARG",
                        "seq " + std::to_string(seq) +
                            " is not a slot of this model (sequences: " + std::to_string(n_seq) + ")");
        return seq;
    }

    // seqNPast(seq): positions slot seq holds (as of the last finished job, less a pending clear).
    Napi::Value SeqNPast(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        model_ptr b = live(env);
        const int seq = arg_seq(info, b);
        const int n = hg_model_seq_n_past(b->model, seq);
        std::lock_guard<std::mutex> lk(b->pending_mu);
        return Napi::Number::New(env, std::min(n, b->pending_clear[(size_t)seq]));
    }

    // seqClear(seq, fromPos): forgets slot seq's positions >= fromPos before the next job.
    Napi::Value SeqClear(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        model_ptr b = live(env);
        const int seq = arg_seq(info, b);
        const int from = arg_int32(info, 1, "fromPos");
        if (from < 0) throw_error(env, "ERR_INVALID_ARG", "fromPos must be >= 0");
        std::lock_guard<std::mutex> lk(b->pending_mu);
        int &p = b->pending_clear[(size_t)seq];
        p = std::min(p, from);
        return env.Undefined();
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
            opt_int(env, o, "adapterType", p.adapter_type);
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
