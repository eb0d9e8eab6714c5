// Device dequantization of the ggml block layouts (quant/blocks.h), 32 values at a time: every
// quant type's block is 32 values or a 256-value super-block of eight 32-value units, so a
// thread that owns one unit never splits a scale. Mirrors the CPU references
// (quant/quant_ref.cpp, quant/quant_k_ref.cpp) value for value.
#pragma once

#include "cuda/common.cuh"
#include "healthgpt.h"

namespace hg {
namespace cuda {

// Bytes of one block and values per block of the types the CUDA backend reads (0: not one).
__host__ __device__ constexpr int dq_block_bytes(int type) {
    return type == HG_TYPE_Q4_0   ? 18
           : type == HG_TYPE_Q4_1 ? 20
           : type == HG_TYPE_Q5_0 ? 22
           : type == HG_TYPE_Q5_1 ? 24
           : type == HG_TYPE_Q8_0 ? 34
           : type == HG_TYPE_Q4_K ? 144
           : type == HG_TYPE_Q5_K ? 176
           : type == HG_TYPE_Q6_K ? 210
           : type == HG_TYPE_F32  ? 4
           : type == HG_TYPE_F16  ? 2
           : type == HG_TYPE_BF16 ? 2
                                  : 0;
}
__host__ __device__ constexpr int dq_block_size(int type) {
    return type == HG_TYPE_Q4_K || type == HG_TYPE_Q5_K || type == HG_TYPE_Q6_K ? 256
           : type == HG_TYPE_F32 || type == HG_TYPE_F16 || type == HG_TYPE_BF16 ? 1
                                                                                : 32;
}
__host__ __device__ constexpr bool dq_is_float(int type) {
    return type == HG_TYPE_F32 || type == HG_TYPE_F16 || type == HG_TYPE_BF16;
}

// Element i of a row of a plain float type.
__device__ __forceinline__ float load_float_type(int type, const uint8_t *row, int64_t i) {
    if (type == HG_TYPE_F32) return reinterpret_cast<const float *>(row)[i];
    const unsigned short b = reinterpret_cast<const unsigned short *>(row)[i];
    if (type == HG_TYPE_F16) return __half2float(__ushort_as_half(b));
    return __uint_as_float((uint32_t)b << 16); // bf16
}

// q4_K / q5_K: the 6-bit scale and min of unit j (0..7) from the 12 packed bytes.
__host__ __device__ __forceinline__ void scale_min_k4(int j, const uint8_t *q, int &sc, int &m) {
    if (j < 4) {
        sc = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// Values 32 u .. 32 u + 31 of a row of a quant type into v. __fmul_rn keeps nvcc from fusing
// a product and its sum into one rounding, which the CPU references do not do.
__device__ inline void dequant_unit(int type, const uint8_t *row, int64_t u, float v[32]) {
    switch (type) {
    case HG_TYPE_Q4_0: {
        const uint8_t *b = row + u * 18;
        const float d = ld_half(b);
        for (int j = 0; j < 16; j++) {
            v[j] = ((b[2 + j] & 0x0f) - 8) * d;
            v[j + 16] = ((b[2 + j] >> 4) - 8) * d;
        }
        break;
    }
    case HG_TYPE_Q4_1: {
        const uint8_t *b = row + u * 20;
        const float d = ld_half(b), m = ld_half(b + 2);
        for (int j = 0; j < 16; j++) {
            v[j] = __fmul_rn((float)(b[4 + j] & 0x0f), d) + m;
            v[j + 16] = __fmul_rn((float)(b[4 + j] >> 4), d) + m;
        }
        break;
    }
    case HG_TYPE_Q5_0: {
        const uint8_t *b = row + u * 22;
        const float d = ld_half(b);
        const uint32_t qh = (uint32_t)b[2] | ((uint32_t)b[3] << 8) | ((uint32_t)b[4] << 16) | ((uint32_t)b[5] << 24);
        for (int j = 0; j < 16; j++) {
            v[j] = ((int)((b[6 + j] & 0x0f) | (((qh >> j) & 1) << 4)) - 16) * d;
            v[j + 16] = ((int)((b[6 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16) * d;
        }
        break;
    }
    case HG_TYPE_Q5_1: {
        const uint8_t *b = row + u * 24;
        const float d = ld_half(b), m = ld_half(b + 2);
        const uint32_t qh = (uint32_t)b[4] | ((uint32_t)b[5] << 8) | ((uint32_t)b[6] << 16) | ((uint32_t)b[7] << 24);
        for (int j = 0; j < 16; j++) {
            v[j] = __fmul_rn((float)((b[8 + j] & 0x0f) | (((qh >> j) & 1) << 4)), d) + m;
            v[j + 16] = __fmul_rn((float)((b[8 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4)), d) + m;
        }
        break;
    }
    case HG_TYPE_Q8_0: {
        const uint8_t *b = row + u * 34;
        const float d = ld_half(b);
        for (int j = 0; j < 32; j++) v[j] = (float)(int8_t)b[2 + j] * d;
        break;
    }
    case HG_TYPE_Q4_K: {
        // 144 bytes: d, dmin, scales[12], qs[128]; unit j's values are the low (j even) or
        // high (j odd) nibbles of qs[32 (j / 2) ..]
        const int j = (int)(u & 7);
        const uint8_t *b = row + (u >> 3) * 144;
        int sc, m;
        scale_min_k4(j, b + 4, sc, m);
        const float ds = ld_half(b) * sc, dm = ld_half(b + 2) * m;
        const uint8_t *qs = b + 16 + 32 * (j >> 1);
        const int shift = (j & 1) * 4;
        for (int l = 0; l < 32; l++) v[l] = __fmul_rn(ds, (float)((qs[l] >> shift) & 0x0f)) - dm;
        break;
    }
    case HG_TYPE_Q5_K: {
        // 176 bytes: d, dmin, scales[12], qh[32], qs[128]; the fifth bit of unit j is bit j of qh[l]
        const int j = (int)(u & 7);
        const uint8_t *b = row + (u >> 3) * 176;
        int sc, m;
        scale_min_k4(j, b + 4, sc, m);
        const float ds = ld_half(b) * sc, dm = ld_half(b + 2) * m;
        const uint8_t *qh = b + 16, *qs = b + 48 + 32 * (j >> 1);
        const int shift = (j & 1) * 4;
        for (int l = 0; l < 32; l++)
            v[l] = __fmul_rn(ds, (float)(((qs[l] >> shift) & 0x0f) | (((qh[l] >> j) & 1) << 4))) - dm;
        break;
    }
    case HG_TYPE_Q6_K: {
        // 210 bytes: ql[128], qh[64], scales[16] (int8), d. Unit j: half h = j / 4, quarter
        // c = j % 4 of ql[64 h ..] / qh[32 h ..]; a scale per 16 values.
        const int j = (int)(u & 7), h = j >> 2, c = j & 3;
        const uint8_t *b = row + (u >> 3) * 210;
        const uint8_t *ql = b + 64 * h + 32 * (c & 1), *qh = b + 128 + 32 * h;
        const int8_t *sc = reinterpret_cast<const int8_t *>(b + 192) + 2 * j;
        const float d = ld_half(b + 208);
        const int lshift = (c >> 1) * 4, hshift = 2 * c;
        for (int l = 0; l < 32; l++) {
            const int q = (int)(((ql[l] >> lshift) & 0x0f) | (((qh[l] >> hshift) & 3) << 4)) - 32;
            v[l] = d * sc[l >> 4] * q;
        }
        break;
    }
    default:
        for (int l = 0; l < 32; l++) v[l] = 0.0f; // unreachable: the host refuses other types
    }
}

} // namespace cuda
} // namespace hg
