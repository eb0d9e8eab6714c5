// AVX-512 kernels (F, BW, VL, DQ, VNNI, BF16). Only kernels measured faster than their
// AVX2 counterpart are in the table; null entries fall back to AVX2 (the dispatcher fills
// them). The measurements are above make_table() below; test_simd prints them afresh.
//
// VNNI's vpdpbusd (u8 x s8, four products summed into int32, no saturation) replaces AVX2's
// vpmaddubsw + vpmaddwd pair, and vpdpwssd (s16 x s16 pairs into int32) replaces vpmaddwd +
// vpaddd where a sub-block scale is applied. vdpbf16ps does bf16 pairs straight into f32.
//
// This file is compiled with the AVX-512 flags on x86-64; elsewhere it is an empty table.
#include "quant/quant.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "quant/blocks.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__) &&                 \
    defined(__AVX512VNNI__) && defined(__AVX512BF16__) && defined(__FMA__) && defined(__F16C__)
#define HG_HAVE_AVX512_KERNELS 1
// GCC 12's AVX-512 headers initialize their "undefined" vectors from themselves, which
// -Wall reports at every inlined use (GCC bug 105593); the warning is the header's, not ours.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#include "quant/prefetch.h" // after the intrinsics (and their warnings' guard)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

namespace hg {

#if defined(HG_HAVE_AVX512_KERNELS)
namespace {

inline float h2f(fp16_t h) { return _cvtsh_ss(h); }
inline __m256i loadu(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
inline __m128i loadu128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }
inline __m512i loadu512(const void *p) { return _mm512_loadu_si512(p); }
// two 32-byte pieces (of consecutive, unaligned blocks) in one register
inline __m512i load2x256(const void *lo, const void *hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(loadu(lo)), loadu(hi), 1);
}
// d_x * d_y of four consecutive blocks with one conversion each, spread for the two
// registers that hold blocks (0, 1) and (2, 3): [s0 x 8, s1 x 8] and [s2 x 8, s3 x 8].
template <class BX, class BY> inline void scales4(const BX *x, const BY *y, __m512 &s01, __m512 &s23) {
    const __m128i xd = _mm_setr_epi16((short)x[0].d, (short)x[1].d, (short)x[2].d, (short)x[3].d, 0, 0, 0, 0);
    const __m128i yd = _mm_setr_epi16((short)y[0].d, (short)y[1].d, (short)y[2].d, (short)y[3].d, 0, 0, 0, 0);
    const __m512 d4 = _mm512_castps128_ps512(_mm_mul_ps(_mm_cvtph_ps(xd), _mm_cvtph_ps(yd)));
    s01 = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), d4);
    s23 = _mm512_permutexvar_ps(_mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3), d4);
}
inline float hsum(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
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
inline float hsum(__m128 a) {
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

// ---- float dots: 16 lanes, masked tails instead of scalar loops ----

void vec_dot_f32(int64_t n, float *s, const void *vx, const void *vy) {
    const float *x = (const float *)vx, *y = (const float *)vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    if (i < n) {
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, y + i), a1);
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

inline __m512 load_f16x16(const fp16_t *p) { return _mm512_cvtph_ps(loadu(p)); }

// f16 weights x f32 activations (the activations are never rounded to f16)
void vec_dot_f16(int64_t n, float *s, const void *vx, const void *vy) {
    const fp16_t *x = (const fp16_t *)vx;
    const float *y = (const float *)vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(load_f16x16(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(load_f16x16(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(load_f16x16(x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(load_f16x16(x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(load_f16x16(x + i), _mm512_loadu_ps(y + i), a0);
    if (i < n) {
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, x + i)), _mm512_maskz_loadu_ps(k, y + i), a1);
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

// vdpbf16ps: 32 bf16 pairs per instruction. It flushes subnormal operands and results to
// zero (no MXCSR control), a difference below FLT_MIN per product.
inline __m512bh as_bh(__m512i v) { return (__m512bh)v; }

void vec_dot_bf16(int64_t n, float *s, const void *vx, const void *vy) {
    const bf16_t *x = (const bf16_t *)vx, *y = (const bf16_t *)vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 128 <= n; i += 128) {
        a0 = _mm512_dpbf16_ps(a0, as_bh(loadu512(x + i)), as_bh(loadu512(y + i)));
        a1 = _mm512_dpbf16_ps(a1, as_bh(loadu512(x + i + 32)), as_bh(loadu512(y + i + 32)));
        a2 = _mm512_dpbf16_ps(a2, as_bh(loadu512(x + i + 64)), as_bh(loadu512(y + i + 64)));
        a3 = _mm512_dpbf16_ps(a3, as_bh(loadu512(x + i + 96)), as_bh(loadu512(y + i + 96)));
    }
    for (; i + 32 <= n; i += 32) a0 = _mm512_dpbf16_ps(a0, as_bh(loadu512(x + i)), as_bh(loadu512(y + i)));
    if (i < n) {
        const __mmask32 k = (__mmask32)((1ull << (n - i)) - 1);
        a1 = _mm512_dpbf16_ps(a1, as_bh(_mm512_maskz_loadu_epi16(k, x + i)), as_bh(_mm512_maskz_loadu_epi16(k, y + i)));
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

// ---- 32-element blocks, two per 512-bit register ----

// signed x signed bytes: |a| as unsigned, b negated where a < 0 (AVX-512 has no vpsignb),
// summed in fours by vpdpbusd. Exact for any int8 a (|-128| reads as unsigned 128) and b in
// -127..127, which is all the activation quantizers produce.
inline __m512i dot_s8s8(__m512i a, __m512i b) {
    const __m512i nb = _mm512_mask_sub_epi8(b, _mm512_movepi8_mask(a), _mm512_setzero_si512(), b);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(a), nb);
}

void vec_dot_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q8_0 *x = (const block_q8_0 *)vx;
    const block_q8_0 *y = (const block_q8_0 *)vy;
    const int64_t nb = n / QK8_0;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const __m512i p0 = dot_s8s8(load2x256(x[i].qs, x[i + 1].qs), load2x256(y[i].qs, y[i + 1].qs));
        const __m512i p1 = dot_s8s8(load2x256(x[i + 2].qs, x[i + 3].qs), load2x256(y[i + 2].qs, y[i + 3].qs));
        __m512 s01, s23;
        scales4(x + i, y + i, s01, s23);
        a0 = _mm512_fmadd_ps(s01, _mm512_cvtepi32_ps(p0), a0);
        a1 = _mm512_fmadd_ps(s23, _mm512_cvtepi32_ps(p1), a1);
    }
    __m256 t = _mm256_setzero_ps();
    for (; i < nb; ++i) {
        const __m256i xv = loadu(x[i].qs);
        const __m256i p =
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(xv, xv), _mm256_sign_epi8(loadu(y[i].qs), xv));
        t = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p), t);
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) + hsum(t);
}

// Two q4_0 blocks' 16-byte quant arrays -> 64 unsigned nibbles in y's element order:
// [lo(A), hi(A), lo(B), hi(B)] by 128-bit lanes.
inline __m512i q4_0_pair(const block_q4_0 &a, const block_q4_0 &b) {
    const __m256i ab = _mm256_inserti128_si256(_mm256_castsi128_si256(loadu128(a.qs)), loadu128(b.qs), 1);
    const __m512i v = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3), _mm512_castsi256_si512(ab));
    const __m512i sh = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4);
    return _mm512_and_si512(_mm512_srlv_epi64(v, sh), _mm512_set1_epi8(0x0f));
}

// sum (q - 8) * y = sum q * y - 8 * sum y: both by vpdpbusd on the unsigned nibbles.
void vec_dot_q4_0(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_0 *x = (const block_q4_0 *)vx;
    const block_q8_0 *y = (const block_q8_0 *)vy;
    const int64_t nb = n / QK4_0;
    const __m512i eight = _mm512_set1_epi8(8);
    const __m512i zero = _mm512_setzero_si512();
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const __m512i y0 = load2x256(y[i].qs, y[i + 1].qs), y1 = load2x256(y[i + 2].qs, y[i + 3].qs);
        const __m512i p0 = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, q4_0_pair(x[i], x[i + 1]), y0),
                                            _mm512_dpbusd_epi32(zero, eight, y0));
        const __m512i p1 = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, q4_0_pair(x[i + 2], x[i + 3]), y1),
                                            _mm512_dpbusd_epi32(zero, eight, y1));
        __m512 s01, s23;
        scales4(x + i, y + i, s01, s23);
        a0 = _mm512_fmadd_ps(s01, _mm512_cvtepi32_ps(p0), a0);
        a1 = _mm512_fmadd_ps(s23, _mm512_cvtepi32_ps(p1), a1);
    }
    __m256 t = _mm256_setzero_ps();
    for (; i < nb; ++i) {
        const __m128i b = loadu128(x[i].qs);
        const __m256i q = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(b), _mm_srli_epi16(b, 4), 1),
                                           _mm256_set1_epi8(0x0f));
        const __m256i yv = loadu(y[i].qs);
        const __m256i p = _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), q, yv),
                                           _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), yv));
        t = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p), t);
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) + hsum(t);
}

