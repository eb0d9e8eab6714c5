// The AVX-512 build of the convolution product's tile kernel (conv2d_tile.inc): 4 weight
// rows x 6 columns, 24 of the 32 zmm registers as accumulators.
//
// This file is compiled with the AVX-512 flags on x86-64; elsewhere the kernel is null.
#include "ops/conv2d_gemm.h"

#include "core/fp16.h"
#include "healthgpt.h"

#if defined(__AVX512F__)
#include <immintrin.h>

// GCC 12's own _mm512_cvtph_ps / _mm512_reduce_add_ps pass an undefined vector as the
// merge source; their inlining here would warn about it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace hg {

namespace {

struct avx512 {
    typedef __m512 reg;
    static constexpr int lanes = 16, rows = 4, cols = 6;
    static reg zero() { return _mm512_setzero_ps(); }
    static reg load(const float *p) { return _mm512_loadu_ps(p); }
    static reg load(const fp16_t *p) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
    }
    static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
    static float hsum(reg v) { return _mm512_reduce_add_ps(v); }
};

#include "ops/conv2d_tile.inc"

} // namespace

gemm_block_fn gemm_block_avx512_kernel() { return gemm_block<avx512>; }

} // namespace hg

#else

namespace hg {
gemm_block_fn gemm_block_avx512_kernel() { return nullptr; }
} // namespace hg

#endif
