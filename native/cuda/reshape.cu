// The vision paths' data movement on the device (cuda/vision_ops.h): CLIP's patch columns,
// the VQGAN's codebook lookup, nearest x2 upsampling and the images in and out.
#include "cuda/common.cuh"
#include "cuda/vision_ops.h"

namespace hg {
namespace cuda {
namespace {

// cols[p][(ch * patch + y) * patch + x] = pixels[ch][gy * patch + y][gx * patch + x]
__global__ void patch_im2col_kernel(const float *__restrict__ pixels, int64_t channels, int64_t height, int64_t width,
                                    int64_t patch, float *__restrict__ cols) {
    const int64_t gw = width / patch, col = channels * patch * patch, total = (height / patch) * gw * col;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t p = e / col, i = e % col, ch = i / (patch * patch), y = (i / patch) % patch, x = i % patch;
        cols[e] = pixels[(ch * height + (p / gw) * patch + y) * width + (p % gw) * patch + x];
    }
}

__global__ void upsample_kernel(const float *__restrict__ x, int64_t h, int64_t w, int64_t c, float *__restrict__ y) {
    const int64_t total = 4 * h * w * c;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t ch = e % c, p = e / c, oy = p / (2 * w), ox = p % (2 * w);
        y[e] = x[((oy >> 1) * w + (ox >> 1)) * c + ch];
    }
}

__global__ void codebook_kernel(int type, const void *__restrict__ book, int64_t dim, const int32_t *__restrict__ idx,
                                int64_t n, float *__restrict__ z) {
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n * dim;
         e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t src = (int64_t)idx[e / dim] * dim + e % dim;
        z[e] = type == HG_TYPE_F32 ? static_cast<const float *>(book)[src]
                                   : __half2float(static_cast<const __half *>(book)[src]);
    }
}

__global__ void to_chw_kernel(const float *__restrict__ x, int64_t n_pos, int64_t c, float *__restrict__ y) {
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n_pos * c;
         e += (int64_t)gridDim.x * blockDim.x)
        y[e] = x[(e % n_pos) * c + e / n_pos]; // e = ch * n_pos + p
}

__global__ void to_hwc_kernel(const float *__restrict__ x, int64_t n_pos, int64_t c, float *__restrict__ y) {
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n_pos * c;
         e += (int64_t)gridDim.x * blockDim.x)
        y[e] = x[(e % c) * n_pos + e / c]; // e = p * c + ch
}

} // namespace

void patch_im2col(const float *pixels, int64_t channels, int64_t height, int64_t width, int64_t patch, float *cols,
                  void *stream) {
    if (channels <= 0 || patch <= 0 || height <= 0 || width <= 0 || height % patch || width % patch)
        throw Error("cuda patch_im2col: bad shape");
    if (!pixels || !cols) throw Error("cuda patch_im2col: null pointer");
    const int64_t total = channels * height * width;
    patch_im2col_kernel<<<grid_for(total, 256), 256, 0, as_stream(stream)>>>(pixels, channels, height, width, patch,
                                                                             cols);
    check_launch("patch_im2col");
}

void upsample_nearest2x(const float *x, int64_t h, int64_t w, int64_t c, float *y, void *stream) {
    if (h <= 0 || w <= 0 || c <= 0 || !x || !y || x == y) throw Error("cuda upsample_nearest2x: bad arguments");
    upsample_kernel<<<grid_for(4 * h * w * c, 256), 256, 0, as_stream(stream)>>>(x, h, w, c, y);
    check_launch("upsample_nearest2x");
}

void codebook_rows(int type, const void *codebook, int64_t dim, const int32_t *indices, int64_t n, float *z,
                   void *stream) {
    if (type != HG_TYPE_F32 && type != HG_TYPE_F16) throw Error("cuda codebook_rows: the codebook must be f32 or f16");
    if (dim <= 0 || n <= 0 || !codebook || !indices || !z) throw Error("cuda codebook_rows: bad arguments");
    codebook_kernel<<<grid_for(n * dim, 256), 256, 0, as_stream(stream)>>>(type, codebook, dim, indices, n, z);
    check_launch("codebook_rows");
}

void to_chw(const float *x, int64_t n_pos, int64_t c, float *y, void *stream) {
    if (n_pos <= 0 || c <= 0 || !x || !y || x == y) throw Error("cuda to_chw: bad arguments");
    to_chw_kernel<<<grid_for(n_pos * c, 256), 256, 0, as_stream(stream)>>>(x, n_pos, c, y);
    check_launch("to_chw");
}

void to_hwc(const float *x, int64_t n_pos, int64_t c, float *y, void *stream) {
    if (n_pos <= 0 || c <= 0 || !x || !y || x == y) throw Error("cuda to_hwc: bad arguments");
    to_hwc_kernel<<<grid_for(n_pos * c, 256), 256, 0, as_stream(stream)>>>(x, n_pos, c, y);
    check_launch("to_hwc");
}

} // namespace cuda
} // namespace hg
