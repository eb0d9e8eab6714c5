#include "ops/activation.h"

namespace hg {

void silu_mul(const float *gate_up, float *act, int64_t n_ff, int64_t n_tokens) {
    for (int64_t t = 0; t < n_tokens; t++) {
        const float *gate = gate_up + t * 2 * n_ff, *up = gate + n_ff;
        float *out = act + t * n_ff;
        for (int64_t i = 0; i < n_ff; i++) out[i] = silu_mul1(gate[i], up[i]);
    }
}

} // namespace hg
