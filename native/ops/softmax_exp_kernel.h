// exp_sum's vector loop (ops/softmax_exp.h), written once with GCC's vector extensions and
// compiled with each level's flags (softmax_exp_avx2.cpp: 8 lanes, softmax_exp_avx512.cpp:
// 16). Internal linkage: each file exports one entry point under its own name.
#pragma once

#include <cstdint>
#include <cstring>

namespace {

constexpr int kLanes = HG_EXP_LANES;
typedef float vf __attribute__((vector_size(kLanes * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(kLanes * sizeof(float))));

inline vf splat(float v) { return vf{} + v; }

// exp(x) = 2^k exp(r), k = round(x / ln2), r = x - k ln2 (ln2 in two parts, so r is exact to
// float precision), exp(r) by the polynomial of Cephes' expf
inline vf vexp(vf x) {
    const vf t = x * 1.44269504088896341f + 12582912.0f; // 1.5 * 2^23: t's low bits are round(x / ln2)
    const vf k = t - 12582912.0f;
    const vf r = (x - k * 0.693359375f) - k * -2.12194440e-4f;
    vf p = splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    vi bits;
    std::memcpy(&bits, &t, sizeof bits);
    const vi scale = ((bits - 0x4B400000) + 127) << 23; // 2^k as float bits, for -126 <= k <= 127
    vf two_k;
    std::memcpy(&two_k, &scale, sizeof two_k);
    vf y = p * two_k;
    // out of the 2^k range: 0 below (the result would be under FLT_MIN), inf above 88 (where
    // 2^k would overflow first; a softmax only takes x <= 0); a NaN compares false both ways
    // and stays NaN
    const vi under = x < -87.33654f, over = x > 88.0f;
    vi yb;
    std::memcpy(&yb, &y, sizeof yb);
    yb = (yb & ~under & ~over) | (over & 0x7f800000);
    std::memcpy(&y, &yb, sizeof y);
    return y;
}

float exp_sum_vec(float *x, int64_t n, float max) {
    vf sum{};
    int64_t j = 0;
    for (; j + kLanes <= n; j += kLanes) {
        vf v;
        std::memcpy(&v, x + j, sizeof v);
        v = vexp(v - max);
        std::memcpy(x + j, &v, sizeof v);
        sum += v;
    }
    if (j < n) { // the tail through a padded vector: -inf pads give 0
        vf v = splat(-__builtin_inff());
        std::memcpy(&v, x + j, (size_t)(n - j) * sizeof(float));
        v = vexp(v - max);
        std::memcpy(x + j, &v, (size_t)(n - j) * sizeof(float));
        sum += v;
    }
    float s = 0.0f;
    for (int i = 0; i < kLanes; i++) s += sum[i];
    return s;
}

} // namespace
