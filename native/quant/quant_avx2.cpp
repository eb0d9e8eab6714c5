// AVX2 + FMA + F16C kernels: the dot products of every weight type with its activation
// partner, and the activation quantizers.
//
// Integer dots follow the classic recipe: unpack a block's quants to 32 bytes, multiply
// unsigned by signed bytes with vpmaddubsw (pairs summed to int16), widen with vpmaddwd
// against ones (or the sub-block scale) to int32, and apply the float scales once per
// block. Every int16 step is proven free of saturation in a comment where it happens.
// The quantizers reproduce the scalar reference bit for bit (same operations, same order
// where it matters: llama.cpp's rounding, the reference's clamping of degenerate scales).
//
// This file is compiled with -mavx2 -mfma -mf16c on x86-64; elsewhere it is an empty table.
#include "quant/quant.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "quant/blocks.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define HG_HAVE_AVX2_KERNELS 1
#include <immintrin.h>
#include "quant/prefetch.h" // after the intrinsics
#endif

namespace hg {

#if defined(HG_HAVE_AVX2_KERNELS)
namespace {

// ---- helpers ----

inline float h2f(fp16_t h) { return _cvtsh_ss(h); } // exact, as fp16_to_f32
inline fp16_t f2h(float f) { return (fp16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }

inline float hsum(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}
inline float hsum(__m128 a) {
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}
inline int hsum_i32(__m256i v) {
    __m128i a = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    a = _mm_add_epi32(a, _mm_shuffle_epi32(a, _MM_SHUFFLE(1, 0, 3, 2)));
    a = _mm_add_epi32(a, _mm_shuffle_epi32(a, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(a);
}
inline float hmax(__m256 v) {
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

inline __m256i loadu(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
inline __m128i loadu128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

// unsigned bytes u times signed bytes s, summed in fours to int32. vpmaddubsw saturates
// its pair sums at int16; callers bound u so it never does (q4: 15, q5: 31, |q8|: 128).
inline __m256i dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
// signed bytes a (any int8) times signed bytes b (in -127..127), summed in fours to int32.
// The sign moves onto b so vpmaddubsw sees |a| <= 128 unsigned: pair sums <= 2 * 128 * 127
// = 32512 < 32767. b = -128 would break the identity; the activation quantizers never
// produce it.
inline __m256i dot_s8s8(__m256i a, __m256i b) { return dot_u8s8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a)); }

// 16 packed nibbles -> 32 bytes: low nibbles first (elements 0..15), then high (16..31),
// the q4_0 / q4_1 / q5 element order.
inline __m256i unpack_nibbles16(const uint8_t *qs) {
    const __m128i b = loadu128(qs);
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(b), _mm_srli_epi16(b, 4), 1);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}

// 32 bits (little-endian qh[4]) -> 32 bytes, 0xff where bit j is set.
inline __m256i bits_to_bytes(const uint8_t *qh) {
    uint32_t w;
    std::memcpy(&w, qh, 4);
    // byte j takes byte j / 8 of the word, then tests its bit j % 8
    const __m256i spread =
        _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)w), spread);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

// ---- float dots ----

void vec_dot_f32(int64_t n, float *s, const void *vx, const void *vy) {
    const float *x = (const float *)vx, *y = (const float *)vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) { // four chains hide the FMA latency
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; ++i) sum += x[i] * y[i];
    *s = sum;
}

inline __m256 load_f16x8(const fp16_t *p) { return _mm256_cvtph_ps(loadu128(p)); }

// f16 weights x f32 activations (the activations are never rounded to f16)
void vec_dot_f16(int64_t n, float *s, const void *vx, const void *vy) {
    const fp16_t *x = (const fp16_t *)vx;
    const float *y = (const float *)vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(load_f16x8(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(load_f16x8(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(load_f16x8(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(load_f16x8(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_f16x8(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; ++i) sum += h2f(x[i]) * y[i];
    *s = sum;
}

// bf16 -> f32 is a 16-bit shift: interleaving with zeros does it for 16 values at once.
// The interleave permutes the elements, identically for x and y, so the dot is unchanged.
void vec_dot_bf16(int64_t n, float *s, const void *vx, const void *vy) {
    const bf16_t *x = (const bf16_t *)vx, *y = (const bf16_t *)vy;
    const __m256i z = _mm256_setzero_si256();
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i x0 = loadu(x + i), y0 = loadu(y + i);
        const __m256i x1 = loadu(x + i + 16), y1 = loadu(y + i + 16);
        a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_unpacklo_epi16(z, x0)),
                             _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, y0)), a0);
        a1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_unpackhi_epi16(z, x0)),
                             _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, y0)), a1);
        a2 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_unpacklo_epi16(z, x1)),
                             _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, y1)), a2);
        a3 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_unpackhi_epi16(z, x1)),
                             _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, y1)), a3);
    }
    float sum = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; ++i) sum += bf16_to_f32(x[i]) * bf16_to_f32(y[i]);
    *s = sum;
}

// ---- 32-element block dots ----

void vec_dot_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q8_0 *x = (const block_q8_0 *)vx;
    const block_q8_0 *y = (const block_q8_0 *)vy;
    const int64_t nb = n / QK8_0;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) { // two independent chains
        const __m256i p0 = dot_s8s8(loadu(x[i].qs), loadu(y[i].qs));
        const __m256i p1 = dot_s8s8(loadu(x[i + 1].qs), loadu(y[i + 1].qs));
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p0), a0);
        a1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i + 1].d) * h2f(y[i + 1].d)), _mm256_cvtepi32_ps(p1), a1);
    }
    for (; i < nb; ++i) {
        const __m256i p = dot_s8s8(loadu(x[i].qs), loadu(y[i].qs));
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p), a0);
    }
    *s = hsum(_mm256_add_ps(a0, a1));
}

inline __m256i q4_0_signed(const block_q4_0 &b) { return _mm256_sub_epi8(unpack_nibbles16(b.qs), _mm256_set1_epi8(8)); }

void vec_dot_q4_0(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_0 *x = (const block_q4_0 *)vx;
    const block_q8_0 *y = (const block_q8_0 *)vy;
    const int64_t nb = n / QK4_0;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m256i p0 = dot_s8s8(q4_0_signed(x[i]), loadu(y[i].qs));
        const __m256i p1 = dot_s8s8(q4_0_signed(x[i + 1]), loadu(y[i + 1].qs));
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p0), a0);
        a1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i + 1].d) * h2f(y[i + 1].d)), _mm256_cvtepi32_ps(p1), a1);
    }
    for (; i < nb; ++i) {
        const __m256i p = dot_s8s8(q4_0_signed(x[i]), loadu(y[i].qs));
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p), a0);
    }
    *s = hsum(_mm256_add_ps(a0, a1));
}

// q4_1 quants are unsigned 0..15: straight into vpmaddubsw. The min term m * sum(y) comes
// from the activation block's precomputed s = d * sum(qs).
void vec_dot_q4_1(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_1 *x = (const block_q4_1 *)vx;
    const block_q8_1 *y = (const block_q8_1 *)vy;
    const int64_t nb = n / QK4_1;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        const __m256i p = dot_u8s8(unpack_nibbles16(x[i].qs), loadu(y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p), acc);
        mins += h2f(x[i].m) * h2f(y[i].s);
    }
    *s = hsum(acc) + mins;
}