// ---- tile kernels: kDotTileRows weight rows x kDotTileCols activation columns ----
//
// Every weight pair of blocks is made unsigned once per row (q4_0: the nibble q = x + 8;
// q8_0: x ^ 0x80 = x + 128) and every activation pair loaded once per column, so each of
// the rows x columns products is one vpdpbusd, started from -bias * sum(y) of its column
// (computed once per column): sum (x + bias) y - bias sum y = sum x y, exact in int32.
// Then one conversion and one multiply-add by d_x d_y per product, in 16 registers.

// [d0 x 8, d1 x 8] from two consecutive blocks in memory, W = the block's size in 16-bit
// words: one masked load of the 36 bytes that hold both d fields (lm = 0x3 for a lone last
// block: its partner's lanes read 0), vpermw, vcvtph2ps
template <int W> inline __m512 pair_scale_at(const void *p, __mmask64 lm) {
    constexpr int w2 = W * 0x10001; // word W in both halves of a dword
    const __m512i raw = _mm512_maskz_loadu_epi8(lm, p);
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, w2, w2, w2, w2, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(idx, raw)));
}

struct tile_q4_0 {
    using block = block_q4_0;
    static constexpr char bias = 8;
    static __m512i get(const block &a, const block &b) { return q4_0_pair(a, b); }
};
struct tile_q8_0 {
    using block = block_q8_0;
    static constexpr char bias = (char)0x80;
    static __m512i get(const block &a, const block &b) {
        return _mm512_xor_si512(load2x256(a.qs, b.qs), _mm512_set1_epi8((char)0x80));
    }
};

// f16 weights x f32 activations, kDotTileRows x kDotTileCols: each weight vector is widened
// once for the tile's columns and each activation vector loaded once for its rows, so the
// loop is FMA-bound instead of load-bound (the prefill of f16 models, CLIP and the H-LoRA
// adapters; one dot at a time reads two vectors per FMA)
void vec_dot_tile_f16(int64_t n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by) {
    constexpr int R = kDotTileRows, C = kDotTileCols;
    const fp16_t *x[R];
    const float *y[C];
    for (int r = 0; r < R; r++) x[r] = (const fp16_t *)((const uint8_t *)vx + r * bx);
    for (int c = 0; c < C; c++) y[c] = (const float *)((const uint8_t *)vy + c * by);
    __m512 acc[R][C];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 w[R];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) w[r] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, x[r] + i));
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            const __m512 a = _mm512_maskz_loadu_ps(k, y[c] + i);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][c] = _mm512_fmadd_ps(w[r], a, acc[r][c]);
        }
    }
    for (int c = 0; c < C; c++)
        for (int r = 0; r < R; r++) s[c * bs + r] = _mm512_reduce_add_ps(acc[r][c]);
}

template <class T, int R = kDotTileRows, int C = kDotTileCols>
void vec_dot_tile(int64_t n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by) {
    using BX = typename T::block;
    const int64_t nb = n / QK8_0;
    const __m512i bias = _mm512_set1_epi8(T::bias);
    const __m512i zero = _mm512_setzero_si512();
    const BX *x[R];
    const block_q8_0 *y[C];
    for (int r = 0; r < R; r++) x[r] = (const BX *)((const uint8_t *)vx + r * bx);
    for (int c = 0; c < C; c++) y[c] = (const block_q8_0 *)((const uint8_t *)vy + c * by);
    __m512 acc[R][C];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
    // blocks i and i + 1; for an odd last block, i twice, its copy's scale lanes zero
    for (int64_t i = 0; i < nb; i += 2) {
        const bool two = i + 1 < nb;
        const int64_t j = two ? i + 1 : i;
        const __mmask64 lm = two ? (__mmask64)0xfffffffffull : (__mmask64)0x3;
        __m512i q[R];
        __m512 dx[R];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            q[r] = T::get(x[r][i], x[r][j]);
            dx[r] = pair_scale_at<sizeof(BX) / 2>(&x[r][i], lm);
        }
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            const __m512i yv = load2x256(y[c][i].qs, y[c][j].qs);
            const __m512i off = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, bias, yv));
            const __m512 dy = pair_scale_at<sizeof(block_q8_0) / 2>(&y[c][i], lm);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                const __m512i p = _mm512_dpbusd_epi32(off, q[r], yv);
                acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(dx[r], dy), _mm512_cvtepi32_ps(p), acc[r][c]);
            }
        }
    }
    for (int c = 0; c < C; c++)
        for (int r = 0; r < R; r++) s[c * bs + r] = _mm512_reduce_add_ps(acc[r][c]);
}

// Four activation bytes broadcast to every lane, straight from memory (a load-port
// broadcast: through a general register it would take the shuffle port vpdpbusd needs).
inline __m512i bcast4(const int8_t *p) {
    return _mm512_castps_si512(_mm512_broadcastss_ps(_mm_load_ss((const float *)p)));
}

// The activation columns of a row-block call: q8_0 rows, each with its q8_0_aux.
template <int C> struct q8_columns {
    const block_q8_0 *y[C];
    const q8_0_aux *a[C];
    q8_columns(const void *vy, size_t by, int64_t n) {
        const size_t aux_at = q8_0_aux_offset(n);
        for (int c = 0; c < C; c++) {
            y[c] = (const block_q8_0 *)((const uint8_t *)vy + c * by);
            a[c] = (const q8_0_aux *)((const uint8_t *)y[c] + aux_at);
        }
    }
};

