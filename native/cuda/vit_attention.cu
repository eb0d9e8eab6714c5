// CLIP's attention on the device (cuda/vision_ops.h vit_attention): flash-style, one thread per
// query and 64 queries of one head a block. Keys and values come through shared memory 16 at a
// time; each thread scores its query against the 16, rescales its running sum once per tile
// (online softmax) and adds the 16 weighted values. Scores and sums in float, as the CPU's.
// A query and its sums live in registers: head_dim up to 64 (CLIP ViT-L's), whose fully
// unrolled loops also keep the compile time of five architectures in bounds.
#include <string>

#include "cuda/common.cuh"
#include "cuda/vision_ops.h"

namespace hg {
namespace cuda {
namespace {

constexpr int kQueries = 64, kKeys = 16;

// D: head_dim rounded up to 32 or 64; dims past head_dim are zero in q, k and v.
template <int D> __global__ void __launch_bounds__(kQueries)
    vit_attention_kernel(const float *__restrict__ q, const float *__restrict__ k, const float *__restrict__ v,
                         int64_t stride, int64_t n_pos, int64_t hd, float scale, float *__restrict__ out,
                         int64_t out_stride) {
    __shared__ float ks[kKeys][D], vs[kKeys][D];
    const int64_t t = (int64_t)blockIdx.x * kQueries + threadIdx.x, h = blockIdx.y;
    const bool live = t < n_pos;
    float qv[D], acc[D];
#pragma unroll
    for (int d = 0; d < D; d++) {
        qv[d] = live && d < hd ? q[t * stride + h * hd + d] : 0.0f;
        acc[d] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int64_t j0 = 0; j0 < n_pos; j0 += kKeys) {
        for (int e = threadIdx.x; e < kKeys * D; e += kQueries) {
            const int jj = e / D, d = e % D;
            const int64_t j = j0 + jj;
            const bool in = j < n_pos && d < hd;
            ks[jj][d] = in ? k[j * stride + h * hd + d] : 0.0f;
            vs[jj][d] = in ? v[j * stride + h * hd + d] : 0.0f;
        }
        __syncthreads();
        float s[kKeys];
        float mt = -INFINITY;
#pragma unroll
        for (int jj = 0; jj < kKeys; jj++) {
            float dot = 0.0f;
#pragma unroll
            for (int d = 0; d < D; d++) dot = fmaf(qv[d], ks[jj][d], dot);
            s[jj] = j0 + jj < n_pos ? dot * scale : -INFINITY;
            mt = fmaxf(mt, s[jj]);
        }
        const float m_new = fmaxf(m, mt);   // finite: the tile has a key
        const float corr = expf(m - m_new); // 0 at the first tile (m = -inf)
        l *= corr;
#pragma unroll
        for (int d = 0; d < D; d++) acc[d] *= corr;
#pragma unroll
        for (int jj = 0; jj < kKeys; jj++) {
            const float p = expf(s[jj] - m_new); // 0 past the last key
            l += p;
#pragma unroll
            for (int d = 0; d < D; d++) acc[d] = fmaf(p, vs[jj][d], acc[d]);
        }
        m = m_new;
        __syncthreads(); // the tile is refilled next
    }
    if (!live) return;
    const float inv = 1.0f / l;
#pragma unroll
    for (int d = 0; d < D; d++)
        if (d < hd) out[t * out_stride + h * hd + d] = acc[d] * inv;
}

} // namespace

void vit_attention(const float *q, const float *k, const float *v, int64_t stride, int64_t n_pos, int64_t n_heads,
                   int64_t head_dim, float *out, int64_t out_stride, void *stream) {
    if (head_dim <= 0 || head_dim > 64)
        throw Error("cuda vit_attention: head_dim " + std::to_string(head_dim) + " (the kernel takes 1..64)");
    if (n_pos <= 0 || n_heads <= 0 || n_heads > 65535 || stride < n_heads * head_dim || out_stride < n_heads * head_dim)
        throw Error("cuda vit_attention: bad shape");
    if (!q || !k || !v || !out) throw Error("cuda vit_attention: null pointer");
    const int64_t blocks = (n_pos + kQueries - 1) / kQueries;
    if (blocks > 0x7fffffff) throw Error("cuda vit_attention: too many positions");
    const dim3 grid((unsigned)blocks, (unsigned)n_heads);
    const float scale = 1.0f / sqrtf((float)head_dim);
    cudaStream_t s = as_stream(stream);
    if (head_dim <= 32)
        vit_attention_kernel<32><<<grid, kQueries, 0, s>>>(q, k, v, stride, n_pos, head_dim, scale, out, out_stride);
    else
        vit_attention_kernel<64><<<grid, kQueries, 0, s>>>(q, k, v, stride, n_pos, head_dim, scale, out, out_stride);
    check_launch("vit_attention");
}

} // namespace cuda
} // namespace hg
