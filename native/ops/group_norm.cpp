#include "ops/group_norm.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"

namespace hg {

namespace {

void check(int64_t n_pos, int64_t c, int64_t n_groups) {
    if (n_pos <= 0 || c <= 0 || n_groups <= 0 || c % n_groups != 0)
        fail("group_norm: " + std::to_string(c) + " channels do not split into " + std::to_string(n_groups) +
             " groups (positions " + std::to_string(n_pos) + ")");
}

inline float swish1(float v) { return v / (1.0f + std::exp(-v)); }

} // namespace

void group_norm(ThreadPool &pool, const float *x, float *y, int64_t n_pos, int64_t c, int64_t n_groups,
                const float *gamma, const float *beta, float eps, bool swish) {
    check(n_pos, c, n_groups);
    const int64_t cg = c / n_groups;
    const int nth_all = pool.size();
    // Per-thread partial sums per channel, then per group: the mean first, then the squared
    // deviations from it (two passes: a one-pass sum of squares loses digits when the mean is
    // large against the spread).
    std::vector<double> part((size_t)nth_all * c);
    std::vector<double> mean((size_t)n_groups), inv((size_t)n_groups);
    auto reduce = [&](bool centred) {
        std::fill(part.begin(), part.end(), 0.0);
        pool.run([&](int ith, int nth) {
            int64_t p0, p1;
            split_range(n_pos, ith, nth, p0, p1);
            double *acc = &part[(size_t)ith * c];
            std::vector<float> row((size_t)c, 0.0f), m((size_t)c);
            for (int64_t ch = 0; ch < c; ch++) m[ch] = centred ? (float)mean[ch / cg] : 0.0f;
            // float sums over short runs of positions, folded into double
            for (int64_t p = p0; p < p1;) {
                const int64_t pe = std::min(p1, p + 64);
                for (; p < pe; p++) {
                    const float *xr = x + p * c;
                    if (centred)
                        for (int64_t ch = 0; ch < c; ch++) {
                            const float d = xr[ch] - m[ch];
                            row[ch] += d * d;
                        }
                    else
                        for (int64_t ch = 0; ch < c; ch++) row[ch] += xr[ch];
                }
                for (int64_t ch = 0; ch < c; ch++) acc[ch] += row[ch], row[ch] = 0.0f;
            }
        });
        std::vector<double> g((size_t)n_groups, 0.0);
        for (int t = 0; t < nth_all; t++)
            for (int64_t ch = 0; ch < c; ch++) g[ch / cg] += part[(size_t)t * c + ch];
        return g;
    };
    const double count = (double)n_pos * cg;
    std::vector<double> s = reduce(false);
    for (int64_t gi = 0; gi < n_groups; gi++) mean[gi] = s[gi] / count;
    // The centring above used the mean rounded to float; correct for it exactly:
    // sum (x - mf)^2 = sum (x - m)^2 + count (m - mf)^2.
    std::vector<double> ss = reduce(true);
    for (int64_t gi = 0; gi < n_groups; gi++) {
        const double d = mean[gi] - (double)(float)mean[gi];
        const double var = std::max(0.0, ss[gi] / count - d * d);
        inv[gi] = 1.0 / std::sqrt(var + eps);
    }
    // (x - mean) * scale + beta: centring first keeps the digits a folded shift would lose
    // when the spread is small against the mean (1/sqrt(eps) = 1000 for a constant group).
    // The shift carries what the float centre misses of the double mean.
    std::vector<float> centre((size_t)c), scale((size_t)c), shift((size_t)c);
    for (int64_t ch = 0; ch < c; ch++) {
        const double m = mean[ch / cg], sc = inv[ch / cg] * gamma[ch];
        centre[ch] = (float)m;
        scale[ch] = (float)sc;
        shift[ch] = (float)(beta[ch] - (m - (double)centre[ch]) * sc);
    }
    pool.run([&](int ith, int nth) {
        int64_t p0, p1;
        split_range(n_pos, ith, nth, p0, p1);
        for (int64_t p = p0; p < p1; p++) {
            const float *xr = x + p * c;
            float *yr = y + p * c;
            for (int64_t ch = 0; ch < c; ch++) {
                const float v = (xr[ch] - centre[ch]) * scale[ch] + shift[ch];
                yr[ch] = swish ? swish1(v) : v;
            }
        }
    });
}

void group_norm_ref(const float *x, float *y, int64_t n_pos, int64_t c, int64_t n_groups, const float *gamma,
                    const float *beta, float eps, bool swish) {
    check(n_pos, c, n_groups);
    const int64_t cg = c / n_groups;
    for (int64_t gi = 0; gi < n_groups; gi++) {
        double s = 0, ss = 0;
        for (int64_t p = 0; p < n_pos; p++)
            for (int64_t ch = gi * cg; ch < (gi + 1) * cg; ch++) s += x[p * c + ch];
        const double mean = s / (double)(n_pos * cg);
        for (int64_t p = 0; p < n_pos; p++)
            for (int64_t ch = gi * cg; ch < (gi + 1) * cg; ch++) {
                const double d = x[p * c + ch] - mean;
                ss += d * d;
            }
        const double inv = 1.0 / std::sqrt(ss / (double)(n_pos * cg) + eps);
        for (int64_t p = 0; p < n_pos; p++)
            for (int64_t ch = gi * cg; ch < (gi + 1) * cg; ch++) {
                const double v = (x[p * c + ch] - mean) * inv * gamma[ch] + beta[ch];
                y[p * c + ch] = (float)(swish ? v / (1.0 + std::exp(-v)) : v);
            }
    }
}

} // namespace hg
