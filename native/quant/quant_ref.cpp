// Scalar reference of the plain types and the 32-element block types: dequantize, quantize
// with llama.cpp's reference rounding (same bytes as quantize_row_*_ref), and the dot
// products the kernels of every ISA are checked against.
#include <cmath>
#include <cstring>
#include <vector>

#include "quant/quant.h"
#include "quant/quant_ref.h"
#include "quant/repack.h"

namespace hg {

namespace {

// Clamp a scaled value before it is converted to an integer. Identity on every value that
// llama.cpp's formulas produce from finite input (they stay within lo..hi up to an ulp, which
// the later truncation or rounding absorbs the same way); it only keeps inf and NaN (a
// block so small that 1/d overflows, where d itself rounds to 0 in fp16) away from a
// float-to-int conversion, which would be undefined.
inline float clamp_q(float v, float lo, float hi) {
    if (!(v == v)) return 0.0f;
    return v < lo ? lo : (v > hi ? hi : v);
}

// Largest |x| of a block, and the signed value that has it (the first one on ties).
inline void signed_absmax(const float *x, int n, float *amax, float *max) {
    float a = 0.0f, m = 0.0f;
    for (int j = 0; j < n; j++) {
        if (a < std::fabs(x[j])) {
            a = std::fabs(x[j]);
            m = x[j];
        }
    }
    *amax = a;
    *max = m;
}

inline void minmax(const float *x, int n, float *mn, float *mx) {
    float lo = 3.402823466e+38f, hi = -3.402823466e+38f;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

// Element j of a 32-block from its nibble (j < 16 low, else high) and its bit in qh.
inline int q5_value(const uint8_t *qs, uint32_t qh, int j) {
    const int lo = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
    return lo | (int)(((qh >> j) & 1u) << 4);
}

} // namespace

// ---------------------------------------------------------------- f32, f16, bf16

void dequantize_row_f32_ref(const void *x, float *y, int64_t n) { std::memcpy(y, x, (size_t)n * sizeof(float)); }
void quantize_row_f32_ref(const float *x, void *y, int64_t n) { std::memcpy(y, x, (size_t)n * sizeof(float)); }

void dequantize_row_f16_ref(const void *x, float *y, int64_t n) {
    const fp16_t *h = (const fp16_t *)x;
    for (int64_t i = 0; i < n; i++) y[i] = fp16_to_f32(h[i]);
}
void quantize_row_f16_ref(const float *x, void *y, int64_t n) {
    fp16_t *h = (fp16_t *)y;
    for (int64_t i = 0; i < n; i++) h[i] = f32_to_fp16(x[i]);
}

void dequantize_row_bf16_ref(const void *x, float *y, int64_t n) {
    const bf16_t *h = (const bf16_t *)x;
    for (int64_t i = 0; i < n; i++) y[i] = bf16_to_f32(h[i]);
}
void quantize_row_bf16_ref(const float *x, void *y, int64_t n) {
    bf16_t *h = (bf16_t *)y;
    for (int64_t i = 0; i < n; i++) h[i] = f32_to_bf16(x[i]);
}

// ---------------------------------------------------------------- q4_0: x = d * (q - 8)

void quantize_row_q4_0_ref(const float *x, void *vy, int64_t n) {
    block_q4_0 *y = (block_q4_0 *)vy;
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
        float amax, max;
        signed_absmax(x, QK4_0, &amax, &max);
        // the largest magnitude maps to -8, the one level with no positive twin
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const float x0 = clamp_q(x[j] * id, -8.0f, 8.0f);
            const float x1 = clamp_q(x[j + QK4_0 / 2] * id, -8.0f, 8.0f);
            // truncation of x + 8.5 rounds half up: llama.cpp's exact choice
            const int q0 = (int)(x0 + 8.5f) < 15 ? (int)(x0 + 8.5f) : 15;
            const int q1 = (int)(x1 + 8.5f) < 15 ? (int)(x1 + 8.5f) : 15;
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void dequantize_row_q4_0_ref(const void *vx, float *y, int64_t n) {
    const block_q4_0 *x = (const block_q4_0 *)vx;
    for (int64_t i = 0; i < n / QK4_0; i++, y += QK4_0) {
        const float d = fp16_to_f32(x[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = (float)((x[i].qs[j] & 0x0f) - 8) * d;
            y[j + QK4_0 / 2] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

// ---------------------------------------------------------------- q4_1: x = d * q + m

void quantize_row_q4_1_ref(const float *x, void *vy, int64_t n) {
    block_q4_1 *y = (block_q4_1 *)vy;
    for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1) {
        float min, max;
        minmax(x, QK4_1, &min, &max);
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        y[i].m = f32_to_fp16(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const float x0 = clamp_q((x[j] - min) * id, 0.0f, 15.0f);
            const float x1 = clamp_q((x[j + QK4_1 / 2] - min) * id, 0.0f, 15.0f);
            const int q0 = (int)(x0 + 0.5f) < 15 ? (int)(x0 + 0.5f) : 15;
            const int q1 = (int)(x1 + 0.5f) < 15 ? (int)(x1 + 0.5f) : 15;
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void dequantize_row_q4_1_ref(const void *vx, float *y, int64_t n) {
    const block_q4_1 *x = (const block_q4_1 *)vx;
    for (int64_t i = 0; i < n / QK4_1; i++, y += QK4_1) {
        const float d = fp16_to_f32(x[i].d);
        const float m = fp16_to_f32(x[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            y[j] = (float)(x[i].qs[j] & 0x0f) * d + m;
            y[j + QK4_1 / 2] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

// ---------------------------------------------------------------- q5_0: x = d * (q - 16)

void quantize_row_q5_0_ref(const float *x, void *vy, int64_t n) {
    block_q5_0 *y = (block_q5_0 *)vy;
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
        float amax, max;
        signed_absmax(x, QK5_0, &amax, &max);
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const float x0 = clamp_q(x[j] * id, -16.0f, 16.0f);
            const float x1 = clamp_q(x[j + QK5_0 / 2] * id, -16.0f, 16.0f);
            const int q0 = (int)(x0 + 16.5f) < 31 ? (int)(x0 + 16.5f) : 31;
            const int q1 = (int)(x1 + 16.5f) < 31 ? (int)(x1 + 16.5f) : 31;
            y[i].qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + QK5_0 / 2);
        }
        std::memcpy(y[i].qh, &qh, 4); // little-endian bit j = element j, as ggml
    }
}

void dequantize_row_q5_0_ref(const void *vx, float *y, int64_t n) {
    const block_q5_0 *x = (const block_q5_0 *)vx;
    for (int64_t i = 0; i < n / QK5_0; i++, y += QK5_0) {
        const float d = fp16_to_f32(x[i].d);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_0; j++) y[j] = (float)(q5_value(x[i].qs, qh, j) - 16) * d;
    }
}

// ---------------------------------------------------------------- q5_1: x = d * q + m

void quantize_row_q5_1_ref(const float *x, void *vy, int64_t n) {
    block_q5_1 *y = (block_q5_1 *)vy;
    for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1) {
        float min, max;
        minmax(x, QK5_1, &min, &max);
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        y[i].m = f32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            // llama.cpp has no clamp here: (x - min) * id never passes 31.5
            const int q0 = (int)(clamp_q((x[j] - min) * id, 0.0f, 31.0f) + 0.5f);
            const int q1 = (int)(clamp_q((x[j + QK5_1 / 2] - min) * id, 0.0f, 31.0f) + 0.5f);
            y[i].qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + QK5_1 / 2);
        }
        std::memcpy(y[i].qh, &qh, 4);
    }
}

void dequantize_row_q5_1_ref(const void *vx, float *y, int64_t n) {
    const block_q5_1 *x = (const block_q5_1 *)vx;
    for (int64_t i = 0; i < n / QK5_1; i++, y += QK5_1) {
        const float d = fp16_to_f32(x[i].d);
        const float m = fp16_to_f32(x[i].m);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_1; j++) y[j] = (float)q5_value(x[i].qs, qh, j) * d + m;
    }
}

// ---------------------------------------------------------------- q8_0: x = d * q

void quantize_row_q8_0_ref(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = (block_q8_0 *)vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = std::fmax(amax, std::fabs(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        // roundf: halves away from zero, as llama.cpp
        for (int j = 0; j < QK8_0; j++) y[i].qs[j] = (int8_t)std::round(clamp_q(x[j] * id, -127.0f, 127.0f));
    }
}

void dequantize_row_q8_0_ref(const void *vx, float *y, int64_t n) {
    const block_q8_0 *x = (const block_q8_0 *)vx;
    for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
        const float d = fp16_to_f32(x[i].d);
        for (int j = 0; j < QK8_0; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

// ---------------------------------------------------------------- q8_1: q8_0 plus s = d * sum(q)

void quantize_row_q8_1_ref(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = (block_q8_1 *)vy;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; j++) amax = std::fmax(amax, std::fabs(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = (int8_t)std::round(clamp_q(x[j] * id, -127.0f, 127.0f));
            sum += y[i].qs[j];
        }
        // the unrounded d, as llama.cpp: s carries the min term of q4_1 / q5_1 dots
        y[i].s = f32_to_fp16((float)sum * d);
    }
}

void dequantize_row_q8_1_ref(const void *vx, float *y, int64_t n) {
    const block_q8_1 *x = (const block_q8_1 *)vx;
    for (int64_t i = 0; i < n / QK8_1; i++, y += QK8_1) {
        const float d = fp16_to_f32(x[i].d);
        for (int j = 0; j < QK8_1; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

// ---------------------------------------------------------------- dot products

void vec_dot_f32_f32_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const float *x = (const float *)vx, *y = (const float *)vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += x[i] * y[i];
    *s = sum;
}

// f16 weights against f32 activations: the activations are not rounded (llama.cpp's CPU
// backend on AVX-512 FP16 / AMX machines computes f16 weights to float precision as well).
void vec_dot_f16_f32_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const fp16_t *x = (const fp16_t *)vx;
    const float *y = (const float *)vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += fp16_to_f32(x[i]) * y[i];
    *s = sum;
}

void vec_dot_bf16_bf16_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const bf16_t *x = (const bf16_t *)vx, *y = (const bf16_t *)vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += bf16_to_f32(x[i]) * bf16_to_f32(y[i]);
    *s = sum;
}

// Integer dot inside a block, one float multiply-add per block.
void vec_dot_q4_0_q8_0_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_0 *x = (const block_q4_0 *)vx;
    const block_q8_0 *y = (const block_q8_0 *)vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0 / 2; j++) {
            sumi += ((x[i].qs[j] & 0x0f) - 8) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + QK8_0 / 2];
        }
        sum += (float)sumi * (fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d));
    }
    *s = sum;
}

// sum(d_x q_x + m_x)(d_y q_y) = d_x d_y sum(q_x q_y) + m_x * s_y
void vec_dot_q4_1_q8_1_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_1 *x = (const block_q4_1 *)vx;
    const block_q8_1 *y = (const block_q8_1 *)vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_1 / 2; j++) {
            sumi += (x[i].qs[j] & 0x0f) * y[i].qs[j];
            sumi += (x[i].qs[j] >> 4) * y[i].qs[j + QK8_1 / 2];
        }
        sum += (float)sumi * (fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d)) + fp16_to_f32(x[i].m) * fp16_to_f32(y[i].s);
    }
    *s = sum;
}

