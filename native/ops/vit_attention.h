// Multi-head self-attention over all positions, no mask (the ViT's bidirectional attention:
// every position, the class position included, sees every other). Scores are
// q.k / sqrt(head_dim), softmax in float.
#pragma once

#include <cstdint>

#include "core/threadpool.h"

namespace hg {

// q, k, v: position t's n_heads * head_dim floats (heads one after the other) at
// q + t * stride (the same for k and v); out: position t's n_heads * head_dim floats at
// out + t * out_stride. K (transposed) and V are first repacked head by head, zero-padded to
// multiples of 16, then work is shared out over (head, block of 4 queries), each block
// computed by register-blocked loops (vit_attention_kernel.h) in the CPU's best build of
// them: every key's score for 4 queries at once, then the values for those 4.
void vit_attention(ThreadPool &pool, const float *q, const float *k, const float *v, int64_t stride, int64_t n_pos,
                   int64_t n_heads, int64_t head_dim, float *out, int64_t out_stride);

// Plain scalar reference on one thread, sums in double.
void vit_attention_ref(const float *q, const float *k, const float *v, int64_t stride, int64_t n_pos, int64_t n_heads,
                       int64_t head_dim, float *out, int64_t out_stride);

} // namespace hg
