// bench_generate: one whole image generation (the ct2mri path of lib/session generateImage)
// through the C API, timed part by part, for machines without Node (tools/device-check.sh):
//   1. CLIP: the input image at the generation tap (hidden state 1) through the generation
//      projector in one call (hg_clip_encode_project: on a device the features stay there),
//      the rows back on the host;
//   2. prefill: a prompt of the generation task's shape under the generation plugin (4 text
//      tokens, the image rows in place of <image>, 20 text tokens, <start_index>), with the
//      image rows entering as input embeddings (hg_model_eval_embd);
//   3. decode: latent^2 image tokens (1024 at 256 x 256), each the argmax of the logits over
//      the <idx_k> range only (lib/generate/image-tokens.ts's mask: the ids are a range),
//      picked in the engine as the library has it picked (hg_batch_seq's greedy range: on a
//      GPU the logits stay there), each evaluated to give the next pick, the last one's pick
//      the forced <end_index> (a range of one token) as the mask does;
//   4. VQGAN: the indices to RGB bytes.
// The image tokens are HealthGPT's layout at the end of the vocabulary (docs/model.md
// "Tokens"): <start_index>, <idx_0> .. <idx_{K-1}>, <end_index>, <pixel_newline>, K the VQGAN's
// codebook size. Text tokens and pixels are random (the weights are too: the times are what
// counts). One warm-up pass first (short: prefill, 2 tokens, one VQGAN decode), so that
// first-call costs (module loading, CUDA graph recording) are not timed. Prints a line per
// part and, last, one JSON object; "indices_fnv" (FNV-1a of the indices) lets two runs (GPU,
// CPU) on the same files be compared.
//
//   bench_generate MODEL.gguf --plugin GENERATION.gguf --clip CLIP.gguf --vqgan VQGAN.gguf
//                  [--gpu off|auto|cuda] [-t threads]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "healthgpt.h"
#include "tool_common.h"

