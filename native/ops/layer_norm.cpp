#include "ops/layer_norm.h"

#include <cmath>

namespace hg {

namespace {

// Eight independent partial sums so the compiler can keep them in one vector register
// (it may not reorder a single float accumulator); two passes, so the variance is the mean
// of squared deviations and never cancels catastrophically the way E[x^2] - E[x]^2 can.
float sum8(const float *x, int64_t n, float shift, bool square) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            const float d = x[i + j] - shift;
            acc[j] += square ? d * d : d;
        }
    float sum = 0.0f;
    for (; i < n; i++) {
        const float d = x[i] - shift;
        sum += square ? d * d : d;
    }
    for (int j = 0; j < 8; j++) sum += acc[j];
    return sum;
}

} // namespace

void layer_norm(const float *x, const float *weight, const float *bias, float *y, int64_t n, int64_t n_rows,
                float eps) {
    for (int64_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        const float mean = sum8(xr, n, 0.0f, false) / (float)n;
        const float var = sum8(xr, n, mean, true) / (float)n;
        const float inv_std = 1.0f / std::sqrt(var + eps);
        for (int64_t i = 0; i < n; i++) yr[i] = (xr[i] - mean) * inv_std * weight[i] + bias[i];
    }
}

void layer_norm_ref(const float *x, const float *weight, const float *bias, float *y, int64_t n, int64_t n_rows,
                    float eps) {
    for (int64_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * n;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < n; i++) mean += xr[i];
        mean /= (double)n;
        for (int64_t i = 0; i < n; i++) var += (xr[i] - mean) * (xr[i] - mean);
        var /= (double)n;
        const double inv_std = 1.0 / std::sqrt(var + (double)eps);
        for (int64_t i = 0; i < n; i++) y[r * n + i] = (float)((xr[i] - mean) * inv_std * weight[i] + bias[i]);
    }
}

} // namespace hg