// ---- row blocks: kRowBlock weight rows x up to kRowBlockCols columns (quant.h) ----
//
// One register holds one dword per row, so a block of 16 rows needs no horizontal sums:
// the rows' 16-byte quant arrays are transposed in registers (4x4 dwords per 128-bit lane)
// into L0..L3, L_j = quant bytes 4j..4j+3 of every row; their low nibbles are elements
// 4j..4j+3 and their high nibbles 16+4j..19+4j. Each is multiplied by the column's matching
// four activation bytes broadcast to all rows (vpdpbusd), starting from -8 * sum(y) of the
// block (the q4_0 offset, exact in int32). The 16 scales come in with one gather. Per block
// that is 8 vpdpbusd and one int->float multiply-add per column for 16 rows, against 1 + 1/2
// per row in vec_dot_q4_0, and the unpacking is shared by the columns.
// Packed groups (quant/repack.h) hold L0..L3 and the 16 scales as they are loaded here, so
// that variant is four 64-byte loads and one 32-byte load per block, in order.
template <int C, bool Packed>
void vec_dot_rows_q4_0_n(int64_t n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by) {
    const int64_t nb = n / QK4_0;
    const uint8_t *x = (const uint8_t *)vx;
    const __m512i rowoff = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              _mm512_set1_epi32((int)bx));
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const q8_columns<C> col(vy, by, n);
    const block_q8_0 *const *y = col.y;
    const q8_0_aux *const *a = col.a;
    __m512 acc[C];
    for (int c = 0; c < C; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i l[4];
        __m512 dx;
        if (Packed) {
            const uint8_t *p = x + b * kRowBlock * sizeof(block_q4_0);
            if (streams_weights(C)) prefetch_weights(p, kRowBlock * sizeof(block_q4_0));
            dx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) l[j] = _mm512_loadu_si512(p + 32 + 64 * j);
        } else {
            const uint8_t *p = x + b * sizeof(block_q4_0);
            const uint8_t *q = p + offsetof(block_q4_0, qs);
            // z[g]: 128-bit lane l = quants of row 4l + g
            __m512i z[4];
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++) {
                __m512i v = _mm512_castsi128_si512(loadu128(q + g * bx));
                v = _mm512_inserti32x4(v, loadu128(q + (4 + g) * bx), 1);
                v = _mm512_inserti32x4(v, loadu128(q + (8 + g) * bx), 2);
                z[g] = _mm512_inserti32x4(v, loadu128(q + (12 + g) * bx), 3);
            }
            const __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
            const __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
            l[0] = _mm512_unpacklo_epi64(t0, t2), l[1] = _mm512_unpackhi_epi64(t0, t2);
            l[2] = _mm512_unpacklo_epi64(t1, t3), l[3] = _mm512_unpackhi_epi64(t1, t3);
            // the d field is the low half of the dword at each row's block start
            dx = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_i32gather_epi32(rowoff, p, 1)));
        }
        __m512i w[8];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            w[j] = _mm512_and_si512(l[j], m4);
            w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(l[j], 4), m4);
        }
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            const int8_t *yq = y[c][b].qs;
            __m512i sum = _mm512_set1_epi32(-8 * a[c][b].sum);
            if (C == 1) {
                // two chains of four, so consecutive vpdpbusd do not wait on each other
                __m512i o = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int j = 0; j < 8; j += 2) {
                    sum = _mm512_dpbusd_epi32(sum, w[j], bcast4(yq + 4 * j));
                    o = _mm512_dpbusd_epi32(o, w[j + 1], bcast4(yq + 4 * (j + 1)));
                }
                sum = _mm512_add_epi32(sum, o);
            } else {
                // the columns' chains interleave
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) sum = _mm512_dpbusd_epi32(sum, w[j], bcast4(yq + 4 * j));
            }
            acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(dx, _mm512_set1_ps(a[c][b].d)), _mm512_cvtepi32_ps(sum), acc[c]);
        }
    }
    for (int c = 0; c < C; c++) _mm512_storeu_ps(s + c * bs, acc[c]);
}

// Calls f(std::integral_constant<int, nc>) for nc = 1..kRowBlockCols: each kernel is
// instantiated, and unrolled, per column count.
template <class F> void for_columns(int nc, F &&f) {
    switch (nc) {
    case 1: return f(std::integral_constant<int, 1>());
    case 2: return f(std::integral_constant<int, 2>());
    case 3: return f(std::integral_constant<int, 3>());
    case 4: return f(std::integral_constant<int, 4>());
    case 5: return f(std::integral_constant<int, 5>());
    case 6: return f(std::integral_constant<int, 6>());
    case 7: return f(std::integral_constant<int, 7>());
    default: return f(std::integral_constant<int, 8>());
    }
}

template <bool Packed>
void vec_dot_rows_q4_0_any(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nc) {
    for_columns(nc, [&](auto c) { vec_dot_rows_q4_0_n<decltype(c)::value, Packed>(n, s, bs, x, bx, y, by); });
}

// ---- plain f16 row blocks: 16 rows at any stride x up to 8 f32 columns ----
//
// For products too short for a call per dot to pay (attention's query against 16 keys of
// head_dim values): four rows at a time, each a chain per column, summed across at the end.
template <int C>
void rows4_f16(int64_t n, float *s, size_t bs, const uint8_t *x, size_t bx, const uint8_t *vy, size_t by) {
    __m512 acc[4][C];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int r = 0; r < 4; r++) {
            const __m512 w = load_f16x16((const fp16_t *)(x + r * bx) + i);
            for (int c = 0; c < C; c++)
                acc[r][c] = _mm512_fmadd_ps(w, _mm512_loadu_ps((const float *)(vy + c * by) + i), acc[r][c]);
        }
    if (i < n) {
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        for (int r = 0; r < 4; r++) {
            const __m512 w = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, (const fp16_t *)(x + r * bx) + i));
            for (int c = 0; c < C; c++)
                acc[r][c] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(k, (const float *)(vy + c * by) + i), acc[r][c]);
        }
    }
    for (int c = 0; c < C; c++)
        for (int r = 0; r < 4; r++) s[c * bs + r] = _mm512_reduce_add_ps(acc[r][c]);
}

void vec_dot_rows_f16(int64_t n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by, int nc) {
    for (int r = 0; r < kRowBlock; r += 4)
        for (int c = 0; c < nc; c += 2) {
            const uint8_t *x = (const uint8_t *)vx + r * bx, *y = (const uint8_t *)vy + c * by;
            if (nc - c == 1)
                rows4_f16<1>(n, s + c * bs + r, bs, x, bx, y, by);
            else
                rows4_f16<2>(n, s + c * bs + r, bs, x, bx, y, by);
        }
}

// ---- packed q8_0 groups (quant/repack.h): 16 rows x up to 8 columns ----
//
// The record's quants are stored + 128, so each chunk L_j is vpdpbusd's unsigned operand
// against the column's four activation bytes 4j..4j+3 broadcast; the offset comes out as
// 128 * sum(y) of the block (the column's q8_0_aux), subtracted up front (exact in int32:
// |sum| <= 32 * 255 * 127 + 128 * 32 * 127).
template <int C> void rows_packed_q8_0_n(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by) {
    const int64_t nb = n / QK8_0;
    const uint8_t *x = (const uint8_t *)vx;
    const q8_columns<C> col(vy, by, n);
    const block_q8_0 *const *y = col.y;
    const q8_0_aux *const *a = col.a;
    __m512 acc[C];
    for (int c = 0; c < C; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = x + b * kRowBlock * sizeof(block_q8_0);
        if (streams_weights(C)) prefetch_weights(p, kRowBlock * sizeof(block_q8_0));
        const __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        __m512i w[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) w[j] = _mm512_loadu_si512(p + 32 + 64 * j);
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            const int8_t *yq = y[c][b].qs;
            __m512i sum = _mm512_set1_epi32(-128 * a[c][b].sum), o = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int j = 0; j < 8; j += 2) {
                sum = _mm512_dpbusd_epi32(sum, w[j], bcast4(yq + 4 * j));
                o = _mm512_dpbusd_epi32(o, w[j + 1], bcast4(yq + 4 * (j + 1)));
            }
            sum = _mm512_add_epi32(sum, o);
            acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(dx, _mm512_set1_ps(a[c][b].d)), _mm512_cvtepi32_ps(sum), acc[c]);
        }
    }
    for (int c = 0; c < C; c++) _mm512_storeu_ps(s + c * bs, acc[c]);
}

