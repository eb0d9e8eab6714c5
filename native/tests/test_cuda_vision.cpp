// The vision paths' CUDA ops (cuda/vision_ops.h) against the CPU engine's ops and scalar
// references over odd shapes, then the whole CLIP tower and projectors (the golden tiny files
// in every weight type) and the whole VQGAN decode (the tiny synthetic model against torch's
// image, and the real 256 x 256 geometry against the CPU) on the device. Without a device the
// binary prints "skipped: no CUDA device" and every GPU test ends as skipped; what runs
// everywhere: the ops' argument checks and what gpu 'cuda' / 'auto' do on a machine without one.
//
// Tolerances, from the arithmetic: every device product is f32 with another order of additions
// than the CPU's, so an op's error is bounded by (terms + 2) * 2^-23 of the sum of |terms|.
// Whole models: see clip_tolerance and the VQGAN PSNR floors.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "core/threadpool.h"
#include "cuda/backend.h"
#include "cuda/vision_ops.h"
#include "healthgpt.h"
#include "models/clip.h"
#include "models/vqgan.h"
#include "ops/conv2d.h"
#include "ops/gelu.h"
#include "ops/group_norm.h"
#include "ops/layer_norm.h"
#include "ops/matmul.h"
#include "ops/patch_embed.h"
#include "ops/spatial_attention.h"
#include "ops/upsample.h"
#include "ops/vit_attention.h"
#include "quant/quant.h"
#include "tests/check.h"
#include "tests/cuda_device.h"
#include "tests/vqgan_synth.h"

namespace {

constexpr double kEps = 1.0 / (1 << 23); // float's unit roundoff, twice over

using cuda_test::Dev;
using cuda_test::need_device;

std::vector<float> randn(size_t n, uint32_t seed, float mean = 0.0f, float std = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(mean, std);
    std::vector<float> v(n);
    for (float &x : v) x = d(rng);
    return v;
}

std::vector<float> absf(std::vector<float> v) {
    for (float &x : v) x = std::fabs(x);
    return v;
}

// Element by element |got - want| <= bound[i] (bound empty: tol), reporting the first few misses.
int count_misses(const std::string &what, const std::vector<float> &got, const std::vector<float> &want,
                 const std::function<double(size_t)> &bound) {
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < want.size(); i++) {
        const double d = std::fabs((double)got[i] - want[i]), b = bound(i);
        worst = std::max(worst, d / b);
        if (!(d <= b) && bad++ < 3)
            std::fprintf(stderr, "    %s [%zu]: %.8g, want %.8g (bound %.2e)\n", what.c_str(), i, got[i], want[i], b);
    }
    std::printf("  %-44s worst %.3f of its bound\n", what.c_str(), worst);
    return bad;
}

std::string error_of(const std::function<void()> &fn) {
    try {
        fn();
    } catch (const hg::Error &e) {
        return e.what();
    }
    return "";
}
bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

std::vector<float> to_float_rows(int type, const std::vector<uint8_t> &w, size_t n) {
    std::vector<float> f(n);
    hg::type_traits(type)->to_float(w.data(), f.data(), (int64_t)n);
    return f;
}

std::vector<uint8_t> from_float(int type, const std::vector<float> &f) {
    std::vector<uint8_t> w(hg::row_bytes(type, (int64_t)f.size()));
    hg::type_traits(type)->from_float_ref(f.data(), w.data(), (int64_t)f.size());
    return w;
}

float bf16_round(float v) {
    std::vector<uint8_t> b = from_float(HG_TYPE_BF16, {v});
    return to_float_rows(HG_TYPE_BF16, b, 1)[0];
}

// ---- argument checks (no device needed: they come before any launch) ----

TEST(ops_refuse_bad_arguments) {
    float *p = reinterpret_cast<float *>(uintptr_t(256)); // never dereferenced: checks come first
    CHECK(
        contains(error_of([&] { hg::cuda::vit_attention(p, p, p, 400, 7, 2, 200, p, 400, nullptr); }), "head_dim 200"));
    CHECK(contains(error_of([&] { hg::cuda::gemm(HG_TYPE_Q8_0, p, 4, 32, p, 32, 2, nullptr, p, 4, false, nullptr); }),
                   "not f32, f16 or bf16"));
    hg::cuda::conv2d_shape s;
    s.c_in = 3, s.c_out = 4, s.kh = s.kw = 5;
    CHECK(contains(error_of([&] { hg::cuda::conv2d(HG_TYPE_F32, p, nullptr, s, p, 3, 3, p + 64, false, nullptr); }),
                   "does not fit"));
    CHECK(contains(error_of([&] { hg::cuda::conv2d(HG_TYPE_Q8_0, p, nullptr, s, p, 9, 9, p + 64, false, nullptr); }),
                   "f32 or f16"));
    CHECK(contains(error_of([&] { hg::cuda::group_norm(p, p, 5, 48, 32, p, p, 1e-6f, true, p, nullptr); }),
                   "48 channels in 32 groups"));
    CHECK(
        contains(error_of([&] { hg::cuda::codebook_rows(HG_TYPE_BF16, p, 4, nullptr, 2, p, nullptr); }), "f32 or f16"));
    CHECK(contains(
        error_of([&] { hg::cuda::gemm_tensor_cores(HG_TYPE_F32, p, 4, 32, p, 32, 2, nullptr, p, 4, false, nullptr); }),
        "no tensor-core path"));
}

// ---- products ----

float f16_round(float v) { return hg::fp16_to_f32(hg::f32_to_fp16(v)); }