// q5_0: q - 16 with q = nibble | bit << 4. Where the bit is clear that is nibble - 16, i.e.
// the nibble with 0xf0 or'ed in (as int8); where it is set, the nibble itself.
void vec_dot_q5_0(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_0 *x = (const block_q5_0 *)vx;
    const block_q8_0 *y = (const block_q8_0 *)vy;
    const int64_t nb = n / QK5_0;
    const __m256i f0 = _mm256_set1_epi8((char)0xf0);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const __m256i hi = _mm256_andnot_si256(bits_to_bytes(x[i].qh), f0);
        const __m256i q = _mm256_or_si256(unpack_nibbles16(x[i].qs), hi);
        const __m256i p = dot_s8s8(q, loadu(y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p), acc);
    }
    *s = hsum(acc);
}

void vec_dot_q5_1(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_1 *x = (const block_q5_1 *)vx;
    const block_q8_1 *y = (const block_q8_1 *)vy;
    const int64_t nb = n / QK5_1;
    const __m256i b4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        const __m256i hi = _mm256_and_si256(bits_to_bytes(x[i].qh), b4);
        const __m256i q = _mm256_or_si256(unpack_nibbles16(x[i].qs), hi); // 0..31
        const __m256i p = dot_u8s8(q, loadu(y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p), acc);
        mins += h2f(x[i].m) * h2f(y[i].s);
    }
    *s = hsum(acc) + mins;
}

// ---- k-quants (256-element super-blocks, Q8_K activations) ----

// The 12 packed bytes of q4_K / q5_K -> 8 six-bit scales and 8 six-bit mins, four lanes
// of bytes at a time: scales 0..3 and mins 0..3 are the low six bits of bytes 0..3 and
// 4..7; scales/mins 4..7 take their low four bits from the nibbles of bytes 8..11 and
// their top two from the spare top bits of bytes 0..3 / 4..7.
inline void unpack_scales_k4(const uint8_t *p, uint8_t sc[8], uint8_t mn[8]) {
    uint32_t u0, u1, u2;
    std::memcpy(&u0, p, 4);
    std::memcpy(&u1, p + 4, 4);
    std::memcpy(&u2, p + 8, 4);
    const uint32_t s_lo = u0 & 0x3f3f3f3fu;
    const uint32_t m_lo = u1 & 0x3f3f3f3fu;
    const uint32_t s_hi = (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4);
    const uint32_t m_hi = ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4);
    std::memcpy(sc, &s_lo, 4);
    std::memcpy(sc + 4, &s_hi, 4);
    std::memcpy(mn, &m_lo, 4);
    std::memcpy(mn + 4, &m_hi, 4);
}

// sum over the 8 sub-blocks of mins[j] * (bsums[2j] + bsums[2j+1]), exact. Pair sums of
// bsums are <= 32 * 127 = 4064 in magnitude: no int16 overflow in the hadd.
inline int mins_dot_bsums(const uint8_t mn[8], const int16_t *bsums) {
    const __m128i pairs = _mm_hadd_epi16(loadu128(bsums), loadu128(bsums + 8));
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn));
    __m128i a = _mm_madd_epi16(pairs, m16);
    a = _mm_add_epi32(a, _mm_shuffle_epi32(a, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtsi128_si32(_mm_add_epi32(a, _mm_shuffle_epi32(a, _MM_SHUFFLE(2, 3, 0, 1))));
}

// One q4_K / q5_K super-block's share of the dot from its exact integer sums (scales by
// quants times activations, mins by bsums), in the scalar reference's float operations and
// order, so that every level and the packed row-block kernels give its very bits.
inline float super_block_k4(fp16_t d, fp16_t dmin, float dy, int sumi, int summ) {
    return h2f(d) * dy * (float)sumi - h2f(dmin) * dy * (float)summ;
}

// vpmaddwd against a sub-block scale (0..63): int16 pair sums below are <= 2 * 31 * 127,
// times 63 times 2 fits int32 easily; a super-block total is < 2^26.
inline __m256i scale_i16(__m256i p16, int sc) { return _mm256_madd_epi16(p16, _mm256_set1_epi16((short)sc)); }

void vec_dot_q4_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_K *x = (const block_q4_K *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        uint8_t sc[8], mn[8];
        unpack_scales_k4(x[i].scales, sc, mn);

        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < QK_K / 64; ++j) { // 64 elements: low nibbles, then high nibbles
            const __m256i b = loadu(q4 + 32 * j);
            const __m256i lo = _mm256_and_si256(b, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
            const __m256i plo = _mm256_maddubs_epi16(lo, loadu(q8 + 64 * j));
            const __m256i phi = _mm256_maddubs_epi16(hi, loadu(q8 + 64 * j + 32));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(scale_i16(plo, sc[2 * j]), scale_i16(phi, sc[2 * j + 1])));
        }
        sum += super_block_k4(x[i].d, x[i].dmin, y[i].d, hsum_i32(sumi), mins_dot_bsums(mn, y[i].bsums));
    }
    *s = sum;
}

void vec_dot_q5_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_K *x = (const block_q5_K *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i b4 = _mm256_set1_epi8(0x10);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        uint8_t sc[8], mn[8];
        unpack_scales_k4(x[i].scales, sc, mn);

        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        // chunk j of 64 elements uses bit 2j (low half) and 2j+1 (high half) of qh[l]; the
        // 16-bit shifts move those bits to bit 4 of the same byte (neighbour bits masked off)
        __m256i qh = loadu(x[i].qh);
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < QK_K / 64; ++j) {
            const __m256i b = loadu(q4 + 32 * j);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(b, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), b4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4),
                                               _mm256_and_si256(_mm256_slli_epi16(qh, 3), b4));
            qh = _mm256_srli_epi16(qh, 2); // total shift <= 6: bits never cross into the byte read next
            const __m256i plo = _mm256_maddubs_epi16(lo, loadu(q8 + 64 * j));
            const __m256i phi = _mm256_maddubs_epi16(hi, loadu(q8 + 64 * j + 32));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(scale_i16(plo, sc[2 * j]), scale_i16(phi, sc[2 * j + 1])));
        }
        sum += super_block_k4(x[i].d, x[i].dmin, y[i].d, hsum_i32(sumi), mins_dot_bsums(mn, y[i].bsums));
    }
    *s = sum;
}

