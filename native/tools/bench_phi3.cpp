// bench_phi3: prefill and decode speed of a phi3 GGUF through the C API, measured as
// llama-bench measures them (pp: one batch of P tokens into an empty cache; tg: N tokens one
// at a time from an empty cache, logits each step), so the two engines' figures compare on
// one file. With --plugin (repeatable), the same tests again with each H-LoRA plugin, after
// the base's: the adapters' overhead. With --seqs N (N > 1), decode is N sequences at once
// (hg_model_eval_batch: one decode row of each per step, after a 16-token prompt each),
// reported as the aggregate tokens per second of all N: what continuous batching serves
// several users at. -d D (llama-bench's depth): decode after D prompt tokens in the cache
// (each sequence's), where attention reads D keys a layer; --kv-type: the cache's type.
// Prints a line per test and, last, one JSON object.
//
//   bench_phi3 MODEL.gguf [--gpu off|auto|cuda] [-p 512] [-n 128] [-d 0] [-r 3] [-t threads] [-c ctx] [-ngl layers]
//              [--plugin PLUGIN.gguf]... [--adapter-type file|f32|f16|bf16|q8_0] [--seqs N] [--kv-type f16|f32|q8_0]
// --adapter-type: the plugins' adapters re-encoded at load (the library's TypeScript layer
// asks for q8_0 under a quantized base; here the default keeps the file's type).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "healthgpt.h"
#include "tool_common.h"

