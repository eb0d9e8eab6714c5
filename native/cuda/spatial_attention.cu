// The VQGAN AttnBlock's core on the device (cuda/vision_ops.h spatial_attention): the score
// matrix through the f32 product, a row softmax, and the weighted values through the product
// again. One head of c channels (512 in the real decoder) is too wide for a flash kernel's
// registers; n x n scores (1024 x 1024 at the 32 x 32 latent) fit device memory easily.
#include <cmath>
#include <string>

#include "cuda/common.cuh"
#include "cuda/vision_ops.h"

namespace hg {
namespace cuda {
namespace {

// One block per row: s = exp(s * scale - max) / sum, in place.
__global__ void softmax_rows_kernel(float *s, int64_t n, float scale) {
    __shared__ float part[32];
    __shared__ float total;
    float *row = s + blockIdx.x * n;
    auto reduce = [&](float v, bool is_max) {
        for (int o = 16; o > 0; o >>= 1) {
            const float w = __shfl_xor_sync(0xffffffffu, v, o);
            v = is_max ? fmaxf(v, w) : v + w;
        }
        if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
        __syncthreads();
        if (threadIdx.x == 0) {
            float r = part[0];
            for (unsigned i = 1; i < (blockDim.x >> 5); i++) r = is_max ? fmaxf(r, part[i]) : r + part[i];
            total = r;
        }
        __syncthreads();
        const float r = total;
        __syncthreads();
        return r;
    };
    float mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) mx = fmaxf(mx, row[i] * scale);
    mx = reduce(mx, true);
    float sum = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const float e = expf(row[i] * scale - mx);
        row[i] = e;
        sum += e;
    }
    const float inv = 1.0f / reduce(sum, false);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) row[i] *= inv;
}

} // namespace

void spatial_attention(const float *q, const float *k, const float *v, int64_t n, int64_t c, float *scores, float *out,
                       void *stream) {
    if (n <= 0 || c <= 0 || n > 0x7fffffff) throw Error("cuda spatial_attention: bad shape");
    if (!q || !k || !v || !scores || !out) throw Error("cuda spatial_attention: null pointer");
    // scores[i][j] = q_i . k_j: A = k (rows j), B = q (rows i)
    gemm_f32(k, c, 1, q, c, 1, n, n, c, scores, n, stream);
    softmax_rows_kernel<<<(unsigned)n, 256, 0, as_stream(stream)>>>(scores, n, (float)(1.0 / std::sqrt((double)c)));
    check_launch("spatial_attention softmax");
    // out[i][ch] = sum_j p[i][j] v[j][ch]: A(ch, j) = v[j * c + ch], B(i, j) = p[i * n + j]
    gemm_f32(v, 1, c, scores, n, 1, c, n, n, out, c, stream);
}

} // namespace cuda
} // namespace hg