// q6_K: sum sc * (q - 32) * y = sum sc * q * y - 32 * sum sc * bsum, so the 6-bit quants
// go unsigned (0..63) into vpmaddubsw (pairs <= 2 * 63 * 127 = 16002) and the offset is
// one vpmaddwd of the 16 scales with the activation's bsums. The offset's lanes do not
// line up with the products' lanes, so they cancel only in the total: each super-block is
// reduced to one exact integer (|total| < 2^28) before it meets a float, else rounding of
// the large cancelling lanes would show where weights sit at q = 32 (zero).
void vec_dot_q6_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q6_K *x = (const block_q6_K *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m2 = _mm256_set1_epi8(0x03);
    const __m256i m2s2 = _mm256_set1_epi8(0x0c);
    const __m256i m2s4 = _mm256_set1_epi8(0x30);
    const __m256i m2s6 = _mm256_set1_epi8((char)0xc0);
    // vector v of a half covers sub-blocks 2v (low 128 bits) and 2v+1: pick their int16
    // scales out of a register holding 8 of them in both lanes
    const __m256i pick[4] = {
        _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2,
                         3),
        _mm256_setr_epi8(4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6,
                         7),
        _mm256_setr_epi8(8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11,
                         10, 11, 10, 11),
        _mm256_setr_epi8(12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15,
                         14, 15, 14, 15, 14, 15, 14, 15),
    };
    float acc = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        const float d = y[i].d * h2f(x[i].d);
        const __m128i sc8 = loadu128(x[i].scales);
        // 32 * sum sc[k] * bsums[k]: |sc| <= 128, |bsum| <= 2032: pairs fit int32
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        const __m256i offs = _mm256_slli_epi32(_mm256_madd_epi16(sc16, loadu(y[i].bsums)), 5);

        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) { // two halves of 128 elements, 8 scales each
            const __m256i scl = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_unpackhi_epi64(sc8, sc8) : sc8));
            const __m256i l0 = loadu(ql), l1 = loadu(ql + 32), hb = loadu(qh);
            const __m256i q1 =
                _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
            const __m256i q2 =
                _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2s2), 2));
            const __m256i q3 =
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m2s4));
            const __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                               _mm256_srli_epi16(_mm256_and_si256(hb, m2s6), 2));
            const __m256i p1 =
                _mm256_madd_epi16(_mm256_maddubs_epi16(q1, loadu(q8)), _mm256_shuffle_epi8(scl, pick[0]));
            const __m256i p2 =
                _mm256_madd_epi16(_mm256_maddubs_epi16(q2, loadu(q8 + 32)), _mm256_shuffle_epi8(scl, pick[1]));
            const __m256i p3 =
                _mm256_madd_epi16(_mm256_maddubs_epi16(q3, loadu(q8 + 64)), _mm256_shuffle_epi8(scl, pick[2]));
            const __m256i p4 =
                _mm256_madd_epi16(_mm256_maddubs_epi16(q4, loadu(q8 + 96)), _mm256_shuffle_epi8(scl, pick[3]));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_add_epi32(p1, p2), _mm256_add_epi32(p3, p4)));
            ql += 64;
            qh += 32;
            q8 += 128;
        }
        acc += d * (float)hsum_i32(_mm256_sub_epi32(sumi, offs));
    }
    *s = acc;
}

// ---- activation quantizers (bit-identical to the scalar reference) ----

inline __m256 abs_mask() { return _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)); }

// |x| folded into a running maximum the way fmax does it: a nan x leaves the maximum as it
// was (vmaxps returns its second operand when either is nan).
inline __m256 max_abs(__m256 x, __m256 acc) { return _mm256_max_ps(_mm256_and_ps(x, abs_mask()), acc); }

// The reference's clamp before rounding: nan -> 0, then lo..hi. Only degenerate scales (1/d
// overflowing to inf for tiny blocks, inf or nan inputs) ever reach the limits.
inline __m256 clamp_q(__m256 v, float lo, float hi) {
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    return _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(lo)), _mm256_set1_ps(hi));
}

// roundf (ties away from zero) on values already in int range: add the largest float
// below one half, with x's sign, and truncate. The sum rounds up to the next integer
// exactly when |x|'s fraction is >= 0.5, for every float (the tests sweep the floats
// around every tie).
inline __m256i round_away(__m256 v) {
    const __m256 half = _mm256_or_ps(_mm256_set1_ps(0.49999997f), _mm256_andnot_ps(abs_mask(), v));
    return _mm256_cvttps_epi32(_mm256_add_ps(v, half));
}

// 4 x 8 int32 (each in int8 range) -> 32 int8 in order
inline __m256i pack_i32x32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b);
    const __m256i cd = _mm256_packs_epi32(c, d);
    const __m256i v = _mm256_packs_epi16(ab, cd); // lanes interleave in 4-byte groups
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// One 32-block: amax, d = amax / 127, q = roundf(clamp(x * (1/d))). Returns the sum of q.
inline int quantize_block32(const float *x, float &d_out, int8_t *qs) {
    const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    const __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    const __m256 mx = max_abs(v3, max_abs(v2, max_abs(v1, max_abs(v0, _mm256_setzero_ps()))));
    const float amax = hmax(mx);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    d_out = d;
    const __m256 m = _mm256_set1_ps(id);
    const __m256i i0 = round_away(clamp_q(_mm256_mul_ps(v0, m), -127.0f, 127.0f));
    const __m256i i1 = round_away(clamp_q(_mm256_mul_ps(v1, m), -127.0f, 127.0f));
    const __m256i i2 = round_away(clamp_q(_mm256_mul_ps(v2, m), -127.0f, 127.0f));
    const __m256i i3 = round_away(clamp_q(_mm256_mul_ps(v3, m), -127.0f, 127.0f));
    _mm256_storeu_si256((__m256i *)qs, pack_i32x32_to_i8(i0, i1, i2, i3));
    return hsum_i32(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
}

void quantize_q8_0(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = (block_q8_0 *)vy;
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        float d;
        quantize_block32(x + i * QK8_0, d, y[i].qs);
        y[i].d = f2h(d);
    }
}

void quantize_q8_1(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = (block_q8_1 *)vy;
    for (int64_t i = 0; i < n / QK8_1; ++i) {
        float d;
        const int sum = quantize_block32(x + i * QK8_1, d, y[i].qs);
        y[i].d = f2h(d);
        y[i].s = f2h((float)sum * d);
    }
}

// q8_K: scale from the signed value of the first element of largest magnitude
// (iscale = -127 / max), levels clamped to -128..127 and rounded to nearest even as the
// reference's level() / nearest_int, and the 16 group sums.
void quantize_q8_K(const float *x, void *vy, int64_t n) {
    block_q8_K *y = (block_q8_K *)vy;
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        __m256 mx = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8) mx = max_abs(_mm256_loadu_ps(x + j), mx);
        const float amax = hmax(mx);
        if (amax == 0.0f) {
            std::memset(&y[i], 0, sizeof(block_q8_K));
            continue;
        }
        float max = 0.0f;
        const __m256 va = _mm256_set1_ps(amax);
        for (int j = 0; j < QK_K; j += 8) {
            const int hit =
                _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + j), abs_mask()), va, _CMP_EQ_OQ));
            if (hit) {
                max = x[j + __builtin_ctz((unsigned)hit)];
                break;
            }
        }
        const float iscale = -127.0f / max;
        y[i].d = 1.0f / iscale;
        const __m256 m = _mm256_set1_ps(iscale);
        __m256i g[QK_K / 16]; // per-group int32 partial sums (8 lanes of 2 elements)
        for (int j = 0; j < QK_K; j += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; ++k) // cvtps rounds to nearest even, as nearest_int
                q[k] = _mm256_cvtps_epi32(clamp_q(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), m), -128.0f, 127.0f));
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), pack_i32x32_to_i8(q[0], q[1], q[2], q[3]));
            g[j / 16] = _mm256_add_epi32(q[0], q[1]);
            g[j / 16 + 1] = _mm256_add_epi32(q[2], q[3]);
        }
        // reduce the 16 groups, 8 at a time: two rounds of hadd give groups 0..3 (h0) and
        // 4..7 (h1), each split across the two 128-bit lanes; adding the lanes finishes them
        for (int k = 0; k < 2; ++k) {
            const __m256i *t = g + 8 * k;
            const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(t[0], t[1]), _mm256_hadd_epi32(t[2], t[3]));
            const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(t[4], t[5]), _mm256_hadd_epi32(t[6], t[7]));
            const __m256i sums =
                _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
            const __m128i s16 = _mm_packs_epi32(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
            _mm_storeu_si128((__m128i *)(y[i].bsums + 8 * k), s16);
        }
    }
}