void vec_dot_q5_0_q8_0_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_0 *x = (const block_q5_0 *)vx;
    const block_q8_0 *y = (const block_q8_0 *)vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++) sumi += (q5_value(x[i].qs, qh, j) - 16) * y[i].qs[j];
        sum += (float)sumi * (fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d));
    }
    *s = sum;
}

void vec_dot_q5_1_q8_1_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_1 *x = (const block_q5_1 *)vx;
    const block_q8_1 *y = (const block_q8_1 *)vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < QK8_1; j++) sumi += q5_value(x[i].qs, qh, j) * y[i].qs[j];
        sum += (float)sumi * (fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d)) + fp16_to_f32(x[i].m) * fp16_to_f32(y[i].s);
    }
    *s = sum;
}

void vec_dot_q8_0_q8_0_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q8_0 *x = (const block_q8_0 *)vx;
    const block_q8_0 *y = (const block_q8_0 *)vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++) sumi += x[i].qs[j] * y[i].qs[j];
        sum += (float)sumi * (fp16_to_f32(x[i].d) * fp16_to_f32(y[i].d));
    }
    *s = sum;
}

// ---------------------------------------------------------------- tile kernels

template <vec_dot_fn F>
static void vec_dot_tile_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by) {
    for (int c = 0; c < kDotTileCols; c++)
        for (int r = 0; r < kDotTileRows; r++)
            F(n, &s[c * bs + r], (const uint8_t *)x + r * bx, (const uint8_t *)y + c * by);
}

