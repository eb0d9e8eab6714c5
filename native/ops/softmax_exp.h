// The exponentials of a softmax: x[j] = exp(x[j] - max) for j < n, and their sum, with a
// vector exp where the processor has AVX2 or AVX-512 (the scalar level keeps std::exp: the
// reference). The vector exp is a degree-6 polynomial on [-ln2/2, ln2/2] scaled by 2^k,
// within 2 ulp of std::exp up to x - max = 88; results below FLT_MIN (x - max < -87.33) are
// 0, above 88 inf, and a NaN stays NaN.
// The sum adds lanes in another order than one chain: within float rounding of it.
#pragma once

#include <cstdint>

namespace hg {

float exp_sum(float *x, int64_t n, float max);

// The same at a given kernel level (HG_ISA_*; tests compare the levels); the caller makes
// sure the processor has it.
float exp_sum_at(int isa, float *x, int64_t n, float max);

} // namespace hg