// F16C rounds to nearest even like f32_to_fp16, with the same nan and subnormal results.
void quantize_f16(const float *x, void *vy, int64_t n) {
    fp16_t *y = (fp16_t *)vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) y[i] = f2h(x[i]);
}

// f32 -> bf16 rounding to nearest even in integers (as f32_to_bf16): nan stays quiet.
void quantize_bf16(const float *x, void *vy, int64_t n) {
    bf16_t *y = (bf16_t *)vy;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    const __m256i quiet = _mm256_set1_epi32(64);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
        for (int k = 0; k < 2; ++k) {
            const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i + 8 * k));
            const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
            const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, odd)), 16);
            const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
            const __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(u, 16), quiet);
            r[k] = _mm256_blendv_epi8(rounded, qnan, nan);
        }
        // values are 0..0xffff, so the unsigned-saturating pack is exact
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), _MM_SHUFFLE(3, 1, 2, 0));
        _mm256_storeu_si256((__m256i *)(y + i), p);
    }
    for (; i < n; ++i) y[i] = f32_to_bf16(x[i]);
}

// Four activation bytes broadcast to every lane, straight from memory (vbroadcastss: a
// load, where a broadcast from a general register costs a move and a shuffle).
inline __m256i bcast4(const int8_t *p) { return _mm256_castps_si256(_mm256_broadcast_ss((const float *)p)); }

// ---- row blocks: 16 weight rows x up to 8 columns (quant.h's vec_dot_rows_fn) ----
//
// As in quant_avx512.cpp: one row per 32-bit lane, so no horizontal sums. Here 8 rows a
// pass (AVX2 has 16 registers): their 16-byte quant arrays are transposed in registers into
// L0..L3 (L_j = bytes 4j..4j+3 of every row; low nibbles are elements 4j..4j+3, high ones
// 16+4j..19+4j) and multiplied by the column's four matching activation bytes broadcast.
// vpmaddubsw of a nibble (0..15) by an activation byte (-127..127) pair is at most
// 2 * 15 * 127 = 3810 in magnitude, so the eight of a block add up in int16 (<= 30480),
// widened once per block by vpmaddwd against ones; -8 * sum(y) (the q4_0 offset, from the
// column's q8_0_aux) is added in int32.
// Packed groups (quant/repack.h): rows h..h+7 of L_j are the 32 bytes at 32 + 64 j + 4 h of
// the block's record and their scales the 16 bytes at 2 h, loaded as they are.
template <int C, bool Packed> void rows8_q4_0(int64_t nb, float *s, size_t bs, const uint8_t *x, size_t bx, int h,
                                              const uint8_t *vy, size_t by, bool stream) {
    const __m256i rowoff = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)bx));
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i ones = _mm256_set1_epi16(1);
    // the low 16 bits of each dword to the lane's first 8 bytes
    const __m256i dsel = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 4, 5, 8, 9,
                                          12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
    const block_q8_0 *y[C];
    const q8_0_aux *a[C];
    const size_t aux_at = q8_0_aux_offset(nb * QK8_0);
    __m256 acc[C];
    for (int c = 0; c < C; c++) {
        y[c] = (const block_q8_0 *)(vy + c * by);
        a[c] = (const q8_0_aux *)((const uint8_t *)y[c] + aux_at);
        acc[c] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        __m256i l[4];
        __m256 dx;
        if (Packed) {
            const uint8_t *p = x + b * kRowBlock * sizeof(block_q4_0);
            if (stream) prefetch_weights(p, kRowBlock * sizeof(block_q4_0));
            dx = _mm256_cvtph_ps(loadu128(p + 2 * h));
            for (int j = 0; j < 4; j++) l[j] = _mm256_loadu_si256((const __m256i *)(p + 32 + 64 * j + 4 * h));
        } else {
            const uint8_t *p = x + h * bx + b * sizeof(block_q4_0);
            const uint8_t *q = p + offsetof(block_q4_0, qs);
            // z[g]: 128-bit lane l = quants of row 4l + g
            __m256i z[4];
            for (int g = 0; g < 4; g++)
                z[g] = _mm256_inserti128_si256(_mm256_castsi128_si256(loadu128(q + g * bx)), loadu128(q + (4 + g) * bx),
                                               1);
            const __m256i t0 = _mm256_unpacklo_epi32(z[0], z[1]), t1 = _mm256_unpackhi_epi32(z[0], z[1]);
            const __m256i t2 = _mm256_unpacklo_epi32(z[2], z[3]), t3 = _mm256_unpackhi_epi32(z[2], z[3]);
            l[0] = _mm256_unpacklo_epi64(t0, t2), l[1] = _mm256_unpackhi_epi64(t0, t2);
            l[2] = _mm256_unpacklo_epi64(t1, t3), l[3] = _mm256_unpackhi_epi64(t1, t3);
            // the d field is the low half of the dword at each row's block start
            const __m256i dw = _mm256_shuffle_epi8(_mm256_i32gather_epi32((const int *)p, rowoff, 1), dsel);
            dx = _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_permute4x64_epi64(dw, _MM_SHUFFLE(3, 1, 2, 0))));
        }
        __m256i w[8];
        for (int j = 0; j < 4; j++) {
            w[j] = _mm256_and_si256(l[j], m4);
            w[j + 4] = _mm256_and_si256(_mm256_srli_epi16(l[j], 4), m4);
        }
        for (int c = 0; c < C; c++) {
            const int8_t *yq = y[c][b].qs;
            __m256i s16 = _mm256_maddubs_epi16(w[0], bcast4(yq));
            for (int j = 1; j < 8; j++) s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(w[j], bcast4(yq + 4 * j)));
            const __m256i s32 = _mm256_add_epi32(_mm256_madd_epi16(s16, ones), _mm256_set1_epi32(-8 * a[c][b].sum));
            acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(dx, _mm256_set1_ps(a[c][b].d)), _mm256_cvtepi32_ps(s32), acc[c]);
        }
    }
    for (int c = 0; c < C; c++) _mm256_storeu_ps(s + c * bs, acc[c]);
}

// two passes of 8 rows, columns 4 at a time (the accumulators and the 8 unpacked
// registers must fit in 16)
template <bool Packed>
void vec_dot_rows_q4_0(int64_t n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by, int nc) {
    const int64_t nb = n / QK4_0;
    const uint8_t *x = (const uint8_t *)vx;
    for (int h = 0; h < kRowBlock; h += 8) {
        for (int c = 0; c < nc; c += 4) {
            const uint8_t *y = (const uint8_t *)vy + c * by;
            float *o = s + c * bs + h;
            // the first pass brings the packed records in (prefetch.h); the others find them cached
            const bool stream = Packed && streams_weights(nc) && h == 0 && c == 0;
            switch (nc - c < 4 ? nc - c : 4) {
            case 1: rows8_q4_0<1, Packed>(nb, o, bs, x, bx, h, y, by, stream); break;
            case 2: rows8_q4_0<2, Packed>(nb, o, bs, x, bx, h, y, by, stream); break;
            case 3: rows8_q4_0<3, Packed>(nb, o, bs, x, bx, h, y, by, stream); break;
            default: rows8_q4_0<4, Packed>(nb, o, bs, x, bx, h, y, by, stream); break;
            }
        }
    }
}
static_assert(kRowBlock == 16, "vec_dot_rows_q4_0 is written for 16 rows");

