#include "ops/vit_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "quant/quant.h"

namespace hg {

namespace {
// Queries per work item: enough to amortise the hand-out, small enough that 16 heads x 577
// positions split evenly over any thread count.
constexpr int64_t kQueryBlock = 32;
} // namespace

void vit_attention(ThreadPool &pool, const float *q, const float *k, const float *v,
                   int64_t stride, int64_t n_pos, int64_t n_heads, int64_t head_dim, float *out,
                   int64_t out_stride) {
    if (n_pos <= 0 || n_heads <= 0 || head_dim <= 0) fail("vit_attention: empty shape");
    const vec_dot_fn dot = kernels_active().vec_dot[HG_TYPE_F32];
    if (!dot) fail("vit_attention: no f32 dot kernel");
    const int64_t n = n_pos, hd = head_dim;
    // kh: [head][pos][hd]; vt: [head][hd][pos]
    std::vector<float> kh((size_t)(n_heads * n * hd)), vt((size_t)(n_heads * hd * n));
    pool.run([&](int ith, int nth) {
        int64_t t0, t1;
        split_range(n, ith, nth, t0, t1);
        for (int64_t t = t0; t < t1; t++)
            for (int64_t h = 0; h < n_heads; h++) {
                const float *ks = k + t * stride + h * hd, *vs = v + t * stride + h * hd;
                std::copy(ks, ks + hd, &kh[(size_t)((h * n + t) * hd)]);
                for (int64_t d = 0; d < hd; d++) vt[(size_t)((h * hd + d) * n + t)] = vs[d];
            }
    });

    const float scale = 1.0f / std::sqrt((float)hd);
    const int64_t n_blocks = (n + kQueryBlock - 1) / kQueryBlock, n_items = n_heads * n_blocks;
    pool.run([&](int ith, int nth) {
        std::vector<float> probs((size_t)n);
        int64_t i0, i1;
        split_range(n_items, ith, nth, i0, i1);
        for (int64_t item = i0; item < i1; item++) {
            const int64_t h = item / n_blocks, b = item % n_blocks;
            const float *kb = &kh[(size_t)(h * n * hd)], *vb = &vt[(size_t)(h * hd * n)];
            for (int64_t t = b * kQueryBlock; t < std::min(n, (b + 1) * kQueryBlock); t++) {
                const float *qt = q + t * stride + h * hd;
                float max = -INFINITY;
                for (int64_t j = 0; j < n; j++) {
                    float s;
                    dot(hd, &s, kb + j * hd, qt);
                    probs[(size_t)j] = s * scale;
                    max = std::max(max, probs[(size_t)j]);
                }
                float sum = 0.0f;
                for (int64_t j = 0; j < n; j++) {
                    probs[(size_t)j] = std::exp(probs[(size_t)j] - max);
                    sum += probs[(size_t)j];
                }
                const float inv = 1.0f / sum;
                for (int64_t j = 0; j < n; j++) probs[(size_t)j] *= inv;
                float *ot = out + t * out_stride + h * hd;
                for (int64_t d = 0; d < hd; d++) dot(n, &ot[d], vb + d * n, probs.data());
            }
        }
    });
}

void vit_attention_ref(const float *q, const float *k, const float *v, int64_t stride,
                       int64_t n_pos, int64_t n_heads, int64_t head_dim, float *out,
                       int64_t out_stride) {
    const int64_t n = n_pos, hd = head_dim;
    std::vector<double> p((size_t)n);
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t t = 0; t < n; t++) {
            double max = -INFINITY, sum = 0;
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t d = 0; d < hd; d++)
                    s += (double)q[t * stride + h * hd + d] * k[j * stride + h * hd + d];
                p[(size_t)j] = s / std::sqrt((double)hd);
                max = std::max(max, p[(size_t)j]);
            }
            for (int64_t j = 0; j < n; j++) sum += p[(size_t)j] = std::exp(p[(size_t)j] - max);
            for (int64_t d = 0; d < hd; d++) {
                double o = 0;
                for (int64_t j = 0; j < n; j++) o += p[(size_t)j] * v[j * stride + h * hd + d];
                out[t * out_stride + h * hd + d] = (float)(o / sum);
            }
        }
}

} // namespace hg
