// SIMD kernels against the scalar reference, in the manner of llama.cpp's test-backend-ops:
// for every ISA level this processor runs, every non-null entry of its kernel table is fed
// the same inputs as hg::kernels_scalar()'s entry and the results compared.
//
//   vec_dot:    weight rows of odd lengths (1, 2, 3, 7, 13, 64 blocks; odd element counts for
//               the float types) from several data shapes, activations quantized by the
//               scalar quantizer; results within a floating-point error bound (below).
//   from_float: activation quantizers must write the same bytes as the scalar ones.
//
// A timing table (ns per 4096-element dot, scalar / avx2 / avx512) is printed, never checked.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cfloat>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "ops/softmax_exp.h"
#include "quant/blocks.h"
#include "quant/quant.h"
#include "quant/quant_ref.h"
#include "quant/repack.h"
#include "tests/check.h"

namespace {

using hg::kernel_table;

struct level {
    const char *name;
    const kernel_table *table;
};

// The levels this processor can run. The AVX-512 file is compiled with all of
// f/bw/vl/dq/vnni/bf16, so any of its functions may use any of them: require them all.
std::vector<level> cpu_levels() {
    std::vector<level> out;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                        __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bf16");
    if (avx2) out.push_back({"avx2", &hg::kernels_avx2()});
    if (avx512) out.push_back({"avx512", &hg::kernels_avx512()});
#endif
    return out;
}

const int kDotTypes[] = {HG_TYPE_F32,  HG_TYPE_F16,  HG_TYPE_BF16, HG_TYPE_Q8_0, HG_TYPE_Q4_0, HG_TYPE_Q4_1,
                         HG_TYPE_Q5_0, HG_TYPE_Q5_1, HG_TYPE_Q4_K, HG_TYPE_Q5_K, HG_TYPE_Q6_K};
const int kActTypes[] = {HG_TYPE_Q8_0, HG_TYPE_Q8_1, HG_TYPE_Q8_K, HG_TYPE_F16, HG_TYPE_BF16};

const char *tname(int t) {
    const hg::type_info *ti = hg::type_traits(t);
    return ti ? ti->name : "?";
}
bool is_float_type(int t) { return t == HG_TYPE_F32 || t == HG_TYPE_F16 || t == HG_TYPE_BF16; }

// ---- input data shapes ----

enum shape { RANDOM, ZEROS, DENORMAL, MIXED_DENORMAL, LARGE, SPIKES, TIES, SPECIALS, N_SHAPES };
const char *shape_name[N_SHAPES] = {"random", "zeros",  "denormal", "mixed-denormal",
                                    "large",  "spikes", "ties",     "specials"};

float denormal(std::mt19937 &rng) {
    uint32_t bits = (rng() & 0x807fffffu) | 1u; // exponent 0: below FLT_MIN, never zero
    return hg::bits_to_f32(bits);
}

void fill(std::vector<float> &v, shape s, std::mt19937 &rng) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::normal_distribution<float> g(0.0f, 1.0f);
    const float specials[] = {INFINITY,      -INFINITY,      NAN,      FLT_MAX,       -FLT_MAX,
                              65504.0f,      65519.99f,      65520.0f, 5.9604645e-8f, 2.9802322e-8f,
                              1.0009765625f, 1.00048828125f, -0.0f,    FLT_MIN};
    for (size_t i = 0; i < v.size(); ++i) {
        switch (s) {
        case RANDOM: v[i] = u(rng); break;
        case ZEROS: v[i] = 0.0f; break;
        case DENORMAL: v[i] = denormal(rng); break;
        case MIXED_DENORMAL: v[i] = (i / 32) % 3 == 0 ? denormal(rng) : (rng() & 1 ? u(rng) : denormal(rng)); break;
        case LARGE: v[i] = (rng() & 1 ? 1e4f : -1e4f) * (0.5f + 0.5f * std::fabs(u(rng))); break;
        case SPIKES:
            v[i] = rng() % 37 == 0 ? (rng() & 1 ? 100.0f : -80.0f) * (1.0f + u(rng) * 0.5f) : 0.01f * g(rng);
            break;
        // amax 127 in every block of 32, so q8 scales are exactly 1 and x * id hits the
        // halfway points: exercises ties-away (q8_0/q8_1) and ties-to-even (q8_K)
        case TIES:
            v[i] = i % 32 == 0 ? (rng() & 1 ? 127.0f : -127.0f) : (float)((int)(rng() % 254) - 127) + 0.5f;
            break;
        case SPECIALS:
            v[i] = rng() % 3 ? u(rng) * 70000.0f : specials[rng() % (sizeof specials / sizeof *specials)];
            break;
        default: break;
        }
    }
}

// ---- activation decode (for the error bound only) ----

double act_abs(int vdt, const std::vector<uint8_t> &a, int64_t i) {
    switch (vdt) {
    case HG_TYPE_F32: return std::fabs(((const float *)a.data())[i]);
    case HG_TYPE_F16: return std::fabs(hg::fp16_to_f32(((const hg::fp16_t *)a.data())[i]));
    case HG_TYPE_BF16: return std::fabs(hg::bf16_to_f32(((const hg::bf16_t *)a.data())[i]));
    case HG_TYPE_Q8_0: {
        const hg::block_q8_0 &b = ((const hg::block_q8_0 *)a.data())[i / 32];
        return std::fabs(hg::fp16_to_f32(b.d) * b.qs[i % 32]);
    }
    case HG_TYPE_Q8_1: {
        const hg::block_q8_1 &b = ((const hg::block_q8_1 *)a.data())[i / 32];
        return std::fabs(hg::fp16_to_f32(b.d) * b.qs[i % 32]);
    }
    case HG_TYPE_Q8_K: {
        const hg::block_q8_K &b = ((const hg::block_q8_K *)a.data())[i / 256];
        return std::fabs((double)b.d * b.qs[i % 256]);
    }
    default: return 0.0;
    }
}

