// Scalar reference of the k-quants (q4_K, q5_K, q6_K) and their activation partner q8_K.
//
// Layouts are ggml's byte for byte. The quantizers follow llama.cpp's reference approach:
// per sub-block a weighted least-squares search for scale (and min), then the sub-block
// scales themselves quantized to 6 or 8 bits against one fp16 super-block scale, then every
// value re-rounded against the scale it will actually be decoded with.
#include <cmath>
#include <cstring>

#include "quant/quant.h"
#include "quant/quant_ref.h"

namespace hg {

namespace {

// Below this a group is treated as all zeros: no fp16 scale could represent it anyway.
constexpr float GROUP_MAX_EPS = 1e-15f;

// nearest_int of v clamped to lo..hi; NaN (0 * inf from a degenerate scale) counts as 0.
inline int level(float v, int lo, int hi) {
    if (!(v == v)) return lo > 0 ? lo : (hi < 0 ? hi : 0);
    if (v <= (float)lo) return lo;
    if (v >= (float)hi) return hi;
    return nearest_int(v);
}

// Fits x[i] ~ scale * L[i] - mn with L[i] in 0..nmax and mn >= 0, minimising the w-weighted
// squared error. Starts from the plain min..max grid, then tries nstep + 1 stretched grids
// (nmax + rmin + rdelta * k levels over the range), solving the 2x2 normal equations of
// (scale, min) for each set of levels; keeps the best. Returns scale, writes mn.
float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, uint8_t *Laux, float *mn, float rmin,
                    float rdelta, int nstep) {
    float lo = x[0], hi = x[0], sum_w = 0, sum_wx = 0;
    for (int i = 0; i < n; i++) {
        lo = std::fmin(lo, x[i]);
        hi = std::fmax(hi, x[i]);
        sum_w += w[i];
        sum_wx += w[i] * x[i];
    }
    if (lo > 0) lo = 0; // the offset is only ever subtracted: mn >= 0
    if (!(hi - lo > GROUP_MAX_EPS)) {
        std::memset(L, 0, (size_t)n);
        *mn = -lo;
        return 0.0f;
    }
    float iscale = nmax / (hi - lo);
    float scale = 1 / iscale, best_err = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)level(iscale * (x[i] - lo), 0, nmax);
        const float diff = scale * L[i] + lo - x[i];
        best_err += w[i] * diff * diff;
    }
    for (int k = 0; k <= nstep; k++) {
        iscale = (rmin + rdelta * k + nmax) / (hi - lo);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = level(iscale * (x[i] - lo), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0)) continue;
        float this_scale = (sum_w * sum_xl - sum_wx * sum_l) / D;
        float this_min = (sum_l2 * sum_wx - sum_l * sum_xl) / D;
        if (this_min > 0) { // an offset above zero cannot be stored: refit the scale alone
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float err = 0;
        for (int i = 0; i < n; i++) {
            const float diff = this_scale * Laux[i] + this_min - x[i];
            err += w[i] * diff * diff;
        }
        if (err < best_err) {
            std::memcpy(L, Laux, (size_t)n);
            best_err = err;
            scale = this_scale;
            lo = this_min;
        }
    }
    *mn = -lo;
    return scale;
}

// Fits x[i] ~ scale * (L[i] - nmax) with L[i] - nmax in -nmax..nmax-1, weights x^2. The
// largest magnitude goes to -nmax (the level with no positive twin); grids stretched by
// up to +-0.9 level are tried and the one maximising (sum w x l)^2 / sum w l^2 (the least-
// squares gain) is kept. Returns the least-squares scale of the chosen levels.
float fit_scale_symmetric(int n, int nmax, const float *x, uint8_t *L) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        if (std::fabs(x[i]) > amax) {
            amax = std::fabs(x[i]);
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        std::memset(L, nmax, (size_t)n); // level nmax is the value 0
        return 0.0f;
    }
    float best_lx = 0, best_l2 = 0;
    int best_k = 0;
    bool have = false;
    // k = 0 first, so that on equal gain the plain grid wins
    for (int step = 0; step <= 18; step++) {
        const int k = step == 0 ? 0 : (step <= 9 ? step - 10 : step - 9);
        const float iscale = -(nmax + 0.1f * k) / max;
        float sum_lx = 0, sum_l2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = level(iscale * x[i], -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sum_lx += w * x[i] * l;
            sum_l2 += w * l * l;
        }
        if (!(sum_l2 > 0)) continue;
        if (!have || sum_lx * sum_lx * best_l2 > best_lx * best_lx * sum_l2) {
            best_lx = sum_lx;
            best_l2 = sum_l2;
            best_k = k;
            have = true;
        }
    }
    const float iscale = -(nmax + 0.1f * best_k) / max;
    for (int i = 0; i < n; i++) L[i] = (uint8_t)(nmax + level(iscale * x[i], -nmax, nmax - 1));
    return have ? best_lx / best_l2 : 0.0f;
}