// ---- packed f16 groups: element k of the 16 rows is one 32-byte load ----
//
// Against f32 columns: per element, the 16 rows' weights times the column's x[k] broadcast,
// in U chains per column. U is the same for every column count, so a column's sum has the
// same order alone and among others (matmul's exact_columns); two chains keep one column
// (decode) ahead of memory.
template <int C> void rows_packed_f16_n(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by) {
    constexpr int U = 2;
    const fp16_t *x = (const fp16_t *)vx;
    const float *y[C];
    __m512 acc[C][U];
    for (int c = 0; c < C; c++) {
        y[c] = (const float *)((const uint8_t *)vy + c * by);
        for (int u = 0; u < U; u++) acc[c][u] = _mm512_setzero_ps();
    }
    int64_t k = 0;
    for (; k + U <= n; k += U)
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) {
            const __m512 w = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + (k + u) * kRowBlock)));
#pragma GCC unroll 8
            for (int c = 0; c < C; c++) acc[c][u] = _mm512_fmadd_ps(w, _mm512_set1_ps(y[c][k + u]), acc[c][u]);
        }
    for (; k < n; k++) {
        const __m512 w = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + k * kRowBlock)));
        for (int c = 0; c < C; c++) acc[c][0] = _mm512_fmadd_ps(w, _mm512_set1_ps(y[c][k]), acc[c][0]);
    }
    for (int c = 0; c < C; c++) {
        __m512 t = acc[c][0];
        for (int u = 1; u < U; u++) t = _mm512_add_ps(t, acc[c][u]);
        _mm512_storeu_ps(s + c * bs, t);
    }
}

void vec_dot_rows_packed_q8_0(int64_t n, float *s, size_t bs, const void *x, size_t, const void *y, size_t by, int nc) {
    for_columns(nc, [&](auto c) { rows_packed_q8_0_n<decltype(c)::value>(n, s, bs, x, y, by); });
}

void vec_dot_rows_packed_f16(int64_t n, float *s, size_t bs, const void *x, size_t, const void *y, size_t by, int nc) {
    for_columns(nc, [&](auto c) { rows_packed_f16_n<decltype(c)::value>(n, s, bs, x, y, by); });
}

// ---- two packed q4_0 / q8_0 groups (2 * kRowBlock rows) x up to 4 columns ----
//
// The one-group kernels above are bound by their activation broadcasts (one per four bytes of
// a column) more than by vpdpbusd: on Zen 4 a chain of vpdpbusd with a broadcast-from-memory
// operand ran 1.4x slower than without. Here the two groups' rows share each column's four
// bytes (q4_0 1.3x at four columns on Zen 4, one broadcast register feeding both groups; 4%
// more once each vpdpbusd took them as its own {1to16} memory operand, below). The work per
// row is those kernels', in the same order (the int32 sums are exact, then the same
// multiply-add per block), so a row's result is bit for bit the same by either.
// Groups: g0 at x, g1 at x + kRowBlock * bx (bx a plain row's bytes, as matmul passes it).
template <int C, bool Q4> void rows2_packed_n(int64_t n, float *s, size_t bs, const uint8_t *x, size_t bx,
                                              const void *vy, size_t by, bool stream) {
    constexpr size_t record = kRowBlock * (Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0));
    constexpr int offset = Q4 ? -8 : -128; // q4_0's nibbles are q + 8, packed q8_0's bytes q + 128
    // chains per column and group: enough for vpdpbusd's latency at one or two columns
    constexpr int K = C < 3 ? 2 : 1;
    const int64_t nb = n / QK8_0;
    const uint8_t *x1 = x + kRowBlock * bx;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const q8_columns<C> col(vy, by, n);
    __m512 acc[2][C];
    for (int c = 0; c < C; c++) acc[0][c] = acc[1][c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p0 = x + b * record, *p1 = x1 + b * record;
        if (stream) {
            prefetch_weights(p0, record);
            prefetch_weights(p1, record);
        }
        // the 64-byte chunk of 4-byte groups j of the 16 rows
        auto chunk = [&](const uint8_t *p, int j) {
            if (!Q4) return loadu512(p + 32 + 64 * j);
            const __m512i l = loadu512(p + 32 + 64 * (j & 3));
            return _mm512_and_si512(j < 4 ? l : _mm512_srli_epi16(l, 4), m4);
        };
        __m512i sum[2][C][K];
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            sum[0][c][0] = sum[1][c][0] = _mm512_set1_epi32(offset * col.a[c][b].sum);
            if (K > 1) sum[0][c][K - 1] = sum[1][c][K - 1] = _mm512_setzero_si512();
        }
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            const __m512i w0 = chunk(p0, j), w1 = chunk(p1, j);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                // the four bytes broadcast by vpdpbusd's own memory operand ({1to16}), once per
                // group: GCC keeps one broadcast register for both (a separate vbroadcastss),
                // which on Zen 4 ran 4 sequences' decode 4% slower (8: 6%, 2: 1.5%)
                const int32_t *yq = reinterpret_cast<const int32_t *>(col.y[c][b].qs + 4 * j);
                asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(sum[0][c][j % K]) : "v"(w0), "m"(*yq));
                asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(sum[1][c][j % K]) : "v"(w1), "m"(*yq));
            }
        }
        const __m512 dx0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p0));
        const __m512 dx1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p1));
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const __m512 dy = _mm512_set1_ps(col.a[c][b].d);
            const __m512i t0 = K > 1 ? _mm512_add_epi32(sum[0][c][0], sum[0][c][K - 1]) : sum[0][c][0];
            const __m512i t1 = K > 1 ? _mm512_add_epi32(sum[1][c][0], sum[1][c][K - 1]) : sum[1][c][0];
            acc[0][c] = _mm512_fmadd_ps(_mm512_mul_ps(dx0, dy), _mm512_cvtepi32_ps(t0), acc[0][c]);
            acc[1][c] = _mm512_fmadd_ps(_mm512_mul_ps(dx1, dy), _mm512_cvtepi32_ps(t1), acc[1][c]);
        }
    }
    for (int c = 0; c < C; c++) {
        _mm512_storeu_ps(s + c * bs, acc[0][c]);
        _mm512_storeu_ps(s + c * bs + kRowBlock, acc[1][c]);
    }
}

// Up to kRowBlockCols columns, four at a time (more would not fit the registers). One column
// (decode) is bound by the weight stream, which the prefetchers follow better as one stream
// than as two: there the groups go one after the other through the one-group kernel.
template <bool Q4>
void vec_dot_rows2_packed(int64_t n, float *s, size_t bs, const void *vx, size_t bx, const void *y, size_t by, int nc) {
    const uint8_t *x = (const uint8_t *)vx;
    if (nc == 1) {
        for (int g = 0; g < 2; g++) {
            if (Q4)
                vec_dot_rows_q4_0_n<1, true>(n, s + g * kRowBlock, bs, x + g * kRowBlock * bx, bx, y, by);
            else
                rows_packed_q8_0_n<1>(n, s + g * kRowBlock, bs, x + g * kRowBlock * bx, y, by);
        }
        return;
    }
    const bool stream = streams_weights(nc);
    for (int c0 = 0; c0 < nc; c0 += 4) {
        float *sc = s + c0 * bs;
        const uint8_t *yc = (const uint8_t *)y + c0 * by;
        switch (std::min(4, nc - c0)) {
        case 1: rows2_packed_n<1, Q4>(n, sc, bs, x, bx, yc, by, stream); break;
        case 2: rows2_packed_n<2, Q4>(n, sc, bs, x, bx, yc, by, stream); break;
        case 3: rows2_packed_n<3, Q4>(n, sc, bs, x, bx, yc, by, stream); break;
        default: rows2_packed_n<4, Q4>(n, sc, bs, x, bx, yc, by, stream); break;
        }
    }
}