void vec_dot_tile_q4_0_q8_0_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by) {
    vec_dot_tile_ref<vec_dot_q4_0_q8_0_ref>(n, s, bs, x, bx, y, by);
}
void vec_dot_tile_q8_0_q8_0_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by) {
    vec_dot_tile_ref<vec_dot_q8_0_q8_0_ref>(n, s, bs, x, bx, y, by);
}
void vec_dot_tile_q4_K_q8_K_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by) {
    vec_dot_tile_ref<vec_dot_q4_K_q8_K_ref>(n, s, bs, x, bx, y, by);
}

void vec_dot_rows_q4_0_q8_0_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by,
                                int nc) {
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < kRowBlock; r++)
            vec_dot_q4_0_q8_0_ref(n, &s[c * bs + r], (const uint8_t *)x + r * bx, (const uint8_t *)y + c * by);
}

void vec_dot_rows_f16_f32_ref(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by,
                              int nc) {
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < kRowBlock; r++)
            vec_dot_f16_f32_ref(n, &s[c * bs + r], (const uint8_t *)x + r * bx, (const uint8_t *)y + c * by);
}

// A packed group (quant/repack.h): each row unpacked, then the plain scalar dot.
template <int Type, class Block, int QK, void (*Dot)(int64_t, float *, const void *, const void *)>
void rows_packed_ref(int64_t n, float *s, size_t bs, const void *x, const void *y, size_t by, int nc) {
    std::vector<Block> row((size_t)(n / QK));
    for (int r = 0; r < kRowBlock; r++) {
        for (int64_t b = 0; b < n / QK; b++) unpack_block(Type, x, n / QK, r, b, &row[(size_t)b]);
        for (int c = 0; c < nc; c++) Dot(n, &s[c * bs + r], row.data(), (const uint8_t *)y + c * by);
    }
}
void vec_dot_rows_packed_q4_0_q8_0_ref(int64_t n, float *s, size_t bs, const void *x, size_t, const void *y, size_t by,
                                       int nc) {
    rows_packed_ref<HG_TYPE_Q4_0, block_q4_0, QK4_0, vec_dot_q4_0_q8_0_ref>(n, s, bs, x, y, by, nc);
}
void vec_dot_rows_packed_q8_0_q8_0_ref(int64_t n, float *s, size_t bs, const void *x, size_t, const void *y, size_t by,
                                       int nc) {
    rows_packed_ref<HG_TYPE_Q8_0, block_q8_0, QK8_0, vec_dot_q8_0_q8_0_ref>(n, s, bs, x, y, by, nc);
}
void vec_dot_rows_packed_f16_f32_ref(int64_t n, float *s, size_t bs, const void *x, size_t, const void *y, size_t by,
                                     int nc) {
    rows_packed_ref<HG_TYPE_F16, fp16_t, 1, vec_dot_f16_f32_ref>(n, s, bs, x, y, by, nc);
}
void vec_dot_rows_packed_q4_K_q8_K_ref(int64_t n, float *s, size_t bs, const void *x, size_t, const void *y, size_t by,
                                       int nc) {
    rows_packed_ref<HG_TYPE_Q4_K, block_q4_K, QK_K, vec_dot_q4_K_q8_K_ref>(n, s, bs, x, y, by, nc);
}
void vec_dot_rows_packed_q5_K_q8_K_ref(int64_t n, float *s, size_t bs, const void *x, size_t, const void *y, size_t by,
                                       int nc) {
    rows_packed_ref<HG_TYPE_Q5_K, block_q5_K, QK_K, vec_dot_q5_K_q8_K_ref>(n, s, bs, x, y, by, nc);
}
void vec_dot_rows_packed_q6_K_q8_K_ref(int64_t n, float *s, size_t bs, const void *x, size_t, const void *y, size_t by,
                                       int nc) {
    rows_packed_ref<HG_TYPE_Q6_K, block_q6_K, QK_K, vec_dot_q6_K_q8_K_ref>(n, s, bs, x, y, by, nc);
}