// y = W x + b (and y += that) for f32 / f16 / bf16 weights, on the f32 tile and on tensor cores,
// against a double sum over the values each path is meant to see (activations rounded to bf16
// for bf16 weights on both, to f16 for f16 weights on tensor cores); the CPU's own matmul on the
// same inputs within the same bound doubled (plus f16's rounding where only one side rounds).
TEST(gemm_matches_cpu) {
    need_device();
    hg::ThreadPool pool(2);
    struct Case {
        int64_t rows, k, n;
    };
    for (bool tc : {false, true})
        for (int type : {HG_TYPE_F32, HG_TYPE_F16, HG_TYPE_BF16})
            for (Case c :
                 {Case{1, 1, 1}, Case{37, 45, 29}, Case{130, 96, 70}, Case{64, 588, 65}, Case{200, 1024, 129}}) {
                if (tc && type == HG_TYPE_F32) continue; // one path
                hg::cuda::gemm_use_tensor_cores(tc);
                const bool f16_act = tc && type == HG_TYPE_F16;
                const std::vector<float> wf0 = randn((size_t)(c.rows * c.k), 11, 0.0f, 0.5f);
                const std::vector<uint8_t> w = from_float(type, wf0);
                const std::vector<float> wf = to_float_rows(type, w, wf0.size());
                const std::vector<float> x = randn((size_t)(c.k * c.n), 12), b = randn((size_t)c.rows, 13);
                const int64_t ldy = c.rows + 3;
                std::vector<float> y0((size_t)(ldy * c.n));
                for (size_t i = 0; i < y0.size(); i++) y0[i] = (float)(i % 5) - 2.0f;
                for (bool acc : {false, true}) {
                    Dev dw = Dev::of(w), dx = Dev::of(x), db = Dev::of(b), dy = Dev::of(y0);
                    hg::cuda::gemm(type, dw.p<void>(), c.rows, c.k, dx.p<float>(), c.k, c.n, db.p<float>(),
                                   dy.p<float>(), ldy, acc, nullptr);
                    const std::vector<float> y = dy.read<float>(y0.size());
                    std::vector<float> want(y0.size()), bound(y0.size());
                    for (int64_t j = 0; j < c.n; j++)
                        for (int64_t r = 0; r < ldy; r++) {
                            const size_t o = (size_t)(j * ldy + r);
                            if (r >= c.rows) { // gaps untouched
                                want[o] = y0[o], bound[o] = 0;
                                continue;
                            }
                            double s = 0, sa = 0;
                            for (int64_t i = 0; i < c.k; i++) {
                                float xv = x[(size_t)(j * c.k + i)];
                                if (type == HG_TYPE_BF16) xv = bf16_round(xv);
                                if (f16_act) xv = f16_round(xv);
                                s += (double)wf[(size_t)(r * c.k + i)] * xv;
                                sa += std::fabs((double)wf[(size_t)(r * c.k + i)] * xv);
                            }
                            s += b[(size_t)r], sa += std::fabs(b[(size_t)r]);
                            if (acc) s += y0[o], sa += std::fabs(y0[o]);
                            want[o] = (float)s, bound[o] = (float)((c.k + 3) * kEps * sa + 1e-30);
                        }
                    CHECK(count_misses(std::string(hg::type_traits(type)->name) + (tc ? " tensor-core" : "") +
                                           " gemm " + std::to_string(c.rows) + "x" + std::to_string(c.k) + "x" +
                                           std::to_string(c.n) + (acc ? " +=" : ""),
                                       y, want, [&](size_t i) { return (double)bound[i]; }) == 0);
                    if (acc) continue;
                    // the CPU engine: W x, then the bias
                    std::vector<float> cpu((size_t)(c.rows * c.n));
                    hg::matmul(pool, type, w.data(), c.rows, c.k, x.data(), c.n, cpu.data());
                    hg::add_bias(cpu.data(), b.data(), c.rows, c.n);
                    int bad = 0;
                    for (int64_t j = 0; j < c.n; j++)
                        for (int64_t r = 0; r < c.rows; r++) {
                            const size_t o = (size_t)(j * ldy + r);
                            // the CPU may round f16 activations where this path does not, or the reverse:
                            // allow that rounding's share (2^-11 of sum |w x|)
                            const double extra = type == HG_TYPE_F16 ? 1.0 / 2048 : 0.0;
                            const double bnd = 2 * bound[o] + extra * (bound[o] / ((c.k + 3) * kEps));
                            if (std::fabs(y[o] - cpu[(size_t)(j * c.rows + r)]) > bnd) bad++;
                        }
                    CHECK_MSG(bad == 0, std::to_string(bad) + " values differ from the CPU's matmul");
                }
            }
    hg::cuda::gemm_use_tensor_cores(true);
}

TEST(gemm_f32_strided_matches_reference) {
    need_device();
    // C[n][m] = sum_k A[k][m] B[n][k]: A read transposed (a_m = 1, a_k = M)
    const int64_t M = 67, N = 33, K = 81;
    const std::vector<float> a = randn((size_t)(M * K), 21), b = randn((size_t)(N * K), 22);
    Dev da = Dev::of(a), dbuf = Dev::of(b), dc((size_t)(M * N) * 4);
    hg::cuda::gemm_f32(da.p<float>(), 1, M, dbuf.p<float>(), K, 1, M, N, K, dc.p<float>(), M, nullptr);
    const std::vector<float> c = dc.read<float>((size_t)(M * N));
    std::vector<float> want(c.size()), bound(c.size());
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            double s = 0, sa = 0;
            for (int64_t k = 0; k < K; k++) {
                const double t = (double)a[(size_t)(k * M + m)] * b[(size_t)(n * K + k)];
                s += t, sa += std::fabs(t);
            }
            want[(size_t)(n * M + m)] = (float)s, bound[(size_t)(n * M + m)] = (float)((K + 2) * kEps * sa);
        }
    CHECK(count_misses("gemm_f32 transposed A", c, want, [&](size_t i) { return (double)bound[i]; }) == 0);
}