// q4_K / q5_K share everything but the level count and the search grid.
// Sub-block j's levels in L[32 j ..], its scale and min packed 6-bit into y_scales; d and
// dmin as stored (fp16).
void quantize_k_scale_min(const float *x, int nmax, float rmin, float rdelta, int nstep, uint8_t *L, uint8_t *y_scales,
                          fp16_t *y_d, fp16_t *y_dmin) {
    constexpr int NSUB = QK_K / 32;
    float scales[NSUB], mins[NSUB], w[32];
    uint8_t Laux[32];
    float max_scale = 0, max_min = 0; // both >= 0: the min is subtracted
    for (int j = 0; j < NSUB; j++) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
        // weight large values more, with a floor so near-zero ones still count
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + std::fabs(xs[l]);
        scales[j] = fit_scale_min(32, nmax, xs, w, L + 32 * j, Laux, &mins[j], rmin, rdelta, nstep);
        max_scale = std::fmax(max_scale, scales[j]);
        max_min = std::fmax(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    std::memset(y_scales, 0, K_SCALE_SIZE);
    for (int j = 0; j < NSUB; j++) {
        const int ls = level(inv_scale * scales[j], 0, 63);
        const int lm = level(inv_min * mins[j], 0, 63);
        // bytes 0..3: scales 0..3 (+ top 2 bits of scale 4..7); 4..7: mins 0..3 (+ top bits
        // of mins 4..7); 8..11: low nibbles of scale and min 4..7
        if (j < 4) {
            y_scales[j] = (uint8_t)ls;
            y_scales[j + 4] = (uint8_t)lm;
        } else {
            y_scales[j + 4] = (uint8_t)((ls & 0x0f) | ((lm & 0x0f) << 4));
            y_scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
            y_scales[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *y_d = f32_to_fp16(max_scale / 63.f);
    *y_dmin = f32_to_fp16(max_min / 63.f);
    // re-round every value against the scale and min it will be decoded with
    const float d = fp16_to_f32(*y_d), dmin = fp16_to_f32(*y_dmin);
    for (int j = 0; j < NSUB; j++) {
        uint8_t sc, m;
        get_scale_min_k4(j, y_scales, &sc, &m);
        const float ds = d * sc;
        if (!ds) continue;
        const float dm = dmin * m;
        for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)level((x[32 * j + l] + dm) / ds, 0, nmax);
    }
}

// Levels 0..15 of a q4_K block in element order: 64-element chunk c has its first 32 in the
// low nibbles of qs[32 c ..] and the next 32 in the high nibbles.
inline void unpack_q4_K(const block_q4_K &b, uint8_t *q) {
    for (int c = 0; c < QK_K / 64; c++) {
        for (int l = 0; l < 32; l++) {
            q[64 * c + l] = b.qs[32 * c + l] & 0x0f;
            q[64 * c + 32 + l] = b.qs[32 * c + l] >> 4;
        }
    }
}

// Levels 0..31 of a q5_K block: as q4_K, plus bit 2c (first 32) / 2c + 1 (next 32) of qh[l].
inline void unpack_q5_K(const block_q5_K &b, uint8_t *q) {
    for (int c = 0; c < QK_K / 64; c++) {
        for (int l = 0; l < 32; l++) {
            q[64 * c + l] = (uint8_t)((b.qs[32 * c + l] & 0x0f) | (((b.qh[l] >> (2 * c)) & 1) << 4));
            q[64 * c + 32 + l] = (uint8_t)((b.qs[32 * c + l] >> 4) | (((b.qh[l] >> (2 * c + 1)) & 1) << 4));
        }
    }
}

// Signed values -32..31 of a q6_K block: each 128-element half h spreads its four 32-element
// quarters over the nibbles of ql[64 h ..] and the bit pairs of qh[32 h ..].
inline void unpack_q6_K(const block_q6_K &b, int8_t *q) {
    for (int h = 0; h < QK_K / 128; h++) {
        const uint8_t *ql = b.ql + 64 * h;
        const uint8_t *qh = b.qh + 32 * h;
        int8_t *o = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            o[l] = (int8_t)(((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32);
            o[l + 32] = (int8_t)(((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
            o[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            o[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}

} // namespace

// ---------------------------------------------------------------- q4_K: x = d sc q - dmin m

void quantize_row_q4_K_ref(const float *x, void *vy, int64_t n) {
    block_q4_K *y = (block_q4_K *)vy;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        quantize_k_scale_min(x, 15, -1.0f, 0.1f, 20, L, y[i].scales, &y[i].d, &y[i].dmin);
        for (int c = 0; c < QK_K / 64; c++)
            for (int l = 0; l < 32; l++) y[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
    }
}

void dequantize_row_q4_K_ref(const void *vx, float *y, int64_t n) {
    const block_q4_K *x = (const block_q4_K *)vx;
    uint8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        const float d = fp16_to_f32(x[i].d), dmin = fp16_to_f32(x[i].dmin);
        unpack_q4_K(x[i], q);
        for (int j = 0; j < QK_K / 32; j++) {
            uint8_t sc, m;
            get_scale_min_k4(j, x[i].scales, &sc, &m);
            const float ds = d * sc, dm = dmin * m;
            for (int l = 0; l < 32; l++) y[32 * j + l] = ds * q[32 * j + l] - dm;
        }
    }
}

// ---------------------------------------------------------------- q5_K: as q4_K, 5-bit levels

void quantize_row_q5_K_ref(const float *x, void *vy, int64_t n) {
    block_q5_K *y = (block_q5_K *)vy;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        quantize_k_scale_min(x, 31, -0.5f, 0.1f, 15, L, y[i].scales, &y[i].d, &y[i].dmin);
        std::memset(y[i].qh, 0, sizeof y[i].qh);
        for (int c = 0; c < QK_K / 64; c++) {
            for (int l = 0; l < 32; l++) {
                const int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
                y[i].qs[32 * c + l] = (uint8_t)((l1 & 0x0f) | ((l2 & 0x0f) << 4));
                y[i].qh[l] |= (uint8_t)(((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1)));
            }
        }
    }
}

void dequantize_row_q5_K_ref(const void *vx, float *y, int64_t n) {
    const block_q5_K *x = (const block_q5_K *)vx;
    uint8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        const float d = fp16_to_f32(x[i].d), dmin = fp16_to_f32(x[i].dmin);
        unpack_q5_K(x[i], q);
        for (int j = 0; j < QK_K / 32; j++) {
            uint8_t sc, m;
            get_scale_min_k4(j, x[i].scales, &sc, &m);
            const float ds = d * sc, dm = dmin * m;
            for (int l = 0; l < 32; l++) y[32 * j + l] = ds * q[32 * j + l] - dm;
        }
    }
}

// ---------------------------------------------------------------- q6_K: x = d sc (q - 32)

void quantize_row_q6_K_ref(const float *x, void *vy, int64_t n) {
    block_q6_K *y = (block_q6_K *)vy;
    constexpr int NSUB = QK_K / 16;
    uint8_t L[QK_K];
    float scales[NSUB];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int j = 0; j < NSUB; j++) {
            scales[j] = fit_scale_symmetric(16, 32, x + 16 * j, L + 16 * j);
            if (std::fabs(scales[j]) > max_abs_scale) {
                max_abs_scale = std::fabs(scales[j]);
                max_scale = scales[j];
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            std::memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        // the largest sub-block scale goes to -128, the rest in -128..127
        const float iscale = -128.f / max_scale;
        y[i].d = f32_to_fp16(1 / iscale);
        for (int j = 0; j < NSUB; j++) y[i].scales[j] = (int8_t)level(iscale * scales[j], -128, 127);
        const float d = fp16_to_f32(y[i].d);
        for (int j = 0; j < NSUB; j++) {
            const float ds = d * y[i].scales[j];
            if (!ds) continue;
            for (int l = 0; l < 16; l++) L[16 * j + l] = (uint8_t)(32 + level(x[16 * j + l] / ds, -32, 31));
        }
        // inverse of unpack_q6_K
        for (int h = 0; h < QK_K / 128; h++) {
            const uint8_t *Lh = L + 128 * h;
            uint8_t *ql = y[i].ql + 64 * h;
            uint8_t *qh = y[i].qh + 32 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((Lh[l] & 0x0f) | ((Lh[l + 64] & 0x0f) << 4));
                ql[l + 32] = (uint8_t)((Lh[l + 32] & 0x0f) | ((Lh[l + 96] & 0x0f) << 4));
                qh[l] = (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                  ((Lh[l + 96] >> 4) << 6));
            }
        }
    }
}

void dequantize_row_q6_K_ref(const void *vx, float *y, int64_t n) {
    const block_q6_K *x = (const block_q6_K *)vx;
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        const float d = fp16_to_f32(x[i].d);
        unpack_q6_K(x[i], q);
        for (int j = 0; j < QK_K / 16; j++) {
            const float ds = d * x[i].scales[j];
            for (int l = 0; l < 16; l++) y[16 * j + l] = ds * q[16 * j + l];
        }
    }
}

// ---------------------------------------------------------------- q8_K: x = d q, float d

void quantize_row_q8_K_ref(const float *x, void *vy, int64_t n) {
    block_q8_K *y = (block_q8_K *)vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax = 0, max = 0;
        for (int j = 0; j < QK_K; j++) {
            if (std::fabs(x[j]) > amax) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        }
        if (!amax) {
            std::memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        // -127 rather than -128: every level has its negation (what llama.cpp's SIMD expects)
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) y[i].qs[j] = (int8_t)level(iscale * x[j], -128, 127);
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y[i].qs[16 * j + l];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

void dequantize_row_q8_K_ref(const void *vx, float *y, int64_t n) {
    const block_q8_K *x = (const block_q8_K *)vx;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K)
        for (int j = 0; j < QK_K; j++) y[j] = x[i].d * x[i].qs[j];
}

// ---------------------------------------------------------------- dot products with q8_K

// sum over sub-blocks of (d sc_j q - dmin m_j) * (d8 q8)
//   = d d8 sum_j sc_j (q . q8)_j  -  dmin d8 sum_j m_j (bsum_2j + bsum_2j+1)
void vec_dot_q4_K_q8_K_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_K *x = (const block_q4_K *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    uint8_t q[QK_K];
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        unpack_q4_K(x[i], q);
        int sumi = 0, summ = 0;
        for (int j = 0; j < QK_K / 32; j++) {
            uint8_t sc, m;
            get_scale_min_k4(j, x[i].scales, &sc, &m);
            int dot = 0;
            for (int l = 0; l < 32; l++) dot += q[32 * j + l] * y[i].qs[32 * j + l];
            sumi += sc * dot;
            summ += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        sum += fp16_to_f32(x[i].d) * y[i].d * (float)sumi - fp16_to_f32(x[i].dmin) * y[i].d * (float)summ;
    }
    *s = sum;
}

void vec_dot_q5_K_q8_K_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_K *x = (const block_q5_K *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    uint8_t q[QK_K];
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        unpack_q5_K(x[i], q);
        int sumi = 0, summ = 0;
        for (int j = 0; j < QK_K / 32; j++) {
            uint8_t sc, m;
            get_scale_min_k4(j, x[i].scales, &sc, &m);
            int dot = 0;
            for (int l = 0; l < 32; l++) dot += q[32 * j + l] * y[i].qs[32 * j + l];
            sumi += sc * dot;
            summ += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        sum += fp16_to_f32(x[i].d) * y[i].d * (float)sumi - fp16_to_f32(x[i].dmin) * y[i].d * (float)summ;
    }
    *s = sum;
}

// sum over 16-element sub-blocks of d sc_j (q . q8)_j
void vec_dot_q6_K_q8_K_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q6_K *x = (const block_q6_K *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    int8_t q[QK_K];
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        unpack_q6_K(x[i], q);
        int sumi = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            int dot = 0;
            for (int l = 0; l < 16; l++) dot += q[16 * j + l] * y[i].qs[16 * j + l];
            sumi += x[i].scales[j] * dot;
        }
        sum += fp16_to_f32(x[i].d) * y[i].d * (float)sumi;
    }
    *s = sum;
}

} // namespace hg
