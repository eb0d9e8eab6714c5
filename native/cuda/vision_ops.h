// CUDA ops of the vision paths (the CLIP tower and the VQGAN decoder): host functions that
// enqueue kernels on a stream, as cuda/ops.h does for the decoder.
//
// Plain C++ (no CUDA header). Every pointer is device memory; `stream` is a cudaStream_t passed
// as void*. Each function checks its arguments and the launch and throws hg::Error; a fault
// inside a kernel surfaces at the next synchronizing call. Each op mirrors the CPU op named
// beside it, in the same layouts, so that the two compare on the same inputs. Activations are
// f32 between ops. Products are f32 on CUDA cores (results differ from the CPU's only by the
// order of float additions), except f16 / bf16 linears and f16 convolutions, which run on
// tensor cores.
#pragma once

#include <cstdint>

namespace hg {
namespace cuda {

// ---- products: C[n][m] = sum_k A(m, k) B(n, k) (+ bias[m]) at c + n * ldc + m ----
// accumulate: c = c + (sum + bias), the order of the CPU's "y = W x + b; x += y".

// A linear layer (ops/matmul.h, then the bias): W rows x k of type f32, f16 or bf16 (rows back
// to back), X n rows of k floats (row stride ldx); bias: rows floats or null. f16 and bf16
// weights go to gemm_tensor_cores where the device has them (bf16: sm_80 and up) unless
// switched off; otherwise, and for f32, the f32 tile, where bf16 weights meet bf16-rounded
// activations as the CPU pairs them (f16 weights meet f32 activations there).
bool gemm_supports(int type);
void gemm(int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t ldx, int64_t n, const float *bias,
          float *y, int64_t ldy, bool accumulate, void *stream);
// Default on, unless the environment has HEALTHGPT_CUDA_MMA=0 (as cuda/ops.h matmul). Covers
// the f16 convolutions too.
void gemm_use_tensor_cores(bool on);
bool gemm_tensor_cores_enabled();

// The same on tensor cores (WMMA, f32 accumulators): f16 weights with f16-rounded activations,
// bf16 with bf16-rounded ones (the CPU's pairings). supports: f16 anywhere, bf16 on sm_80+.
bool gemm_tensor_cores_support(int type);
void gemm_tensor_cores(int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t ldx, int64_t n,
                       const float *bias, float *y, int64_t ldy, bool accumulate, void *stream);

// Both operands f32 at any strides: A(m, k) = a[m * a_m + k * a_k], B(n, k) = b[n * b_n + k * b_k].
void gemm_f32(const float *a, int64_t a_m, int64_t a_k, const float *b, int64_t b_n, int64_t b_k, int64_t m, int64_t n,
              int64_t k, float *c, int64_t ldc, void *stream);

// ---- conv2d (ops/conv2d.h) as an implicit GEMM over channels-last activations ----
// w: c_out rows of kh * kw * c_in values ordered (ky, kx, c_in) (conv2d's order), f32 or f16;
// bias: c_out floats or null; x: h * w * c_in floats; y: out_h * out_w * c_out floats (must
// not alias x), added onto when accumulate (y + (conv + bias)). f16 weights run on tensor
// cores with the activations rounded to f16 (hg::matmul's pairing for f16, the CPU's scalar
// path; its SIMD conv keeps them f32) while gemm_tensor_cores_enabled(); else, and for f32,
// on the f32 tile with f32 activations.
struct conv2d_shape {
    int64_t c_in = 0, c_out = 0, kh = 0, kw = 0, stride = 1;
    int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};
void conv2d(int type, const void *w, const float *bias, const conv2d_shape &s, const float *x, int64_t h, int64_t w_,
            float *y, bool accumulate, void *stream);

// ---- normalisation (ops/layer_norm.h, ops/group_norm.h) ----
// n_rows rows of n floats; y may alias x. Mean and variance in float, two passes, as the CPU.
void layer_norm(const float *x, const float *weight, const float *bias, float *y, int64_t n, int64_t n_rows, float eps,
                void *stream);
// n_pos positions of c channels, n_groups groups of c / n_groups channels; y may alias x. swish
// fused as on the CPU. scratch: group_norm_scratch_floats(n_groups) floats.
int64_t group_norm_scratch_floats(int64_t n_groups);
void group_norm(const float *x, float *y, int64_t n_pos, int64_t c, int64_t n_groups, const float *gamma,
                const float *beta, float eps, bool swish, float *scratch, void *stream);

// ---- element-wise (ops/gelu.h) ----
enum bias_act_kind { BIAS_ONLY = 0, BIAS_QUICK_GELU = 1, BIAS_GELU_ERF = 2 };
// x: n_rows rows of n floats, x = act(x + bias) (bias may be null).
void bias_act(float *x, const float *bias, int64_t n, int64_t n_rows, int kind, void *stream);
// y = y + (t + bias) (bias per row of n; may be null): a linear whose product went elsewhere.
void add_bias_residual(float *y, const float *t, const float *bias, int64_t n, int64_t n_rows, void *stream);
// y[i] += x[i] over n values.
void add_f32(float *y, const float *x, int64_t n, void *stream);

// ---- the CLIP embeddings (ops/patch_embed.h patch_im2col) ----
void patch_im2col(const float *pixels, int64_t channels, int64_t height, int64_t width, int64_t patch, float *cols,
                  void *stream);

// ---- attention ----
// ops/vit_attention.h: multi-head, no mask, q.k / sqrt(head_dim), softmax in float.
// head_dim at most 64.
void vit_attention(const float *q, const float *k, const float *v, int64_t stride, int64_t n_pos, int64_t n_heads,
                   int64_t head_dim, float *out, int64_t out_stride, void *stream);
// ops/spatial_attention.h: one head of c channels over n positions; scores: n * n floats.
void spatial_attention(const float *q, const float *k, const float *v, int64_t n, int64_t c, float *scores, float *out,
                       void *stream);

// ---- the VQGAN's reshapes ----
// ops/upsample.h upsample_nearest2x: x h * w * c -> y 2h * 2w * c.
void upsample_nearest2x(const float *x, int64_t h, int64_t w, int64_t c, float *y, void *stream);
// z row i = row indices[i] of the codebook (n_embed rows of dim values, f32 or f16); the
// indices are checked on the host before they are uploaded.
void codebook_rows(int type, const void *codebook, int64_t dim, const int32_t *indices, int64_t n, float *z,
                   void *stream);
// channels-last n_pos x c -> channels-first c x n_pos, and back.
void to_chw(const float *x, int64_t n_pos, int64_t c, float *y, void *stream);
void to_hwc(const float *x, int64_t n_pos, int64_t c, float *y, void *stream);
// out[r] = the index of row r's largest value (n values a row), the first of equal maxima.
void argmax_rows(const float *x, int64_t n_rows, int64_t n, int32_t *out, void *stream);

} // namespace cuda
} // namespace hg