// Per-element bound on the part of a weight the kernels handle apart from d * q: the block
// min of q4_1 / q5_1 (|m|) and of q4_K / q5_K (at most |dmin| * 63). Dots compute the two
// parts separately, so rounding is relative to both, not to their (possibly cancelling) sum.
double weight_min_abs(int t, const uint8_t *w, int64_t i) {
    double per_unit;
    switch (t) {
    case HG_TYPE_Q4_1:
    case HG_TYPE_Q5_1: per_unit = 1.0; break;
    case HG_TYPE_Q4_K:
    case HG_TYPE_Q5_K: per_unit = 63.0; break;
    default: return 0.0;
    }
    const hg::type_info *ti = hg::type_traits(t);
    hg::fp16_t m; // m of q4_1 / q5_1, dmin of q4_K / q5_K: both right after d
    std::memcpy(&m, w + (size_t)(i / ti->block_size) * ti->block_bytes + 2, 2);
    return per_unit * std::fabs(hg::fp16_to_f32(m));
}

// Offsets of the fp16 scale fields in a block, for weights made of random bytes.
std::vector<int> scale_offsets(int t) {
    switch (t) {
    case HG_TYPE_Q4_0:
    case HG_TYPE_Q5_0:
    case HG_TYPE_Q8_0: return {0};
    case HG_TYPE_Q4_1:
    case HG_TYPE_Q5_1:
    case HG_TYPE_Q4_K:
    case HG_TYPE_Q5_K: return {0, 2};
    case HG_TYPE_Q6_K: return {208};
    default: return {};
    }
}

struct case_data {
    std::vector<float> wf, af; // float sources
    std::vector<uint8_t> w, a; // weight row, activation row (vec_dot_type)
    bool ok = false;
};

// Quantize activations with the scalar quantizer (the engine quantizes once per token,
// so every level's dot sees the same activation bytes).
bool make_activation(int vdt, const std::vector<float> &af, std::vector<uint8_t> &a) {
    const int64_t n = (int64_t)af.size();
    a.assign(hg::row_bytes(vdt, n), 0);
    if (vdt == HG_TYPE_F32) {
        std::memcpy(a.data(), af.data(), a.size());
        return true;
    }
    hg::from_float_fn q = hg::kernels_scalar().from_float[vdt];
    if (!q) return false;
    q(af.data(), a.data(), n);
    return true;
}

// wshape == N_SHAPES means random bytes (quantized types) with sane fp16 scales.
case_data make_case(int t, int64_t n, int wshape, shape ashape, std::mt19937 &rng) {
    case_data c;
    const hg::type_info *ti = hg::type_traits(t);
    c.wf.resize(n);
    c.af.resize(n);
    c.w.assign(hg::row_bytes(t, n), 0);
    if (wshape == N_SHAPES) {
        if (is_float_type(t)) return c;
        for (auto &b : c.w) b = (uint8_t)rng();
        std::uniform_real_distribution<float> u(-0.05f, 0.05f);
        for (int64_t b = 0; b < n / ti->block_size; ++b)
            for (int off : scale_offsets(t)) {
                const hg::fp16_t h = hg::f32_to_fp16(u(rng));
                std::memcpy(c.w.data() + b * ti->block_bytes + off, &h, 2);
            }
        if (ti->to_float)
            ti->to_float(c.w.data(), c.wf.data(), n);
        else
            return c; // no way to bound the error
    } else {
        fill(c.wf, (shape)wshape, rng);
        if (t == HG_TYPE_F32)
            std::memcpy(c.w.data(), c.wf.data(), c.w.size());
        else if (ti->from_float_ref)
            ti->from_float_ref(c.wf.data(), c.w.data(), n);
        else
            return c;
        if (ti->to_float) ti->to_float(c.w.data(), c.wf.data(), n); // bound with what is stored
    }
    fill(c.af, ashape, rng);
    c.ok = make_activation(ti->vec_dot_type, c.af, c.a);
    return c;
}

// Allowed |simd - scalar|. Integer parts of the quantized dots are exact on both sides;
// what differs is float rounding: scales multiplied in a different order, partial sums
// accumulated in lanes instead of one chain. A sum of m terms carries at most about m
// rounding errors of 2^-24 times sum |terms|, so each side is within (m + 4) * 2^-24 * S of
// the exact value, S = sum |w_i * a_i| (with w's block-min part counted on its own), m the
// longest accumulation chain: n for the float types (a scalar reference may add in one
// float chain), blocks + 16 for the quantized ones. Plus a flush-to-zero allowance:
// vdpbf16ps treats operands and results below FLT_MIN as zero, which moves each product by
// at most FLT_MIN * (|partner| + 1).
// w's weight row against a's activation row (the two cases may differ: tile kernels)
double tolerance(int t, const case_data &w, const case_data &a, int64_t n) {
    const hg::type_info *ti = hg::type_traits(t);
    const int vdt = ti->vec_dot_type;
    double S = 0.0, sum_abs = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const double aa = act_abs(vdt, a.a, i);
        const double ww = std::fabs((double)w.wf[i]) + weight_min_abs(t, w.w.data(), i);
        S += ww * aa;
        sum_abs += ww + aa + 1.0;
    }
    const double m = is_float_type(t) ? (double)n : (double)(n / ti->block_size) + 16.0;
    return 2.0 * (m + 4.0) * std::ldexp(1.0, -24) * S + (double)FLT_MIN * sum_abs;
}

// The k-quant dots sum each super-block exactly in integers and apply its scales in one
// float formula, the same at every level: their kernels must give the scalar bits.
bool exact_everywhere(int t) { return t == HG_TYPE_Q4_K || t == HG_TYPE_Q5_K || t == HG_TYPE_Q6_K; }