static_assert(kRowBlock == 16 && kRowBlockCols == 8, "vec_dot_rows_q4_0 is written for 16 rows, 1-8 columns");

// ---- k-quants ----

// as in quant_avx2.cpp: 12 packed bytes -> 8 scales, 8 mins
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

// sum over the 8 sub-blocks of mins[j] * (bsums[2j] + bsums[2j+1]), exact
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

// vpermw indices: int16 lane l of 64-element chunk j's scale vector holds scale 2j + (l >= 16)
inline void k4_scale_pick(__m512i pick[4]) {
    const __m512i base =
        _mm512_setr_epi64(0, 0, 0, 0, 0x0001000100010001, 0x0001000100010001, 0x0001000100010001, 0x0001000100010001);
    for (int j = 0; j < 4; ++j) pick[j] = _mm512_add_epi16(base, _mm512_set1_epi16((short)(2 * j)));
}

// q4_K: a 64-element chunk (32 quant bytes: low nibbles = sub-block 2j, high = 2j+1) is one
// 512-bit register against 64 activation bytes. vpmaddubsw (pairs <= 2 * 15 * 127) then
// vpdpwssd with the two sub-block scales as int16 ([sc 2j] x 16 lanes, [sc 2j+1] x 16).
void vec_dot_q4_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_K *x = (const block_q4_K *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    const int64_t nb = n / QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512i pick[4];
    k4_scale_pick(pick);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        uint8_t sc[8], mn[8];
        unpack_scales_k4(x[i].scales, sc, mn);
        const __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc)));

        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m512i sumi = _mm512_setzero_si512();
        for (int j = 0; j < QK_K / 64; ++j) {
            // the 32 bytes twice; the upper copy shifted to its high nibbles
            const __m512i b = _mm512_broadcast_i64x4(loadu(q4 + 32 * j));
            const __m512i q = _mm512_and_si512(_mm512_mask_srli_epi16(b, 0xffff0000u, b, 4), m4);
            const __m512i p = _mm512_maddubs_epi16(q, loadu512(q8 + 64 * j));
            sumi = _mm512_dpwssd_epi32(sumi, p, _mm512_permutexvar_epi16(pick[j], sc16));
        }
        sum += super_block_k4(x[i].d, x[i].dmin, y[i].d, _mm512_reduce_add_epi32(sumi), mins_dot_bsums(mn, y[i].bsums));
    }
    *s = sum;
}

// q5_K: q4_K plus a fifth bit. Chunk j takes bit 2j (low half) and 2j+1 (high half) of each
// qh byte: a 64-bit rotate right by (bit - 4) mod 64 brings bit b of every byte to bit 4 of
// the same byte (a shift would drop the top byte's bits off the lane end); the 0x10 mask
// drops the rest. Pairs of vpmaddubsw are then <= 2 * 31 * 127.
void vec_dot_q5_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_K *x = (const block_q5_K *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    const int64_t nb = n / QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i b4 = _mm512_set1_epi8(0x10);
    const __m512i rot0 = _mm512_setr_epi64(60, 60, 60, 60, 61, 61, 61, 61); // bits 0 / 1: -4 / -3
    const __m512i two = _mm512_set1_epi64(2);
    __m512i pick[4];
    k4_scale_pick(pick);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        uint8_t sc[8], mn[8];
        unpack_scales_k4(x[i].scales, sc, mn);
        const __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc)));

        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        const __m512i qh = _mm512_broadcast_i64x4(loadu(x[i].qh));
        __m512i rot = rot0;
        __m512i sumi = _mm512_setzero_si512();
        for (int j = 0; j < QK_K / 64; ++j) {
            const __m512i b = _mm512_broadcast_i64x4(loadu(q4 + 32 * j));
            const __m512i lo = _mm512_and_si512(_mm512_mask_srli_epi16(b, 0xffff0000u, b, 4), m4);
            const __m512i q = _mm512_or_si512(lo, _mm512_and_si512(_mm512_rorv_epi64(qh, rot), b4));
            rot = _mm512_and_si512(_mm512_add_epi64(rot, two), _mm512_set1_epi64(63));
            const __m512i p = _mm512_maddubs_epi16(q, loadu512(q8 + 64 * j));
            sumi = _mm512_dpwssd_epi32(sumi, p, _mm512_permutexvar_epi16(pick[j], sc16));
        }
        sum += super_block_k4(x[i].d, x[i].dmin, y[i].d, _mm512_reduce_add_epi32(sumi), mins_dot_bsums(mn, y[i].bsums));
    }
    *s = sum;
}

// q6_K, per 128-element half: 64 ql bytes give elements 0..63 (low nibbles) and 64..127
// (high nibbles) in one register each; the 32 qh bytes, doubled, give their top two bits.
// Quants unsigned (0..63) through vpmaddubsw (pairs <= 16002), scales by vpdpwssd, and the
// -32 offset as 32 * sum sc * bsums, reduced to one exact integer per super-block before
// the float scale, as in the AVX2 kernel (the offset's lanes cancel only in the total).
void vec_dot_q6_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q6_K *x = (const block_q6_K *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    const int64_t nb = n / QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i m6 = _mm512_set1_epi8(0x30);
    // element groups 0..63: qh bits 0-1 (lower 256) and 2-3 (upper) to bits 4-5
    const __m512i shl_a = _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2);
    // element groups 64..127: qh bits 4-5 (stay) and 6-7 (right by 2)
    const __m512i shr_b = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);
    // int16 lane l of a 64-element register belongs to sub-block base + l / 8
    const __m512i pick_a =
        _mm512_setr_epi64(0x0000000000000000, 0x0000000000000000, 0x0001000100010001, 0x0001000100010001,
                          0x0002000200020002, 0x0002000200020002, 0x0003000300030003, 0x0003000300030003);
    const __m512i four = _mm512_set1_epi16(4);
    float acc = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        const float d = y[i].d * h2f(x[i].d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(loadu128(x[i].scales));
        const __m256i offs = _mm256_slli_epi32(_mm256_madd_epi16(sc16, loadu(y[i].bsums)), 5);
        const __m512i scz = _mm512_castsi256_si512(sc16);

        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        __m512i sumi = _mm512_setzero_si512();
        __m512i pick = pick_a;
        for (int h = 0; h < 2; ++h) {
            const __m512i l = loadu512(ql);
            const __m512i hb = _mm512_broadcast_i64x4(loadu(qh));
            const __m512i qa =
                _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_and_si512(_mm512_sllv_epi64(hb, shl_a), m6));
            const __m512i qb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                               _mm512_and_si512(_mm512_srlv_epi64(hb, shr_b), m6));
            const __m512i pa = _mm512_maddubs_epi16(qa, loadu512(q8));
            const __m512i pb = _mm512_maddubs_epi16(qb, loadu512(q8 + 64));
            sumi = _mm512_dpwssd_epi32(sumi, pa, _mm512_permutexvar_epi16(pick, scz));
            pick = _mm512_add_epi16(pick, four);
            sumi = _mm512_dpwssd_epi32(sumi, pb, _mm512_permutexvar_epi16(pick, scz));
            pick = _mm512_add_epi16(pick, four);
            ql += 64;
            qh += 32;
            q8 += 128;
        }
        const __m256i folded = _mm256_add_epi32(_mm512_castsi512_si256(sumi), _mm512_extracti64x4_epi64(sumi, 1));
        acc += d * (float)hsum_i32(_mm256_sub_epi32(folded, offs));
    }
    *s = acc;
}

