// vit_attention's inner loops compiled with AVX2 and FMA (CMake and binding.gyp give this
// file -mavx2 -mfma); called only when the CPU has them.
#define HG_VIT_LANES 8
#include "ops/vit_attention_kernel.h"

namespace hg {
void vit_block_avx2(const float *const q[4], const float *kt, const float *v, int64_t n, int64_t n_pad,
                    int64_t head_dim, int64_t hd_pad, float scale, float *s, float *o) {
    vit_block(q, kt, v, n, n_pad, head_dim, hd_pad, scale, s, o);
}
} // namespace hg