// conv2d against the CPU's scalar reference (torch-order weights, double sums) over the values
// each path is meant to see (activations rounded to f16 for f16 weights on tensor cores, as
// hg::matmul pairs them); the bound, (K + 3) roundings of float, comes from the same reference
// run on |w| and |x| (f16 products are exact in the tensor cores' f32 sums).
TEST(conv2d_matches_reference) {
    need_device();
    struct Case {
        int64_t h, w, c_in, c_out, k, stride, pt, pl, pb, pr;
    };
    for (bool tc : {false, true})
        for (int type : {HG_TYPE_F32, HG_TYPE_F16})
            for (Case c : {Case{7, 5, 5, 9, 3, 1, 1, 1, 1, 1}, Case{9, 11, 19, 70, 1, 1, 0, 0, 0, 0},
                           Case{10, 9, 6, 33, 3, 2, 0, 0, 1, 1}, Case{16, 16, 32, 64, 3, 1, 1, 1, 1, 1},
                           Case{9, 13, 128, 3, 3, 1, 1, 1, 1, 1}}) { // conv_out's shape: 3 rows, K 1152
                if (tc && type == HG_TYPE_F32) continue;             // one path
                hg::cuda::gemm_use_tensor_cores(tc);
                const bool f16_act = tc && type == HG_TYPE_F16;
                const int64_t K = c.k * c.k * c.c_in;
                std::vector<float> wt = randn((size_t)(c.c_out * K), 31, 0.0f, 0.3f);
                if (type == HG_TYPE_F16)
                    for (float &v : wt) v = f16_round(v);
                const std::vector<float> x = randn((size_t)(c.h * c.w * c.c_in), 32), bias = randn((size_t)c.c_out, 33);
                std::vector<float> xr = x; // what the path multiplies
                if (f16_act)
                    for (float &v : xr) v = f16_round(v);
                hg::Conv2dGeom g;
                g.stride = c.stride, g.pad_top = c.pt, g.pad_left = c.pl, g.pad_bottom = c.pb, g.pad_right = c.pr;
                const int64_t oh = hg::conv2d_out_size(c.h, c.k, c.stride, c.pt, c.pb);
                const int64_t ow = hg::conv2d_out_size(c.w, c.k, c.stride, c.pl, c.pr);
                std::vector<float> want((size_t)(oh * ow * c.c_out)), mag(want.size());
                hg::conv2d_ref(wt.data(), bias.data(), c.c_in, c.c_out, c.k, c.k, g, xr.data(), c.h, c.w, want.data());
                hg::conv2d_ref(absf(wt).data(), absf(bias).data(), c.c_in, c.c_out, c.k, c.k, g, absf(xr).data(), c.h,
                               c.w, mag.data());
                // the device reads conv2d's (ky, kx, c_in) rows in the file's type
                std::vector<uint8_t> reordered;
                if (type == HG_TYPE_F32) {
                    reordered.resize(wt.size() * 4);
                    hg::conv2d_weight_from_torch(wt.data(), 4, c.c_out, c.c_in, c.k, c.k, reordered.data());
                } else {
                    std::vector<hg::fp16_t> h(wt.size());
                    for (size_t i = 0; i < wt.size(); i++) h[i] = hg::f32_to_fp16(wt[i]);
                    reordered.resize(wt.size() * 2);
                    hg::conv2d_weight_from_torch(h.data(), 2, c.c_out, c.c_in, c.k, c.k, reordered.data());
                }
                hg::cuda::conv2d_shape s;
                s.c_in = c.c_in, s.c_out = c.c_out, s.kh = s.kw = c.k, s.stride = c.stride;
                s.pad_top = c.pt, s.pad_left = c.pl, s.pad_bottom = c.pb, s.pad_right = c.pr;
                const std::vector<float> y0 = randn(want.size(), 34); // accumulate: y0 + (conv + bias)
                for (bool acc : {false, true}) {
                    Dev dw = Dev::of(reordered), dx = Dev::of(x), db = Dev::of(bias), dy = Dev::of(y0);
                    hg::cuda::conv2d(type, dw.p<void>(), db.p<float>(), s, dx.p<float>(), c.h, c.w, dy.p<float>(), acc,
                                     nullptr);
                    const std::vector<float> y = dy.read<float>(want.size());
                    std::vector<float> w2 = want;
                    if (acc)
                        for (size_t i = 0; i < w2.size(); i++) w2[i] += y0[i];
                    char name[112];
                    std::snprintf(name, sizeof name, "%s%s conv %lldx%lld s%lld %lldx%lldx%lld->%lld%s",
                                  type == HG_TYPE_F32 ? "f32" : "f16", tc ? " tensor-core" : "", (long long)c.k,
                                  (long long)c.k, (long long)c.stride, (long long)c.h, (long long)c.w,
                                  (long long)c.c_in, (long long)c.c_out, acc ? " +=" : "");
                    CHECK(count_misses(name, y, w2, [&](size_t i) {
                              return (K + 3) * kEps * (mag[i] + (acc ? std::fabs(y0[i]) : 0.0)) + 1e-30;
                          }) == 0);
                }
            }
    hg::cuda::gemm_use_tensor_cores(true);
}

// ---- normalisation and element-wise ----