// ---- packed q4_K / q5_K groups (quant/repack.h): 16 rows x up to 8 columns ----
//
// Per super-block, row r's exact integer sums in lane r: sumi = sum_j sc_j (q . y)_j over
// the 8 sub-blocks of 32 and summ = sum_j m_j bsum_j, then super_block_k4's float
// operations lane by lane, so each row gets vec_dot_q4_K's (and the scalar reference's)
// very bits. Chunk 8c + i of the quants holds bytes 4i..4i+3 of every row's 64-element
// chunk c: low nibbles are elements 64c + 4i.., against the column's four activation bytes
// there broadcast (vpdpbusd, unsigned quants), high nibbles elements 64c + 32 + 4i... A
// sub-block's dot (<= 32 * 31 * 127) times its 6-bit scale is one vpmulld. The scales and
// mins are unpacked from the three scale chunks for all 16 rows at once, as
// unpack_scales_k4 does for one; m_j goes to both 16-bit halves of a lane, against
// bsums[2j], bsums[2j + 1] broadcast (vpdpwssd). The float sums go through the output
// (once per super-block), so that 16 quant registers and 8 columns' sums stay in registers.
template <int C, bool Q5>
void rows_packed_k4_n(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by) {
    using block = typename std::conditional<Q5, block_q5_K, block_q4_K>::type;
    const int64_t nb = n / QK_K;
    const uint8_t *x = (const uint8_t *)vx;
    const block_q8_K *y[C];
    for (int c = 0; c < C; c++) {
        y[c] = (const block_q8_K *)((const uint8_t *)vy + c * by);
        _mm512_storeu_ps(s + c * bs, _mm512_setzero_ps());
    }
    const __m512i m4 = _mm512_set1_epi8(0x0f), m6 = _mm512_set1_epi8(0x3f), m2 = _mm512_set1_epi8(0x03);
    const __m512i b4 = _mm512_set1_epi8(0x10), byte0 = _mm512_set1_epi32(0xff);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = x + b * kRowBlock * sizeof(block);
        const __m512i s0 = loadu512(p + 64), s1 = loadu512(p + 128), s2 = loadu512(p + 192);
        // quant chunk j (q5_K: qh chunk i < 8, then quant chunk i, then quant chunks 8..31)
        auto qs_at = [p](int j) { return p + 256 + (!Q5 ? 64 * j : j < 8 ? 128 * j + 64 : 1024 + 64 * (j - 8)); };
        auto qh_at = [p](int i) { return p + 256 + 128 * i; };
        // bytes j of a row's lanes: scales 0..3, 4..7; mins 0..3, 4..7
        const __m512i sc_lo = _mm512_and_si512(s0, m6);
        const __m512i sc_hi = _mm512_or_si512(_mm512_and_si512(s2, m4),
                                              _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s0, 6), m2), 4));
        __m512i sumi[C];
        for (int c = 0; c < C; c++) sumi[c] = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int ch = 0; ch < 4; ch++) {
            const __m512i scs = ch < 2 ? sc_lo : sc_hi;
            const __m512i sc_a = _mm512_and_si512(_mm512_srli_epi32(scs, 16 * (ch & 1)), byte0);
            const __m512i sc_b = _mm512_and_si512(_mm512_srli_epi32(scs, 16 * (ch & 1) + 8), byte0);
            __m512i lo[8], hi[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                const __m512i q = loadu512(qs_at(8 * ch + i));
                lo[i] = _mm512_and_si512(q, m4);
                hi[i] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
                if (Q5) {
                    // bit 2ch (low half) and 2ch + 1 (high half) of each qh byte to bit 4
                    const __m512i h = loadu512(qh_at(i));
                    const __m512i hl = ch < 2 ? _mm512_slli_epi16(h, 4 - 2 * ch) : _mm512_srli_epi16(h, 2 * ch - 4);
                    const __m512i hh = ch < 2 ? _mm512_slli_epi16(h, 3 - 2 * ch) : _mm512_srli_epi16(h, 2 * ch - 3);
                    lo[i] = _mm512_ternarylogic_epi32(lo[i], hl, b4, 0xf8); // lo | (hl & b4)
                    hi[i] = _mm512_ternarylogic_epi32(hi[i], hh, b4, 0xf8);
                }
            }
#pragma GCC unroll 8
            for (int c = 0; c < C; c++) {
                const int8_t *yq = y[c][b].qs + 64 * ch;
                __m512i da = _mm512_setzero_si512(), db = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++) {
                    da = _mm512_dpbusd_epi32(da, lo[i], bcast4(yq + 4 * i));
                    db = _mm512_dpbusd_epi32(db, hi[i], bcast4(yq + 32 + 4 * i));
                }
                sumi[c] = _mm512_add_epi32(
                    sumi[c], _mm512_add_epi32(_mm512_mullo_epi32(da, sc_a), _mm512_mullo_epi32(db, sc_b)));
            }
        }
        const __m512i mn_lo = _mm512_and_si512(s1, m6);
        const __m512i mn_hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(s2, 4), m4),
                                              _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s1, 6), m2), 4));
        __m512i mdup[8]; // m_j in both 16-bit halves of each row's lane
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            const __m512i v = j < 4 ? mn_lo : mn_hi;
            const __m512i m = _mm512_and_si512(_mm512_srli_epi32(v, 8 * (j & 3)), byte0);
            mdup[j] = _mm512_or_si512(m, _mm512_slli_epi32(m, 16));
        }
        const __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        const __m512 dmx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32)));
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            __m512i summ = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                summ = _mm512_dpwssd_epi32(summ, mdup[j], bcast4((const int8_t *)(y[c][b].bsums + 2 * j)));
            const __m512 dy = _mm512_set1_ps(y[c][b].d);
            const __m512 part = _mm512_sub_ps(_mm512_mul_ps(_mm512_mul_ps(dx, dy), _mm512_cvtepi32_ps(sumi[c])),
                                              _mm512_mul_ps(_mm512_mul_ps(dmx, dy), _mm512_cvtepi32_ps(summ)));
            _mm512_storeu_ps(s + c * bs, _mm512_add_ps(_mm512_loadu_ps(s + c * bs), part));
        }
    }
}

template <bool Q5>
void vec_dot_rows_packed_k4(int64_t n, float *s, size_t bs, const void *x, size_t, const void *y, size_t by, int nc) {
    for_columns(nc, [&](auto c) { rows_packed_k4_n<decltype(c)::value, Q5>(n, s, bs, x, y, by); });
}

