#include "ops/softmax_exp.h"

#include <cmath>

#include "healthgpt.h"
#include "quant/quant.h"

namespace hg {

float exp_sum_avx2(float *x, int64_t n, float max);
float exp_sum_avx512(float *x, int64_t n, float max);

float exp_sum_at(int isa, float *x, int64_t n, float max) {
    if (isa >= HG_ISA_AVX512) return exp_sum_avx512(x, n, max);
    if (isa >= HG_ISA_AVX2) return exp_sum_avx2(x, n, max);
    float sum = 0.0f;
    for (int64_t j = 0; j < n; j++) sum += x[j] = std::exp(x[j] - max);
    return sum;
}

float exp_sum(float *x, int64_t n, float max) { return exp_sum_at(isa_active(), x, n, max); }

} // namespace hg