// ---- packed q8_0 groups (quant/repack.h): 8 rows a pass, up to 4 columns a call ----
//
// The record's quants are stored + 128; flipping the top bit gives the int8 back, and
// vpmaddubsw(|w|, y * sign(w)) multiplies pairs without overflow (2 * 128 * 127 < 2^15),
// widened per chunk by vpmaddwd against ones.
template <int C> void rows8_packed_q8_0(int64_t nb, float *s, size_t bs, const uint8_t *x, int h, const uint8_t *vy,
                                        size_t by, bool stream) {
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    const block_q8_0 *y[C];
    __m256 acc[C];
    for (int c = 0; c < C; c++) {
        y[c] = (const block_q8_0 *)(vy + c * by);
        acc[c] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = x + b * kRowBlock * sizeof(block_q8_0);
        if (stream) prefetch_weights(p, kRowBlock * sizeof(block_q8_0));
        const __m256 dx = _mm256_cvtph_ps(loadu128(p + 2 * h));
        __m256i sum[C];
        for (int c = 0; c < C; c++) sum[c] = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            const __m256i w = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 32 + 64 * j + 4 * h)), flip);
            const __m256i aw = _mm256_sign_epi8(w, w);
            for (int c = 0; c < C; c++) {
                const __m256i prod = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(bcast4(y[c][b].qs + 4 * j), w));
                sum[c] = _mm256_add_epi32(sum[c], _mm256_madd_epi16(prod, ones));
            }
        }
        for (int c = 0; c < C; c++)
            acc[c] =
                _mm256_fmadd_ps(_mm256_mul_ps(dx, _mm256_set1_ps(h2f(y[c][b].d))), _mm256_cvtepi32_ps(sum[c]), acc[c]);
    }
    for (int c = 0; c < C; c++) _mm256_storeu_ps(s + c * bs, acc[c]);
}

// ---- packed f16 groups: rows h..h+7 of element k are 16 bytes at 32 k + 2 h ----
// U chains per column, the same for every column count (as quant_avx512.cpp's rows_packed_f16_n)
template <int C>
void rows8_packed_f16(int64_t n, float *s, size_t bs, const uint8_t *x, int h, const uint8_t *vy, size_t by) {
    constexpr int U = 2;
    const float *y[C];
    __m256 acc[C][U];
    for (int c = 0; c < C; c++) {
        y[c] = (const float *)(vy + c * by);
        for (int u = 0; u < U; u++) acc[c][u] = _mm256_setzero_ps();
    }
    int64_t k = 0;
    for (; k + U <= n; k += U)
        for (int u = 0; u < U; u++) {
            const __m256 w = _mm256_cvtph_ps(loadu128(x + (k + u) * 2 * kRowBlock + 2 * h));
            for (int c = 0; c < C; c++) acc[c][u] = _mm256_fmadd_ps(w, _mm256_set1_ps(y[c][k + u]), acc[c][u]);
        }
    for (; k < n; k++) {
        const __m256 w = _mm256_cvtph_ps(loadu128(x + k * 2 * kRowBlock + 2 * h));
        for (int c = 0; c < C; c++) acc[c][0] = _mm256_fmadd_ps(w, _mm256_set1_ps(y[c][k]), acc[c][0]);
    }
    for (int c = 0; c < C; c++) {
        __m256 t = acc[c][0];
        for (int u = 1; u < U; u++) t = _mm256_add_ps(t, acc[c][u]);
        _mm256_storeu_ps(s + c * bs, t);
    }
}

// two passes of 8 rows, columns 4 at a time, as vec_dot_rows_q4_0
template <void (*K1)(int64_t, float *, size_t, const uint8_t *, int, const uint8_t *, size_t),
          void (*K2)(int64_t, float *, size_t, const uint8_t *, int, const uint8_t *, size_t),
          void (*K3)(int64_t, float *, size_t, const uint8_t *, int, const uint8_t *, size_t),
          void (*K4)(int64_t, float *, size_t, const uint8_t *, int, const uint8_t *, size_t)>
void rows_packed(int64_t len, float *s, size_t bs, const void *vx, const void *vy, size_t by, int nc) {
    for (int h = 0; h < kRowBlock; h += 8)
        for (int c = 0; c < nc; c += 4) {
            const uint8_t *y = (const uint8_t *)vy + c * by;
            float *o = s + c * bs + h;
            switch (nc - c < 4 ? nc - c : 4) {
            case 1: K1(len, o, bs, (const uint8_t *)vx, h, y, by); break;
            case 2: K2(len, o, bs, (const uint8_t *)vx, h, y, by); break;
            case 3: K3(len, o, bs, (const uint8_t *)vx, h, y, by); break;
            default: K4(len, o, bs, (const uint8_t *)vx, h, y, by); break;
            }
        }
}

void vec_dot_rows_packed_q8_0(int64_t n, float *s, size_t bs, const void *vx, size_t, const void *vy, size_t by,
                              int nc) {
    // as vec_dot_rows_q4_0: the first pass brings the records in when several sequences decode
    const bool stream = streams_weights(nc);
    for (int h = 0; h < kRowBlock; h += 8)
        for (int c = 0; c < nc; c += 4) {
            const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy + c * by;
            float *o = s + c * bs + h;
            const bool first = stream && h == 0 && c == 0;
            switch (nc - c < 4 ? nc - c : 4) {
            case 1: rows8_packed_q8_0<1>(n / QK8_0, o, bs, x, h, y, by, first); break;
            case 2: rows8_packed_q8_0<2>(n / QK8_0, o, bs, x, h, y, by, first); break;
            case 3: rows8_packed_q8_0<3>(n / QK8_0, o, bs, x, h, y, by, first); break;
            default: rows8_packed_q8_0<4>(n / QK8_0, o, bs, x, h, y, by, first); break;
            }
        }
}
void vec_dot_rows_packed_f16(int64_t n, float *s, size_t bs, const void *x, size_t, const void *y, size_t by, int nc) {
    rows_packed<rows8_packed_f16<1>, rows8_packed_f16<2>, rows8_packed_f16<3>, rows8_packed_f16<4>>(n, s, bs, x, y, by,
                                                                                                    nc);
}