size_t q8_0_aux_offset(int64_t n) {
    constexpr size_t a = alignof(q8_0_aux);
    return (row_bytes(HG_TYPE_Q8_0, n) + a - 1) / a * a;
}
size_t q8_0_row_with_aux(int64_t n) { return q8_0_aux_offset(n) + (size_t)(n / QK8_0) * sizeof(q8_0_aux); }

void q8_0_fill_aux(const void *vy, int64_t n, q8_0_aux *aux) {
    const block_q8_0 *y = (const block_q8_0 *)vy;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int32_t sum = 0;
        for (int j = 0; j < QK8_0; j++) sum += y[i].qs[j];
        aux[i].d = fp16_to_f32(y[i].d);
        aux[i].sum = sum;
    }
}

// ---------------------------------------------------------------- weighted sums of rows

namespace {
// value(x, d): element d of a row of T as a float
template <class T, class F> void weighted_rows_ref(int64_t n, float *out, size_t out_stride, const void *rows,
                                                   size_t stride, const float *w, size_t w_stride, int n_w,
                                                   int64_t n_rows, F value) {
    for (int j = 0; j < n_w; j++) {
        float *o = out + j * out_stride;
        const float *wj = w + j * w_stride;
        for (int64_t d = 0; d < n; d++) o[d] = 0;
        for (int64_t r = 0; r < n_rows; r++) {
            const T *x = reinterpret_cast<const T *>(static_cast<const uint8_t *>(rows) + r * stride);
            for (int64_t d = 0; d < n; d++) o[d] += wj[r] * value(x, d);
        }
    }
}
} // namespace