// ---- packed q6_K groups: 16 rows x up to 8 columns ----
//
// As the q4_K kernel: row r's exact integer sum in lane r, then the scalar reference's float
// formula, sum += d_x d_y sumi, lane by lane. Quants go unsigned (0..63) into vpdpbusd:
// sumi = sum_j sc_j (q . y)_j - 32 sum_j sc_j bsums[j] (q8_K's bsums are per 16 elements,
// q6_K's sub-blocks). For half h and ql chunk pairs A = 16h + l, B = 16h + 8 + l with qh
// chunk H = 8h + l, the four byte sets of the lanes are elements 128h + 4l + 32g (g = 0..3):
// A's low nibbles with H's bits 0-1, B's low with bits 2-3, A's high with 4-5, B's high with
// 6-7; l = 0..3 fill sub-blocks 8h + 2g, l = 4..7 sub-blocks 8h + 2g + 1. The record keeps
// each scale dword's bytes in the order 0, 2, 1, 3: its 16-bit halves sign-extend to the
// pairs (sc 4t, sc 4t+1) and (sc 4t+2, sc 4t+3), against bsums pairs broadcast (vpdpwssd),
// and each scale alone for the sub-block products (vpmulld).
// a group's record without d (the d of its super-blocks follow the last record)
constexpr size_t kQ6Record = kRowBlock * (sizeof(block_q6_K) - sizeof(fp16_t));

template <int C> void rows_packed_q6_K_n(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by) {
    const int64_t nb = n / QK_K;
    const uint8_t *x = (const uint8_t *)vx;
    const block_q8_K *y[C];
    for (int c = 0; c < C; c++) {
        y[c] = (const block_q8_K *)((const uint8_t *)vy + c * by);
        _mm512_storeu_ps(s + c * bs, _mm512_setzero_ps());
    }
    const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(0x30);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = x + b * kQ6Record;
        const uint8_t *scp = p;
        // pair[t][0] = (sc 4t, sc 4t+1), pair[t][1] = (sc 4t+2, sc 4t+3) as int16 halves
        auto pair = [&](int t, int hi) {
            const __m512i v = loadu512(scp + 64 * t);
            return hi ? _mm512_srai_epi16(v, 8) : _mm512_srai_epi16(_mm512_slli_epi16(v, 8), 8);
        };
        __m512i sumi[C];
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            __m512i off = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int t = 0; t < 4; t++) {
                off = _mm512_dpwssd_epi32(off, pair(t, 0), bcast4((const int8_t *)(y[c][b].bsums + 4 * t)));
                off = _mm512_dpwssd_epi32(off, pair(t, 1), bcast4((const int8_t *)(y[c][b].bsums + 4 * t + 2)));
            }
            sumi[c] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(off, 5));
        }
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
#pragma GCC unroll 2
            for (int sb = 0; sb < 2; sb++) { // l = 4 sb .. 4 sb + 3: sub-blocks 8h + 2g + sb
                __m512i w[4][4];
#pragma GCC unroll 4
                for (int i = 0; i < 4; i++) {
                    const uint8_t *abh = p + 256 + 192 * (4 * (2 * h + sb) + i); // A, B, H in a row
                    const __m512i a = loadu512(abh), bb = loadu512(abh + 64), hb = loadu512(abh + 128);
                    w[0][i] = _mm512_ternarylogic_epi32(_mm512_and_si512(a, m4), _mm512_slli_epi16(hb, 4), m2, 0xf8);
                    w[1][i] = _mm512_ternarylogic_epi32(_mm512_and_si512(bb, m4), _mm512_slli_epi16(hb, 2), m2, 0xf8);
                    w[2][i] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(a, 4), m4), hb, m2, 0xf8);
                    w[3][i] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(bb, 4), m4),
                                                        _mm512_srli_epi16(hb, 2), m2, 0xf8);
                }
                // sub-block 8h + 2g + sb: scale chunk 2h + g / 2, pair g % 2, element sb
                __m512i sc[4];
#pragma GCC unroll 4
                for (int g = 0; g < 4; g++) {
                    const __m512i pr = pair(2 * h + g / 2, g % 2);
                    sc[g] = sb ? _mm512_srai_epi32(pr, 16) : _mm512_srai_epi32(_mm512_slli_epi32(pr, 16), 16);
                }
#pragma GCC unroll 8
                for (int c = 0; c < C; c++) {
                    const int8_t *yq = y[c][b].qs + 128 * h + 16 * sb;
#pragma GCC unroll 4
                    for (int g = 0; g < 4; g++) {
                        __m512i d = _mm512_setzero_si512();
#pragma GCC unroll 4
                        for (int i = 0; i < 4; i++) d = _mm512_dpbusd_epi32(d, w[g][i], bcast4(yq + 32 * g + 4 * i));
                        sumi[c] = _mm512_add_epi32(sumi[c], _mm512_mullo_epi32(d, sc[g]));
                    }
                }
            }
        const __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + nb * kQ6Record + 32 * b)));
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            const __m512 part =
                _mm512_mul_ps(_mm512_mul_ps(dx, _mm512_set1_ps(y[c][b].d)), _mm512_cvtepi32_ps(sumi[c]));
            _mm512_storeu_ps(s + c * bs, _mm512_add_ps(_mm512_loadu_ps(s + c * bs), part));
        }
    }
}

void vec_dot_rows_packed_q6_K(int64_t n, float *s, size_t bs, const void *x, size_t, const void *y, size_t by, int nc) {
    for_columns(nc, [&](auto c) { rows_packed_q6_K_n<decltype(c)::value>(n, s, bs, x, y, by); });
}

// ---- weighted sums of rows (attention's probabilities times V) ----
//
// The output's registers for up to 4 weight vectors (a kv head's query heads) stay in registers
// while the rows go by, one FMA per register, weight and row, in the rows' order: each row is
// read once for all of them. The rows of a head's V are one run of memory (a key each); the row
// kPrefetchRows on is asked for ahead of its turn, as the row-block kernels ask for their
// records: demand loads alone left the run at about half the bandwidth.
constexpr int64_t kPrefetchRows = 16;

template <int NW, int NV, bool F16> void weighted_chunk(float *out, size_t out_stride, const uint8_t *rows,
                                                        size_t stride, const float *w, size_t w_stride,
                                                        int64_t n_rows) {
    constexpr size_t bytes = NV * 16 * (F16 ? 2 : 4);
    __m512 acc[NW][NV];
    for (int j = 0; j < NW; j++)
        for (int v = 0; v < NV; v++) acc[j][v] = _mm512_setzero_ps();
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *x = rows + r * stride;
        if (r + kPrefetchRows < n_rows) prefetch_record(x, bytes, kPrefetchRows * stride);
        __m512 wr[NW];
        for (int j = 0; j < NW; j++) wr[j] = _mm512_set1_ps(w[j * w_stride + r]);
#pragma GCC unroll 12
        for (int v = 0; v < NV; v++) {
            const __m512 xv = F16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + 32 * v)))
                                  : _mm512_loadu_ps((const float *)(x + 64 * v));
            for (int j = 0; j < NW; j++) acc[j][v] = _mm512_fmadd_ps(xv, wr[j], acc[j][v]);
        }
    }
    for (int j = 0; j < NW; j++)
        for (int v = 0; v < NV; v++) _mm512_storeu_ps(out + j * out_stride + 16 * v, acc[j][v]);
}

// the registers of each output a pass holds: as many as fit beside the weights and the row's
template <int NW> constexpr int max_vectors() { return NW == 1 ? 8 : NW == 2 ? 8 : NW == 3 ? 8 : 6; }

template <int NW, bool F16> void weighted_group(int64_t n, float *out, size_t out_stride, const uint8_t *rows,
                                                size_t stride, const float *w, size_t w_stride, int64_t n_rows) {
    constexpr size_t eb = F16 ? 2 : 4;
    int64_t d = 0;
    while (n - d >= 16) {
        const int64_t nv = std::min<int64_t>(max_vectors<NW>(), (n - d) / 16);
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
        default: weighted_chunk<NW, max_vectors<NW>(), F16>(o, out_stride, x, stride, w, w_stride, n_rows); break;
        }
        d += nv * 16;
    }
    for (; d < n; d++) // a head_dim that is not a multiple of 16: the last values one by one
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

