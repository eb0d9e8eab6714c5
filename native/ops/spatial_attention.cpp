#include "ops/spatial_attention.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "healthgpt.h"
#include "ops/conv2d_gemm.h"

namespace hg {

namespace {

// Queries per block: 1024 x n scores (4 MB at the VQGAN's 32x32), the whole map in one go
// at the real geometry.
constexpr int64_t kQueryBlock = 1024;

void check(int64_t n, int64_t c) {
    if (n <= 0 || c <= 0) fail("spatial_attention: empty shape n=" + std::to_string(n) + " c=" + std::to_string(c));
}

} // namespace

void spatial_attention(ThreadPool &pool, const float *q, const float *k, const float *v, int64_t n, int64_t c,
                       float *out) {
    check(n, c);
    const float scale = (float)(1.0 / std::sqrt((double)c));
    // v transposed to c rows of n: the weights of the second product.
    std::vector<float> vt((size_t)(c * n));
    pool.run([&](int ith, int nth) {
        int64_t c0, c1;
        split_range(c, ith, nth, c0, c1);
        for (int64_t j = 0; j < n; j++)
            for (int64_t ch = c0; ch < c1; ch++) vt[ch * n + j] = v[j * c + ch];
    });
    const int64_t nq_max = std::min(n, kQueryBlock);
    std::vector<float> p((size_t)(nq_max * n));
    for (int64_t q0 = 0; q0 < n; q0 += kQueryBlock) {
        const int64_t nq = std::min(n - q0, kQueryBlock);
        // scores[i][j] = k_j . q_i: keys are the weight rows, queries the columns
        conv_gemm(pool, HG_TYPE_F32, k, n, c, q + q0 * c, nq, p.data());
        pool.run([&](int ith, int nth) {
            int64_t i0, i1;
            split_range(nq, ith, nth, i0, i1);
            for (int64_t i = i0; i < i1; i++) {
                float *row = &p[(size_t)(i * n)];
                float mx = -INFINITY;
                for (int64_t j = 0; j < n; j++) mx = std::max(mx, row[j] * scale);
                double sum = 0;
                for (int64_t j = 0; j < n; j++) {
                    row[j] = std::exp(row[j] * scale - mx);
                    sum += row[j];
                }
                const float inv = (float)(1.0 / sum);
                for (int64_t j = 0; j < n; j++) row[j] *= inv;
            }
        });
        conv_gemm(pool, HG_TYPE_F32, vt.data(), c, n, p.data(), nq, out + q0 * c);
    }
}

void spatial_attention_ref(const float *q, const float *k, const float *v, int64_t n, int64_t c, float *out) {
    check(n, c);
    const double scale = 1.0 / std::sqrt((double)c);
    std::vector<double> s((size_t)n);
    for (int64_t i = 0; i < n; i++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n; j++) {
            double d = 0;
            for (int64_t ch = 0; ch < c; ch++) d += (double)q[i * c + ch] * k[j * c + ch];
            s[j] = d * scale;
            mx = std::max(mx, s[j]);
        }
        for (int64_t j = 0; j < n; j++) sum += (s[j] = std::exp(s[j] - mx));
        for (int64_t ch = 0; ch < c; ch++) {
            double o = 0;
            for (int64_t j = 0; j < n; j++) o += s[j] * v[j * c + ch];
            out[i * c + ch] = (float)(o / sum);
        }
    }
}

} // namespace hg