TEST(layer_norm_matches_reference) {
    need_device();
    for (int64_t n : {1, 7, 77, 1024, 1031}) {
        const std::vector<float> x = randn((size_t)(5 * n), (uint32_t)n, 50.0f, 3.0f),
                                 w = randn((size_t)n, 2, 1.0f, 0.2f), b = randn((size_t)n, 3, 0.0f, 0.2f);
        std::vector<float> want(x.size());
        hg::layer_norm_ref(x.data(), w.data(), b.data(), want.data(), n, 5, 1e-5f);
        Dev dx = Dev::of(x), dw = Dev::of(w), db = Dev::of(b);
        hg::cuda::layer_norm(dx.p<float>(), dw.p<float>(), db.p<float>(), dx.p<float>(), n, 5, 1e-5f, nullptr);
        const std::vector<float> y = dx.read<float>(x.size());
        // float sums of n values (the mean of values near 50 loses ~n ulps of 50 relative to the
        // spread 3): (n + 8) * 2^-23 * 50 / 3 of the normalised value, times |w|, plus the bias' ulp
        CHECK(count_misses("layer_norm n " + std::to_string(n), y, want, [&](size_t i) {
                  return (n + 8) * kEps * (50.0 / 3.0) * (std::fabs(want[i]) + 3.0) + 1e-6;
              }) == 0);
    }
}

TEST(group_norm_matches_reference) {
    need_device();
    struct Case {
        int64_t n_pos, c, groups;
    };
    for (Case c : {Case{1, 32, 32}, Case{37, 64, 32}, Case{1000, 96, 32}, Case{4099, 128, 32}})
        for (bool swish : {false, true}) {
            const std::vector<float> x = randn((size_t)(c.n_pos * c.c), (uint32_t)c.n_pos, 2.0f, 1.5f),
                                     gm = randn((size_t)c.c, 5, 1.0f, 0.2f), bt = randn((size_t)c.c, 6, 0.0f, 0.2f);
            std::vector<float> want(x.size());
            hg::group_norm_ref(x.data(), want.data(), c.n_pos, c.c, c.groups, gm.data(), bt.data(), 1e-6f, swish);
            Dev dx = Dev::of(x), dg = Dev::of(gm), db = Dev::of(bt), dy(x.size() * 4),
                sc((size_t)hg::cuda::group_norm_scratch_floats(c.groups) * 4);
            hg::cuda::group_norm(dx.p<float>(), dy.p<float>(), c.n_pos, c.c, c.groups, dg.p<float>(), db.p<float>(),
                                 1e-6f, swish, sc.p<float>(), nullptr);
            const std::vector<float> y = dy.read<float>(x.size());
            // float partial sums over a split's share of a group (folded in double): about
            // share * 2^-23 of the mean's and variance's scale
            const double share = (double)(c.n_pos * (c.c / c.groups)) / 64 + 256;
            CHECK(count_misses(
                      "group_norm " + std::to_string(c.n_pos) + "x" + std::to_string(c.c) + (swish ? " swish" : ""), y,
                      want, [&](size_t i) { return share * kEps * 4 * (std::fabs(want[i]) + 1.0) + 1e-6; }) == 0);
        }
}

TEST(bias_activations_match_cpu) {
    need_device();
    const int64_t n = 37, rows = 9;
    const std::vector<float> x0 = randn((size_t)(n * rows), 41, 0.0f, 4.0f), b = randn((size_t)n, 42);
    for (int kind : {hg::cuda::BIAS_ONLY, hg::cuda::BIAS_QUICK_GELU, hg::cuda::BIAS_GELU_ERF}) {
        std::vector<float> want = x0;
        if (kind == hg::cuda::BIAS_ONLY) hg::add_bias(want.data(), b.data(), n, rows);
        if (kind == hg::cuda::BIAS_QUICK_GELU) hg::bias_quick_gelu(want.data(), b.data(), n, rows);
        if (kind == hg::cuda::BIAS_GELU_ERF) hg::bias_gelu_erf(want.data(), b.data(), n, rows);
        Dev dx = Dev::of(x0), db = Dev::of(b);
        hg::cuda::bias_act(dx.p<float>(), db.p<float>(), n, rows, kind, nullptr);
        const std::vector<float> y = dx.read<float>(x0.size());
        // one float exp / erf each: a few ulps either side
        CHECK(count_misses("bias_act " + std::to_string(kind), y, want,
                           [&](size_t i) { return 8 * kEps * (std::fabs(want[i]) + 1.0); }) == 0);
    }
    // y + (t + b), the CPU's order: exact
    const std::vector<float> t = randn((size_t)(n * rows), 43);
    std::vector<float> want = x0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) want[(size_t)(r * n + i)] += t[(size_t)(r * n + i)] + b[(size_t)i];
    Dev dy = Dev::of(x0), dt = Dev::of(t), db = Dev::of(b);
    hg::cuda::add_bias_residual(dy.p<float>(), dt.p<float>(), db.p<float>(), n, rows, nullptr);
    CHECK(dy.read<float>(want.size()) == want);
}

// ---- data movement: exact ----