namespace {

int usage() {
    std::fprintf(stderr, "usage: bench_generate MODEL.gguf --plugin GENERATION.gguf --clip CLIP.gguf --vqgan "
                         "VQGAN.gguf [--gpu off|auto|cuda] [-t threads]\n");
    return 2;
}

struct Times {
    double clip = 0, prefill = 0, decode = 0, vqgan = 0;
};

} // namespace

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') return usage();
    const char *model_path = argv[1];
    std::string plugin_path, clip_path, vqgan_path;
    int gpu = HG_GPU_AUTO, threads = 0;
    for (int i = 2; i < argc; i++) {
        const std::string a = argv[i];
        if (i + 1 >= argc) return usage();
        const std::string v = argv[++i];
        if (a == "--gpu")
            gpu = tool::gpu_choice(v);
        else if (a == "--plugin")
            plugin_path = v;
        else if (a == "--clip")
            clip_path = v;
        else if (a == "--vqgan")
            vqgan_path = v;
        else if (a == "-t")
            threads = std::atoi(v.c_str());
        else
            return usage();
    }
    if (gpu < 0 || plugin_path.empty() || clip_path.empty() || vqgan_path.empty()) return usage();

    hg_model *m = nullptr;
    hg_clip *clip = nullptr;
    hg_vqgan *vq = nullptr;
    auto fail = [&](const std::string &what) {
        std::fprintf(stderr, "bench_generate: %s: %s\n", what.c_str(), hg_last_error());
        hg_vqgan_free(vq);
        hg_clip_free(clip);
        hg_model_free(m);
        return 1;
    };
    const double t_load = tool::now_ms();
    hg_clip_params cp = hg_clip_default_params();
    cp.gpu = gpu, cp.n_threads = threads;
    if (!(clip = hg_clip_load(clip_path.c_str(), &cp))) return fail(clip_path);
    hg_vqgan_params vp = hg_vqgan_default_params();
    vp.gpu = gpu, vp.n_threads = threads;
    if (!(vq = hg_vqgan_load(vqgan_path.c_str(), &vp))) return fail(vqgan_path);
    hg_vqgan_info info{};
    if (hg_vqgan_get_info(vq, &info) != 0) return fail("vqgan info");
    const int n_patches = hg_clip_n_patches(clip), count = info.latent * info.latent, K = info.n_embed;
    const int n_prompt = 4 + n_patches + 20 + 1;

    hg_model_params mp = hg_model_default_params();
    mp.gpu = gpu, mp.n_threads = threads;
    mp.n_ctx = n_prompt + count + 8;
    if (!(m = hg_model_load(model_path, &mp))) return fail(model_path);
    const int plugin = hg_model_load_plugin(m, plugin_path.c_str(), nullptr);
    if (plugin < 0) return fail(plugin_path);
    const double load_ms = tool::now_ms() - t_load;

    const int V = hg_model_n_vocab(m), E = hg_model_n_embd(m);
    if (hg_clip_projector_dim(clip, HG_CLIP_PROJECTOR_GENERATION) != E) {
        std::fprintf(stderr, "bench_generate: the generation projector gives %d values a row, the model takes %d\n",
                     hg_clip_projector_dim(clip, HG_CLIP_PROJECTOR_GENERATION), E);
        return fail("shapes");
    }
    if (V < K + 3 + 16) {
        std::fprintf(stderr, "bench_generate: a vocabulary of %d has no room for %d image tokens\n", V, K + 3);
        return fail("shapes");
    }
    const int32_t start_id = V - K - 3, first_idx = start_id + 1, end_id = V - 2;
    std::printf("bench_generate: model %s on %s, CLIP on %s, VQGAN on %s; loaded in %.0f ms\n", model_path,
                hg_model_backend(m), hg_clip_backend(clip), hg_vqgan_backend(vq), load_ms);

    // the inputs: random pixels (already normalised) and text tokens below the image tokens
    const int S = hg_clip_image_size(clip);
    std::vector<float> pixels((size_t)3 * S * S), rows((size_t)n_patches * E);
    uint32_t s = 2024;
    auto next = [&] { return s = s * 1664525u + 1013904223u; };
    for (float &p : pixels) p = (float)((int32_t)next() >> 8) / (float)(1 << 23) * 2.0f;
    std::vector<int32_t> prompt;
    for (int i = 0; i < 4; i++) prompt.push_back((int32_t)(3 + next() % (uint32_t)(start_id - 3)));
    prompt.insert(prompt.end(), (size_t)n_patches, -1);
    for (int i = 0; i < 20; i++) prompt.push_back((int32_t)(3 + next() % (uint32_t)(start_id - 3)));
    prompt.push_back(start_id);

    std::vector<int32_t> indices((size_t)count);
    std::vector<uint8_t> rgb((size_t)info.resolution * info.resolution * info.out_ch);
    // n positions from start, then the engine's greedy pick of the next token in [lo, hi)
    int32_t picked = -1;
    auto step = [&](const int32_t *toks, int n, int start, const float *embd, int32_t lo, int32_t hi) {
        hg_batch_seq q{};
        q.seq = 0, q.plugin = plugin, q.start_pos = start, q.n_tokens = n, q.tokens = toks, q.embd = embd;
        q.logits = 1, q.greedy_lo = lo, q.greedy_hi = hi, q.next = &picked;
        if (hg_model_eval_batch(m, &q, 1, nullptr) != 0) return false;
        if (picked >= lo && picked < hi) return true;
        std::fprintf(stderr, "bench_generate: no token picked in [%d, %d) at position %d (every logit NaN or -inf)\n",
                     lo, hi, start + n);
        return false;
    };
    // one generation of n_tokens image tokens (the whole one: count); false on an error
    auto generate = [&](int n_tokens, Times &t) {
        if (hg_model_kv_clear(m, 0) != 0) return false;
        double a = tool::now_ms();
        if (hg_clip_encode_project(clip, pixels.data(), HG_CLIP_TAP_GENERATION, HG_CLIP_PROJECTOR_GENERATION,
                                   rows.data()) != 0)
            return false;
        double b = tool::now_ms();
        t.clip = b - a;
        if (!step(prompt.data(), n_prompt, 0, rows.data(), first_idx, first_idx + K)) return false;
        a = tool::now_ms();
        t.prefill = a - b;
        for (int i = 0; i < n_tokens; i++) {
            indices[(size_t)i] = picked - first_idx;
            const int32_t tok = picked;
            // after the last image token the range is <end_index> alone (forced)
            const bool last = i == n_tokens - 1;
            if (!step(&tok, 1, n_prompt + i, nullptr, last ? end_id : first_idx, last ? end_id + 1 : first_idx + K))
                return false;
        }
        if (picked != end_id) return false;
        b = tool::now_ms();
        t.decode = b - a;
        for (int i = n_tokens; i < count; i++) indices[(size_t)i] = 0; // a short warm-up fills the rest
        if (hg_vqgan_decode(vq, indices.data(), count, nullptr, rgb.data()) != 0) return false;
        t.vqgan = tool::now_ms() - b;
        return true;
    };
    Times warm, t;
    if (!generate(std::min(2, count), warm)) return fail("warm-up");
    if (!generate(count, t)) return fail("generation");

    uint32_t fnv = 2166136261u;
    for (int32_t k : indices)
        for (int byte = 0; byte < 4; byte++) fnv = (fnv ^ (uint8_t)((uint32_t)k >> (8 * byte))) * 16777619u;
    int distinct = 0;
    {
        std::vector<uint8_t> seen((size_t)K);
        for (int32_t k : indices) distinct += !seen[(size_t)k]++;
    }
    const double total = t.clip + t.prefill + t.decode + t.vqgan;
    std::printf("clip: %.1f ms (encode at hidden state %d + generation projector, %d rows)\n", t.clip,
                hg_clip_tap_layer(clip, HG_CLIP_TAP_GENERATION), n_patches);
    std::printf("prefill: %.1f ms (%d positions, %d of them image rows)\n", t.prefill, n_prompt, n_patches);
    std::printf("decode: %.1f ms (%d image tokens, %.1f tok/s; %d distinct indices, fnv %08x; then <end_index> id "
                "%d)\n",
                t.decode, count, count / (t.decode / 1e3), distinct, fnv, end_id);
    std::printf("vqgan: %.1f ms (%dx%d RGB)\n", t.vqgan, info.resolution, info.resolution);
    std::printf("total: %.1f ms\n", total);
    std::printf("{\"engine\":\"healthgpt\",\"model_backend\":\"%s\",\"clip_backend\":\"%s\",\"vqgan_backend\":\"%s\","
                "\"load_ms\":%.1f,\"clip_ms\":%.3f,\"n_prompt\":%d,\"prefill_ms\":%.3f,\"n_image_tokens\":%d,"
                "\"decode_ms\":%.3f,\"decode_tok_s\":%.3f,\"vqgan_ms\":%.3f,\"total_ms\":%.3f,"
                "\"indices_fnv\":\"%08x\"}\n",
                tool::json_text(hg_model_backend(m)).c_str(), tool::json_text(hg_clip_backend(clip)).c_str(),
                tool::json_text(hg_vqgan_backend(vq)).c_str(), load_ms, t.clip, n_prompt, t.prefill, count, t.decode,
                count / (t.decode / 1e3), t.vqgan, total, fnv);
    hg_vqgan_free(vq);
    hg_clip_free(clip);
    hg_model_free(m);
    return 0;
}