// ---- packed q4_K / q5_K groups: 8 rows a pass, up to 4 columns a call ----
//
// As quant_avx512.cpp's rows_packed_k4_n (exact integer sums per row and super-block, then
// super_block_k4's float operations lane by lane: vec_dot_q4_K's very bits), without VNNI:
// a sub-block's vpmaddubsw products add up in int16 (8 pairs of q4 <= 15 * 127: <= 30480;
// q5's 31 allows 4 pairs), and vpmaddwd against the scale in both 16-bit halves of each
// row's lane widens them scaled. Rows h..h+7 of a chunk are its 32 bytes at 4h.
template <int C, bool Q5>
void rows8_packed_k4(int64_t nb, float *s, size_t bs, const uint8_t *x, int h, const uint8_t *vy, size_t by) {
    using block = typename std::conditional<Q5, block_q5_K, block_q4_K>::type;
    const block_q8_K *y[C];
    for (int c = 0; c < C; c++) {
        y[c] = (const block_q8_K *)(vy + c * by);
        _mm256_storeu_ps(s + c * bs, _mm256_setzero_ps());
    }
    const __m256i m4 = _mm256_set1_epi8(0x0f), m6 = _mm256_set1_epi8(0x3f), m2 = _mm256_set1_epi8(0x03);
    const __m256i b4 = _mm256_set1_epi8(0x10), byte0 = _mm256_set1_epi32(0xff);
    auto dup16 = [&](__m256i v, int byte) { // byte `byte` of each lane into both 16-bit halves
        const __m256i m = _mm256_and_si256(_mm256_srli_epi32(v, 8 * byte), byte0);
        return _mm256_or_si256(m, _mm256_slli_epi32(m, 16));
    };
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = x + b * kRowBlock * sizeof(block);
        const __m256i s0 = loadu(p + 64 + 4 * h), s1 = loadu(p + 128 + 4 * h), s2 = loadu(p + 192 + 4 * h);
        // quant chunk j (q5_K: qh chunk i < 8, then quant chunk i, then quant chunks 8..31)
        auto qs_at = [p, h](int j) {
            return p + 256 + 4 * h + (!Q5 ? 64 * j : j < 8 ? 128 * j + 64 : 1024 + 64 * (j - 8));
        };
        auto qh_at = [p, h](int i) { return p + 256 + 4 * h + 128 * i; };
        const __m256i sc_lo = _mm256_and_si256(s0, m6);
        const __m256i sc_hi = _mm256_or_si256(_mm256_and_si256(s2, m4),
                                              _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(s0, 6), m2), 4));
        __m256i sumi[C];
        for (int c = 0; c < C; c++) sumi[c] = _mm256_setzero_si256();
        for (int ch = 0; ch < 4; ch++)
            for (int half = 0; half < 2; half++) { // sub-block 2 ch + half
                const __m256i sc16 = dup16(ch < 2 ? sc_lo : sc_hi, 2 * (ch & 1) + half);
                const int bit = 2 * ch + half; // of each qh byte, to bit 4
                __m256i w[8];
                for (int i = 0; i < 8; i++) {
                    const __m256i q = loadu(qs_at(8 * ch + i));
                    w[i] = _mm256_and_si256(half ? _mm256_srli_epi16(q, 4) : q, m4);
                    if (Q5) {
                        const __m256i hb = loadu(qh_at(i));
                        const __m256i at4 = bit <= 4 ? _mm256_slli_epi16(hb, 4 - bit) : _mm256_srli_epi16(hb, bit - 4);
                        w[i] = _mm256_or_si256(w[i], _mm256_and_si256(at4, b4));
                    }
                }
                for (int c = 0; c < C; c++) {
                    const int8_t *yq = y[c][b].qs + 64 * ch + 32 * half;
                    for (int i0 = 0; i0 < 8; i0 += Q5 ? 4 : 8) {
                        __m256i s16 = _mm256_maddubs_epi16(w[i0], bcast4(yq + 4 * i0));
                        for (int i = i0 + 1; i < i0 + (Q5 ? 4 : 8); i++)
                            s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(w[i], bcast4(yq + 4 * i)));
                        sumi[c] = _mm256_add_epi32(sumi[c], _mm256_madd_epi16(s16, sc16));
                    }
                }
            }
        const __m256i mn_lo = _mm256_and_si256(s1, m6);
        const __m256i mn_hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(s2, 4), m4),
                                              _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(s1, 6), m2), 4));
        __m256i summ[C];
        for (int c = 0; c < C; c++) summ[c] = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            const __m256i mdup = dup16(j < 4 ? mn_lo : mn_hi, j & 3);
            for (int c = 0; c < C; c++)
                summ[c] =
                    _mm256_add_epi32(summ[c], _mm256_madd_epi16(mdup, bcast4((const int8_t *)(y[c][b].bsums + 2 * j))));
        }
        const __m256 dx = _mm256_cvtph_ps(loadu128(p + 2 * h)), dmx = _mm256_cvtph_ps(loadu128(p + 32 + 2 * h));
        for (int c = 0; c < C; c++) {
            const __m256 dy = _mm256_set1_ps(y[c][b].d);
            const __m256 part = _mm256_sub_ps(_mm256_mul_ps(_mm256_mul_ps(dx, dy), _mm256_cvtepi32_ps(sumi[c])),
                                              _mm256_mul_ps(_mm256_mul_ps(dmx, dy), _mm256_cvtepi32_ps(summ[c])));
            _mm256_storeu_ps(s + c * bs, _mm256_add_ps(_mm256_loadu_ps(s + c * bs), part));
        }
    }
}

template <bool Q5>
void vec_dot_rows_packed_k4(int64_t n, float *s, size_t bs, const void *x, size_t, const void *y, size_t by, int nc) {
    rows_packed<rows8_packed_k4<1, Q5>, rows8_packed_k4<2, Q5>, rows8_packed_k4<3, Q5>, rows8_packed_k4<4, Q5>>(
        n / QK_K, s, bs, x, y, by, nc);
}

// ---- packed q6_K groups: 8 rows a pass, up to 4 columns a call ----
//
// As quant_avx512.cpp's rows_packed_q6_K_n (the same chunks, scale pairs and exact sums),
// without VNNI: vpmaddubsw pairs of a 6-bit quant by an activation (<= 2 * 63 * 127) add up
// two at a time in int16, then vpmaddwd against the sub-block's scale in both halves of
// each row's lane.
// a group's record without d (the d of its super-blocks follow the last record)
constexpr size_t kQ6Record = kRowBlock * (sizeof(block_q6_K) - sizeof(fp16_t));

