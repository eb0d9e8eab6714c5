// The product under every VQGAN convolution and attention: Y = W X with W rows x k (f32 or
// f16, row-major) and X n columns of k floats, Y n columns of `rows` floats (hg::matmul's
// layout). With AVX2 or AVX-512 a register-blocked kernel (conv2d_tile.inc) runs it,
// activations kept in f32; otherwise, or with simd false, hg::matmul does.
#pragma once

#include <cstdint>

#include "core/threadpool.h"

namespace hg {

// Rows r0..r1 x columns c0..c1 of the product, on the calling thread.
typedef void (*gemm_block_fn)(int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t r0, int64_t r1,
                              int64_t c0, int64_t c1, float *y);

// The tile kernels (conv2d_tile.inc) built for AVX2 and AVX-512; null where the build has
// none. conv_gemm picks by isa_active() (HEALTHGPT_ISA lowers it).
gemm_block_fn gemm_block_avx2_kernel();
gemm_block_fn gemm_block_avx512_kernel();

void conv_gemm(ThreadPool &pool, int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t n, float *y,
               bool simd = true);

} // namespace hg
