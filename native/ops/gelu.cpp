#include "ops/gelu.h"

#include <cmath>

namespace hg {

void bias_quick_gelu(float *x, const float *bias, int64_t n, int64_t n_rows) {
    for (int64_t r = 0; r < n_rows; r++) {
        float *xr = x + r * n;
        for (int64_t i = 0; i < n; i++) {
            const float v = bias ? xr[i] + bias[i] : xr[i];
            // exp(-1.702 v) overflowing to inf for a very negative v gives -0, as it should
            xr[i] = v / (1.0f + std::exp(-1.702f * v));
        }
    }
}

void bias_gelu_erf(float *x, const float *bias, int64_t n, int64_t n_rows) {
    const float inv_sqrt2 = 0.70710678118654752f;
    for (int64_t r = 0; r < n_rows; r++) {
        float *xr = x + r * n;
        for (int64_t i = 0; i < n; i++) {
            const float v = bias ? xr[i] + bias[i] : xr[i];
            xr[i] = 0.5f * v * (1.0f + std::erf(v * inv_sqrt2));
        }
    }
}

void add_bias(float *x, const float *bias, int64_t n, int64_t n_rows) {
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t i = 0; i < n; i++) x[r * n + i] += bias[i];
}

double quick_gelu_ref(double x) { return x / (1.0 + std::exp(-1.702 * x)); }

double gelu_erf_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

} // namespace hg
