// LayerNorm as CLIP's vision tower uses it (pre_layrnorm, layer_norm1, layer_norm2):
// y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias, the variance biased (divided by n).
#pragma once

#include <cstdint>

namespace hg {

// n_rows rows of n floats each (contiguous); weight and bias have n floats. y may alias x.
void layer_norm(const float *x, const float *weight, const float *bias, float *y, int64_t n, int64_t n_rows, float eps);

// Plain scalar reference: mean and variance in double, two passes, one element at a time.
void layer_norm_ref(const float *x, const float *weight, const float *bias, float *y, int64_t n, int64_t n_rows,
                    float eps);

} // namespace hg