namespace {

int usage() {
    std::fprintf(stderr,
                 "usage: bench_phi3 MODEL.gguf [--gpu off|auto|cuda] [-p 512] [-n 128] [-d 0] [-r 3] [-t threads] "
                 "[-c ctx] [-ngl layers] [--plugin PLUGIN.gguf]... [--adapter-type file|f32|f16|bf16|q8_0] [--seqs N] "
                 "[--kv-type f16|f32|q8_0]\n");
    return 2;
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') return usage();
    const char *path = argv[1];
    int gpu = HG_GPU_AUTO, n_prompt = 512, n_gen = 128, reps = 3, threads = 0, n_ctx = 0, gpu_layers = -1, seqs = 1;
    int depth = 0, kv_type = HG_TYPE_F16;
    std::vector<std::string> plugins;
    hg_plugin_params plugin_params = hg_plugin_default_params();
    for (int i = 2; i < argc; i++) {
        const std::string a = argv[i];
        if (i + 1 >= argc) return usage();
        const std::string v = argv[++i];
        if (a == "--gpu")
            gpu = tool::gpu_choice(v);
        else if (a == "-p")
            n_prompt = std::atoi(v.c_str());
        else if (a == "-n")
            n_gen = std::atoi(v.c_str());
        else if (a == "-d")
            depth = std::atoi(v.c_str());
        else if (a == "--kv-type")
            kv_type = v == "f16" ? HG_TYPE_F16 : v == "f32" ? HG_TYPE_F32 : v == "q8_0" ? HG_TYPE_Q8_0 : -1;
        else if (a == "-r")
            reps = std::atoi(v.c_str());
        else if (a == "-t")
            threads = std::atoi(v.c_str());
        else if (a == "-c")
            n_ctx = std::atoi(v.c_str());
        else if (a == "-ngl")
            gpu_layers = std::atoi(v.c_str());
        else if (a == "--plugin")
            plugins.push_back(v);
        else if (a == "--adapter-type")
            plugin_params.adapter_type = v == "file"   ? -1
                                         : v == "f32"  ? HG_TYPE_F32
                                         : v == "f16"  ? HG_TYPE_F16
                                         : v == "bf16" ? HG_TYPE_BF16
                                         : v == "q8_0" ? HG_TYPE_Q8_0
                                                       : -2;
        else if (a == "--seqs")
            seqs = std::atoi(v.c_str());
        else
            return usage();
    }
    if (gpu < 0 || n_prompt < 0 || n_gen < 0 || depth < 0 || kv_type < 0 || reps < 1 || seqs < 1 ||
        plugin_params.adapter_type == -2)
        return usage();
    hg_model_params p = hg_model_default_params();
    p.gpu = gpu;
    p.n_threads = threads;
    p.gpu_layers = gpu_layers;
    p.n_ctx = n_ctx > 0 ? n_ctx : std::max(n_prompt, depth + 16 + n_gen) + 16;
    p.n_seq = seqs;
    p.kv_type = kv_type;
    const double t0 = tool::now_s();
    hg_model *m = hg_model_load(path, &p);
    if (!m) {
        std::fprintf(stderr, "bench_phi3: %s\n", hg_last_error());
        return 1;
    }
    const double load_s = tool::now_s() - t0;
    const char *backend = hg_model_backend(m);
    const int V = hg_model_n_vocab(m);
    std::printf("bench_phi3: %s on %s, loaded in %.2f s\n", path, backend, load_s);
    std::vector<float> logits((size_t)V);
    // sequence q's prompt (16 + depth tokens) starts at q
    std::vector<int32_t> toks((size_t)std::max(n_prompt, 16 + depth + seqs));
    uint32_t s = 12345;
    for (int32_t &t : toks) s = s * 1664525u + 1013904223u, t = (int32_t)(3 + (s >> 8) % (uint32_t)(V - 3));
    auto fail = [&](const char *what) {
        std::fprintf(stderr, "bench_phi3: %s: %s\n", what, hg_last_error());
        hg_model_free(m);
        return 1;
    };
    // warm-up: kernels loaded, pages touched, clocks up
    if (hg_model_eval(m, toks.data(), 16, 0, logits.data(), 0) != 0) return fail("warm-up");
    for (int i = 0; i < 4; i++)
        if (hg_model_eval(m, &toks[(size_t)i], 1, 16 + i, logits.data(), 0) != 0) return fail("warm-up");

    // the median pp and tg of reps runs with plugin id (-1: the base), 0 where not asked for
    auto measure = [&](int plugin, double &pp_med, double &tg_med) {
        std::vector<double> pp, tg;
        for (int r = 0; r < reps; r++) {
            if (n_prompt > 0) {
                hg_model_kv_clear(m, 0);
                const double a = tool::now_s();
                if (hg_model_eval_plugin(m, plugin, toks.data(), n_prompt, 0, logits.data(), 0) != 0) return false;
                pp.push_back(n_prompt / (tool::now_s() - a));
            }
            if (n_gen > 0 && seqs > 1) {
                // every sequence its own 16 + depth token prompt (one batch), then n_gen steps of
                // one row each; each sequence's next token picked greedily in the engine, as the
                // library does
                std::vector<hg_batch_seq> b((size_t)seqs);
                std::vector<int32_t> next((size_t)seqs), feed((size_t)seqs);
                auto segment = [&](int q, int start_pos, int n_tokens, const int32_t *tokens) {
                    hg_batch_seq &s = b[(size_t)q];
                    s = hg_batch_seq{};
                    s.seq = q, s.plugin = plugin, s.start_pos = start_pos, s.n_tokens = n_tokens, s.tokens = tokens;
                    s.logits = 1, s.greedy_lo = 0, s.greedy_hi = V, s.next = &next[(size_t)q];
                };
                for (int q = 0; q < seqs; q++) {
                    hg_model_seq_clear(m, q, 0);
                    segment(q, 0, 16 + depth, &toks[(size_t)q]);
                }
                if (hg_model_eval_batch(m, b.data(), seqs, nullptr) != 0) return false;
                const double a = tool::now_s();
                for (int i = 0; i < n_gen; i++) {
                    feed = next;
                    for (int q = 0; q < seqs; q++) segment(q, 16 + depth + i, 1, &feed[(size_t)q]);
                    if (hg_model_eval_batch(m, b.data(), seqs, nullptr) != 0) return false;
                }
                tg.push_back((double)seqs * n_gen / (tool::now_s() - a));
            } else if (n_gen > 0) {
                hg_model_kv_clear(m, 0);
                if (depth > 0 && hg_model_eval_plugin(m, plugin, toks.data(), depth, 0, logits.data(), 0) != 0)
                    return false;
                int32_t tok = toks[0];
                const double a = tool::now_s();
                for (int i = 0; i < n_gen; i++) {
                    if (hg_model_eval_plugin(m, plugin, &tok, 1, depth + i, logits.data(), 0) != 0) return false;
                    tok = (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
                }
                tg.push_back(n_gen / (tool::now_s() - a));
            }
        }
        pp_med = tool::median(pp), tg_med = tool::median(tg);
        return true;
    };
    double pp = 0, tg = 0;
    if (!measure(-1, pp, tg)) return fail("base");
    if (n_prompt > 0) std::printf("pp%d: %.2f tok/s (median of %d)\n", n_prompt, pp, reps);
    const std::string at = depth > 0 ? " @ d" + std::to_string(depth) : "";
    if (n_gen > 0 && seqs > 1)
        std::printf("tg%d%s x %d sequences: %.2f tok/s in all, %.2f per sequence (median of %d)\n", n_gen, at.c_str(),
                    seqs, tg, tg / seqs, reps);
    else if (n_gen > 0)
        std::printf("tg%d%s: %.2f tok/s (median of %d)\n", n_gen, at.c_str(), tg, reps);
    std::string plugin_json;
    for (const std::string &path : plugins) {
        const int id = hg_model_load_plugin(m, path.c_str(), &plugin_params);
        if (id < 0) return fail(path.c_str());
        std::string name = path.substr(path.find_last_of('/') + 1);
        for (char &c : name)
            if (c == '"' || c == '\\') c = '\'';
        // a decode step with a plugin first records its own CUDA graph: warm it up
        hg_model_kv_clear(m, 0);
        if (hg_model_eval_plugin(m, id, toks.data(), 16, 0, logits.data(), 0) != 0 ||
            hg_model_eval_plugin(m, id, toks.data(), 1, 16, logits.data(), 0) != 0)
            return fail("plugin warm-up");
        double ppp = 0, tgp = 0;
        if (!measure(id, ppp, tgp)) return fail(path.c_str());
        if (n_prompt > 0)
            std::printf("pp%d with %s: %.2f tok/s (%.3fx the base)\n", n_prompt, name.c_str(), ppp,
                        pp > 0 ? ppp / pp : 0);
        if (n_gen > 0)
            std::printf("tg%d with %s: %.2f tok/s (%.3fx the base)\n", n_gen, name.c_str(), tgp, tg > 0 ? tgp / tg : 0);
        char buf[512];
        std::snprintf(buf, sizeof buf, "%s{\"plugin\":\"%s\",\"pp_tok_s\":%.3f,\"tg_tok_s\":%.3f}",
                      plugin_json.empty() ? "" : ",", name.c_str(), ppp, tgp);
        plugin_json += buf;
    }
    const std::string b = tool::json_text(backend);
    std::printf("{\"engine\":\"healthgpt\",\"backend\":\"%s\",\"n_prompt\":%d,\"pp_tok_s\":%.3f,\"n_gen\":%d,\"tg_tok_"
                "s\":%.3f,\"n_depth\":%d,\"kv_type\":\"%s\",\"n_seqs\":%d,\"load_s\":%.3f,\"plugins\":[%s]}\n",
                b.c_str(), n_prompt, pp, n_gen, tg, depth,
                kv_type == HG_TYPE_F32   ? "f32"
                : kv_type == HG_TYPE_F16 ? "f16"
                                         : "q8_0",
                seqs, load_s, plugin_json.c_str());
    hg_model_free(m);
    return 0;
}
