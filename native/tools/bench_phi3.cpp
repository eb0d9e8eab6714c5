// bench_phi3: prefill and decode speed of a phi3 GGUF through the C API, measured as
// llama-bench measures them (pp: one batch of P tokens into an empty cache; tg: N tokens one
// at a time from an empty cache, logits each step), so the two engines' figures compare on
// one file. Prints a line per test and, last, one JSON object.
//
//   bench_phi3 MODEL.gguf [--gpu off|auto|cuda] [-p 512] [-n 128] [-r 3] [-t threads] [-c ctx] [-ngl layers]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "healthgpt.h"

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

int usage() {
    std::fprintf(stderr, "usage: bench_phi3 MODEL.gguf [--gpu off|auto|cuda] [-p 512] [-n 128] [-r 3] [-t threads] [-c "
                         "ctx] [-ngl layers]\n");
    return 2;
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') return usage();
    const char *path = argv[1];
    int gpu = HG_GPU_AUTO, n_prompt = 512, n_gen = 128, reps = 3, threads = 0, n_ctx = 0, gpu_layers = -1;
    for (int i = 2; i < argc; i++) {
        const std::string a = argv[i];
        if (i + 1 >= argc) return usage();
        const std::string v = argv[++i];
        if (a == "--gpu")
            gpu = v == "off" ? HG_GPU_OFF : v == "cuda" ? HG_GPU_CUDA : v == "auto" ? HG_GPU_AUTO : -1;
        else if (a == "-p")
            n_prompt = std::atoi(v.c_str());
        else if (a == "-n")
            n_gen = std::atoi(v.c_str());
        else if (a == "-r")
            reps = std::atoi(v.c_str());
        else if (a == "-t")
            threads = std::atoi(v.c_str());
        else if (a == "-c")
            n_ctx = std::atoi(v.c_str());
        else if (a == "-ngl")
            gpu_layers = std::atoi(v.c_str());
        else
            return usage();
    }
    if (gpu < 0 || n_prompt < 0 || n_gen < 0 || reps < 1) return usage();
    hg_model_params p = hg_model_default_params();
    p.gpu = gpu;
    p.n_threads = threads;
    p.gpu_layers = gpu_layers;
    p.n_ctx = n_ctx > 0 ? n_ctx : std::max(n_prompt, n_gen) + 16;
    const double t0 = now_s();
    hg_model *m = hg_model_load(path, &p);
    if (!m) {
        std::fprintf(stderr, "bench_phi3: %s\n", hg_last_error());
        return 1;
    }
    const double load_s = now_s() - t0;
    const char *backend = hg_model_backend(m);
    const int V = hg_model_n_vocab(m);
    std::printf("bench_phi3: %s on %s, loaded in %.2f s\n", path, backend, load_s);
    std::vector<float> logits((size_t)V);
    std::vector<int32_t> toks((size_t)std::max(n_prompt, 16));
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

    std::vector<double> pp, tg;
    for (int r = 0; r < reps; r++) {
        if (n_prompt > 0) {
            hg_model_kv_clear(m, 0);
            const double a = now_s();
            if (hg_model_eval(m, toks.data(), n_prompt, 0, logits.data(), 0) != 0) return fail("prefill");
            pp.push_back(n_prompt / (now_s() - a));
        }
        if (n_gen > 0) {
            hg_model_kv_clear(m, 0);
            int32_t tok = toks[0];
            const double a = now_s();
            for (int i = 0; i < n_gen; i++) {
                if (hg_model_eval(m, &tok, 1, i, logits.data(), 0) != 0) return fail("decode");
                tok = (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
            }
            tg.push_back(n_gen / (now_s() - a));
        }
    }
    if (n_prompt > 0) std::printf("pp%d: %.2f tok/s (median of %d)\n", n_prompt, median(pp), reps);
    if (n_gen > 0) std::printf("tg%d: %.2f tok/s (median of %d)\n", n_gen, median(tg), reps);
    std::string b;
    for (const char *c = backend; *c; c++) b += *c == '"' || *c == '\\' ? '\'' : *c;
    std::printf("{\"engine\":\"healthgpt\",\"backend\":\"%s\",\"n_prompt\":%d,\"pp_tok_s\":%.3f,\"n_gen\":%d,\"tg_tok_"
                "s\":%.3f,\"load_s\":%.3f}\n",
                b.c_str(), n_prompt, median(pp), n_gen, median(tg), load_s);
    hg_model_free(m);
    return 0;
}