void weighted_rows_f32_ref(int64_t n, float *out, size_t out_stride, const void *rows, size_t stride, const float *w,
                           size_t w_stride, int n_w, int64_t n_rows) {
    weighted_rows_ref<float>(n, out, out_stride, rows, stride, w, w_stride, n_w, n_rows,
                             [](const float *x, int64_t d) { return x[d]; });
}

void weighted_rows_f16_ref(int64_t n, float *out, size_t out_stride, const void *rows, size_t stride, const float *w,
                           size_t w_stride, int n_w, int64_t n_rows) {
    weighted_rows_ref<fp16_t>(n, out, out_stride, rows, stride, w, w_stride, n_w, n_rows,
                              [](const fp16_t *x, int64_t d) { return fp16_to_f32(x[d]); });
}

void weighted_rows_q8_0_ref(int64_t n, float *out, size_t out_stride, const void *rows, size_t stride, const float *w,
                            size_t w_stride, int n_w, int64_t n_rows) {
    weighted_rows_ref<block_q8_0>(
        n, out, out_stride, rows, stride, w, w_stride, n_w, n_rows,
        [](const block_q8_0 *x, int64_t d) { return (float)x[d / QK8_0].qs[d % QK8_0] * fp16_to_f32(x[d / QK8_0].d); });
}

