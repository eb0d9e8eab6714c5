#include "ops/norm.h"

#include <cmath>

namespace hg {

namespace {

// Eight independent partial sums: the compiler can keep them in one vector register
// (it may not reorder a single float accumulator), and they round less than one chain.
float sum_of_squares(const float *x, int64_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += x[i + j] * x[i + j];
    float sum = 0.0f;
    for (; i < n; i++) sum += x[i] * x[i];
    for (int j = 0; j < 8; j++) sum += acc[j];
    return sum;
}

} // namespace

void rms_norm(const float *x, const float *weight, float *y, int64_t n, int64_t n_rows, float eps) {
    for (int64_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        const float inv_rms = 1.0f / std::sqrt(sum_of_squares(xr, n) / (float)n + eps);
        for (int64_t i = 0; i < n; i++) yr[i] = xr[i] * inv_rms * weight[i];
    }
}

void rms_norm_ref(const float *x, const float *weight, float *y, int64_t n, int64_t n_rows, float eps) {
    for (int64_t r = 0; r < n_rows; r++) {
        double sum = 0;
        for (int64_t i = 0; i < n; i++) sum += (double)x[r * n + i] * x[r * n + i];
        const double inv_rms = 1.0 / std::sqrt(sum / (double)n + eps);
        for (int64_t i = 0; i < n; i++) y[r * n + i] = (float)(x[r * n + i] * inv_rms * weight[i]);
    }
}

} // namespace hg
