// exp_sum's vector loop with AVX2 + FMA (CMake and binding.gyp give this file -mavx2 -mfma);
// called only when the CPU has them.
#define HG_EXP_LANES 8
#include "ops/softmax_exp_kernel.h"

namespace hg {
float exp_sum_avx2(float *x, int64_t n, float max) { return exp_sum_vec(x, n, max); }
} // namespace hg