// got, a kernel's dot of w's weight row and a's activation row, against the scalar vec_dot:
// equal for the scalar table's own kernels (exact), else within tolerance(); label names the
// case in a failure.
void check_dot(int t, const case_data &w, const case_data &a, int64_t n, float got, bool exact,
               const std::string &label) {
    float want = NAN;
    hg::kernels_scalar().vec_dot[t](n, &want, w.w.data(), a.a.data());
    const double tol = exact ? 0.0 : tolerance(t, w, a, n);
    char what[300];
    std::snprintf(what, sizeof what, "%s: got %.9g want %.9g tol %.3g", label.c_str(), got, want, tol);
    if (std::isfinite(want)) CHECK_MSG(std::isfinite(got) && std::fabs((double)got - want) <= tol, what);
    // the format itself overflowed (q8_1's fp16 s = d * sum(q) past 65504 with |x| ~ 1e4): no
    // value to compare, only its kind
    else
        CHECK_MSG(!std::isfinite(got), what);
}

std::vector<int64_t> dot_sizes(int t) {
    if (is_float_type(t)) return {1, 3, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 100, 13 * 32 + 5, 64 * 32, 64 * 32 + 7};
    const int64_t bs = hg::type_traits(t)->block_size;
    return {bs, 2 * bs, 3 * bs, 7 * bs, 13 * bs, 64 * bs};
}

} // namespace

TEST(simd_levels_present) {
    const auto lv = cpu_levels();
    std::printf("  cpu levels:");
    for (const auto &l : lv) std::printf(" %s", l.name);
    std::printf("%s\n", lv.empty() ? " none (scalar only)" : "");
    for (const auto &l : lv) {
        int n = 0;
        for (int t = 0; t < HG_TYPE_COUNT; ++t)
            n += (l.table->vec_dot[t] != nullptr) + (l.table->from_float[t] != nullptr);
        std::printf("  %s: %d entries\n", l.name, n);
        // every entry must have a scalar counterpart to be tested against
        for (int t = 0; t < HG_TYPE_COUNT; ++t) {
            if (l.table->vec_dot[t])
                CHECK_MSG(hg::kernels_scalar().vec_dot[t] != nullptr, std::string(l.name) + " vec_dot " + tname(t));
            if (l.table->from_float[t])
                CHECK_MSG(hg::kernels_scalar().from_float[t] != nullptr,
                          std::string(l.name) + " from_float " + tname(t));
        }
    }
#if defined(__x86_64__)
    // the AVX2 table is the floor every x86-64 build relies on: it must be complete
    for (const auto &l : lv)
        if (std::string(l.name) == "avx2") {
            for (int t : kDotTypes) CHECK_MSG(l.table->vec_dot[t] != nullptr, std::string("avx2 vec_dot ") + tname(t));
            for (int t : {HG_TYPE_Q8_0, HG_TYPE_Q8_1, HG_TYPE_Q8_K})
                CHECK_MSG(l.table->from_float[t] != nullptr, std::string("avx2 from_float ") + tname(t));
        }
#endif
}

TEST(simd_vec_dot_matches_scalar) {
    std::mt19937 rng(1234);
    const kernel_table &ref = hg::kernels_scalar();
    int compared = 0;
    for (const auto &l : cpu_levels()) {
        for (int t = 0; t < HG_TYPE_COUNT; ++t) {
            hg::vec_dot_fn fn = l.table->vec_dot[t];
            if (!fn || !ref.vec_dot[t]) continue;
            for (int64_t n : dot_sizes(t)) {
                for (int ws = 0; ws <= N_SHAPES; ++ws) {
                    if (ws == SPECIALS || ws == TIES) continue; // quantizer-only shapes
                    for (int as : {(int)RANDOM, ws < N_SHAPES ? ws : (int)RANDOM, (int)SPIKES}) {
                        case_data c = make_case(t, n, ws, (shape)as, rng);
                        if (!c.ok) continue;
                        float got = NAN;
                        fn(n, &got, c.w.data(), c.a.data());
                        char label[120];
                        std::snprintf(label, sizeof label, "%s %s n=%lld w=%s a=%s", l.name, tname(t), (long long)n,
                                      ws < N_SHAPES ? shape_name[ws] : "random-bytes", shape_name[as]);
                        check_dot(t, c, c, n, got, exact_everywhere(t), label);
                        ++compared;
                    }
                }
            }
        }
    }
    std::printf("  %d dots compared\n", compared);
}