// q8_0 rows (a q8_0 KV cache's V): each block's values widened to float and scaled by its d
// once for every weight vector (the dequantized values, as dequantizing rounds them), then one
// FMA per weight vector as above; NB blocks (2 NB registers per output) a pass.
template <int NW, int NB> void weighted_chunk_q8_0(float *out, size_t out_stride, const uint8_t *rows, size_t stride,
                                                   const float *w, size_t w_stride, int64_t n_rows) {
    __m512 acc[NW][2 * NB];
    for (int j = 0; j < NW; j++)
        for (int v = 0; v < 2 * NB; v++) acc[j][v] = _mm512_setzero_ps();
    for (int64_t r = 0; r < n_rows; r++) {
        const block_q8_0 *x = reinterpret_cast<const block_q8_0 *>(rows + r * stride);
        if (r + kPrefetchRows < n_rows)
            prefetch_record((const uint8_t *)x, NB * sizeof(block_q8_0), kPrefetchRows * stride);
        __m512 wr[NW];
        for (int j = 0; j < NW; j++) wr[j] = _mm512_set1_ps(w[j * w_stride + r]);
#pragma GCC unroll 4
        for (int b = 0; b < NB; b++) {
            const __m512 d = _mm512_set1_ps(h2f(x[b].d));
            for (int h = 0; h < 2; h++) {
                const __m128i q = _mm_loadu_si128((const __m128i *)(x[b].qs + 16 * h));
                const __m512 xv = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), d);
                for (int j = 0; j < NW; j++) acc[j][2 * b + h] = _mm512_fmadd_ps(xv, wr[j], acc[j][2 * b + h]);
            }
        }
    }
    for (int j = 0; j < NW; j++)
        for (int v = 0; v < 2 * NB; v++) _mm512_storeu_ps(out + j * out_stride + 16 * v, acc[j][v]);
}

template <int NW> constexpr int max_blocks_q8_0() { return NW == 4 ? 3 : 4; }

template <int NW> void weighted_group_q8_0(int64_t n, float *out, size_t out_stride, const uint8_t *rows, size_t stride,
                                           const float *w, size_t w_stride, int64_t n_rows) {
    const int64_t nb = n / QK8_0;
    for (int64_t b = 0; b < nb;) {
        const int64_t k = std::min<int64_t>(max_blocks_q8_0<NW>(), nb - b);
        const uint8_t *x = rows + b * sizeof(block_q8_0);
        float *o = out + b * QK8_0;
        switch (k) {
        case 1: weighted_chunk_q8_0<NW, 1>(o, out_stride, x, stride, w, w_stride, n_rows); break;
        case 2: weighted_chunk_q8_0<NW, 2>(o, out_stride, x, stride, w, w_stride, n_rows); break;
        case 3: weighted_chunk_q8_0<NW, 3>(o, out_stride, x, stride, w, w_stride, n_rows); break;
        default: weighted_chunk_q8_0<NW, max_blocks_q8_0<NW>()>(o, out_stride, x, stride, w, w_stride, n_rows); break;
        }
        b += k;
    }
}

void weighted_rows_q8_0(int64_t n, float *out, size_t out_stride, const void *vrows, size_t stride, const float *w,
                        size_t w_stride, int n_w, int64_t n_rows) {
    const uint8_t *rows = static_cast<const uint8_t *>(vrows);
    for (int j = 0; j < n_w; j += 4) {
        float *o = out + j * out_stride;
        const float *wj = w + j * w_stride;
        switch (std::min(4, n_w - j)) {
        case 1: weighted_group_q8_0<1>(n, o, out_stride, rows, stride, wj, w_stride, n_rows); break;
        case 2: weighted_group_q8_0<2>(n, o, out_stride, rows, stride, wj, w_stride, n_rows); break;
        case 3: weighted_group_q8_0<3>(n, o, out_stride, rows, stride, wj, w_stride, n_rows); break;
        default: weighted_group_q8_0<4>(n, o, out_stride, rows, stride, wj, w_stride, n_rows); break;
        }
    }
}

// Kept because measured faster than AVX2 (test_simd's timing: ns per 4096-element dot, data
// in L1, AMD EPYC Zen 5, GCC 12 -O2): f32 179 -> 148, f16 151 -> 112, bf16 180 -> 78,
// q8_0 118 -> 94, q4_0 168 -> 101, q4_K 90 -> 67, q5_K 121 -> 75, q6_K 110 -> 65.
// q4_1, q5_0, q5_1 and the quantizers have no AVX-512 version: they run the AVX2 one.
constexpr kernel_table make_table() {
    kernel_table t{};
    t.vec_dot[HG_TYPE_F32] = vec_dot_f32;
    t.vec_dot[HG_TYPE_F16] = vec_dot_f16;
    t.vec_dot[HG_TYPE_BF16] = vec_dot_bf16;
    t.vec_dot[HG_TYPE_Q8_0] = vec_dot_q8_0;
    t.vec_dot[HG_TYPE_Q4_0] = vec_dot_q4_0;
    t.vec_dot[HG_TYPE_Q4_K] = vec_dot_q4_K;
    t.vec_dot[HG_TYPE_Q5_K] = vec_dot_q5_K;
    t.vec_dot[HG_TYPE_Q6_K] = vec_dot_q6_K;
    t.vec_dot_tile[HG_TYPE_F16] = vec_dot_tile_f16;
    t.vec_dot_tile[HG_TYPE_Q4_0] = vec_dot_tile<tile_q4_0>;
    t.vec_dot_tile[HG_TYPE_Q8_0] = vec_dot_tile<tile_q8_0>;
    t.vec_dot_rows[HG_TYPE_Q4_0] = vec_dot_rows_q4_0_any<false>;
    t.vec_dot_rows_packed[HG_TYPE_Q4_0] = vec_dot_rows_q4_0_any<true>;
    t.vec_dot_rows2_packed[HG_TYPE_Q4_0] = vec_dot_rows2_packed<true>;
    t.vec_dot_rows2_packed[HG_TYPE_Q8_0] = vec_dot_rows2_packed<false>;
    t.vec_dot_rows_packed[HG_TYPE_Q8_0] = vec_dot_rows_packed_q8_0;
    t.vec_dot_rows_packed[HG_TYPE_F16] = vec_dot_rows_packed_f16;
    t.vec_dot_rows[HG_TYPE_F16] = vec_dot_rows_f16;
    t.vec_dot_rows_packed[HG_TYPE_Q4_K] = vec_dot_rows_packed_k4<false>;
    t.vec_dot_rows_packed[HG_TYPE_Q5_K] = vec_dot_rows_packed_k4<true>;
    t.vec_dot_rows_packed[HG_TYPE_Q6_K] = vec_dot_rows_packed_q6_K;
    t.weighted_rows[HG_TYPE_F32] = weighted_rows<false>;
    t.weighted_rows[HG_TYPE_F16] = weighted_rows<true>;
    t.weighted_rows[HG_TYPE_Q8_0] = weighted_rows_q8_0;
    return t;
}

} // namespace

// Constant-initialized and guarded by cpuid: safe to ask for on any processor.
const kernel_table &kernels_avx512() {
    static constexpr kernel_table t = make_table();
    static constexpr kernel_table none{};
    __builtin_cpu_init();
    const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                    __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bf16") &&
                    __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    return ok ? t : none;
}

#else

const kernel_table &kernels_avx512() {
    static constexpr kernel_table none{};
    return none;
}

#endif

} // namespace hg
