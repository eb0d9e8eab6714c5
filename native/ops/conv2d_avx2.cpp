// The AVX2 + FMA + F16C build of the convolution product's tile kernel (conv2d_tile.inc):
// 4 weight rows x 3 columns, 12 ymm accumulators. f16 weights are widened in registers;
// activations stay f32 (the im2col columns are not rounded).
//
// This file is compiled with -mavx2 -mfma -mf16c on x86-64; elsewhere the kernel is null.
#include "ops/conv2d_gemm.h"

#include "core/fp16.h"
#include "healthgpt.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

namespace hg {

namespace {

struct avx2 {
    typedef __m256 reg;
    static constexpr int lanes = 8, rows = 4, cols = 3;
    static reg zero() { return _mm256_setzero_ps(); }
    static reg load(const float *p) { return _mm256_loadu_ps(p); }
    static reg load(const fp16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p))); }
    static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
    static float hsum(reg v) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }
};

#include "ops/conv2d_tile.inc"

} // namespace

gemm_block_fn gemm_block_avx2_kernel() { return gemm_block<avx2>; }

} // namespace hg

#else

namespace hg {
gemm_block_fn gemm_block_avx2_kernel() { return nullptr; }
} // namespace hg

#endif