// Tile kernels (vec_dot_tile): kDotTileRows weight rows x kDotTileCols activation columns,
// rows and columns at padded strides and the output at a stride with gaps, against the
// scalar vec_dot of every (row, column) pair; the gaps must stay untouched. The scalar
// table's own tile entry must equal its vec_dot bit for bit.
TEST(simd_vec_dot_tile_matches_scalar) {
    std::mt19937 rng(4321);
    const kernel_table &ref = hg::kernels_scalar();
    constexpr int R = hg::kDotTileRows, C = hg::kDotTileCols;
    std::vector<level> lv = cpu_levels();
    lv.insert(lv.begin(), level{"scalar", &ref});
    int compared = 0;
    for (const auto &l : lv) {
        for (int t = 0; t < HG_TYPE_COUNT; ++t) {
            hg::vec_dot_tile_fn fn = l.table->vec_dot_tile[t];
            if (!fn) continue;
            CHECK_MSG(ref.vec_dot[t] != nullptr, std::string(l.name) + " tile " + tname(t));
            if (!ref.vec_dot[t]) continue;
            const bool exact = l.table == &ref;
            for (int64_t n : dot_sizes(t)) {
                for (int ws = 0; ws <= N_SHAPES; ++ws) {
                    if (ws == SPECIALS || ws == TIES) continue;
                    for (int as : {(int)RANDOM, ws < N_SHAPES ? ws : (int)RANDOM, (int)SPIKES}) {
                        std::vector<case_data> cs;
                        for (int i = 0; i < std::max(R, C); ++i) cs.push_back(make_case(t, n, ws, (shape)as, rng));
                        bool ok = true;
                        for (auto &c : cs) ok = ok && c.ok;
                        if (!ok) continue;
                        const size_t wb = cs[0].w.size(), ab = cs[0].a.size();
                        const size_t bx = wb + 5, by = ab + 3, bs = R + 3; // odd strides
                        std::vector<uint8_t> W(bx * R, 0xcd), A(by * C, 0xab);
                        for (int r = 0; r < R; ++r) std::memcpy(&W[r * bx], cs[r].w.data(), wb);
                        for (int c = 0; c < C; ++c) std::memcpy(&A[c * by], cs[c].a.data(), ab);
                        std::vector<float> out(bs * C, -7.0f);
                        fn(n, out.data(), bs, W.data(), bx, A.data(), by);
                        for (int c = 0; c < C; ++c) {
                            for (size_t r = R; r < bs; ++r) CHECK(out[c * bs + r] == -7.0f);
                            for (int r = 0; r < R; ++r) {
                                char label[160];
                                std::snprintf(label, sizeof label, "%s tile %s n=%lld r=%d c=%d w=%s a=%s", l.name,
                                              tname(t), (long long)n, r, c,
                                              ws < N_SHAPES ? shape_name[ws] : "random-bytes", shape_name[as]);
                                check_dot(t, cs[r], cs[c], n, out[c * bs + r], exact, label);
                                ++compared;
                            }
                        }
                    }
                }
            }
        }
    }
    std::printf("  %d tile dots compared\n", compared);
}

