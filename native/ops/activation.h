// The Phi-3 MLP's gated activation: act = silu(gate) * up, silu(x) = x * sigmoid(x).
#pragma once

#include <cmath>
#include <cstdint>

namespace hg {

// n_tokens tokens; token t reads gate and up from gate_up + t * 2 * n_ff (gate first, then
// up: the fused gate_up_proj output) and writes n_ff floats to act + t * n_ff.
void silu_mul(const float *gate_up, float *act, int64_t n_ff, int64_t n_tokens);

// One element. exp(-gate) overflowing to inf for a very negative gate gives -0, as it should.
inline float silu_mul1(float gate, float up) { return gate / (1.0f + std::exp(-gate)) * up; }

} // namespace hg
