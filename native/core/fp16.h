// IEEE half and bfloat16 conversions in portable code. Rounding is to nearest, ties to even,
// the same as F16C's _cvtss_sh(x, 0) and ggml's reference, so quantized blocks are
// bit-identical to llama.cpp's.
#pragma once

#include <cstdint>
#include <cstring>

namespace hg {

typedef uint16_t fp16_t;
typedef uint16_t bf16_t;

inline float bits_to_f32(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline uint32_t f32_to_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

inline float fp16_to_f32(fp16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f;
    const uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        if (mant == 0) return bits_to_f32(sign);
        // subnormal: value = mant * 2^-24
        float v = (float)mant * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31) return bits_to_f32(sign | 0x7f800000u | (mant << 13));
    return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

inline fp16_t f32_to_fp16(float f) {
    const uint32_t x = f32_to_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000;
    const uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) // inf or nan (keep nan quiet and non-zero)
        return (fp16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
    if (ax >= 0x477ff000u) return (fp16_t)(sign | 0x7c00); // rounds to >= 65520: inf
    if (ax < 0x38800000u) {
        // result is subnormal or zero: round ax * 2^24 to an integer, ties to even
        const float v = bits_to_f32(ax) * 16777216.0f; // exact: scaling by a power of two
        uint32_t i = (uint32_t)v;
        const float rem = v - (float)i;
        if (rem > 0.5f || (rem == 0.5f && (i & 1))) i++;
        return (fp16_t)(sign | i);
    }
    // normal: drop 13 mantissa bits with round-to-nearest-even
    uint32_t r = ax - 0x38000000u; // rebias exponent 127 -> 15
    r += 0x0fff + ((r >> 13) & 1);
    return (fp16_t)(sign | (r >> 13));
}

inline float bf16_to_f32(bf16_t h) { return bits_to_f32((uint32_t)h << 16); }

inline bf16_t f32_to_bf16(float f) {
    uint32_t u = f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16_t)((u >> 16) | 64); // quiet nan
    u += 0x7fff + ((u >> 16) & 1);
    return (bf16_t)(u >> 16);
}

} // namespace hg