TEST(reshapes_match_cpu_exactly) {
    need_device();
    hg::ThreadPool pool(2);
    { // CLIP's patch columns
        const int64_t C = 3, H = 28, W = 42, P = 14, np = (H / P) * (W / P);
        const std::vector<float> px = randn((size_t)(C * H * W), 51);
        std::vector<float> want((size_t)(np * C * P * P));
        hg::patch_im2col(px.data(), C, H, W, P, want.data());
        Dev dp = Dev::of(px), dc(want.size() * 4);
        hg::cuda::patch_im2col(dp.p<float>(), C, H, W, P, dc.p<float>(), nullptr);
        CHECK(dc.read<float>(want.size()) == want);
    }
    { // nearest x2
        const int64_t h = 5, w = 7, c = 3;
        const std::vector<float> x = randn((size_t)(h * w * c), 52);
        std::vector<float> want((size_t)(4 * h * w * c));
        hg::upsample_nearest2x(pool, x.data(), h, w, c, want.data());
        Dev dx = Dev::of(x), dy(want.size() * 4);
        hg::cuda::upsample_nearest2x(dx.p<float>(), h, w, c, dy.p<float>(), nullptr);
        CHECK(dy.read<float>(want.size()) == want);
    }
    { // codebook rows (f32 and f16) and the channels-first image
        const int64_t dim = 19, n_embed = 23, n = 11;
        const std::vector<float> book = randn((size_t)(dim * n_embed), 53);
        std::vector<hg::fp16_t> book16(book.size());
        for (size_t i = 0; i < book.size(); i++) book16[i] = hg::f32_to_fp16(book[i]);
        std::vector<int32_t> idx((size_t)n);
        for (int64_t i = 0; i < n; i++) idx[(size_t)i] = (int32_t)((i * 7 + 3) % n_embed);
        std::vector<float> want((size_t)(n * dim)), want16(want.size());
        for (int64_t i = 0; i < n; i++)
            for (int64_t e = 0; e < dim; e++) {
                want[(size_t)(i * dim + e)] = book[(size_t)(idx[(size_t)i] * dim + e)];
                want16[(size_t)(i * dim + e)] = hg::fp16_to_f32(book16[(size_t)(idx[(size_t)i] * dim + e)]);
            }
        Dev db = Dev::of(book), db16 = Dev::of(book16), di = Dev::of(idx), dz(want.size() * 4);
        hg::cuda::codebook_rows(HG_TYPE_F32, db.p<void>(), dim, di.p<int32_t>(), n, dz.p<float>(), nullptr);
        CHECK(dz.read<float>(want.size()) == want);
        hg::cuda::codebook_rows(HG_TYPE_F16, db16.p<void>(), dim, di.p<int32_t>(), n, dz.p<float>(), nullptr);
        CHECK(dz.read<float>(want.size()) == want16);
        std::vector<float> chw(want.size());
        for (int64_t p = 0; p < n; p++)
            for (int64_t e = 0; e < dim; e++) chw[(size_t)(e * n + p)] = want[(size_t)(p * dim + e)];
        Dev dt(want.size() * 4);
        hg::cuda::codebook_rows(HG_TYPE_F32, db.p<void>(), dim, di.p<int32_t>(), n, dz.p<float>(), nullptr);
        hg::cuda::to_chw(dz.p<float>(), n, dim, dt.p<float>(), nullptr);
        CHECK(dt.read<float>(chw.size()) == chw);
        hg::cuda::to_hwc(dt.p<float>(), n, dim, dz.p<float>(), nullptr); // and back
        CHECK(dz.read<float>(want.size()) == want);
    }
}

TEST(argmax_rows_takes_the_first_maximum) {
    need_device();
    const int64_t rows = 9, n = 8192 + 7;
    std::vector<float> x = randn((size_t)(rows * n), 55);
    x[(size_t)(3 * n + 100)] = 50.0f, x[(size_t)(3 * n + 5000)] = 50.0f; // a tie: the first wins
    x[(size_t)(4 * n + n - 1)] = 60.0f;                                  // the last value
    // NaN as the CPU takes it: skipped (row 5, a lane's first value), or a first logit that
    // wins (row 6); a row of -infinity gives its first index (row 7)
    x[(size_t)(5 * n + 5)] = NAN, x[(size_t)(5 * n + 37)] = 70.0f;
    x[(size_t)(6 * n)] = NAN, x[(size_t)(6 * n + 9)] = 70.0f;
    for (int64_t i = 0; i < n; i++) x[(size_t)(7 * n + i)] = -INFINITY;
    std::vector<int32_t> want((size_t)rows);
    for (int64_t r = 0; r < rows; r++) {
        int64_t best = 0;
        for (int64_t i = 1; i < n; i++)
            if (x[(size_t)(r * n + i)] > x[(size_t)(r * n + best)]) best = i;
        want[(size_t)r] = (int32_t)best;
    }
    CHECK(want[3] == 100 && want[4] == n - 1 && want[5] == 37 && want[6] == 0 && want[7] == 0);
    Dev dx = Dev::of(x), di((size_t)rows * 4);
    hg::cuda::argmax_rows(dx.p<float>(), rows, n, di.p<int32_t>(), nullptr);
    CHECK(di.read<int32_t>((size_t)rows) == want);
}

// ---- attention ----

// The output is a convex combination of values: float scores of d terms and sums over n keys
// stay within (n + d) * 2^-23 of max |v|; 8 times that leaves room for the exp of the scores'
// error and another order of additions, and still catches a wrong key, head or scale.
TEST(vit_attention_matches_reference) {
    need_device();
    struct Case {
        int64_t n_pos, heads, hd;
    };
    for (Case c : {Case{1, 1, 8}, Case{77, 3, 16}, Case{65, 2, 40}, Case{130, 2, 33}, Case{577, 2, 64}}) {
        const int64_t stride = c.heads * c.hd + 5, out_stride = c.heads * c.hd + 3;
        const std::vector<float> q = randn((size_t)(c.n_pos * stride), 61), k = randn((size_t)(c.n_pos * stride), 62),
                                 v = randn((size_t)(c.n_pos * stride), 63);
        std::vector<float> want((size_t)(c.n_pos * out_stride), 0.0f);
        hg::vit_attention_ref(q.data(), k.data(), v.data(), stride, c.n_pos, c.heads, c.hd, want.data(), out_stride);
        Dev dq = Dev::of(q), dk = Dev::of(k), dv = Dev::of(v), dout = Dev::of(want);
        hg::cuda::vit_attention(dq.p<float>(), dk.p<float>(), dv.p<float>(), stride, c.n_pos, c.heads, c.hd,
                                dout.p<float>(), out_stride, nullptr);
        const std::vector<float> y = dout.read<float>(want.size());
        double vmax = 0;
        for (float t : v) vmax = std::max(vmax, (double)std::fabs(t));
        const double bound = 8 * (c.n_pos + c.hd + 8) * kEps * vmax;
        CHECK(count_misses("vit_attention " + std::to_string(c.n_pos) + " pos, head_dim " + std::to_string(c.hd), y,
                           want, [&](size_t) { return bound; }) == 0);
    }
}

