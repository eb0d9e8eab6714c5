// The register-blocked inner loops of vit_attention, written once as plain C++ that the
// compiler vectorizes, and compiled three times: portable (vit_attention.cpp), with AVX2+FMA
// (vit_attention_avx2.cpp) and with AVX-512 (vit_attention_avx512.cpp); vit_attention picks
// one by the CPU's level. Everything here has internal linkage, so the three copies never
// mix at link time; each file exports one entry point under its own name.
//
// Layout for one head (padded with zeros so the loops have fixed widths):
//   kt: [head_dim][n_pad] (K transposed), v: [n][hd_pad], n_pad and hd_pad multiples of kPad.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#ifndef HG_VIT_LANES
#define HG_VIT_LANES 4 // SSE2 / NEON width; the AVX2 and AVX-512 files set 8 and 16
#endif

namespace {

constexpr int kQ = 4;            // queries per block
constexpr int kL = HG_VIT_LANES; // floats per vector register
constexpr int kW = 2 * kL;       // keys (scores) or head dims (values) per block
constexpr int64_t kPad = 32;     // n and head_dim are padded to this (a multiple of every kW)

#if defined(__GNUC__)
// One register's worth of floats: with the width the file's flags give (xmm, ymm, zmm), GCC
// keeps the eight accumulators below in registers (wider generic vectors, or float arrays,
// it kept on the stack), and a * b + c becomes one FMA where the file has -mfma.
typedef float vit_vec __attribute__((vector_size(kL * sizeof(float))));
inline vit_vec vit_load(const float *p) {
    vit_vec v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}
inline void vit_store(float *p, vit_vec v) { __builtin_memcpy(p, &v, sizeof v); }
#else
struct vit_vec {
    float x[kL];
    vit_vec &operator+=(const vit_vec &o) {
        for (int i = 0; i < kL; i++) x[i] += o.x[i];
        return *this;
    }
};
inline vit_vec operator*(float a, const vit_vec &v) {
    vit_vec r;
    for (int i = 0; i < kL; i++) r.x[i] = a * v.x[i];
    return r;
}
inline vit_vec vit_load(const float *p) {
    vit_vec v;
    for (int i = 0; i < kL; i++) v.x[i] = p[i];
    return v;
}
inline void vit_store(float *p, const vit_vec &v) {
    for (int i = 0; i < kL; i++) p[i] = v.x[i];
}
#endif

// s[qi][j] = scale * q[qi] . k[j] for qi < kQ, j < n_pad (row stride n_pad): 4 queries x 2
// vectors of keys per block, 8 accumulators.
inline void vit_scores(const float *const q[kQ], const float *kt, int64_t n_pad, int64_t head_dim, float scale,
                       float *s) {
    for (int64_t j0 = 0; j0 < n_pad; j0 += kW) {
        vit_vec a0 = {}, a1 = {}, a2 = {}, a3 = {}, b0 = {}, b1 = {}, b2 = {}, b3 = {};
        for (int64_t d = 0; d < head_dim; d++) {
            const vit_vec k0 = vit_load(kt + d * n_pad + j0), k1 = vit_load(kt + d * n_pad + j0 + kL);
            const float q0 = q[0][d], q1 = q[1][d], q2 = q[2][d], q3 = q[3][d];
            a0 += q0 * k0, b0 += q0 * k1;
            a1 += q1 * k0, b1 += q1 * k1;
            a2 += q2 * k0, b2 += q2 * k1;
            a3 += q3 * k0, b3 += q3 * k1;
        }
        float *r = s + j0;
        vit_store(r, scale * a0), vit_store(r + kL, scale * b0), r += n_pad;
        vit_store(r, scale * a1), vit_store(r + kL, scale * b1), r += n_pad;
        vit_store(r, scale * a2), vit_store(r + kL, scale * b2), r += n_pad;
        vit_store(r, scale * a3), vit_store(r + kL, scale * b3);
    }
}

// o[qi][d] = sum_j p[qi][j] v[j][d] for d < hd_pad (p rows of stride n_pad, o rows hd_pad):
// 4 queries x 2 vectors of head dims per block.
inline void vit_values(const float *p, int64_t n_pad, int64_t n, const float *v, int64_t hd_pad, float *o) {
    for (int64_t d0 = 0; d0 < hd_pad; d0 += kW) {
        vit_vec a0 = {}, a1 = {}, a2 = {}, a3 = {}, b0 = {}, b1 = {}, b2 = {}, b3 = {};
        for (int64_t j = 0; j < n; j++) {
            const vit_vec v0 = vit_load(v + j * hd_pad + d0), v1 = vit_load(v + j * hd_pad + d0 + kL);
            const float p0 = p[j], p1 = p[n_pad + j], p2 = p[2 * n_pad + j], p3 = p[3 * n_pad + j];
            a0 += p0 * v0, b0 += p0 * v1;
            a1 += p1 * v0, b1 += p1 * v1;
            a2 += p2 * v0, b2 += p2 * v1;
            a3 += p3 * v0, b3 += p3 * v1;
        }
        float *r = o + d0;
        vit_store(r, a0), vit_store(r + kL, b0), r += hd_pad;
        vit_store(r, a1), vit_store(r + kL, b1), r += hd_pad;
        vit_store(r, a2), vit_store(r + kL, b2), r += hd_pad;
        vit_store(r, a3), vit_store(r + kL, b3);
    }
}

// One block of kQ queries of one head: scores, softmax over the n real keys (in place, the
// padding left at 0 so it adds nothing to the values), values. s: kQ * n_pad scratch; o:
// kQ * hd_pad.
inline void vit_block(const float *const q[kQ], const float *kt, const float *v, int64_t n, int64_t n_pad,
                      int64_t head_dim, int64_t hd_pad, float scale, float *s, float *o) {
    vit_scores(q, kt, n_pad, head_dim, scale, s);
    for (int qi = 0; qi < kQ; qi++) {
        float *sr = s + qi * n_pad;
        float max = -INFINITY;
        for (int64_t j = 0; j < n; j++) max = std::max(max, sr[j]);
        float sum = 0.0f;
        for (int64_t j = 0; j < n; j++) sum += sr[j] = std::exp(sr[j] - max);
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j < n; j++) sr[j] *= inv;
        for (int64_t j = n; j < n_pad; j++) sr[j] = 0.0f;
    }
    vit_values(s, n_pad, n, v, hd_pad, o);
}

} // namespace
