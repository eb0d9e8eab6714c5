// C API: the Phi-3 / Phi-4 decoder with its KV cache and its own thread pool.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "api/gpu_choice.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "gguf/gguf.h"
#include "healthgpt.h"
#include "models/phi3.h"

struct hg_model {
    std::unique_ptr<hg::ThreadPool> pool;
    std::unique_ptr<hg::Phi3Model> phi3;
};

namespace {

hg_model *need(hg_model *m, const char *fn) {
    if (!m) hg::fail(std::string(fn) + ": null model");
    return m;
}
const hg_model *need(const hg_model *m, const char *fn) {
    if (!m) hg::fail(std::string(fn) + ": null model");
    return m;
}

} // namespace

extern "C" {

const char *hg_model_backend(const hg_model *model) {
    return hg::guarded<const char *>(nullptr, [&] { return need(model, "hg_model_backend")->phi3->backend().c_str(); });
}

hg_model_params hg_model_default_params(void) {
    hg_model_params p;
    p.n_ctx = 0;
    p.n_threads = 0;
    p.kv_type = HG_TYPE_F16;
    p.repack = 1;
    p.gpu = HG_GPU_OFF;
    p.gpu_layers = -1;
    p.n_seq = 1;
    return p;
}

hg_model *hg_model_load(const char *path, const hg_model_params *params) {
    return hg::guarded_load<hg_model *>(nullptr, [&] {
        if (!path) hg::fail(HG_ERR_INVALID_ARG, "hg_model_load: null path");
        const hg_model_params p = params ? *params : hg_model_default_params();
        hg::Phi3Options opt;
        opt.n_ctx = p.n_ctx;
        opt.kv_type = p.kv_type;
        opt.repack = p.repack != 0;
        const int gpu = hg::checked_gpu(p.gpu, "hg_model_load");
        opt.gpu = p.gpu_layers == 0 ? HG_GPU_OFF : gpu;
        opt.gpu_layers = p.gpu_layers;
        opt.n_seq = p.n_seq;
        std::unique_ptr<hg_model> m(new hg_model());
        m->pool.reset(new hg::ThreadPool(p.n_threads));
        opt.pool = m->pool.get();
        m->phi3 = hg::Phi3Model::load(hg::GGUFFile::open(path), opt);
        return m.release();
    });
}

void hg_model_free(hg_model *model) { delete model; }

int hg_model_n_vocab(const hg_model *model) {
    return hg::guarded(-1, [&] { return (int)need(model, "hg_model_n_vocab")->phi3->hparams().n_vocab; });
}

int hg_model_n_embd(const hg_model *model) {
    return hg::guarded(-1, [&] { return (int)need(model, "hg_model_n_embd")->phi3->hparams().n_embd; });
}

int hg_model_n_ctx(const hg_model *model) {
    return hg::guarded(-1, [&] { return (int)need(model, "hg_model_n_ctx")->phi3->kv_cache().n_ctx(); });
}

int hg_model_n_past(const hg_model *model) {
    return hg::guarded(-1, [&] { return (int)need(model, "hg_model_n_past")->phi3->kv_cache().n_past(); });
}

int hg_model_n_seq(const hg_model *model) {
    return hg::guarded(-1, [&] { return need(model, "hg_model_n_seq")->phi3->n_seq(); });
}

int hg_model_seq_n_past(const hg_model *model, int seq) {
    return hg::guarded(-1, [&] { return (int)need(model, "hg_model_seq_n_past")->phi3->kv_cache(seq).n_past(); });
}

int hg_model_seq_clear(hg_model *model, int seq, int from_pos) {
    return hg::guarded(-1, [&] {
        need(model, "hg_model_seq_clear")->phi3->kv_clear(from_pos, seq);
        return 0;
    });
}

int hg_model_eval_batch(hg_model *model, const hg_batch_seq *seqs, int n_seqs, float *logits) {
    return hg::guarded(-1, [&] {
        hg_model *m = need(model, "hg_model_eval_batch");
        if (!seqs || n_seqs <= 0)
            hg::fail("hg_model_eval_batch: no segments (n_seqs = " + std::to_string(n_seqs) + ")");
        std::vector<hg::Phi3Segment> segs((size_t)n_seqs);
        for (int i = 0; i < n_seqs; i++) {
            const hg_batch_seq &b = seqs[i];
            if (b.plugin < -1)
                hg::fail("hg_model_eval_batch: segment " + std::to_string(i) + ": plugin " + std::to_string(b.plugin) +
                         " (-1 for none)");
            hg::Phi3Segment &s = segs[(size_t)i];
            s.seq = b.seq, s.plugin = b.plugin, s.start_pos = b.start_pos, s.n_tokens = b.n_tokens;
            s.tokens = b.tokens, s.embd = b.embd, s.logits = b.logits;
            s.greedy_lo = b.greedy_lo, s.greedy_hi = b.greedy_hi, s.next = b.next;
        }
        m->phi3->eval_batch(*m->pool, segs.data(), n_seqs, logits);
        return 0;
    });
}

int hg_model_eval(hg_model *model, const int32_t *tokens, int n, int start_pos, float *logits, int all_logits) {
    return hg_model_eval_embd(model, -1, tokens, nullptr, n, start_pos, logits, all_logits);
}

hg_plugin_params hg_plugin_default_params(void) {
    hg_plugin_params p;
    p.adapter_type = -1;
    p.fused = 1;
    return p;
}

int hg_model_load_plugin(hg_model *model, const char *path, const hg_plugin_params *params) {
    return hg::guarded_load(-1, [&] {
        hg_model *m = need(model, "hg_model_load_plugin");
        if (!path) hg::fail(HG_ERR_INVALID_ARG, "hg_model_load_plugin: null path");
        const hg_plugin_params p = params ? *params : hg_plugin_default_params();
        hg::HLoraPluginOptions opt;
        opt.adapter_type = p.adapter_type;
        opt.fused = p.fused != 0;
        opt.pack = !m->phi3->on_device(); // the device reads plain layouts
        return m->phi3->add_plugin(hg::HLoraPlugin::load(hg::GGUFFile::open(path), m->phi3->base_shape(), opt));
    });
}

int hg_model_n_plugins(const hg_model *model) {
    return hg::guarded(-1, [&] { return need(model, "hg_model_n_plugins")->phi3->n_plugins(); });
}

const char *hg_model_plugin_name(const hg_model *model, int plugin) {
    return hg::guarded<const char *>(
        nullptr, [&] { return need(model, "hg_model_plugin_name")->phi3->plugin(plugin).name().c_str(); });
}

int hg_model_eval_plugin(hg_model *model, int plugin, const int32_t *tokens, int n, int start_pos, float *logits,
                         int all_logits) {
    return hg_model_eval_embd(model, plugin, tokens, nullptr, n, start_pos, logits, all_logits);
}

int hg_model_eval_embd(hg_model *model, int plugin, const int32_t *tokens, const float *embd, int n, int start_pos,
                       float *logits, int all_logits) {
    return hg::guarded(-1, [&] {
        hg_model *m = need(model, "hg_model_eval");
        if (!tokens || n <= 0) hg::fail("hg_model_eval: no tokens (n = " + std::to_string(n) + ")");
        if (start_pos < 0) hg::fail("hg_model_eval: start_pos " + std::to_string(start_pos) + " is negative");
        if (plugin < -1) hg::fail("hg_model_eval: plugin " + std::to_string(plugin) + " (-1 for none)");
        m->phi3->eval(*m->pool, tokens, n, start_pos, logits, all_logits != 0, plugin, embd);
        return 0;
    });
}

int hg_model_kv_clear(hg_model *model, int from_pos) {
    return hg::guarded(-1, [&] {
        need(model, "hg_model_kv_clear")->phi3->kv_clear(from_pos);
        return 0;
    });
}

} // extern "C"
