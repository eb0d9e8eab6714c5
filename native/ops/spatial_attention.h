// The VQGAN's AttnBlock core: single-head softmax attention between all n = h * w positions
// of c channels (channels-last q, k, v from the 1x1 convs):
//   out[i] = sum_j softmax_j(q_i . k_j * c^-0.5) v[j]
// Both products go through conv_gemm (f32; conv2d_gemm.h); queries run in blocks so the score matrix
// stays bounded at any resolution.
#pragma once

#include <cstdint>

#include "core/threadpool.h"

namespace hg {

// q, k, v, out: n * c floats; out must not alias q, k or v.
void spatial_attention(ThreadPool &pool, const float *q, const float *k, const float *v, int64_t n, int64_t c,
                       float *out);

// Scalar reference in double, one query at a time.
void spatial_attention_ref(const float *q, const float *k, const float *v, int64_t n, int64_t c, float *out);

} // namespace hg
