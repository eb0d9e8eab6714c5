// Block layouts of the quantized tensor types, byte for byte those of ggml (llama.cpp), so
// that GGUF files written by llama.cpp's tools are read as they are.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/fp16.h"

namespace hg {

constexpr int QK4_0 = 32;
constexpr int QK4_1 = 32;
constexpr int QK5_0 = 32;
constexpr int QK5_1 = 32;
constexpr int QK8_0 = 32;
constexpr int QK8_1 = 32;
constexpr int QK_K = 256;        // super-block of the k-quants
constexpr int K_SCALE_SIZE = 12; // 8 six-bit scales and 8 six-bit mins of q4_K / q5_K

// x = d * (q - 8), q in 0..15; qs[j] holds element j (low nibble) and j + 16 (high nibble)
struct block_q4_0 {
    fp16_t d;
    uint8_t qs[QK4_0 / 2];
};
// x = d * q + m
struct block_q4_1 {
    fp16_t d;
    fp16_t m;
    uint8_t qs[QK4_1 / 2];
};
// x = d * (q - 16), q 5 bits: low 4 in qs as q4_0, bit 4 of element j in bit j of qh
struct block_q5_0 {
    fp16_t d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
};
// x = d * q + m, q 5 bits as q5_0
struct block_q5_1 {
    fp16_t d;
    fp16_t m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
};
// x = d * q
struct block_q8_0 {
    fp16_t d;
    int8_t qs[QK8_0];
};
// activation partner of q4_1 / q5_1: s = d * sum(qs)
struct block_q8_1 {
    fp16_t d;
    fp16_t s;
    int8_t qs[QK8_1];
};
// 8 sub-blocks of 32: x = d * sc * q - dmin * m, sc and m 6-bit, packed in scales[12]
struct block_q4_K {
    fp16_t d;
    fp16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
};
// as q4_K with a fifth bit per element in qh
struct block_q5_K {
    fp16_t d;
    fp16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
};
// 16 sub-blocks of 16: x = d * scale * (q - 32), q 6 bits (low 4 in ql, high 2 in qh)
struct block_q6_K {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    fp16_t d;
};
// activation partner of the k-quants: bsums[i] = sum of qs[16 i .. 16 i + 15]
struct block_q8_K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
};

static_assert(sizeof(block_q4_0) == 18, "q4_0 layout");
static_assert(sizeof(block_q4_1) == 20, "q4_1 layout");
static_assert(sizeof(block_q5_0) == 22, "q5_0 layout");
static_assert(sizeof(block_q5_1) == 24, "q5_1 layout");
static_assert(sizeof(block_q8_0) == 34, "q8_0 layout");
static_assert(sizeof(block_q8_1) == 36, "q8_1 layout");
static_assert(sizeof(block_q4_K) == 144, "q4_K layout");
static_assert(sizeof(block_q5_K) == 176, "q5_K layout");
static_assert(sizeof(block_q6_K) == 210, "q6_K layout");
static_assert(sizeof(block_q8_K) == 292, "q8_K layout");

} // namespace hg
