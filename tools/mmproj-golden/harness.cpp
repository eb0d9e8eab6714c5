// Runs llama.cpp's own CLIP code (tools/mtmd/clip.cpp, as bundled in node-llama-cpp) on an
// mmproj GGUF and an already preprocessed image, and writes what it computes:
//
//   harness MMPROJ PIXELS OUT [threads]
//
// PIXELS: raw little-endian f32, 3 x S x S, channels first, already normalised (S =
// clip.vision.image_size). llama.cpp's preprocessing (pad, resize, normalise) is bypassed: the
// floats go straight into a clip_image_f32 of S x S (clip.cpp copies that buffer, HWC, into
// the graph's CHW input as is).
// OUT: raw f32, n_patches x n_embd features (the output of the last layer clip.cpp runs, the
// class position dropped: the projector's input) followed by n_patches x n_mmproj_embd
// projected embeddings (clip_image_encode's output). A line on stdout gives the numbers.
//
// The features come from the graph itself through the scheduler's eval callback: the tensor
// named "layer_out-<il>" of the deepest layer run (or "pre_ln" when it runs none). Debugging
// knobs: CAPTURE=<graph tensor name> writes that tensor as the features instead (rows 1..
// of it); NO_CB=1 runs without the callback (features then not written; the projection is
// the same, which shows the callback changes nothing).
//
// Note on the rows: at this llama.cpp revision the llava graph appends the class token AFTER
// the patches while "positions" and "patches" still assume it first (ggml-org/llama.cpp issue
// 25814), so output row r is patch r + 1 (with patch r's position embedding) and the last row
// is the class token. The harness writes what llama.cpp computes, unchanged.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "clip.h"
#include "clip-impl.h"
#include "ggml-backend.h"
#include "ggml.h"

struct Capture {
    int last_layer = -1;          // deepest "layer_out-N" seen
    std::vector<float> data;      // its values
    int64_t ne0 = 0, ne1 = 0;
};

static bool on_eval(struct ggml_tensor *t, bool ask, void *user) {
    auto *cap = static_cast<Capture *>(user);
    const char *name = ggml_get_name(t);
    int il = -2;
    const char *want = std::getenv("CAPTURE");
    if (want) { if (std::strcmp(name, want) == 0) il = 0; }
    else if (std::strncmp(name, "layer_out-", 10) == 0) il = std::atoi(name + 10);
    else if (std::strcmp(name, "pre_ln") == 0) il = -1;
    if (il == -2) return ask ? false : true;
    if (ask) return true;
    if (il < cap->last_layer || t->type != GGML_TYPE_F32) return true;
    cap->last_layer = il;
    cap->ne0 = t->ne[0];
    cap->ne1 = t->ne[1];
    cap->data.resize(ggml_nelements(t));
    ggml_backend_tensor_get(t, cap->data.data(), 0, ggml_nbytes(t));
    return true;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s MMPROJ PIXELS OUT [threads]\n", argv[0]);
        return 2;
    }
    const int threads = argc > 4 ? std::atoi(argv[4]) : 1;
    Capture cap;

    clip_context_params params{};
    params.use_gpu = false;
    params.device = nullptr;
    params.flash_attn_type = CLIP_FLASH_ATTN_TYPE_DISABLED;
    params.image_min_tokens = -1;
    params.image_max_tokens = -1;
    params.warmup = false;
    params.cb_eval = std::getenv("NO_CB") ? nullptr : on_eval;
    params.cb_eval_user_data = &cap;
    params.no_alloc = false;
    clip_init_result r = clip_init(argv[1], params);
    if (!r.ctx_v) {
        std::fprintf(stderr, "clip_init failed for %s\n", argv[1]);
        return 1;
    }
    clip_ctx *ctx = r.ctx_v;

    std::ifstream in(argv[2], std::ios::binary | std::ios::ate);
    if (!in) { std::fprintf(stderr, "cannot read %s\n", argv[2]); return 1; }
    const size_t n = static_cast<size_t>(in.tellg()) / sizeof(float);
    std::vector<float> chw(n);
    in.seekg(0);
    in.read(reinterpret_cast<char *>(chw.data()), n * sizeof(float));
    size_t side = 0;
    while ((side + 1) * (side + 1) * 3 <= n) side++;
    if (side * side * 3 != n) { std::fprintf(stderr, "%s: not 3 x S x S floats\n", argv[2]); return 1; }

    std::vector<float> hwc(n);
    for (size_t c = 0; c < 3; c++)
        for (size_t p = 0; p < side * side; p++) hwc[p * 3 + c] = chw[c * side * side + p];
    clip_image_f32 img;
    img.set_size({(int)side, (int)side}, false, false);
    img.cpy_buf(hwc);

    // clip_encode copies into the caller's buffer only when it is already sized.
    const int n_tok = clip_n_output_tokens(ctx, &img);
    const int n_mm = clip_n_mmproj_embd(ctx);
    std::vector<float> out((size_t)n_tok * n_mm);
    if (!clip_image_encode(ctx, threads, &img, out)) {
        std::fprintf(stderr, "clip_image_encode failed\n");
        return 1;
    }
    // Features: the captured state minus the class position (row 0), as clip.cpp's "patches"
    // get_rows does before the projector.
    const int64_t rows = cap.ne1 - 1;
    if (!std::getenv("NO_CB") && (cap.last_layer < -1 || rows != n_tok)) {
        std::fprintf(stderr, "features not captured (last layer %d, rows %lld)\n", cap.last_layer, (long long)rows);
        return 1;
    }
    std::ofstream o(argv[3], std::ios::binary);
    o.write(reinterpret_cast<const char *>(cap.data.data() + cap.ne0), rows * cap.ne0 * sizeof(float));
    o.write(reinterpret_cast<const char *>(out.data()), out.size() * sizeof(float));
    std::printf("{\"image_size\": %zu, \"n_patches\": %d, \"n_embd\": %lld, \"n_mmproj_embd\": %d, "
                "\"layers_run\": %d, \"is_llava\": %s}\n",
                side, n_tok, (long long)cap.ne0, n_mm, cap.last_layer + 1, clip_is_llava(ctx) ? "true" : "false");
    clip_free(ctx);
    return 0;
}
