// fp16 / bf16 conversions (core/fp16.h): exhaustive round trips, round-to-nearest-even ties,
// overflow, subnormals, an independent double-precision oracle, and, where the processor has
// it, the F16C instruction that llama.cpp's x86 builds use.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "tests/check.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

using hg::bits_to_f32;
using hg::f32_to_bits;

namespace {

bool half_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0; }
bool bf16_is_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x007f) != 0; }

// The value of a half from its fields, in double: a second opinion on fp16_to_f32.
double half_value(uint16_t h) {
    const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    if (e == 0) return sign * std::ldexp((double)m, -24);
    if (e == 31) return m ? NAN : sign * INFINITY;
    return sign * std::ldexp(1024.0 + m, e - 25);
}

// Nearest half, ties to even, by arithmetic in double (exact for every float): an oracle
// written without the bit tricks of fp16.h.
uint16_t oracle_f32_to_fp16(float f) {
    const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    const double a = std::fabs((double)f);
    if (std::isnan(f)) return 0;            // not asked
    if (a >= 65520.0) return sign | 0x7c00; // 65504 + half an ulp (32): ties to even go up
    int e;
    std::frexp(a, &e);                    // a = frac * 2^e, frac in [0.5, 1)
    int exp = e - 1;                      // a in [2^exp, 2^(exp+1))
    if (a == 0.0 || exp < -14) exp = -14; // subnormal range shares the 2^-24 step
    const double step = std::ldexp(1.0, exp - 10);
    double q = std::nearbyint(a / step); // a / step is exact; default mode is ties-to-even
    if (exp == -14 && q < 1024) return (uint16_t)(sign | (uint16_t)q);
    if (q == 2048) { // rounded up into the next binade
        q = 1024;
        exp++;
    }
    return (uint16_t)(sign | ((exp + 15) << 10) | ((int)q - 1024));
}

// Nearest bf16, ties to even: truncation or the next one up, whichever is nearer.
uint16_t oracle_f32_to_bf16(float f) {
    const uint32_t u = f32_to_bits(f);
    const uint16_t lo = (uint16_t)(u >> 16);
    const uint32_t rest = u & 0xffff;
    if (rest > 0x8000 || (rest == 0x8000 && (lo & 1))) return (uint16_t)(lo + 1); // may carry into inf
    return lo;
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) uint16_t f16c_from_f32(float f) {
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
__attribute__((target("f16c"))) float f16c_to_f32(uint16_t h) { return _cvtsh_ss(h); }
bool have_f16c() { return __builtin_cpu_supports("f16c"); }
#endif

// Floats that straddle every half: each half's float value with the 13 dropped bits set to
// the patterns around the halfway point, plus a run of uniformly random bit patterns.
std::vector<float> probe_floats() {
    std::vector<float> v;
    const uint32_t tails[] = {0x0000, 0x0001, 0x0fff, 0x1000, 0x1001, 0x1fff};
    for (uint32_t h = 0; h < 0x10000; h++) {
        if (half_is_nan((uint16_t)h)) continue;
        const uint32_t b = f32_to_bits(hg::fp16_to_f32((uint16_t)h));
        if ((b & 0x7fffffff) >= 0x7f800000) continue;
        for (uint32_t t : tails) v.push_back(bits_to_f32(b | t));
    }
    std::mt19937 rng(12345);
    for (int i = 0; i < 2000000; i++) v.push_back(bits_to_f32(rng()));
    return v;
}

} // namespace

TEST(fp16_all_halves_round_trip) {
    int bad = 0, bad_value = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        const float f = hg::fp16_to_f32((uint16_t)h);
        const uint16_t back = hg::f32_to_fp16(f);
        if (half_is_nan((uint16_t)h)) {
            if (!std::isnan(f) || !half_is_nan(back)) bad++;
            continue;
        }
        if (back != h) bad++;
        if ((double)f != half_value((uint16_t)h) || std::signbit(f) != ((h & 0x8000) != 0)) bad_value++;
    }
    CHECK_MSG(bad == 0, std::to_string(bad) + " halves do not survive half -> float -> half");
    CHECK_MSG(bad_value == 0, std::to_string(bad_value) + " halves decode to the wrong float");
}

