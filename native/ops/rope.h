// Rotary position embedding as Hugging Face applies it to Phi-3 / Phi-4 ("rotate_half"):
// within each head, dim i is paired with dim i + n_rot/2 (not with i + 1, as in the
// interleaved GPT-J form), for i < n_rot/2; dims from n_rot on pass through unrotated.
// The pair turns by pos * freq_base^(-2i/n_rot).
#pragma once

#include <cstdint>

namespace hg {

// The angles of n_tokens positions, once per batch (every head of every layer reuses them):
// cos and sin get n_tokens rows of n_rot/2 floats. Angles are rounded to float the way
// transformers forms them (float inv_freq times float position), then cos/sin taken exactly.
void rope_cos_sin(const int32_t *pos, int64_t n_tokens, int n_rot, float freq_base, float *cos, float *sin);

// Rotates, in place, n_heads heads of head_dim floats for each of n_tokens tokens; token t
// starts at x + t * token_stride (Q or K inside the fused qkv_proj output).
void rope_apply(float *x, int64_t n_tokens, int64_t token_stride, int64_t n_heads, int64_t head_dim, int n_rot,
                const float *cos, const float *sin);

// Plain reference: angles and rotation in double from the positions directly.
void rope_ref(float *x, int64_t n_tokens, int64_t token_stride, int64_t n_heads, int64_t head_dim, int n_rot,
              const int32_t *pos, float freq_base);

} // namespace hg
