// C API: the VQGAN decoder / encoder with its own thread pool.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "api/gpu_choice.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "gguf/gguf.h"
#include "healthgpt.h"
#include "models/vqgan.h"

struct hg_vqgan {
    std::string backend;
    std::unique_ptr<hg::ThreadPool> pool;
    std::unique_ptr<hg::VqganModel> model;
};

namespace {

template <class T> T *need(T *vq, const char *fn) {
    if (!vq) hg::fail(std::string(fn) + ": null vqgan");
    return vq;
}

} // namespace

extern "C" {

hg_vqgan_params hg_vqgan_default_params(void) {
    hg_vqgan_params p;
    p.n_threads = 0;
    p.gpu = HG_GPU_OFF;
    return p;
}

hg_vqgan *hg_vqgan_load(const char *path, const hg_vqgan_params *params) {
    return hg::guarded_load<hg_vqgan *>(nullptr, [&] {
        if (!path) hg::fail(HG_ERR_INVALID_ARG, "hg_vqgan_load: null path");
        const hg_vqgan_params p = params ? *params : hg_vqgan_default_params();
        std::unique_ptr<hg_vqgan> vq(new hg_vqgan());
        vq->model = hg::VqganModel::load(hg::GGUFFile::open(path), hg::checked_gpu(p.gpu, "hg_vqgan_load"));
        vq->backend = vq->model->backend();
        vq->pool.reset(new hg::ThreadPool(p.n_threads));
        return vq.release();
    });
}

void hg_vqgan_free(hg_vqgan *vq) { delete vq; }

const char *hg_vqgan_backend(const hg_vqgan *vq) {
    return hg::guarded<const char *>(nullptr, [&] { return need(vq, "hg_vqgan_backend")->backend.c_str(); });
}

int hg_vqgan_get_info(const hg_vqgan *vq, hg_vqgan_info *info) {
    return hg::guarded(-1, [&] {
        const hg::VqganHParams &hp = need(vq, "hg_vqgan_get_info")->model->hparams();
        if (!info) hg::fail("hg_vqgan_get_info: null info");
        info->resolution = (int)hp.resolution;
        info->latent = (int)hp.latent();
        info->n_embed = (int)hp.n_embed;
        info->out_ch = (int)hp.out_ch;
        info->in_channels = (int)hp.in_channels;
        info->has_encoder = vq->model->has_encoder() ? 1 : 0;
        return 0;
    });
}

int hg_vqgan_decode(hg_vqgan *vq, const int32_t *indices, int64_t n_indices, float *chw, uint8_t *rgb) {
    return hg::guarded(-1, [&] {
        need(vq, "hg_vqgan_decode");
        const hg::VqganHParams &hp = vq->model->hparams();
        if (!indices) hg::fail("hg_vqgan_decode: null indices");
        if (n_indices != vq->model->n_indices())
            hg::fail("hg_vqgan_decode: " + std::to_string(n_indices) + " indices, expected " +
                     std::to_string(vq->model->n_indices()) + " (" + std::to_string(hp.latent()) + " x " +
                     std::to_string(hp.latent()) + ")");
        if (!chw && !rgb) hg::fail("hg_vqgan_decode: no output (chw and rgb are both null)");
        std::vector<float> own;
        float *img = chw;
        if (!img) {
            own.resize((size_t)(hp.out_ch * hp.resolution * hp.resolution));
            img = own.data();
        }
        vq->model->decode(*vq->pool, indices, img);
        if (rgb) hg::vqgan_to_rgb8(img, hp.out_ch, hp.resolution, hp.resolution, rgb);
        return 0;
    });
}

int hg_vqgan_encode(hg_vqgan *vq, const float *chw, int64_t n_values, int32_t *indices, int64_t n_indices) {
    return hg::guarded(-1, [&] {
        need(vq, "hg_vqgan_encode");
        const hg::VqganHParams &hp = vq->model->hparams();
        const int64_t want = hp.in_channels * hp.resolution * hp.resolution;
        if (!chw || n_values != want)
            hg::fail("hg_vqgan_encode: image of " + std::to_string(chw ? n_values : 0) + " values, expected " +
                     std::to_string(want) + " (" + std::to_string(hp.in_channels) + " x " +
                     std::to_string(hp.resolution) + " x " + std::to_string(hp.resolution) + ")");
        if (!indices || n_indices != vq->model->n_indices())
            hg::fail("hg_vqgan_encode: room for " + std::to_string(indices ? n_indices : 0) + " indices, expected " +
                     std::to_string(vq->model->n_indices()));
        vq->model->encode(*vq->pool, chw, indices, nullptr);
        return 0;
    });
}

} // extern "C"
