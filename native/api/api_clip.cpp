// C API: the CLIP vision tower and its projectors, with their own thread pool.
#include <memory>
#include <string>

#include "api/gpu_choice.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "gguf/gguf.h"
#include "healthgpt.h"
#include "models/clip.h"

struct hg_clip {
    std::string backend;
    std::unique_ptr<hg::ThreadPool> pool;
    std::unique_ptr<hg::ClipModel> model;
};

namespace {

const hg_clip *need(const hg_clip *c, const char *fn) {
    if (!c) hg::fail(std::string(fn) + ": null tower");
    return c;
}

} // namespace

extern "C" {

hg_clip_params hg_clip_default_params(void) {
    hg_clip_params p;
    p.n_threads = 0;
    p.gpu = HG_GPU_OFF;
    return p;
}

hg_clip *hg_clip_load(const char *path, const hg_clip_params *params) {
    return hg::guarded_load<hg_clip *>(nullptr, [&] {
        if (!path) hg::fail(HG_ERR_INVALID_ARG, "hg_clip_load: null path");
        const hg_clip_params p = params ? *params : hg_clip_default_params();
        std::unique_ptr<hg_clip> c(new hg_clip());
        const int gpu = hg::checked_gpu(p.gpu, "hg_clip_load");
        c->pool.reset(new hg::ThreadPool(p.n_threads));
        c->model = hg::ClipModel::load(hg::GGUFFile::open(path), c->pool.get(), true, gpu);
        c->backend = c->model->backend();
        return c.release();
    });
}

void hg_clip_free(hg_clip *clip) { delete clip; }

const char *hg_clip_backend(const hg_clip *clip) {
    return hg::guarded<const char *>(nullptr, [&] { return need(clip, "hg_clip_backend")->backend.c_str(); });
}

int hg_clip_image_size(const hg_clip *clip) {
    return hg::guarded(-1, [&] { return (int)need(clip, "hg_clip_image_size")->model->hparams().image_size; });
}
int hg_clip_patch_size(const hg_clip *clip) {
    return hg::guarded(-1, [&] { return (int)need(clip, "hg_clip_patch_size")->model->hparams().patch_size; });
}
int hg_clip_n_embd(const hg_clip *clip) {
    return hg::guarded(-1, [&] { return (int)need(clip, "hg_clip_n_embd")->model->hparams().n_embd; });
}
int hg_clip_n_patches(const hg_clip *clip) {
    return hg::guarded(-1, [&] { return (int)need(clip, "hg_clip_n_patches")->model->hparams().n_patches(); });
}
int hg_clip_n_layer(const hg_clip *clip) {
    return hg::guarded(-1, [&] { return (int)need(clip, "hg_clip_n_layer")->model->hparams().n_layer; });
}
int hg_clip_tap_layer(const hg_clip *clip, int tap) {
    return hg::guarded(-1, [&] { return (int)need(clip, "hg_clip_tap_layer")->model->tap_layer(tap); });
}
int hg_clip_projector_dim(const hg_clip *clip, int projector) {
    return hg::guarded(-1, [&] {
        const hg::ClipProjector &p = need(clip, "hg_clip_projector_dim")->model->projector(projector);
        return p.present ? (int)p.n_out : 0;
    });
}
int hg_clip_image_norm(const hg_clip *clip, float *mean, float *std) {
    return hg::guarded(-1, [&] {
        const hg::ClipHParams &hp = need(clip, "hg_clip_image_norm")->model->hparams();
        if (!mean || !std) hg::fail("hg_clip_image_norm: null mean or std");
        for (int c = 0; c < 3; c++) mean[c] = hp.image_mean[c], std[c] = hp.image_std[c];
        return 0;
    });
}

int hg_clip_encode(hg_clip *clip, const float *pixels, int tap, float *out) {
    return hg::guarded(-1, [&] {
        need(clip, "hg_clip_encode");
        clip->model->encode(*clip->pool, pixels, clip->model->tap_layer(tap), out);
        return 0;
    });
}

int hg_clip_encode_hidden_state(hg_clip *clip, const float *pixels, int hidden_state, float *out) {
    return hg::guarded(-1, [&] {
        need(clip, "hg_clip_encode_hidden_state");
        clip->model->encode(*clip->pool, pixels, hidden_state, out);
        return 0;
    });
}

int hg_clip_project(hg_clip *clip, int projector, const float *in, int n, float *out) {
    return hg::guarded(-1, [&] {
        need(clip, "hg_clip_project");
        clip->model->project(*clip->pool, projector, in, n, out);
        return 0;
    });
}

int hg_clip_encode_project(hg_clip *clip, const float *pixels, int tap, int projector, float *out) {
    return hg::guarded(-1, [&] {
        need(clip, "hg_clip_encode_project");
        clip->model->encode_project(*clip->pool, pixels, clip->model->tap_layer(tap), projector, out);
        return 0;
    });
}

int hg_clip_load_projector(hg_clip *clip, int projector, const char *path) {
    return hg::guarded_load(-1, [&] {
        need(clip, "hg_clip_load_projector");
        if (!path) hg::fail(HG_ERR_INVALID_ARG, "hg_clip_load_projector: null path");
        return clip->model->use_projector(projector, hg::GGUFFile::open(path), clip->pool.get()) ? 1 : 0;
    });
}

} // extern "C"