TEST(spatial_attention_matches_reference) {
    need_device();
    for (int64_t n : {1, 70, 256})
        for (int64_t c : {32, 48}) {
            const std::vector<float> q = randn((size_t)(n * c), 71), k = randn((size_t)(n * c), 72),
                                     v = randn((size_t)(n * c), 73);
            std::vector<float> want((size_t)(n * c));
            hg::spatial_attention_ref(q.data(), k.data(), v.data(), n, c, want.data());
            Dev dq = Dev::of(q), dk = Dev::of(k), dv = Dev::of(v), ds((size_t)(n * n) * 4), dout(want.size() * 4);
            hg::cuda::spatial_attention(dq.p<float>(), dk.p<float>(), dv.p<float>(), n, c, ds.p<float>(),
                                        dout.p<float>(), nullptr);
            const std::vector<float> y = dout.read<float>(want.size());
            double vmax = 0;
            for (float t : v) vmax = std::max(vmax, (double)std::fabs(t));
            const double bound = 8 * (n + c + 8) * kEps * vmax;
            CHECK(count_misses("spatial_attention " + std::to_string(n) + " x " + std::to_string(c), y, want,
                               [&](size_t) { return bound; }) == 0);
        }
}

// ---- whole models ----

std::string clip_fixture(const std::string &variant) { return "test/fixtures/clip/tiny." + variant + ".gguf"; }

// max |got - ref| / max |ref|
double max_rel(const std::vector<float> &got, const std::vector<float> &ref) {
    double d = 0, m = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        d = std::max(d, (double)std::fabs(got[i] - ref[i]));
        m = std::max(m, (double)std::fabs(ref[i]));
    }
    return d / m;
}

// GPU against CPU on the same file. f32: both f32, the order of additions apart (test_clip's
// 1e-4 against transformers). f16: the CPU rounds activations to f16 before each product, as
// the device does on tensor cores (its CUDA-core path keeps f32, as transformers does), and
// the two round values a few ulps apart to neighbouring halves: test_clip's f16 limit against
// transformers, 1.5e-3.
// bf16 / q8_0: both round activations (bf16, q8_0 blocks), and a value the two engines compute a
// few ulps apart can round to neighbouring steps; test_clip's limits, 1e-2 and 3e-2.
double clip_tolerance(const std::string &variant) {
    return variant == "f32" ? 1e-4 : variant == "f16" ? 1.5e-3 : variant == "bf16" ? 1e-2 : 3e-2;
}

TEST(clip_on_device_matches_cpu) {
    need_device();
    hg::ThreadPool pool(2);
    for (std::string variant : {"f32", "f16", "bf16", "q8_0"}) {
        auto cpu = hg::ClipModel::load(hg::GGUFFile::open(clip_fixture(variant)));
        auto gpu = hg::ClipModel::load(hg::GGUFFile::open(clip_fixture(variant)), nullptr, true, HG_GPU_CUDA);
        CHECK(contains(gpu->backend(), "cuda: "));
        const hg::ClipHParams &hp = cpu->hparams();
        const std::vector<float> px = randn((size_t)(3 * hp.image_size * hp.image_size), 81);
        const size_t per = (size_t)(hp.n_patches() * hp.n_embd);
        std::vector<float> a(per), b(per);
        for (int64_t h = 0; h <= hp.n_layer; h++) {
            cpu->encode(pool, px.data(), h, a.data());
            gpu->encode(pool, px.data(), h, b.data());
            const double e = max_rel(b, a);
            std::printf("  clip %-5s hidden state %lld: max rel %.2e\n", variant.c_str(), (long long)h, e);
            CHECK_MSG(e < clip_tolerance(variant), variant + " hidden state " + std::to_string(h));
        }
        for (int kind : {hg::CLIP_PROJECTOR_COMPREHENSION, hg::CLIP_PROJECTOR_GENERATION}) {
            const int64_t tap = cpu->tap_layer(kind == hg::CLIP_PROJECTOR_COMPREHENSION ? hg::CLIP_TAP_COMPREHENSION
                                                                                        : hg::CLIP_TAP_GENERATION);
            const int64_t D = cpu->projector(kind).n_out;
            cpu->encode(pool, px.data(), tap, a.data());
            std::vector<float> pa((size_t)(hp.n_patches() * D)), pb(pa.size()), pc(pa.size());
            cpu->project(pool, kind, a.data(), hp.n_patches(), pa.data());
            gpu->project(pool, kind, a.data(), hp.n_patches(), pb.data()); // the projector alone
            gpu->encode_project(pool, px.data(), tap, kind, pc.data());    // features kept on the device
            const double ep = max_rel(pb, pa), ee = max_rel(pc, pa);
            std::printf("  clip %-5s projector %d: max rel %.2e, encode_project %.2e\n", variant.c_str(), kind, ep, ee);
            CHECK_MSG(ep < clip_tolerance(variant), variant + " projector");
            CHECK_MSG(ee < clip_tolerance(variant), variant + " encode_project");
        }
    }
}

