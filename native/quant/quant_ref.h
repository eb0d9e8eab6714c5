// The scalar reference conversions and dot products, by name, for the SIMD files (their
// tails and fallbacks) and the tests. All have the signatures of quant.h's function
// pointers, so they drop into type_info and kernel_table as they are.
//
// Rounding of the quantizers: q4_0, q4_1, q5_0, q5_1, q8_0, q8_1 and q8_K follow llama.cpp's
// quantize_row_*_ref formula for formula (same bytes on finite input, as the gguf-py
// fixtures check for the first five; an all-zero q8_K block also gets zero bsums here);
// q4_K, q5_K, q6_K follow its search for scales and mins (same layouts, near-identical
// error) without promising identical bytes. Bit-exactness assumes no FMA contraction:
// these files build without -mfma on x86-64.
#pragma once

#include <cstdint>

#include "quant/blocks.h"

namespace hg {

// ---- plain types (quant_ref.cpp) ----
void dequantize_row_f32_ref(const void *x, float *y, int64_t n);
void quantize_row_f32_ref(const float *x, void *y, int64_t n);
void dequantize_row_f16_ref(const void *x, float *y, int64_t n);
void quantize_row_f16_ref(const float *x, void *y, int64_t n);
void dequantize_row_bf16_ref(const void *x, float *y, int64_t n);
void quantize_row_bf16_ref(const float *x, void *y, int64_t n);

// ---- 32-element blocks (quant_ref.cpp) ----
void dequantize_row_q4_0_ref(const void *x, float *y, int64_t n);
void quantize_row_q4_0_ref(const float *x, void *y, int64_t n);
void dequantize_row_q4_1_ref(const void *x, float *y, int64_t n);
void quantize_row_q4_1_ref(const float *x, void *y, int64_t n);
void dequantize_row_q5_0_ref(const void *x, float *y, int64_t n);
void quantize_row_q5_0_ref(const float *x, void *y, int64_t n);
void dequantize_row_q5_1_ref(const void *x, float *y, int64_t n);
void quantize_row_q5_1_ref(const float *x, void *y, int64_t n);
void dequantize_row_q8_0_ref(const void *x, float *y, int64_t n);
void quantize_row_q8_0_ref(const float *x, void *y, int64_t n);
void dequantize_row_q8_1_ref(const void *x, float *y, int64_t n);
void quantize_row_q8_1_ref(const float *x, void *y, int64_t n);

// ---- k-quants, 256-element super-blocks (quant_k_ref.cpp) ----
void dequantize_row_q4_K_ref(const void *x, float *y, int64_t n);
void quantize_row_q4_K_ref(const float *x, void *y, int64_t n);
void dequantize_row_q5_K_ref(const void *x, float *y, int64_t n);
void quantize_row_q5_K_ref(const float *x, void *y, int64_t n);
void dequantize_row_q6_K_ref(const void *x, float *y, int64_t n);
void quantize_row_q6_K_ref(const float *x, void *y, int64_t n);
void dequantize_row_q8_K_ref(const void *x, float *y, int64_t n);
void quantize_row_q8_K_ref(const float *x, void *y, int64_t n);

// Sub-block j (0..7) of q4_K / q5_K: its 6-bit scale and min out of the 12 packed bytes.
inline void get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// ---- dot products: weight row x (its type) against activation row y (its vec_dot_type) ----
void vec_dot_f32_f32_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_f16_f32_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_bf16_bf16_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q4_0_q8_0_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q4_1_q8_1_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q5_0_q8_0_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q5_1_q8_1_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q8_0_q8_0_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q4_K_q8_K_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q5_K_q8_K_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q6_K_q8_K_ref(int64_t n, float *s, const void *x, const void *y);

// ---- tile kernels (quant.h's vec_dot_tile_fn): every dot of the tile by the kernel above ----
void vec_dot_tile_q4_0_q8_0_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by);
void vec_dot_tile_q8_0_q8_0_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by);
void vec_dot_tile_q4_K_q8_K_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by);

// ---- row-block kernels (quant.h's vec_dot_rows_fn): every dot by the kernel above ----
void vec_dot_rows_q4_0_q8_0_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by,
                                int nc);
void vec_dot_rows_f16_f32_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by,
                              int nc);
// The same over packed groups (quant/repack.h): each row unpacked, then the plain dot.
// Columns are the plain dot's activation rows (q8_0 with its aux, or f32 for f16).
void vec_dot_rows_packed_q4_0_q8_0_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y,
                                       size_t by, int nc);
void vec_dot_rows_packed_q8_0_q8_0_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y,
                                       size_t by, int nc);
// weighted_rows_fn over F32, F16 and Q8_0 rows (a q8_0 row's values are d * q, rounded to
// float as dequantizing rounds them, then weighted: the sums of the dequantized rows)
void weighted_rows_q8_0_ref(int64_t n, float *out, size_t out_stride, const void *rows, size_t stride, const float *w,
                            size_t w_stride, int n_w, int64_t n_rows);
void weighted_rows_f32_ref(int64_t n, float *out, size_t out_stride, const void *rows, size_t stride, const float *w,
                           size_t w_stride, int n_w, int64_t n_rows);
void weighted_rows_f16_ref(int64_t n, float *out, size_t out_stride, const void *rows, size_t stride, const float *w,
                           size_t w_stride, int n_w, int64_t n_rows);

void vec_dot_rows_packed_f16_f32_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by,
                                     int nc);
void vec_dot_rows_packed_q4_K_q8_K_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y,
                                       size_t by, int nc);
void vec_dot_rows_packed_q5_K_q8_K_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y,
                                       size_t by, int nc);
void vec_dot_rows_packed_q6_K_q8_K_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y,
                                       size_t by, int nc);

// Round to nearest, ties to even (llama.cpp's nearest_int), for |v| < 2^22.
inline int nearest_int(float v) {
    const float shifted = v + 12582912.0f; // 1.5 * 2^23: the sum's low mantissa bits are round(v)
    return (int)(f32_to_bits(shifted) & 0x007fffff) - 0x00400000;
}

} // namespace hg
