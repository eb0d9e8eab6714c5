// llama-clip-bench: llama.cpp's own CLIP encode time (tools/mtmd/clip.cpp, the source
// node-llama-cpp bundles) on an mmproj GGUF, for tools/device-check.sh to set beside
// native/tools/bench_vision's on the same file. Built there against llama.cpp's build (its
// `mtmd` library and ggml, CUDA or not):
//
//   c++ -O2 -std=c++17 -I$L/tools/mtmd -I$L/include -I$L/ggml/include tools/llama-clip-bench.cpp \
//     -L$B/bin -lmtmd -lllama -lggml -lggml-base -Wl,-rpath,$B/bin -o llama-clip-bench
//   llama-clip-bench MMPROJ [-r 5] [--size 336] [--cpu]
//
// Random, already normalised pixels go straight into a clip_image_f32 of --size (the file's
// clip.vision.image_size; clip.h has no getter for it) (as
// tools/mmproj-golden/harness.cpp does: llama.cpp's resize and normalisation are bypassed, as
// bench_vision's time starts from normalised pixels too). clip_image_encode runs the tower up
// to clip.vision.feature_layer and the projector, embeddings back on the host: the work
// bench_vision times. Flash attention as llama.cpp chooses it (auto: on where the backend has
// the kernels). Median of -r runs after one warm-up; prints a line, then one JSON object.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "clip-impl.h"
#include "clip.h"
#include "ggml-backend.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s MMPROJ [-r 5] [--size 336] [--cpu]\n", argv[0]);
        return 2;
    }
    int reps = 5, side = 336;
    bool gpu = true;
    for (int i = 2; i < argc; i++) {
        if (!std::strcmp(argv[i], "-r") && i + 1 < argc)
            reps = std::max(1, std::atoi(argv[++i]));
        else if (!std::strcmp(argv[i], "--size") && i + 1 < argc)
            side = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--cpu"))
            gpu = false;
        else {
            std::fprintf(stderr, "llama-clip-bench: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (side < 14 || side > 4096) {
        std::fprintf(stderr, "llama-clip-bench: --size %d is not an image size\n", side);
        return 2;
    }
    clip_context_params params{};
    params.use_gpu = gpu;
    params.device = nullptr;
    params.flash_attn_type = CLIP_FLASH_ATTN_TYPE_AUTO;
    params.image_min_tokens = -1;
    params.image_max_tokens = -1;
    params.warmup = true; // sizes the graph and settles flash attention before timing
    params.cb_eval = nullptr;
    params.no_alloc = false;
    clip_init_result r = clip_init(argv[1], params);
    if (!r.ctx_v) {
        std::fprintf(stderr, "llama-clip-bench: clip_init failed for %s\n", argv[1]);
        return 1;
    }
    clip_ctx *ctx = r.ctx_v;
    std::string where = "cpu";
    for (const auto &kv : clip_get_mem_usage(ctx))
        if (kv.first && ggml_backend_dev_type(kv.first) != GGML_BACKEND_DEVICE_TYPE_CPU)
            where = ggml_backend_dev_description(kv.first);

    std::vector<float> hwc((size_t)side * side * 3);
    uint32_t s = 99;
    for (float &v : hwc) s = s * 1664525u + 1013904223u, v = (float)((int32_t)s >> 8) / (float)(1 << 23) * 2.0f;
    clip_image_f32 img;
    img.set_size({side, side}, false, false);
    img.cpy_buf(hwc);
    const int n_tok = clip_n_output_tokens(ctx, &img), n_mm = clip_n_mmproj_embd(ctx);
    std::vector<float> out((size_t)n_tok * n_mm); // clip_image_encode fills a buffer already sized
    const int threads = (int)std::max(1u, std::thread::hardware_concurrency());
    std::vector<double> ms;
    for (int i = 0; i <= reps; i++) {
        const auto t0 = std::chrono::steady_clock::now();
        if (!clip_image_encode(ctx, threads, &img, out)) {
            std::fprintf(stderr, "llama-clip-bench: clip_image_encode failed\n");
            return 1;
        }
        const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (i > 0) ms.push_back(t); // run 0 warms up
    }
    std::sort(ms.begin(), ms.end());
    const double med = ms.size() % 2 ? ms[ms.size() / 2] : (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]) / 2;
    std::printf("llama.cpp clip: %dx%d, %d rows of %d: %.2f ms (median of %d) on %s\n", side, side, n_tok, n_mm, med,
                reps, where.c_str());
    std::printf("{\"engine\":\"llama.cpp\",\"clip_ms\":%.3f,\"n_rows\":%d,\"n_mmproj_embd\":%d}\n", med, n_tok, n_mm);
    clip_free(ctx);
    return 0;
}