TEST(fp16_ties_to_even) {
    // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: the even one (1.0) wins
    CHECK(hg::f32_to_fp16(1.0f + 0x1p-11f) == 0x3c00);
    CHECK(hg::f32_to_fp16(1.0f + 3 * 0x1p-11f) == 0x3c02);
    CHECK(hg::f32_to_fp16(1.0f + 0x1p-11f + 0x1p-23f) == 0x3c01); // just past halfway
    CHECK(hg::f32_to_fp16(-(1.0f + 0x1p-11f)) == 0xbc00);
    // rounding up carries into the exponent: 2 - 2^-12 -> 2.0
    CHECK(hg::f32_to_fp16(2.0f - 0x1p-12f) == 0x4000);
    // subnormal ties: 0.5 and 1.5 units of 2^-24
    CHECK(hg::f32_to_fp16(0x1p-25f) == 0x0000);
    CHECK(hg::f32_to_fp16(3 * 0x1p-25f) == 0x0002);
    CHECK(hg::f32_to_fp16(0x1p-25f + 0x1p-40f) == 0x0001);
    CHECK(hg::f32_to_fp16(-0x1p-25f) == 0x8000);
}

TEST(fp16_overflow_to_inf) {
    CHECK(hg::f32_to_fp16(65504.0f) == 0x7bff);
    CHECK(hg::f32_to_fp16(65519.99f) == 0x7bff);
    CHECK(hg::f32_to_fp16(65520.0f) == 0x7c00); // halfway to 65536: ties to even = inf
    CHECK(hg::f32_to_fp16(-65520.0f) == 0xfc00);
    CHECK(hg::f32_to_fp16(1e10f) == 0x7c00);
    CHECK(hg::f32_to_fp16(3.4028235e38f) == 0x7c00);
    CHECK(hg::f32_to_fp16(INFINITY) == 0x7c00);
    CHECK(hg::f32_to_fp16(-INFINITY) == 0xfc00);
    CHECK(std::isinf(hg::fp16_to_f32(0x7c00)) && hg::fp16_to_f32(0x7c00) > 0);
}

TEST(fp16_subnormals_and_zero) {
    CHECK(hg::f32_to_fp16(0x1p-24f) == 0x0001);            // smallest subnormal
    CHECK(hg::f32_to_fp16(0x1p-14f) == 0x0400);            // smallest normal
    CHECK(hg::f32_to_fp16(0x1p-14f - 0x1p-24f) == 0x03ff); // largest subnormal
    CHECK(hg::f32_to_fp16(0x1p-26f) == 0x0000);
    CHECK(hg::f32_to_fp16(0.0f) == 0x0000);
    CHECK(hg::f32_to_fp16(-0.0f) == 0x8000);
    CHECK(hg::f32_to_fp16(1e-40f) == 0x0000); // f32 subnormal
    CHECK(hg::f32_to_fp16(-1e-40f) == 0x8000);
    CHECK(hg::fp16_to_f32(0x0001) == 0x1p-24f);
    CHECK(hg::fp16_to_f32(0x03ff) == 0x1p-14f - 0x1p-24f);
    CHECK(hg::fp16_to_f32(0x8001) == -0x1p-24f);
}

TEST(fp16_nan_stays_nan) {
    const uint32_t nans[] = {0x7fc00000, 0x7f800001, 0xffc00000, 0x7fbfffff, 0xff800001, 0x7f802000};
    for (uint32_t b : nans) {
        const uint16_t h = hg::f32_to_fp16(bits_to_f32(b));
        CHECK_MSG(half_is_nan(h), "float bits " + std::to_string(b));
        CHECK((h & 0x8000) == ((b >> 16) & 0x8000));
        CHECK(h & 0x0200); // quiet
    }
}

TEST(fp16_matches_double_oracle) {
    int bad = 0;
    for (float f : probe_floats()) {
        if (std::isnan(f)) continue;
        const uint16_t got = hg::f32_to_fp16(f), want = oracle_f32_to_fp16(f);
        if (got != want && bad++ < 5)
            std::fprintf(stderr, "  f32 %08x (%.9g): got %04x, want %04x\n", f32_to_bits(f), f, got, want);
    }
    CHECK_MSG(bad == 0, std::to_string(bad) + " floats round differently from the oracle");
}