// ---------------------------------------------------------------- the scalar kernel table

const kernel_table &kernels_scalar() {
    static const kernel_table t = [] {
        kernel_table k{};
        k.vec_dot[HG_TYPE_F32] = vec_dot_f32_f32_ref;
        k.vec_dot[HG_TYPE_F16] = vec_dot_f16_f32_ref;
        k.vec_dot[HG_TYPE_BF16] = vec_dot_bf16_bf16_ref;
        k.vec_dot[HG_TYPE_Q4_0] = vec_dot_q4_0_q8_0_ref;
        k.vec_dot[HG_TYPE_Q4_1] = vec_dot_q4_1_q8_1_ref;
        k.vec_dot[HG_TYPE_Q5_0] = vec_dot_q5_0_q8_0_ref;
        k.vec_dot[HG_TYPE_Q5_1] = vec_dot_q5_1_q8_1_ref;
        k.vec_dot[HG_TYPE_Q8_0] = vec_dot_q8_0_q8_0_ref;
        k.vec_dot[HG_TYPE_Q4_K] = vec_dot_q4_K_q8_K_ref;
        k.vec_dot[HG_TYPE_Q5_K] = vec_dot_q5_K_q8_K_ref;
        k.vec_dot[HG_TYPE_Q6_K] = vec_dot_q6_K_q8_K_ref;
        k.from_float[HG_TYPE_F32] = quantize_row_f32_ref;
        k.from_float[HG_TYPE_F16] = quantize_row_f16_ref;
        k.from_float[HG_TYPE_BF16] = quantize_row_bf16_ref;
        k.from_float[HG_TYPE_Q8_0] = quantize_row_q8_0_ref;
        k.from_float[HG_TYPE_Q8_1] = quantize_row_q8_1_ref;
        k.from_float[HG_TYPE_Q8_K] = quantize_row_q8_K_ref;
        k.vec_dot_tile[HG_TYPE_Q4_0] = vec_dot_tile_q4_0_q8_0_ref;
        k.vec_dot_tile[HG_TYPE_Q8_0] = vec_dot_tile_q8_0_q8_0_ref;
        k.vec_dot_tile[HG_TYPE_Q4_K] = vec_dot_tile_q4_K_q8_K_ref;
        k.vec_dot_rows[HG_TYPE_Q4_0] = vec_dot_rows_q4_0_q8_0_ref;
        k.vec_dot_rows[HG_TYPE_F16] = vec_dot_rows_f16_f32_ref;
        k.vec_dot_rows_packed[HG_TYPE_Q4_0] = vec_dot_rows_packed_q4_0_q8_0_ref;
        k.vec_dot_rows_packed[HG_TYPE_Q8_0] = vec_dot_rows_packed_q8_0_q8_0_ref;
        k.vec_dot_rows_packed[HG_TYPE_F16] = vec_dot_rows_packed_f16_f32_ref;
        k.vec_dot_rows_packed[HG_TYPE_Q4_K] = vec_dot_rows_packed_q4_K_q8_K_ref;
        k.vec_dot_rows_packed[HG_TYPE_Q5_K] = vec_dot_rows_packed_q5_K_q8_K_ref;
        k.vec_dot_rows_packed[HG_TYPE_Q6_K] = vec_dot_rows_packed_q6_K_q8_K_ref;
        k.weighted_rows[HG_TYPE_F32] = weighted_rows_f32_ref;
        k.weighted_rows[HG_TYPE_F16] = weighted_rows_f16_ref;
        k.weighted_rows[HG_TYPE_Q8_0] = weighted_rows_q8_0_ref;
        return k;
    }();
    return t;
}

} // namespace hg