// A plugin's projector (here the f16 file's mm.0 / mm.2) replacing the generation projector on
// the device as on the CPU; a file without one changes nothing.
TEST(clip_plugin_projector_on_device_matches_cpu) {
    need_device();
    hg::ThreadPool pool(2);
    auto cpu = hg::ClipModel::load(hg::GGUFFile::open(clip_fixture("f32")));
    auto gpu = hg::ClipModel::load(hg::GGUFFile::open(clip_fixture("f32")), nullptr, true, HG_GPU_CUDA);
    CHECK(cpu->use_projector(hg::CLIP_PROJECTOR_GENERATION, hg::GGUFFile::open(clip_fixture("f16")), &pool));
    CHECK(gpu->use_projector(hg::CLIP_PROJECTOR_GENERATION, hg::GGUFFile::open(clip_fixture("f16")), &pool));
    CHECK(!gpu->use_projector(hg::CLIP_PROJECTOR_GENERATION, hg::GGUFFile::open("test/fixtures/phi3/gqa.f32.gguf"),
                              &pool));
    const hg::ClipHParams &hp = cpu->hparams();
    const std::vector<float> px = randn((size_t)(3 * hp.image_size * hp.image_size), 82);
    const int64_t tap = cpu->tap_layer(hg::CLIP_TAP_GENERATION);
    const int64_t D = cpu->projector(hg::CLIP_PROJECTOR_GENERATION).n_out;
    std::vector<float> a((size_t)(hp.n_patches() * D)), b(a.size());
    cpu->encode_project(pool, px.data(), tap, hg::CLIP_PROJECTOR_GENERATION, a.data());
    gpu->encode_project(pool, px.data(), tap, hg::CLIP_PROJECTOR_GENERATION, b.data());
    const double e = max_rel(b, a);
    std::printf("  clip plugin projector (f16) on the device: max rel %.2e\n", e);
    CHECK(e < clip_tolerance("f16"));
}

double psnr(const std::vector<float> &got, const std::vector<float> &ref) {
    double se = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        const double a = std::min(1.0f, std::max(-1.0f, got[i])), b = std::min(1.0f, std::max(-1.0f, ref[i]));
        se += (a - b) * (a - b);
    }
    const double mse = se / (double)ref.size();
    return mse == 0 ? 999.0 : 10.0 * std::log10(4.0 / mse);
}

template <class T> bool read_raw(const std::string &path, std::vector<T> &out, size_t n) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    out.resize(n);
    f.read(reinterpret_cast<char *>(out.data()), (std::streamsize)(n * sizeof(T)));
    return (size_t)f.gcount() == n * sizeof(T);
}

// The tiny synthetic VQGAN against torch's image (the floors test_vqgan holds the CPU to: f32
// 100 dB, f16 weights 50 dB), and against the CPU decode of the same file.
TEST(vqgan_tiny_decode_on_device_matches_torch) {
    need_device();
    const vqsynth::Config cfg = vqsynth::tiny();
    const int64_t n_idx = cfg.latent() * cfg.latent(), n_img = 3 * cfg.resolution * cfg.resolution;
    std::vector<int32_t> idx;
    std::vector<float> ref;
    CHECK(read_raw("test/fixtures/vqgan/tiny_indices.i32", idx, (size_t)n_idx));
    CHECK(read_raw("test/fixtures/vqgan/tiny_image.f32", ref, (size_t)n_img));
    if (idx.size() != (size_t)n_idx || ref.size() != (size_t)n_img) return;
    hg::ThreadPool pool(2);
    struct Path {
        int type;
        bool tc;
        const char *name;
    };
    for (Path path : {Path{HG_TYPE_F32, true, "f32"}, Path{HG_TYPE_F16, true, "f16 (tensor cores)"},
                      Path{HG_TYPE_F16, false, "f16 (f32 tile)"}}) {
        const int type = path.type;
        hg::cuda::gemm_use_tensor_cores(path.tc);
        const std::vector<uint8_t> bytes = vqsynth::gguf(cfg, 1, type, true);
        auto cpu = hg::VqganModel::load(hg::GGUFFile::parse(bytes.data(), bytes.size(), "tiny"));
        auto gpu = hg::VqganModel::load(hg::GGUFFile::parse(bytes.data(), bytes.size(), "tiny"), HG_GPU_CUDA);
        CHECK(contains(gpu->backend(), "cuda: "));
        std::vector<float> a((size_t)n_img), b((size_t)n_img);
        cpu->decode(pool, idx.data(), a.data());
        gpu->decode(pool, idx.data(), b.data());
        const double p_ref = psnr(b, ref), p_cpu = psnr(b, a);
        std::printf("  vqgan tiny %s on the device: PSNR %.1f dB against torch, %.1f dB against the CPU\n", path.name,
                    p_ref, p_cpu);
        CHECK(p_ref >= (type == HG_TYPE_F32 ? 100.0 : 50.0));
        // f32: the same arithmetic but for the order of additions (measured 140 dB against torch's
        // float64). f16 weights: on the f32 tile the device keeps f32 activations, as the CPU's
        // SIMD conv does (75.5 dB against torch); on tensor cores it rounds them to f16, as the
        // CPU's scalar path (hg::matmul) does (72.8 dB against torch): either way 60 dB to the CPU.
        CHECK(p_cpu >= (type == HG_TYPE_F32 ? 100.0 : 60.0));
        // a bad index is refused by name before anything reaches the device
        std::vector<int32_t> bad = idx;
        bad[5] = (int32_t)cfg.n_embed;
        CHECK(contains(error_of([&] { gpu->decode(pool, bad.data(), b.data()); }), "at position 5"));
    }
    hg::cuda::gemm_use_tensor_cores(true);
}

