// exp_sum's vector loop with AVX-512 (CMake and binding.gyp give this file -mavx512f and
// friends); called only when the CPU has them.
#define HG_EXP_LANES 16
#include "ops/softmax_exp_kernel.h"

namespace hg {
float exp_sum_avx512(float *x, int64_t n, float max) { return exp_sum_vec(x, n, max); }
} // namespace hg