// Row-block kernels: kRowBlock weight rows x nc = 1..kRowBlockCols columns (q8_0 with their
// q8_0_aux appended, q8_K, or plain f32), against the scalar vec_dot of every (row, column) pair;
// the output's gaps and the columns past nc must stay untouched. Plain kernels (vec_dot_rows)
// read rows at an odd stride; packed ones (vec_dot_rows_packed, quant/repack.h) read the same
// rows packed, from an odd address. Every row and column gets its own data, so a row or
// column mixed up with another shows. Packed q4_0 must also give the plain kernel's very
// bits at its level (the same arithmetic in the same order), and packed k-quants the scalar
// vec_dot's (exact_everywhere).
TEST(simd_vec_dot_rows_matches_scalar) {
    std::mt19937 rng(8765);
    const kernel_table &ref = hg::kernels_scalar();
    constexpr int R = hg::kRowBlock, C = hg::kRowBlockCols;
    std::vector<level> lv = cpu_levels();
    lv.insert(lv.begin(), level{"scalar", &ref});
    int compared[2] = {0, 0}, bit_identical = 0;
    for (const auto &l : lv) {
        for (int t = 0; t < HG_TYPE_COUNT; ++t) {
            for (const bool packed : {false, true}) {
                hg::vec_dot_rows_fn fn = packed ? l.table->vec_dot_rows_packed[t] : l.table->vec_dot_rows[t];
                if (!fn) continue;
                if (packed) CHECK_MSG(hg::packable(t), std::string(l.name) + " packed " + tname(t));
                const bool aux = hg::type_traits(t)->vec_dot_type == HG_TYPE_Q8_0; // else plain f32 columns
                const bool exact = l.table == &ref || exact_everywhere(t);
                const char *kind = packed ? "packed rows" : "rows";
                for (int64_t n : dot_sizes(t)) {
                    for (int ws = 0; ws <= N_SHAPES; ++ws) {
                        if (ws == SPECIALS || ws == TIES) continue;
                        for (int nc = 1; nc <= C; ++nc) {
                            std::vector<case_data> cs;
                            for (int i = 0; i < R; ++i)
                                cs.push_back(
                                    make_case(t, n, ws, i % 3 ? RANDOM : (shape)(ws < N_SHAPES ? ws : RANDOM), rng));
                            bool ok = true;
                            for (auto &c : cs) ok = ok && c.ok;
                            if (!ok) continue;
                            const size_t wb = cs[0].w.size(), ab = cs[0].a.size();
                            // odd weight and output strides; columns with a gap, aux aligned
                            const size_t bx = wb + (aux ? 5 : 6), by = (aux ? hg::q8_0_row_with_aux(n) : ab) + 4,
                                         bs = R + 3;
                            std::vector<uint8_t> W(bx * R, 0xcd), A(by * C, 0xab), plain(wb * R), P(wb * R + 1);
                            for (int r = 0; r < R; ++r) std::memcpy(&W[r * bx], cs[r].w.data(), wb);
                            for (int r = 0; r < R; ++r) std::memcpy(&plain[r * wb], cs[r].w.data(), wb);
                            for (int c = 0; c < C; ++c) {
                                std::memcpy(&A[c * by], cs[c].a.data(), ab);
                                if (aux)
                                    hg::q8_0_fill_aux(
                                        &A[c * by], n,
                                        reinterpret_cast<hg::q8_0_aux *>(&A[c * by + hg::q8_0_aux_offset(n)]));
                            }
                            if (packed) hg::pack_rows(t, plain.data(), R, n, 0, R, P.data() + 1);
                            std::vector<float> out(bs * C, -7.0f);
                            if (packed)
                                fn(n, out.data(), bs, P.data() + 1, 0, A.data(), by, nc);
                            else
                                fn(n, out.data(), bs, W.data(), bx, A.data(), by, nc);
                            if (packed && t == HG_TYPE_Q4_0 && l.table->vec_dot_rows[t]) {
                                std::vector<float> pout(bs * C, -7.0f);
                                l.table->vec_dot_rows[t](n, pout.data(), bs, W.data(), bx, A.data(), by, nc);
                                CHECK_MSG(std::memcmp(pout.data(), out.data(), out.size() * sizeof(float)) == 0,
                                          std::string(l.name) + " packed rows " + tname(t) + " n=" + std::to_string(n) +
                                              " nc=" + std::to_string(nc) + " differ from the plain row block");
                                ++bit_identical;
                            }
                            for (int c = 0; c < C; ++c) {
                                for (size_t r = c < nc ? R : 0; r < bs; ++r) CHECK(out[c * bs + r] == -7.0f);
                                if (c >= nc) continue;
                                for (int r = 0; r < R; ++r) {
                                    char label[160];
                                    std::snprintf(label, sizeof label, "%s %s %s n=%lld nc=%d r=%d c=%d w=%s", l.name,
                                                  kind, tname(t), (long long)n, nc, r, c,
                                                  ws < N_SHAPES ? shape_name[ws] : "random-bytes");
                                    check_dot(t, cs[r], cs[c], n, out[c * bs + r], exact, label);
                                    ++compared[packed];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    std::printf("  %d plain and %d packed row-block dots compared, %d packed q4_0 blocks bit-identical to plain\n",
                compared[0], compared[1], bit_identical);
    CHECK(compared[1] > 0 && bit_identical > 0);
}

// Two-group row-block kernels (vec_dot_rows2_packed): 2 * kRowBlock packed rows, the second
// group kRowBlock plain rows on, must give each row the very bits of the one-group packed
// kernel of their level (matmul uses either, by where a panel ends), for every column count;
// outputs' gaps untouched. Random weights and activations, several lengths.
TEST(simd_vec_dot_rows2_matches_rows) {
    std::mt19937 rng(4321);
    std::normal_distribution<float> g(0.0f, 1.0f);
    constexpr int R = hg::kRowBlock, C = hg::kRowBlockCols;
    int compared = 0;
    for (const auto &l : cpu_levels()) {
        for (int t = 0; t < HG_TYPE_COUNT; ++t) {
            hg::vec_dot_rows_fn two = l.table->vec_dot_rows2_packed[t], one = l.table->vec_dot_rows_packed[t];
            if (!two) continue;
            CHECK_MSG(one != nullptr, std::string(l.name) + " rows2 without a packed kernel: " + tname(t));
            const hg::type_info *ti = hg::type_traits(t);
            const int at = ti->vec_dot_type;
            for (int64_t n : {(int64_t)ti->block_size * 8, (int64_t)3072}) {
                if (n % ti->block_size || n % hg::type_traits(at)->block_size) continue;
                const size_t wb = hg::row_bytes(t, n);
                const bool aux = at == HG_TYPE_Q8_0;
                const size_t by = (aux ? hg::q8_0_row_with_aux(n) : hg::row_bytes(at, n)) + 64;
                std::vector<float> f(n);
                std::vector<uint8_t> plain(wb * 2 * R), P(wb * 2 * R), A(by * C);
                for (int r = 0; r < 2 * R; ++r) {
                    for (auto &v : f) v = g(rng) * (r % 5 + 1);
                    ti->from_float_ref(f.data(), &plain[r * wb], n);
                }
                for (int c = 0; c < C; ++c) {
                    for (auto &v : f) v = g(rng);
                    hg::type_traits(at)->from_float_ref(f.data(), &A[c * by], n);
                    if (aux)
                        hg::q8_0_fill_aux(&A[c * by], n,
                                          reinterpret_cast<hg::q8_0_aux *>(&A[c * by + hg::q8_0_aux_offset(n)]));
                }
                hg::pack_rows(t, plain.data(), 2 * R, n, 0, 2 * R, P.data());
                const size_t bs = 2 * R + 3;
                for (int nc = 1; nc <= C; ++nc) {
                    std::vector<float> a(bs * C, -7.0f), b(bs * C, -7.0f);
                    two(n, a.data(), bs, P.data(), wb, A.data(), by, nc);
                    one(n, b.data(), bs, P.data(), wb, A.data(), by, nc);
                    one(n, b.data() + R, bs, P.data() + R * wb, wb, A.data(), by, nc);
                    CHECK_MSG(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0,
                              std::string(l.name) + " rows2 " + tname(t) + " n=" + std::to_string(n) +
                                  " nc=" + std::to_string(nc) + " differs from two one-group calls");
                    for (int c = 0; c < C; ++c)
                        for (size_t r = c < nc ? 2 * R : 0; r < bs; ++r) CHECK(a[c * bs + r] == -7.0f);
                    ++compared;
                }
            }
        }
    }
    std::printf("  %d two-group row-block calls bit-identical to two one-group calls\n", compared);
    if (compared == 0) SKIP("no level of this processor has a two-group row-block kernel");
}

// Weighted sums of rows (attention's probabilities times V) at every level, the scalar one
// included, for f32, f16 and q8_0 rows, against a sum in double of the values as stored: n_rows products summed in order
// in float are within (n_rows + 1) * 2^-24 * sum |w x| of it. 1 to 8 weight vectors at once
// (a kv head's query heads), each output the same bit for bit as with its vector alone.
// Lengths leave every tail of every level's chunks; rows, weights and outputs sit at strides
// with gaps, which stay untouched.
TEST(simd_weighted_rows_match_a_double_sum) {
    std::mt19937 rng(77);
    std::uniform_real_distribution<float> u(-2.0f, 2.0f), p(0.0f, 1.0f);
    std::vector<level> levels = cpu_levels();
    levels.insert(levels.begin(), {"scalar", &hg::kernels_scalar()});
    int compared = 0;
    for (const auto &l : levels)
        for (int type : {HG_TYPE_F32, HG_TYPE_F16, HG_TYPE_Q8_0}) {
            const hg::weighted_rows_fn fn = l.table->weighted_rows[type];
            CHECK_MSG(fn != nullptr, std::string(l.name) + " has no weighted_rows for " + tname(type));
            if (!fn) continue;
            const bool q8 = type == HG_TYPE_Q8_0;
            const size_t eb = type == HG_TYPE_F32 ? 4 : 2;
            // q8_0 rows are whole blocks of 32: 1 to 8 of them (Phi-3-mini's heads 3, Phi-4's 4)
            const std::vector<int64_t> lengths =
                q8 ? std::vector<int64_t>{32, 64, 96, 128, 160, 256}
                   : std::vector<int64_t>{1, 7, 8, 15, 16, 17, 33, 64, 96, 100, 128, 136, 200, 232};
            for (int64_t n : lengths)
                for (int64_t n_rows : {0, 1, 2, 17, 300})
                    for (int n_w : {1, 2, 3, 4, 5, 8}) {
                        if (n_w > 1 && n_w != 4 && n % 32 != 0) continue; // enough to cover each count's chunks
                        const size_t stride = q8 ? hg::row_bytes(type, n) + 6 : (size_t)(n + 3) * eb,
                                     w_stride = (size_t)n_rows + 2, o_stride = (size_t)n + 5;
                        std::vector<uint8_t> rows(stride * (size_t)std::max<int64_t>(n_rows, 1));
                        std::vector<double> x((size_t)(n * n_rows));
                        std::vector<float> row((size_t)n);
                        for (int64_t r = 0; r < n_rows; r++) {
                            for (float &v : row) v = u(rng);
                            uint8_t *at = rows.data() + r * stride;
                            if (q8) { // the values as stored: d * q, rounded as dequantizing rounds it
                                hg::quantize_row_q8_0_ref(row.data(), at, n);
                                hg::dequantize_row_q8_0_ref(at, row.data(), n);
                            }
                            for (int64_t d = 0; d < n; d++) {
                                if (type == HG_TYPE_F32) {
                                    std::memcpy(at + d * 4, &row[(size_t)d], 4);
                                } else if (type == HG_TYPE_F16) {
                                    const hg::fp16_t h = hg::f32_to_fp16(row[(size_t)d]);
                                    std::memcpy(at + d * 2, &h, 2);
                                    row[(size_t)d] = hg::fp16_to_f32(h);
                                }
                                x[(size_t)(r * n + d)] = row[(size_t)d];
                            }
                        }
                        std::vector<float> w(w_stride * (size_t)n_w), out(o_stride * (size_t)n_w, 12345.0f),
                            one((size_t)n);
                        for (float &v : w) v = p(rng);
                        fn(n, out.data(), o_stride, rows.data(), stride, w.data(), w_stride, n_w, n_rows);
                        for (int j = 0; j < n_w; j++) {
                            const float *wj = &w[(size_t)j * w_stride], *oj = &out[(size_t)j * o_stride];
                            fn(n, one.data(), 0, rows.data(), stride, wj, 0, 1, n_rows);
                            for (int64_t d = 0; d < n; d++) {
                                double want = 0, mag = 0;
                                for (int64_t r = 0; r < n_rows; r++) {
                                    want += (double)wj[r] * x[(size_t)(r * n + d)];
                                    mag += std::fabs((double)wj[r] * x[(size_t)(r * n + d)]);
                                }
                                char what[200];
                                std::snprintf(what, sizeof what,
                                              "%s %s n=%lld rows=%lld weights %d/%d d=%lld: got %.9g want %.9g", l.name,
                                              tname(type), (long long)n, (long long)n_rows, j, n_w, (long long)d, oj[d],
                                              want);
                                CHECK_MSG(std::fabs(oj[d] - want) <= (double)(n_rows + 1) * std::ldexp(mag, -24), what);
                                CHECK_MSG(std::memcmp(&oj[d], &one[(size_t)d], 4) == 0,
                                          std::string(what) + " (alone: another value)");
                                ++compared;
                            }
                            for (size_t d = (size_t)n; d < o_stride; d++) CHECK(oj[d] == 12345.0f);
                        }
                    }
        }
    std::printf("  %d weighted sums compared\n", compared);
}

// The softmax's vector exp (ops/softmax_exp.h) at every level against std::exp: each value
// within 2 ulp (2^-23 relative) or, where std::exp is under FLT_MIN, at most FLT_MIN away;
// the sum within float rounding of n terms. Lengths leave every tail; values from 0 down to
// past the underflow, with -inf, NaN and a max that is not among them.
TEST(simd_exp_sum_matches_std_exp) {
    std::mt19937 rng(99);
    std::uniform_real_distribution<float> u(-110.0f, 0.0f), near(-3.0f, 0.0f);
    int compared = 0;
    for (const auto &l : cpu_levels()) {
        const int isa = std::string(l.name) == "avx512" ? HG_ISA_AVX512 : HG_ISA_AVX2;
        for (int64_t n : {1, 3, 7, 8, 15, 16, 17, 31, 33, 100, 513}) {
            std::vector<float> x(n);
            for (int64_t j = 0; j < n; j++) x[j] = j % 3 ? near(rng) : u(rng);
            if (n > 10) x[3] = -INFINITY, x[5] = 0.0f, x[7] = -87.3f, x[9] = -87.4f;
            const float max = 0.25f; // every exponent x - max <= -0.25
            std::vector<float> got = x;
            const float sum = hg::exp_sum_at(isa, got.data(), n, max);
            double want_sum = 0;
            for (int64_t j = 0; j < n; j++) {
                const float want = std::exp(x[j] - max);
                want_sum += want;
                char what[160];
                std::snprintf(what, sizeof what, "%s exp(%.9g): got %.9g want %.9g", l.name, x[j] - max, got[j], want);
                CHECK_MSG(std::fabs((double)got[j] - want) <= std::max(std::ldexp((double)want, -23), (double)FLT_MIN),
                          what);
                ++compared;
            }
            CHECK_NEAR(sum, want_sum, (n + 4) * std::ldexp(want_sum, -23));
        }
        float special[4] = {NAN, 1.0f, 50.0f, 100.0f};
        hg::exp_sum_at(isa, special, 4, 0.0f);
        CHECK(std::isnan(special[0]));
        CHECK_NEAR(special[1], std::exp(1.0f), std::ldexp(std::exp(1.0), -23));
        CHECK_NEAR(special[2], std::exp(50.0f), std::ldexp(std::exp(50.0), -23));
        CHECK(std::isinf(special[3]));
    }
    std::printf("  %d exponentials compared\n", compared);
}

TEST(simd_q8_0_fill_aux) {
    std::mt19937 rng(11);
    std::vector<float> x(7 * 32);
    fill(x, RANDOM, rng);
    std::vector<uint8_t> q(hg::row_bytes(HG_TYPE_Q8_0, 7 * 32));
    hg::kernels_scalar().from_float[HG_TYPE_Q8_0](x.data(), q.data(), 7 * 32);
    hg::q8_0_aux aux[7];
    hg::q8_0_fill_aux(q.data(), 7 * 32, aux);
    const hg::block_q8_0 *b = reinterpret_cast<const hg::block_q8_0 *>(q.data());
    for (int i = 0; i < 7; ++i) {
        int sum = 0;
        for (int j = 0; j < 32; ++j) sum += b[i].qs[j];
        CHECK(aux[i].sum == sum);
        CHECK(aux[i].d == hg::fp16_to_f32(b[i].d));
    }
    // the aux of a row of an odd number of blocks (34 bytes each) still starts aligned, and
    // rows with their aux end to end stay aligned
    for (int64_t nb : {1, 2, 7, 96}) {
        const size_t off = hg::q8_0_aux_offset(nb * 32), all = hg::q8_0_row_with_aux(nb * 32);
        CHECK(off >= hg::row_bytes(HG_TYPE_Q8_0, nb * 32) &&
              off < hg::row_bytes(HG_TYPE_Q8_0, nb * 32) + alignof(hg::q8_0_aux));
        CHECK(off % alignof(hg::q8_0_aux) == 0 && all % alignof(hg::q8_0_aux) == 0);
        CHECK(all == off + nb * sizeof(hg::q8_0_aux));
    }
}

TEST(simd_from_float_bit_identical) {
    std::mt19937 rng(99);
    const kernel_table &ref = hg::kernels_scalar();
    int compared = 0;
    for (const auto &l : cpu_levels()) {
        for (int t = 0; t < HG_TYPE_COUNT; ++t) {
            hg::from_float_fn fn = l.table->from_float[t];
            if (!fn || !ref.from_float[t]) continue;
            const int64_t bs = hg::type_traits(t)->block_size;
            std::vector<int64_t> sizes = {bs, 2 * bs, 3 * bs, 7 * bs, 13 * bs, 64 * bs};
            if (bs == 1) sizes = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 4096 + 5};
            for (int64_t n : sizes) {
                for (int s = 0; s < N_SHAPES; ++s) {
                    std::vector<float> x(n);
                    fill(x, (shape)s, rng);
                    const size_t nb = hg::row_bytes(t, n);
                    std::vector<uint8_t> a(nb, 0), b(nb, 0); // same prefill: untouched bytes agree
                    ref.from_float[t](x.data(), a.data(), n);
                    fn(x.data(), b.data(), n);
                    size_t at = 0;
                    while (at < nb && a[at] == b[at]) ++at;
                    char what[160];
                    std::snprintf(what, sizeof what, "%s from_float %s n=%lld %s: first differing byte %zu of %zu",
                                  l.name, tname(t), (long long)n, shape_name[s], at, nb);
                    CHECK_MSG(at == nb, what);
                    ++compared;
                }
            }
        }
    }
    std::printf("  %d rows compared\n", compared);
}

// The rounding of q8 quantizers near every halfway point: blocks whose scale is exactly 1
// (amax 127) holding the 64 floats on either side of each k + 0.5 and the tie itself.
TEST(simd_quantizer_rounding_near_ties) {
    const kernel_table &ref = hg::kernels_scalar();
    std::vector<float> vals;
    for (int k = -128; k <= 127; ++k) {
        float t = (float)k + 0.5f, lo = t, hi = t;
        vals.push_back(t);
        for (int j = 0; j < 64; ++j) {
            lo = std::nextafter(lo, -INFINITY);
            hi = std::nextafter(hi, INFINITY);
            vals.push_back(lo);
            vals.push_back(hi);
        }
    }
    std::vector<float> x;
    size_t vi = 0;
    while (vi < vals.size()) { // 256-element rows: element 0 of each 32 pins amax = 127
        for (int j = 0; j < 256; ++j) {
            if (j % 32 == 0)
                x.push_back((j / 32) % 2 ? -127.0f : 127.0f);
            else
                x.push_back(vi < vals.size() ? std::max(-127.0f, std::min(127.0f, vals[vi++])) : 0.0f);
        }
    }
    const int64_t n = (int64_t)x.size();
    for (const auto &l : cpu_levels())
        for (int t : {HG_TYPE_Q8_0, HG_TYPE_Q8_1, HG_TYPE_Q8_K}) {
            if (!l.table->from_float[t] || !ref.from_float[t]) continue;
            const size_t nb = hg::row_bytes(t, n);
            std::vector<uint8_t> a(nb, 0), b(nb, 0);
            ref.from_float[t](x.data(), a.data(), n);
            l.table->from_float[t](x.data(), b.data(), n);
            CHECK_MSG(a == b, std::string(l.name) + " " + tname(t));
        }
}

// ---- timing (printed only) ----

namespace {

double time_ns(const std::function<void()> &f, int reps) {
    double best = 1e30;
    for (int round = 0; round < 5; ++round) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; ++r) f();
        const auto t1 = std::chrono::steady_clock::now();
        best = std::min(best, std::chrono::duration<double, std::nano>(t1 - t0).count() / reps);
    }
    return best;
}

volatile float g_sink;

} // namespace

TEST(simd_timing) {
    const int64_t n = 4096;
    const auto lv = cpu_levels();
    const kernel_table *avx2 = nullptr, *avx512 = nullptr;
    for (const auto &l : lv) (std::string(l.name) == "avx2" ? avx2 : avx512) = l.table;
    std::mt19937 rng(7);
    std::printf("  ns per %lld-element call (best of 5; '-' = no entry, falls back)\n", (long long)n);
    std::printf("  %-16s %10s %10s %10s %9s %9s\n", "kernel", "scalar", "avx2", "avx512", "x avx2", "x avx512");
    auto row = [&](const char *name, const std::function<void(const kernel_table &)> &call,
                   const std::function<bool(const kernel_table *)> &has) {
        double ns[3] = {-1, -1, -1};
        const kernel_table *tabs[3] = {&hg::kernels_scalar(), avx2, avx512};
        const int reps[3] = {200, 4000, 4000};
        for (int k = 0; k < 3; ++k)
            if (has(tabs[k])) ns[k] = time_ns([&] { call(*tabs[k]); }, reps[k]);
        char c[3][16], x[2][16];
        for (int k = 0; k < 3; ++k) std::snprintf(c[k], 16, ns[k] < 0 ? "-" : "%.0f", ns[k]);
        for (int k = 0; k < 2; ++k)
            std::snprintf(x[k], 16, ns[k + 1] < 0 || ns[0] < 0 ? "" : "%.1f", ns[0] / ns[k + 1]);
        std::printf("  %-16s %10s %10s %10s %9s %9s\n", name, c[0], c[1], c[2], x[0], x[1]);
    };
    for (int t : kDotTypes) {
        case_data c = make_case(t, n, RANDOM, RANDOM, rng);
        if (!c.ok) c = make_case(t, n, N_SHAPES, RANDOM, rng);
        if (!c.ok) continue;
        std::string name = std::string("dot ") + tname(t);
        row(
            name.c_str(),
            [&](const kernel_table &k) {
                float s;
                k.vec_dot[t](n, &s, c.w.data(), c.a.data());
                g_sink = s;
            },
            [&](const kernel_table *k) { return k && k->vec_dot[t]; });
    }
    // a whole tile per call: compare with kDotTileRows * kDotTileCols dots above
    for (int t : kDotTypes) {
        if (!hg::kernels_scalar().vec_dot_tile[t]) continue;
        case_data c = make_case(t, n, RANDOM, RANDOM, rng);
        if (!c.ok) continue;
        std::vector<uint8_t> W, A;
        for (int r = 0; r < hg::kDotTileRows; ++r) W.insert(W.end(), c.w.begin(), c.w.end());
        for (int r = 0; r < hg::kDotTileCols; ++r) A.insert(A.end(), c.a.begin(), c.a.end());
        char name[32];
        std::snprintf(name, sizeof name, "tile%dx%d %s", hg::kDotTileRows, hg::kDotTileCols, tname(t));
        row(
            name,
            [&](const kernel_table &k) {
                float s[hg::kDotTileRows * hg::kDotTileCols];
                k.vec_dot_tile[t](n, s, hg::kDotTileRows, W.data(), c.w.size(), A.data(), c.a.size());
                g_sink = s[0];
            },
            [&](const kernel_table *k) { return k && k->vec_dot_tile[t]; });
    }
    // a whole row block per call, plain and packed, 1 and kRowBlockCols columns: compare with
    // kRowBlock * nc dots
    for (const bool packed : {false, true})
        for (int t : kDotTypes) {
            auto fn = [&](const kernel_table *k) {
                return !k ? nullptr : packed ? k->vec_dot_rows_packed[t] : k->vec_dot_rows[t];
            };
            if (!fn(&hg::kernels_scalar())) continue;
            case_data c = make_case(t, n, RANDOM, RANDOM, rng);
            if (!c.ok) continue;
            const bool aux = hg::type_traits(t)->vec_dot_type == HG_TYPE_Q8_0; // else q8_K or f32 columns
            const size_t by = aux ? hg::q8_0_row_with_aux(n) : c.a.size();
            std::vector<uint8_t> W, A(by * hg::kRowBlockCols);
            for (int r = 0; r < hg::kRowBlock; ++r) W.insert(W.end(), c.w.begin(), c.w.end());
            if (packed) {
                std::vector<uint8_t> P(W.size());
                hg::pack_rows(t, W.data(), hg::kRowBlock, n, 0, hg::kRowBlock, P.data());
                W = P;
            }
            for (int r = 0; r < hg::kRowBlockCols; ++r) {
                std::memcpy(&A[r * by], c.a.data(), c.a.size());
                if (aux)
                    hg::q8_0_fill_aux(&A[r * by], n,
                                      reinterpret_cast<hg::q8_0_aux *>(&A[r * by + hg::q8_0_aux_offset(n)]));
            }
            for (int nc : {1, hg::kRowBlockCols}) {
                char name[32];
                std::snprintf(name, sizeof name, "%s%dx%d %s", packed ? "packed" : "rows", hg::kRowBlock, nc, tname(t));
                row(
                    name,
                    [&](const kernel_table &k) {
                        float s[hg::kRowBlock * hg::kRowBlockCols];
                        fn (&k)(n, s, hg::kRowBlock, W.data(), c.w.size(), A.data(), by, nc);
                        g_sink = s[0];
                    },
                    [&](const kernel_table *k) { return fn(k) != nullptr; });
            }
        }
    std::vector<float> x(n);
    fill(x, RANDOM, rng);
    std::vector<uint8_t> out(n * 4);
    for (int t : kActTypes) {
        std::string name = std::string("quantize ") + tname(t);
        row(
            name.c_str(), [&](const kernel_table &k) { k.from_float[t](x.data(), out.data(), n); },
            [&](const kernel_table *k) { return k && k->from_float[t]; });
    }
}

HG_TEST_MAIN()