// The tiny encoder against torch's argmax indices (smallest top-2 margin 4e-3, far above the
// f32 error here: equal), and its logits against the CPU's within f32 reordering.
TEST(vqgan_tiny_encode_on_device_matches_torch) {
    need_device();
    const vqsynth::Config cfg = vqsynth::tiny();
    const int64_t n_idx = cfg.latent() * cfg.latent(), n_img = 3 * cfg.resolution * cfg.resolution;
    std::vector<float> input;
    std::vector<int32_t> ref;
    CHECK(read_raw("test/fixtures/vqgan/tiny_enc_input.f32", input, (size_t)n_img));
    CHECK(read_raw("test/fixtures/vqgan/tiny_enc_indices.i32", ref, (size_t)n_idx));
    if (ref.size() != (size_t)n_idx || input.size() != (size_t)n_img) return;
    hg::ThreadPool pool(2);
    const std::vector<uint8_t> bytes = vqsynth::gguf(cfg, 1, HG_TYPE_F32, true);
    auto cpu = hg::VqganModel::load(hg::GGUFFile::parse(bytes.data(), bytes.size(), "tiny"));
    auto gpu = hg::VqganModel::load(hg::GGUFFile::parse(bytes.data(), bytes.size(), "tiny"), HG_GPU_CUDA);
    std::vector<int32_t> a((size_t)n_idx), b((size_t)n_idx);
    std::vector<float> la((size_t)(n_idx * cfg.n_embed)), lb(la.size());
    cpu->encode(pool, input.data(), a.data(), la.data());
    gpu->encode(pool, input.data(), b.data(), lb.data());
    CHECK(b == ref);
    CHECK(a == b);
    const double e = max_rel(lb, la);
    std::printf("  vqgan tiny encode on the device: indices %s torch's, logits max rel %.2e against the CPU\n",
                b == ref ? "equal" : "DIFFER from", e);
    CHECK(e < 1e-4);
}

// The real 256 x 256 geometry (synthetic weights): torch's image (test_vqgan's floors: f32 60 dB,
// f16 55 dB, which the CPU meets rounding the activations to f16 as the tensor cores do here:
// 68.0 dB measured there).
TEST(vqgan_real_decode_on_device_matches_torch) {
    need_device();
    std::vector<int32_t> idx;
    std::vector<uint16_t> ref16;
    CHECK(read_raw("test/fixtures/vqgan/real_indices.i32", idx, 1024));
    CHECK(read_raw("test/fixtures/vqgan/real_image.f16", ref16, 3 * 256 * 256));
    if (idx.size() != 1024 || ref16.size() != 3 * 256 * 256) return;
    std::vector<float> ref(ref16.size());
    for (size_t i = 0; i < ref.size(); i++) ref[i] = hg::fp16_to_f32(ref16[i]);
    hg::ThreadPool pool(0);
    hg::cuda::gemm_use_tensor_cores(true);
    for (int type : {HG_TYPE_F32, HG_TYPE_F16}) {
        const std::vector<uint8_t> bytes = vqsynth::gguf(vqsynth::real(), 2, type, false);
        auto gpu = hg::VqganModel::load(hg::GGUFFile::parse(bytes.data(), bytes.size(), "real"), HG_GPU_CUDA);
        std::vector<float> img(ref.size());
        gpu->decode(pool, idx.data(), img.data());
        const double p = psnr(img, ref);
        std::printf("  vqgan real %s on the device: PSNR %.1f dB against torch\n", type == HG_TYPE_F32 ? "f32" : "f16",
                    p);
        CHECK(p >= (type == HG_TYPE_F32 ? 60.0 : 55.0));
    }
}

// ---- without a device ----

TEST(gpu_cuda_without_a_device_says_why_and_auto_runs_on_the_cpu) {
    if (hg::cuda_device_count() > 0) SKIP("a CUDA device is present");
    const std::string e =
        error_of([] { hg::ClipModel::load(hg::GGUFFile::open(clip_fixture("f32")), nullptr, true, HG_GPU_CUDA); });
    CHECK_MSG(contains(e, "clip: gpu 'cuda': no CUDA device"), e);
    const std::vector<uint8_t> bytes = vqsynth::gguf(vqsynth::tiny(), 1, HG_TYPE_F32, false);
    const std::string ev =
        error_of([&] { hg::VqganModel::load(hg::GGUFFile::parse(bytes.data(), bytes.size(), "tiny"), HG_GPU_CUDA); });
    CHECK_MSG(contains(ev, "vqgan: gpu 'cuda': no CUDA device"), ev);

    hg::ThreadPool pool(2);
    auto cpu = hg::ClipModel::load(hg::GGUFFile::open(clip_fixture("f32")));
    auto aut = hg::ClipModel::load(hg::GGUFFile::open(clip_fixture("f32")), nullptr, true, HG_GPU_AUTO);
    CHECK_MSG(contains(aut->backend(), "cpu (no CUDA device"), aut->backend());
    CHECK(cpu->backend() == "cpu");
    const hg::ClipHParams &hp = cpu->hparams();
    const std::vector<float> px = randn((size_t)(3 * hp.image_size * hp.image_size), 91);
    const int64_t D = cpu->projector(hg::CLIP_PROJECTOR_COMPREHENSION).n_out;
    std::vector<float> a((size_t)(hp.n_patches() * D)), b(a.size()), f((size_t)(hp.n_patches() * hp.n_embd));
    const int64_t tap = cpu->tap_layer(hg::CLIP_TAP_COMPREHENSION);
    cpu->encode(pool, px.data(), tap, f.data());
    cpu->project(pool, hg::CLIP_PROJECTOR_COMPREHENSION, f.data(), hp.n_patches(), a.data());
    aut->encode_project(pool, px.data(), tap, hg::CLIP_PROJECTOR_COMPREHENSION, b.data());
    CHECK(a == b); // the CPU's encode_project is encode then project

    auto vq = hg::VqganModel::load(hg::GGUFFile::parse(bytes.data(), bytes.size(), "tiny"), HG_GPU_AUTO);
    CHECK_MSG(contains(vq->backend(), "cpu (no CUDA device"), vq->backend());
}

} // namespace

HG_TEST_MAIN()