template <int C>
void rows8_packed_q6_K(int64_t nb, float *s, size_t bs, const uint8_t *x, int h8, const uint8_t *vy, size_t by) {
    const block_q8_K *y[C];
    for (int c = 0; c < C; c++) {
        y[c] = (const block_q8_K *)(vy + c * by);
        _mm256_storeu_ps(s + c * bs, _mm256_setzero_ps());
    }
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x30);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = x + b * kQ6Record;
        const uint8_t *scp = p + 4 * h8;
        auto pair = [&](int t, int hi) {
            const __m256i v = loadu(scp + 64 * t);
            return hi ? _mm256_srai_epi16(v, 8) : _mm256_srai_epi16(_mm256_slli_epi16(v, 8), 8);
        };
        __m256i sumi[C];
        for (int c = 0; c < C; c++) {
            __m256i off = _mm256_setzero_si256();
            for (int t = 0; t < 4; t++) {
                off = _mm256_add_epi32(off,
                                       _mm256_madd_epi16(pair(t, 0), bcast4((const int8_t *)(y[c][b].bsums + 4 * t))));
                off = _mm256_add_epi32(
                    off, _mm256_madd_epi16(pair(t, 1), bcast4((const int8_t *)(y[c][b].bsums + 4 * t + 2))));
            }
            sumi[c] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
        }
        for (int h = 0; h < 2; h++)
            for (int sb = 0; sb < 2; sb++)
                for (int g = 0; g < 4; g++) { // sub-block 8h + 2g + sb
                    __m256i w[4];
                    for (int i = 0; i < 4; i++) {
                        const uint8_t *abh = p + 256 + 192 * (4 * (2 * h + sb) + i) + 4 * h8; // A, B, H in a row
                        const __m256i q = loadu(abh + 64 * (g & 1)), hb = loadu(abh + 128);
                        const __m256i nib = _mm256_and_si256(g < 2 ? q : _mm256_srli_epi16(q, 4), m4);
                        const __m256i hi2 = g == 0   ? _mm256_slli_epi16(hb, 4)
                                            : g == 1 ? _mm256_slli_epi16(hb, 2)
                                            : g == 2 ? hb
                                                     : _mm256_srli_epi16(hb, 2);
                        w[i] = _mm256_or_si256(nib, _mm256_and_si256(hi2, m2));
                    }
                    const __m256i pr = pair(2 * h + g / 2, g % 2);
                    const __m256i sc =
                        sb ? _mm256_srai_epi32(pr, 16) : _mm256_srai_epi32(_mm256_slli_epi32(pr, 16), 16);
                    const __m256i sc16 =
                        _mm256_or_si256(_mm256_and_si256(sc, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(sc, 16));
                    for (int c = 0; c < C; c++) {
                        const int8_t *yq = y[c][b].qs + 128 * h + 32 * g + 16 * sb;
                        const __m256i s01 = _mm256_add_epi16(_mm256_maddubs_epi16(w[0], bcast4(yq)),
                                                             _mm256_maddubs_epi16(w[1], bcast4(yq + 4)));
                        const __m256i s23 = _mm256_add_epi16(_mm256_maddubs_epi16(w[2], bcast4(yq + 8)),
                                                             _mm256_maddubs_epi16(w[3], bcast4(yq + 12)));
                        sumi[c] = _mm256_add_epi32(
                            sumi[c], _mm256_add_epi32(_mm256_madd_epi16(s01, sc16), _mm256_madd_epi16(s23, sc16)));
                    }
                }
        const __m256 dx = _mm256_cvtph_ps(loadu128(x + nb * kQ6Record + 32 * b + 2 * h8));
        for (int c = 0; c < C; c++) {
            const __m256 part =
                _mm256_mul_ps(_mm256_mul_ps(dx, _mm256_set1_ps(y[c][b].d)), _mm256_cvtepi32_ps(sumi[c]));
            _mm256_storeu_ps(s + c * bs, _mm256_add_ps(_mm256_loadu_ps(s + c * bs), part));
        }
    }
}

void vec_dot_rows_packed_q6_K(int64_t n, float *s, size_t bs, const void *x, size_t, const void *y, size_t by, int nc) {
    rows_packed<rows8_packed_q6_K<1>, rows8_packed_q6_K<2>, rows8_packed_q6_K<3>, rows8_packed_q6_K<4>>(n / QK_K, s, bs,
                                                                                                        x, y, by, nc);
}

// ---- weighted sums of rows (attention's probabilities times V) ----
//
// As the AVX-512 kernels: the output's registers for up to 4 weight vectors held while the
// rows go by in order (as many as the 16 registers allow), each row read once for all of
// them, the row kPrefetchRows on asked for ahead.
constexpr int64_t kPrefetchRows = 16;

template <int NW, int NV, bool F16> void weighted_chunk(float *out, size_t out_stride, const uint8_t *rows,
                                                        size_t stride, const float *w, size_t w_stride,
                                                        int64_t n_rows) {
    constexpr size_t bytes = NV * 8 * (F16 ? 2 : 4);
    __m256 acc[NW][NV];
    for (int j = 0; j < NW; j++)
        for (int v = 0; v < NV; v++) acc[j][v] = _mm256_setzero_ps();
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *x = rows + r * stride;
        if (r + kPrefetchRows < n_rows) prefetch_record(x, bytes, kPrefetchRows * stride);
        __m256 wr[NW];
        for (int j = 0; j < NW; j++) wr[j] = _mm256_set1_ps(w[j * w_stride + r]);
#pragma GCC unroll 12
        for (int v = 0; v < NV; v++) {
            const __m256 xv = F16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + 16 * v)))
                                  : _mm256_loadu_ps((const float *)(x + 32 * v));
            for (int j = 0; j < NW; j++) acc[j][v] = _mm256_fmadd_ps(xv, wr[j], acc[j][v]);
        }
    }
    for (int j = 0; j < NW; j++)
        for (int v = 0; v < NV; v++) _mm256_storeu_ps(out + j * out_stride + 8 * v, acc[j][v]);
}

// the registers of each output a pass holds: as many as fit beside the weights and the row's
template <int NW> constexpr int max_vectors() { return NW == 1 ? 12 : NW == 2 ? 6 : NW == 3 ? 4 : 3; }

template <int NW, bool F16> void weighted_group(int64_t n, float *out, size_t out_stride, const uint8_t *rows,
                                                size_t stride, const float *w, size_t w_stride, int64_t n_rows) {
    constexpr size_t eb = F16 ? 2 : 4;
    int64_t d = 0;
    while (n - d >= 8) {
        const int64_t nv = std::min<int64_t>(max_vectors<NW>(), (n - d) / 8);
        const uint8_t *x = rows + d * eb;
        float *o = out + d;
        switch (nv) {
        case 1:
            if constexpr (1 <= max_vectors<NW>())
                weighted_chunk<NW, 1, F16>(o, out_stride, x, stride, w, w_stride, n_rows);
            break;
        case 2:
            if constexpr (2 <= max_vectors<NW>())
                weighted_chunk<NW, 2, F16>(o, out_stride, x, stride, w, w_stride, n_rows);
            break;
        case 3:
            if constexpr (3 <= max_vectors<NW>())
                weighted_chunk<NW, 3, F16>(o, out_stride, x, stride, w, w_stride, n_rows);
            break;
        case 4:
            if constexpr (4 <= max_vectors<NW>())
                weighted_chunk<NW, 4, F16>(o, out_stride, x, stride, w, w_stride, n_rows);
            break;
        case 5:
            if constexpr (5 <= max_vectors<NW>())
                weighted_chunk<NW, 5, F16>(o, out_stride, x, stride, w, w_stride, n_rows);
            break;
        case 6:
            if constexpr (6 <= max_vectors<NW>())
                weighted_chunk<NW, 6, F16>(o, out_stride, x, stride, w, w_stride, n_rows);
            break;
        case 7:
            if constexpr (7 <= max_vectors<NW>())
                weighted_chunk<NW, 7, F16>(o, out_stride, x, stride, w, w_stride, n_rows);
            break;
        case 8:
            if constexpr (8 <= max_vectors<NW>())
                weighted_chunk<NW, 8, F16>(o, out_stride, x, stride, w, w_stride, n_rows);
            break;
        case 9:
            if constexpr (9 <= max_vectors<NW>())
                weighted_chunk<NW, 9, F16>(o, out_stride, x, stride, w, w_stride, n_rows);
            break;
        case 10:
            if constexpr (10 <= max_vectors<NW>())
                weighted_chunk<NW, 10, F16>(o, out_stride, x, stride, w, w_stride, n_rows);
            break;
        case 11:
            if constexpr (11 <= max_vectors<NW>())
                weighted_chunk<NW, 11, F16>(o, out_stride, x, stride, w, w_stride, n_rows);
            break;
        default: weighted_chunk<NW, max_vectors<NW>(), F16>(o, out_stride, x, stride, w, w_stride, n_rows); break;
        }
        d += nv * 8;
    }
    for (; d < n; d++) // a head_dim that is not a multiple of 8: the last values one by one
        for (int j = 0; j < NW; j++) {
            float s = 0;
            for (int64_t r = 0; r < n_rows; r++) {
                const uint8_t *x = rows + r * stride + d * eb;
                s += w[j * w_stride + r] * (F16 ? _cvtsh_ss(*(const uint16_t *)x) : *(const float *)x);
            }
            out[j * out_stride + d] = s;
        }
}

