// GroupNorm (taming's Normalize: 32 groups, eps 1e-6, affine) over channels-last
// activations, with the swish that follows it everywhere in the VQGAN fused in:
//   y = (x - mean_g) / sqrt(var_g + eps) * gamma[ch] + beta[ch];  swish: y * sigmoid(y)
// where group g holds channels [g * c / n_groups, (g + 1) * c / n_groups) at every position,
// and var_g is the biased variance (torch's).
#pragma once

#include <cstdint>

#include "core/threadpool.h"

namespace hg {

// x, y: n_pos * c floats; y may alias x. c must be a multiple of n_groups.
void group_norm(ThreadPool &pool, const float *x, float *y, int64_t n_pos, int64_t c, int64_t n_groups,
                const float *gamma, const float *beta, float eps, bool swish);

// Scalar reference: two passes in double, one element at a time.
void group_norm_ref(const float *x, float *y, int64_t n_pos, int64_t c, int64_t n_groups, const float *gamma,
                    const float *beta, float eps, bool swish);

} // namespace hg
