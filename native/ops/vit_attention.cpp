#include "ops/vit_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "ops/vit_attention_kernel.h"
#include "quant/quant.h"

namespace hg {

void vit_block_avx2(const float *const q[4], const float *kt, const float *v, int64_t n, int64_t n_pad,
                    int64_t head_dim, int64_t hd_pad, float scale, float *s, float *o);
void vit_block_avx512(const float *const q[4], const float *kt, const float *v, int64_t n, int64_t n_pad,
                      int64_t head_dim, int64_t hd_pad, float scale, float *s, float *o);

void vit_attention(ThreadPool &pool, const float *q, const float *k, const float *v, int64_t stride, int64_t n_pos,
                   int64_t n_heads, int64_t head_dim, float *out, int64_t out_stride) {
    if (n_pos <= 0 || n_heads <= 0 || head_dim <= 0) fail("vit_attention: empty shape");
    const int64_t n = n_pos, hd = head_dim;
    const int64_t n_pad = (n + kPad - 1) / kPad * kPad, hd_pad = (hd + kPad - 1) / kPad * kPad;
    // per head: kt [hd][n_pad] (K transposed), vh [n][hd_pad]; the padding stays 0
    std::vector<float> kt((size_t)(n_heads * hd * n_pad), 0.0f), vh((size_t)(n_heads * n * hd_pad), 0.0f);
    pool.run([&](int ith, int nth) {
        int64_t t0, t1;
        split_range(n, ith, nth, t0, t1);
        for (int64_t h = 0; h < n_heads; h++)
            for (int64_t t = t0; t < t1; t++) {
                const float *ks = k + t * stride + h * hd, *vs = v + t * stride + h * hd;
                float *kd = &kt[(size_t)(h * hd * n_pad + t)];
                for (int64_t d = 0; d < hd; d++) kd[d * n_pad] = ks[d];
                std::copy(vs, vs + hd, &vh[(size_t)((h * n + t) * hd_pad)]);
            }
    });

    auto block = vit_block; // this file's portable copy of the kernel
    if (isa_active() >= HG_ISA_AVX512)
        block = vit_block_avx512;
    else if (isa_active() >= HG_ISA_AVX2)
        block = vit_block_avx2;
    const float scale = 1.0f / std::sqrt((float)hd);
    const int64_t n_blocks = (n + kQ - 1) / kQ, n_items = n_heads * n_blocks;
    pool.run([&](int ith, int nth) {
        std::vector<float> s((size_t)(kQ * n_pad)), o((size_t)(kQ * hd_pad));
        int64_t i0, i1;
        split_range(n_items, ith, nth, i0, i1);
        for (int64_t item = i0; item < i1; item++) {
            const int64_t h = item / n_blocks, t0 = item % n_blocks * kQ, nq = std::min<int64_t>(kQ, n - t0);
            const float *qs[kQ];
            for (int qi = 0; qi < kQ; qi++) qs[qi] = q + (t0 + std::min<int64_t>(qi, nq - 1)) * stride + h * hd;
            block(qs, &kt[(size_t)(h * hd * n_pad)], &vh[(size_t)(h * n * hd_pad)], n, n_pad, hd, hd_pad, scale,
                  s.data(), o.data());
            for (int64_t qi = 0; qi < nq; qi++)
                std::copy_n(&o[(size_t)(qi * hd_pad)], hd, out + (t0 + qi) * out_stride + h * hd);
        }
    });
}

void vit_attention_ref(const float *q, const float *k, const float *v, int64_t stride, int64_t n_pos, int64_t n_heads,
                       int64_t head_dim, float *out, int64_t out_stride) {
    const int64_t n = n_pos, hd = head_dim;
    std::vector<double> p((size_t)n);
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t t = 0; t < n; t++) {
            double max = -INFINITY, sum = 0;
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t d = 0; d < hd; d++) s += (double)q[t * stride + h * hd + d] * k[j * stride + h * hd + d];
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
