// RMSNorm, as Phi-3 uses it before attention, before the MLP and before lm_head:
// y = x / sqrt(mean(x^2) + eps) * weight. No mean subtraction, no bias.
#pragma once

#include <cstdint>

namespace hg {

// n_rows rows of n floats each (contiguous); weight has n floats. y may alias x.
void rms_norm(const float *x, const float *weight, float *y, int64_t n, int64_t n_rows, float eps);

// Plain scalar reference: the sum of squares in double, one element at a time.
void rms_norm_ref(const float *x, const float *weight, float *y, int64_t n, int64_t n_rows, float eps);

} // namespace hg
