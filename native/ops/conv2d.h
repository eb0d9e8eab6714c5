// 2-D convolution over channels-last activations (position-major: x[(y * w + x) * c + ch]),
// as im2col into a column buffer and a product with the weights as matrix rows (conv_gemm:
// an AVX2 register-blocked kernel, or hg::matmul). The VQGAN
// runs every conv through this: 3x3 stride 1 pad 1, 1x1, and Downsample's 3x3 stride 2 with
// the asymmetric pad (0, 1, 0, 1).
#pragma once

#include <cstdint>

#include "core/threadpool.h"

namespace hg {

// Weights as conv2d reads them: c_out rows of kh * kw * c_in values ordered (ky, kx, c_in),
// so one position's column is kh * kw contiguous channel runs. Type HG_TYPE_F32 or F16.
struct Conv2dWeight {
    int type = 0;
    const void *data = nullptr;
    int64_t c_in = 0, c_out = 0, kh = 0, kw = 0;
    const float *bias = nullptr; // c_out floats, or null
};

struct Conv2dGeom {
    int64_t stride = 1;
    int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0; // zeros
};

// Output extent along one axis; throws hg::Error when the kernel does not fit.
int64_t conv2d_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad_a, int64_t pad_b);

// y: out_h * out_w * c_out floats (channels-last), must not alias x. With a SIMD tile kernel
// (conv2d_gemm.h) im2col is fused into the product, block by block per thread; otherwise
// (or simd false) columns go through a buffer of col_bytes (0: 16 MiB; tests pass less to
// exercise the row chunks) and hg::matmul.
void conv2d(ThreadPool &pool, const Conv2dWeight &wt, const Conv2dGeom &g, const float *x, int64_t h, int64_t w,
            float *y, int64_t col_bytes = 0, bool simd = true);

// Reorders torch's [c_out][c_in][kh][kw] (elements of elem_bytes: 4 for f32, 2 for f16; a
// pure permutation, no conversion) into conv2d's (ky, kx, c_in) rows.
void conv2d_weight_from_torch(const void *src, int64_t elem_bytes, int64_t c_out, int64_t c_in, int64_t kh, int64_t kw,
                              void *dst);

// Scalar reference: torch-order float weights, one output at a time, sums in double.
void conv2d_ref(const float *w_torch, const float *bias, int64_t c_in, int64_t c_out, int64_t kh, int64_t kw,
                const Conv2dGeom &g, const float *x, int64_t h, int64_t w, float *y);

} // namespace hg