TEST(fp16_matches_f16c) {
#if defined(__x86_64__)
    if (!have_f16c()) SKIP("no F16C on this processor");
    int bad = 0;
    for (float f : probe_floats()) { // NaNs included: F16C quiets them the same way
        const uint16_t got = hg::f32_to_fp16(f), want = f16c_from_f32(f);
        if (got != want && bad++ < 5)
            std::fprintf(stderr, "  f32 %08x: got %04x, F16C %04x\n", f32_to_bits(f), got, want);
    }
    const float edges[] = {0.0f,         -0.0f,  65504.0f, 65520.0f, 65519.996f, 0x1p-24f,      0x1p-25f,
                           3 * 0x1p-25f, 1e-40f, -1e-45f,  INFINITY, -INFINITY,  3.4028235e38f, 1.0f + 0x1p-11f};
    for (float f : edges) CHECK(hg::f32_to_fp16(f) == f16c_from_f32(f));
    CHECK_MSG(bad == 0, std::to_string(bad) + " floats differ from _cvtss_sh");
    int bad_up = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        const float a = hg::fp16_to_f32((uint16_t)h), b = f16c_to_f32((uint16_t)h);
        // F16C quiets signalling NaNs on the way up; ours keeps the payload: both NaN is enough
        if (std::isnan(a) || std::isnan(b)) {
            if (std::isnan(a) != std::isnan(b)) bad_up++;
        } else if (f32_to_bits(a) != f32_to_bits(b)) {
            bad_up++;
        }
    }
    CHECK_MSG(bad_up == 0, std::to_string(bad_up) + " halves decode differently from _cvtsh_ss");
#else
    SKIP("not x86-64");
#endif
}

TEST(bf16_all_values_round_trip) {
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        const float f = hg::bf16_to_f32((uint16_t)h);
        if (f32_to_bits(f) != h << 16) bad++;
        const uint16_t back = hg::f32_to_bf16(f);
        if (bf16_is_nan((uint16_t)h) ? !bf16_is_nan(back) : back != h) bad++;
    }
    CHECK_MSG(bad == 0, std::to_string(bad) + " bf16 values do not round-trip");
}

TEST(bf16_rounding) {
    CHECK(hg::f32_to_bf16(bits_to_f32(0x3f808000)) == 0x3f80); // tie, even below
    CHECK(hg::f32_to_bf16(bits_to_f32(0x3f818000)) == 0x3f82); // tie, even above
    CHECK(hg::f32_to_bf16(bits_to_f32(0x3f808001)) == 0x3f81);
    CHECK(hg::f32_to_bf16(bits_to_f32(0x3f807fff)) == 0x3f80);
    CHECK(hg::f32_to_bf16(3.4028235e38f) == 0x7f80); // FLT_MAX rounds up to inf
    CHECK(hg::f32_to_bf16(-INFINITY) == 0xff80);
    CHECK(hg::f32_to_bf16(bits_to_f32(0x00000001)) == 0x0000); // f32 subnormal -> zero
    CHECK(hg::f32_to_bf16(bits_to_f32(0x00018000)) == 0x0002); // subnormal tie to even
    // a signalling NaN must not truncate to inf: the quiet bit keeps it a NaN
    CHECK(hg::f32_to_bf16(bits_to_f32(0x7f800001)) == 0x7fc0);
    CHECK(bf16_is_nan(hg::f32_to_bf16(bits_to_f32(0xffffffff))));
    int bad = 0;
    std::mt19937 rng(777);
    for (int i = 0; i < 2000000; i++) {
        const float f = bits_to_f32(rng());
        if (std::isnan(f)) continue;
        if (hg::f32_to_bf16(f) != oracle_f32_to_bf16(f)) bad++;
    }
    CHECK_MSG(bad == 0, std::to_string(bad) + " floats round differently from the bf16 oracle");
}

HG_TEST_MAIN()