template <bool F16> void weighted_rows(int64_t n, float *out, size_t out_stride, const void *vrows, size_t stride,
                                       const float *w, size_t w_stride, int n_w, int64_t n_rows) {
    const uint8_t *rows = static_cast<const uint8_t *>(vrows);
    for (int j = 0; j < n_w; j += 4) { // four weight vectors a pass over the rows
        float *o = out + j * out_stride;
        const float *wj = w + j * w_stride;
        switch (std::min(4, n_w - j)) {
        case 1: weighted_group<1, F16>(n, o, out_stride, rows, stride, wj, w_stride, n_rows); break;
        case 2: weighted_group<2, F16>(n, o, out_stride, rows, stride, wj, w_stride, n_rows); break;
        case 3: weighted_group<3, F16>(n, o, out_stride, rows, stride, wj, w_stride, n_rows); break;
        default: weighted_group<4, F16>(n, o, out_stride, rows, stride, wj, w_stride, n_rows); break;
        }
    }
}

// q8_0 rows (a q8_0 KV cache's V), as the AVX-512 kernel: each block's values widened and
// scaled by its d once for the weight vectors, one FMA per weight vector. A block is four
// registers here, so a pass holds one or two weight vectors (NB blocks of one, one of two).
template <int NW, int NB> void weighted_chunk_q8_0(float *out, size_t out_stride, const uint8_t *rows, size_t stride,
                                                   const float *w, size_t w_stride, int64_t n_rows) {
    __m256 acc[NW][4 * NB];
    for (int j = 0; j < NW; j++)
        for (int v = 0; v < 4 * NB; v++) acc[j][v] = _mm256_setzero_ps();
    for (int64_t r = 0; r < n_rows; r++) {
        const block_q8_0 *x = reinterpret_cast<const block_q8_0 *>(rows + r * stride);
        if (r + kPrefetchRows < n_rows)
            prefetch_record((const uint8_t *)x, NB * sizeof(block_q8_0), kPrefetchRows * stride);
        __m256 wr[NW];
        for (int j = 0; j < NW; j++) wr[j] = _mm256_set1_ps(w[j * w_stride + r]);
#pragma GCC unroll 3
        for (int b = 0; b < NB; b++) {
            const __m256 d = _mm256_set1_ps(h2f(x[b].d));
#pragma GCC unroll 4
            for (int h = 0; h < 4; h++) {
                const __m128i q = _mm_loadl_epi64((const __m128i *)(x[b].qs + 8 * h));
                const __m256 xv = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d);
                for (int j = 0; j < NW; j++) acc[j][4 * b + h] = _mm256_fmadd_ps(xv, wr[j], acc[j][4 * b + h]);
            }
        }
    }
    for (int j = 0; j < NW; j++)
        for (int v = 0; v < 4 * NB; v++) _mm256_storeu_ps(out + j * out_stride + 8 * v, acc[j][v]);
}

void weighted_rows_q8_0(int64_t n, float *out, size_t out_stride, const void *vrows, size_t stride, const float *w,
                        size_t w_stride, int n_w, int64_t n_rows) {
    const uint8_t *rows = static_cast<const uint8_t *>(vrows);
    const int64_t nb = n / QK8_0;
    for (int j = 0; j < n_w; j += 2) {
        float *o = out + j * out_stride;
        const float *wj = w + j * w_stride;
        if (n_w - j >= 2) {
            for (int64_t b = 0; b < nb; b++)
                weighted_chunk_q8_0<2, 1>(o + b * QK8_0, out_stride, rows + b * sizeof(block_q8_0), stride, wj,
                                          w_stride, n_rows);
            continue;
        }
        for (int64_t b = 0; b < nb;) {
            const uint8_t *x = rows + b * sizeof(block_q8_0);
            float *ob = o + b * QK8_0;
            switch (std::min<int64_t>(3, nb - b)) {
            case 1: weighted_chunk_q8_0<1, 1>(ob, out_stride, x, stride, wj, w_stride, n_rows), b += 1; break;
            case 2: weighted_chunk_q8_0<1, 2>(ob, out_stride, x, stride, wj, w_stride, n_rows), b += 2; break;
            default: weighted_chunk_q8_0<1, 3>(ob, out_stride, x, stride, wj, w_stride, n_rows), b += 3; break;
            }
        }
    }
}

constexpr kernel_table make_table() {
    kernel_table t{};
    t.vec_dot[HG_TYPE_F32] = vec_dot_f32;
    t.vec_dot[HG_TYPE_F16] = vec_dot_f16;
    t.vec_dot[HG_TYPE_BF16] = vec_dot_bf16;
    t.vec_dot[HG_TYPE_Q8_0] = vec_dot_q8_0;
    t.vec_dot[HG_TYPE_Q4_0] = vec_dot_q4_0;
    t.vec_dot[HG_TYPE_Q4_1] = vec_dot_q4_1;
    t.vec_dot[HG_TYPE_Q5_0] = vec_dot_q5_0;
    t.vec_dot[HG_TYPE_Q5_1] = vec_dot_q5_1;
    t.vec_dot[HG_TYPE_Q4_K] = vec_dot_q4_K;
    t.vec_dot[HG_TYPE_Q5_K] = vec_dot_q5_K;
    t.vec_dot[HG_TYPE_Q6_K] = vec_dot_q6_K;
    t.vec_dot_rows[HG_TYPE_Q4_0] = vec_dot_rows_q4_0<false>;
    t.vec_dot_rows_packed[HG_TYPE_Q4_0] = vec_dot_rows_q4_0<true>;
    t.vec_dot_rows_packed[HG_TYPE_Q8_0] = vec_dot_rows_packed_q8_0;
    t.vec_dot_rows_packed[HG_TYPE_F16] = vec_dot_rows_packed_f16;
    t.vec_dot_rows_packed[HG_TYPE_Q4_K] = vec_dot_rows_packed_k4<false>;
    t.vec_dot_rows_packed[HG_TYPE_Q5_K] = vec_dot_rows_packed_k4<true>;
    t.vec_dot_rows_packed[HG_TYPE_Q6_K] = vec_dot_rows_packed_q6_K;
    t.from_float[HG_TYPE_Q8_0] = quantize_q8_0;
    t.from_float[HG_TYPE_Q8_1] = quantize_q8_1;
    t.from_float[HG_TYPE_Q8_K] = quantize_q8_K;
    t.from_float[HG_TYPE_F16] = quantize_f16;
    t.from_float[HG_TYPE_BF16] = quantize_bf16;
    t.weighted_rows[HG_TYPE_F32] = weighted_rows<false>;
    t.weighted_rows[HG_TYPE_F16] = weighted_rows<true>;
    t.weighted_rows[HG_TYPE_Q8_0] = weighted_rows_q8_0;
    return t;
}

} // namespace

// Constant-initialized (no code runs to build it) and guarded by cpuid, so asking for the
// table on a processor without AVX2 is safe and yields nulls.
const kernel_table &kernels_avx2() {
    static constexpr kernel_table t = make_table();
    static constexpr kernel_table none{};
    __builtin_cpu_init();
    const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    return ok ? t : none;
}

#else // no AVX2 at compile time: every entry null, the dispatcher falls back

const kernel_table &kernels_avx2() {
    static constexpr kernel_table none{};
    return none;
}

#endif

} // namespace hg
