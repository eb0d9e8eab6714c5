// The CUDA backend against the CPU engine, op by op on the same inputs over odd shapes and
// every weight type (the pattern of llama.cpp's test-backend-ops), then whole models: the
// golden Phi-3 fixtures' logits and greedy tokens on CUDA against the CPU, with and without
// H-LoRA plugins and embedding rows. Without a device the binary prints "skipped: no CUDA
// device" (with CUDA's reason) and every GPU test ends as skipped; what runs everywhere: the
// device query, argument checks, the errors a machine without a GPU must give, and gpu
// 'auto' falling back to the CPU.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "core/threadpool.h"
#include "cuda/backend.h"
#include "cuda/ops.h"
#include "healthgpt.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/greedy.h"
#include "ops/hlora.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "quant/quant.h"
#include "tests/check.h"
#include "tests/cuda_device.h"
#include "tests/reference_logits.h"

namespace {

constexpr int QK = 32;
constexpr int BLOCK_BYTES = 34;

using cuda_test::Dev;
using cuda_test::need_device;

std::vector<float> randn(size_t n, std::mt19937 &rng, float scale = 1.0f) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float &x : v) x = d(rng);
    return v;
}

// A matrix of `type` made the CPU's way from random floats (rows of k).
std::vector<uint8_t> make_weights(int type, int64_t rows, int64_t k, std::mt19937 &rng) {
    const hg::type_info *ti = hg::type_traits(type);
    const std::vector<float> f = randn((size_t)(rows * k), rng, 0.5f);
    const size_t rb = hg::row_bytes(type, k);
    std::vector<uint8_t> w(rb * (size_t)rows);
    for (int64_t r = 0; r < rows; r++) ti->from_float_ref(&f[(size_t)(r * k)], &w[(size_t)r * rb], k);
    return w;
}

std::vector<float> dequant_rows(int type, const std::vector<uint8_t> &w, int64_t rows, int64_t k) {
    std::vector<float> f((size_t)(rows * k));
    const size_t rb = hg::row_bytes(type, k);
    for (int64_t r = 0; r < rows; r++) hg::type_traits(type)->to_float(&w[(size_t)r * rb], &f[(size_t)(r * k)], k);
    return f;
}

bool is_k_quant(int type) { return type == HG_TYPE_Q4_K || type == HG_TYPE_Q5_K || type == HG_TYPE_Q6_K; }

// The activations a type's GPU kernel is meant to see: q8_0-rounded for q4_0 / q8_0 (as the
// CPU quantizes them) and for the K-quants, bf16-rounded for bf16, as given otherwise (f16 on
// tensor cores keeps them to 2^-22: within the float tolerance).
std::vector<float> activations_for(int type, const std::vector<float> &x, int64_t k) {
    int at = HG_TYPE_F32;
    if (type == HG_TYPE_Q4_0 || type == HG_TYPE_Q8_0 || is_k_quant(type)) at = HG_TYPE_Q8_0;
    if (type == HG_TYPE_BF16) at = HG_TYPE_BF16;
    if (at == HG_TYPE_F32) return x;
    const int64_t n = (int64_t)x.size() / k;
    std::vector<uint8_t> q(hg::row_bytes(at, k));
    std::vector<float> out(x.size());
    for (int64_t c = 0; c < n; c++) {
        hg::type_traits(at)->from_float_ref(&x[(size_t)(c * k)], q.data(), k);
        hg::type_traits(at)->to_float(q.data(), &out[(size_t)(c * k)], k);
    }
    return out;
}

const char *name_of(int type) { return hg::type_traits(type)->name; }

// ---- matmul ----

struct MatmulCase {
    int64_t rows, k, n;
};

// y on the device (ldy > rows, gaps poisoned) against a double-precision sum over the same
// dequantized weights and the activations the kernel is meant to see, within float32
// accumulation error (k * 2^-23 of sum |w x|; twice that for f16 / bf16 fragments, whose
// tensor-core sums may truncate instead of round), element by element; also the CPU engine's
// own matmul where it pairs the weights with the same activations (q4_0, q8_0, f32, f16, bf16),
// within twice that.
void check_matmul(int type, const MatmulCase &mc, uint32_t seed, bool accumulate) {
    std::mt19937 rng(seed);
    const int64_t rows = mc.rows, k = mc.k, n = mc.n, ldy = rows + 3;
    const std::vector<uint8_t> w = make_weights(type, rows, k, rng);
    const std::vector<float> x = randn((size_t)(k * n), rng);
    const bool tc = hg::cuda::matmul_uses_tensor_cores(type, n);
    const std::vector<float> wf = dequant_rows(type, w, rows, k), xa = activations_for(type, x, k);
    const double acc_ulps = tc && (type == HG_TYPE_F16 || type == HG_TYPE_BF16) ? 2.0 : 1.0;
    std::vector<float> y0((size_t)(ldy * n));
    for (size_t i = 0; i < y0.size(); i++) y0[i] = accumulate ? (float)(i % 7) - 3.0f : -777.0f;

    Dev dw = Dev::of(w), dx = Dev::of(x), dy = Dev::of(y0);
    const size_t sb = hg::cuda::matmul_scratch_bytes(type, k, n);
    Dev ds(std::max<size_t>(sb, 1));
    hg::cuda::matmul(type, dw.p<void>(), rows, k, dx.p<float>(), n, dy.p<float>(), ldy, accumulate, ds.p<void>(), sb,
                     nullptr);
    const std::vector<float> y = dy.read<float>(y0.size());

    const bool same_pairing = type == HG_TYPE_Q4_0 || type == HG_TYPE_Q8_0 || type == HG_TYPE_F32 ||
                              type == HG_TYPE_F16 || type == HG_TYPE_BF16;
    std::vector<float> cpu((size_t)(rows * n));
    if (same_pairing) hg::matmul_with(hg::kernels_scalar(), type, w.data(), rows, k, x.data(), n, cpu.data());

    int bad = 0;
    for (int64_t c = 0; c < n; c++) {
        for (int64_t r = 0; r < ldy; r++) {
            const float got = y[(size_t)(c * ldy + r)], before = y0[(size_t)(c * ldy + r)];
            if (r >= rows) { // the gap between columns is never written
                if (std::memcmp(&got, &before, 4) != 0 && bad++ < 3)
                    std::fprintf(stderr, "    %s: gap at col %lld row %lld written\n", name_of(type), (long long)c,
                                 (long long)r);
                continue;
            }
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < k; i++) {
                ref += (double)wf[(size_t)(r * k + i)] * xa[(size_t)(c * k + i)];
                mag += std::fabs((double)wf[(size_t)(r * k + i)] * xa[(size_t)(c * k + i)]);
            }
            const double tol = (acc_ulps * (double)k * std::ldexp(1.0, -23) + 1e-6) * mag + 1e-30;
            const double want = ref + (accumulate ? before : 0.0);
            bool ok = std::isfinite(got) && std::fabs(got - want) <= tol + (accumulate ? 1e-6 : 0.0);
            if (ok && same_pairing) {
                const double cw = cpu[(size_t)(c * rows + r)] + (accumulate ? before : 0.0f);
                ok = std::fabs(got - cw) <= 2 * tol + (accumulate ? 1e-6 : 0.0);
            }
            if (!ok && bad++ < 3)
                std::fprintf(stderr, "    %s %lldx%lldx%lld: y[%lld][%lld] gpu %.9g want %.9g (tol %.3g)\n",
                             name_of(type), (long long)rows, (long long)k, (long long)n, (long long)c, (long long)r,
                             got, want, tol);
        }
    }
    CHECK_MSG(bad == 0, std::string(name_of(type)) + " " + std::to_string(rows) + "x" + std::to_string(k) + "x" +
                            std::to_string(n) + (accumulate ? " accumulate" : "") + (tc ? " tensor cores" : "") + ": " +
                            std::to_string(bad) + " wrong");
}

const int kQuantTypes[] = {HG_TYPE_Q4_0, HG_TYPE_Q8_0, HG_TYPE_Q4_1, HG_TYPE_Q5_0, HG_TYPE_Q5_1};
const int kKTypes[] = {HG_TYPE_Q4_K, HG_TYPE_Q5_K, HG_TYPE_Q6_K};
const int kFloatTypes[] = {HG_TYPE_F32, HG_TYPE_F16, HG_TYPE_BF16};

std::vector<float> cpu_rows(int type, const std::vector<uint8_t> &table, int64_t n, const std::vector<int32_t> &rows) {
    std::vector<float> out(rows.size() * (size_t)n, -5.0f);
    const size_t rb = hg::row_bytes(type, n);
    for (size_t t = 0; t < rows.size(); t++)
        if (rows[t] >= 0) hg::type_traits(type)->to_float(&table[(size_t)rows[t] * rb], &out[t * (size_t)n], n);
    return out;
}

int count_diff(const std::vector<float> &a, const std::vector<float> &b, double tol_rel, const char *what) {
    int bad = 0;
    double mx = 0;
    for (float v : b) mx = std::max(mx, (double)std::fabs(v));
    for (size_t i = 0; i < a.size(); i++) {
        const bool ok = tol_rel == 0
                            ? std::memcmp(&a[i], &b[i], 4) == 0
                            : std::isfinite(a[i]) && std::fabs((double)a[i] - b[i]) <= tol_rel * std::max(1e-30, mx);
        if (!ok && bad++ < 3) std::fprintf(stderr, "    %s [%zu] gpu %.9g cpu %.9g\n", what, i, a[i], b[i]);
    }
    return bad;
}

// ---- q8_0 blocks for the dequantize tests ----

std::vector<uint8_t> make_q8_0(int64_t n_blocks, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> v((size_t)n_blocks * BLOCK_BYTES);
    const uint16_t special[] = {0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00, 0xbc00, 0x7bff, 0xfbff};
    for (int64_t b = 0; b < n_blocks; b++) {
        uint8_t *p = v.data() + b * BLOCK_BYTES;
        uint16_t d;
        if (b < (int64_t)(sizeof special / sizeof special[0])) {
            d = special[b];
        } else {
            d = hg::f32_to_fp16(std::ldexp((float)(rng() % 1000 + 1) / 1000.0f, (int)(rng() % 20) - 16));
            if (rng() & 1) d |= 0x8000;
        }
        p[0] = (uint8_t)(d & 0xff);
        p[1] = (uint8_t)(d >> 8);
        for (int j = 0; j < QK; j++) p[2 + j] = (uint8_t)(b == 0 ? (j * 8) : rng());
    }
    return v;
}

std::vector<float> cpu_dequantize(const std::vector<uint8_t> &q, int64_t n) {
    std::vector<float> out((size_t)n);
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *b = q.data() + (i / QK) * BLOCK_BYTES;
        const float d = hg::fp16_to_f32((uint16_t)(b[0] | (b[1] << 8)));
        out[(size_t)i] = d * (float)(int8_t)b[2 + i % QK];
    }
    return out;
}

int64_t count_mismatches(const std::vector<float> &a, const std::vector<float> &b) {
    int64_t bad = 0;
    for (size_t i = 0; i < a.size(); i++)
        if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            if (bad < 5) std::fprintf(stderr, "    [%zu] gpu %.9g cpu %.9g\n", i, a[i], b[i]);
            bad++;
        }
    return bad;
}

} // namespace

// ---- runs everywhere ----

TEST(device_query_never_fails) {
    const int n = hg::cuda_device_count();
    CHECK(n >= 0);
    CHECK(hg::cuda_device_count() == n); // stable
    CHECK(hg_cuda_devices() == n);
    if (n == 0) return;
    for (int d = 0; d < n; d++) {
        const hg::cuda_device_props p = hg::cuda_device_properties(d);
        std::printf("  device %d: %s, sm_%d%d, %d SMs, %.1f GiB\n", d, p.name.c_str(), p.cc_major, p.cc_minor,
                    p.multiprocessors, p.total_bytes / 1073741824.0);
        CHECK(p.cc_major >= 1);
        CHECK(p.total_bytes > 0);
    }
}

TEST(without_device_calls_throw) {
    if (hg::cuda_device_count() > 0) return;
    bool threw = false;
    try {
        void *p = hg::cuda_malloc(16);
        hg::cuda_free(p);
    } catch (const hg::Error &) {
        threw = true;
    }
    CHECK(threw);
    threw = false;
    try {
        hg::CudaStream s;
    } catch (const hg::Error &e) {
        threw = std::string(e.what()).find("no CUDA device") != std::string::npos;
    }
    CHECK(threw);
}

TEST(gpu_option_without_device_falls_back_or_fails_saying_why) {
    if (hg::cuda_device_count() > 0) return;
    hg_model_params p = hg_model_default_params();
    CHECK(p.gpu == HG_GPU_OFF);
    p.n_ctx = 32;
    p.gpu = HG_GPU_CUDA;
    hg_model *m = hg_model_load("test/fixtures/phi3/gqa.f32.gguf", &p);
    CHECK(m == nullptr);
    const std::string err = hg_last_error();
    CHECK_MSG(err.find("gpu 'cuda'") != std::string::npos && err.find("no CUDA device") != std::string::npos, err);
    p.gpu = HG_GPU_AUTO;
    m = hg_model_load("test/fixtures/phi3/gqa.f32.gguf", &p);
    CHECK_MSG(m != nullptr, hg_last_error());
    if (!m) return;
    const std::string backend = hg_model_backend(m);
    CHECK_MSG(backend.rfind("cpu (no CUDA device", 0) == 0, backend);
    std::vector<float> logits((size_t)hg_model_n_vocab(m));
    const int32_t tok = 5;
    CHECK(hg_model_eval(m, &tok, 1, 0, logits.data(), 0) == 0);
    hg_model_free(m);
    p.gpu = HG_GPU_CUDA; // no layers on the GPU: the CPU alone, whatever the machine
    p.gpu_layers = 0;
    m = hg_model_load("test/fixtures/phi3/gqa.f32.gguf", &p);
    CHECK_MSG(m != nullptr, hg_last_error());
    if (m) CHECK(std::string(hg_model_backend(m)) == "cpu");
    hg_model_free(m);
    p.gpu_layers = -1;
    p.gpu = 7;
    CHECK(hg_model_load("test/fixtures/phi3/gqa.f32.gguf", &p) == nullptr);
    CHECK(std::string(hg_last_error()).find("gpu 7") != std::string::npos);
}

TEST(dequantize_q8_0_rejects_partial_block) {
    bool threw = false;
    try {
        float out[33];
        uint8_t in[68] = {};
        hg::cuda_dequantize_q8_0_host(in, out, 33);
    } catch (const hg::Error &e) {
        threw = std::string(e.what()).find("multiple of 32") != std::string::npos;
    }
    CHECK(threw);
}

TEST(matmul_supports_the_model_types) {
    for (int t : kQuantTypes) CHECK_MSG(hg::cuda::matmul_supports(t), name_of(t));
    for (int t : kKTypes) CHECK_MSG(hg::cuda::matmul_supports(t), name_of(t));
    for (int t : kFloatTypes) CHECK_MSG(hg::cuda::matmul_supports(t), name_of(t));
    CHECK(!hg::cuda::matmul_supports(HG_TYPE_Q2_K));
    CHECK(!hg::cuda::matmul_supports(HG_TYPE_I32));
}

// ---- op by op, on a device ----

TEST(dequantize_q8_0_host_matches_cpu) {
    need_device();
    for (int64_t n_blocks : {1, 7, 1000, 123457}) {
        const int64_t n = n_blocks * QK;
        const std::vector<uint8_t> q = make_q8_0(n_blocks, (uint32_t)n_blocks);
        const std::vector<float> want = cpu_dequantize(q, n);
        std::vector<float> got((size_t)n, -12345.0f);
        hg::cuda_dequantize_q8_0_host(q.data(), got.data(), n);
        CHECK_MSG(count_mismatches(got, want) == 0, std::to_string(n_blocks) + " blocks");
    }
}

TEST(dequantize_q8_0_device_unaligned_source) {
    need_device();
    const int64_t n_blocks = 513, n = n_blocks * QK;
    const std::vector<uint8_t> q = make_q8_0(n_blocks, 99);
    const std::vector<float> want = cpu_dequantize(q, n);
    hg::DeviceBuffer src(q.size() + 1), dst((size_t)n * sizeof(float));
    hg::cuda_copy_to_device(src.as<uint8_t>() + 1, q.data(), q.size());
    hg::cuda_dequantize_q8_0(src.as<uint8_t>() + 1, dst.as<float>(), n);
    hg::cuda_synchronize();
    std::vector<float> got((size_t)n);
    hg::cuda_copy_to_host(got.data(), dst.get(), got.size() * sizeof(float));
    CHECK(count_mismatches(got, want) == 0);
}

TEST(matmul_every_type_odd_shapes) {
    need_device();
    uint32_t seed = 1;
    const MatmulCase q_cases[] = {{1, 32, 1},         {7, 64, 3},   {33, 96, 1},  {130, 256, 9},
                                  {67, 3072 / 8, 17}, {5, 1024, 8}, {300, 160, 2}};
    for (int t : kQuantTypes)
        for (const MatmulCase &c : q_cases) check_matmul(t, c, seed++, false);
    const MatmulCase k_cases[] = {{1, 256, 1}, {13, 256, 3}, {37, 512, 9}, {129, 768, 1}};
    for (int t : kKTypes)
        for (const MatmulCase &c : k_cases) check_matmul(t, c, seed++, false);
    const MatmulCase f_cases[] = {{1, 1, 1}, {5, 8, 2}, {9, 16, 3}, {17, 33, 4}, {64, 96, 1}, {70, 257, 11}};
    for (int t : kFloatTypes)
        for (const MatmulCase &c : f_cases) check_matmul(t, c, seed++, false);
}

TEST(matmul_prefill_on_tensor_cores_and_off) {
    need_device();
    // more than 8 tokens of q4_0 / q8_0 take the int8 tensor-core kernel: partial tiles of rows
    // and tokens, several blocks of each, and the same shapes on the dp4a kernels
    uint32_t seed = 900;
    const MatmulCase cases[] = {{64, 32, 64}, {65, 64, 9}, {200, 512, 70}, {3, 96, 130}, {129, 3072 / 4, 33}};
    for (bool on : {true, false}) {
        hg::cuda::matmul_use_tensor_cores(on);
        for (int t : {HG_TYPE_Q4_0, HG_TYPE_Q8_0})
            for (const MatmulCase &c : cases) {
                check_matmul(t, c, seed++, false);
                check_matmul(t, c, seed++, true);
            }
    }
    hg::cuda::matmul_use_tensor_cores(true);
}

TEST(matmul_prefill_of_k_quants_and_halves_on_tensor_cores_and_off) {
    need_device();
    // f16 / bf16 (any k: partial k steps) and q4_K / q5_K / q6_K (k in 256s): partial tiles of
    // rows and tokens, several k steps, n from 1 (mat-vec) to past two token tiles
    uint32_t seed = 1300;
    const MatmulCase half_cases[] = {{64, 32, 64},    {65, 33, 9}, {130, 257, 17}, {3, 100, 130},
                                     {200, 1000, 70}, {17, 70, 1}, {9, 45, 2}};
    const MatmulCase k_cases[] = {{64, 256, 64}, {65, 256, 9},  {130, 512, 17},
                                  {3, 768, 130}, {129, 256, 1}, {70, 512, 2}};
    std::printf("  bf16 on tensor cores here: %s\n",
                hg::cuda::matmul_uses_tensor_cores(HG_TYPE_BF16, 64) ? "yes" : "no (below sm_80)");
    for (bool on : {true, false}) {
        hg::cuda::matmul_use_tensor_cores(on);
        for (int t : {HG_TYPE_F16, HG_TYPE_BF16})
            for (const MatmulCase &c : half_cases) {
                check_matmul(t, c, seed++, false);
                check_matmul(t, c, seed++, true);
            }
        for (int t : kKTypes)
            for (const MatmulCase &c : k_cases) {
                check_matmul(t, c, seed++, false);
                check_matmul(t, c, seed++, true);
            }
    }
    hg::cuda::matmul_use_tensor_cores(true);
}

TEST(matmul_accumulates_onto_y) {
    need_device();
    uint32_t seed = 500;
    for (int t : {HG_TYPE_Q4_0, HG_TYPE_Q8_0, HG_TYPE_F32, HG_TYPE_F16, HG_TYPE_BF16, HG_TYPE_Q6_K})
        for (const MatmulCase &c : {MatmulCase{19, 256, 1}, MatmulCase{23, 256, 10}}) check_matmul(t, c, seed++, true);
}

TEST(prefill_paths_are_picked_by_type_and_tokens) {
    // no device work for these types: holds without a GPU too
    for (int t : {HG_TYPE_Q4_0, HG_TYPE_Q8_0, HG_TYPE_Q4_K, HG_TYPE_Q5_K, HG_TYPE_Q6_K, HG_TYPE_F16}) {
        CHECK_MSG(!hg::cuda::matmul_uses_tensor_cores(t, 8), name_of(t));
        CHECK_MSG(hg::cuda::matmul_uses_tensor_cores(t, 9), name_of(t));
    }
    for (int t : {HG_TYPE_F32, HG_TYPE_Q4_1, HG_TYPE_Q5_0, HG_TYPE_Q5_1})
        CHECK_MSG(!hg::cuda::matmul_uses_tensor_cores(t, 64), name_of(t));
    hg::cuda::matmul_use_tensor_cores(false);
    CHECK(!hg::cuda::matmul_uses_tensor_cores(HG_TYPE_Q4_K, 64));
    hg::cuda::matmul_use_tensor_cores(true);
    // the K-quants' kernels quantize the activations: n x k int8 and n x k / 32 scales
    for (int64_t n : {1, 9})
        CHECK(hg::cuda::matmul_scratch_bytes(HG_TYPE_Q6_K, 256, n) >= (size_t)(n * 256) + n * 8 * sizeof(float));
    CHECK(hg::cuda::matmul_scratch_bytes(HG_TYPE_Q5_1, 256, 9) == 0);
    CHECK(!hg::cuda::attention_uses_flash(1) && !hg::cuda::attention_uses_flash(7));
    CHECK(hg::cuda::attention_uses_flash(8) && hg::cuda::attention_uses_flash(512));
    hg::cuda::attention_use_flash(false);
    CHECK(!hg::cuda::attention_uses_flash(512));
    hg::cuda::attention_use_flash(true);
}

TEST(k_quant_tensor_core_unpacking_matches_cpu_dequantize) {
    // host-side, no device: the tensor-core kernel's int8 values and scales give back the CPU's
    // dequantized values (products of the same rounded floats; q6_K's d sc may round once
    // more than the CPU's d * sc * q, a float ulp)
    std::mt19937 rng(41);
    for (int t : kKTypes)
        for (int64_t k : {256, 768}) {
            const std::vector<uint8_t> w = make_weights(t, 3, k, rng);
            const std::vector<float> want = dequant_rows(t, w, 3, k);
            std::vector<float> got((size_t)(3 * k));
            for (int64_t r = 0; r < 3; r++)
                hg::cuda::kquant_mma_values(t, &w[(size_t)r * hg::row_bytes(t, k)], k, &got[(size_t)(r * k)]);
            CHECK_MSG(count_diff(got, want, 1e-6, name_of(t)) == 0,
                      std::string(name_of(t)) + " k=" + std::to_string(k));
        }
}

TEST(matmul_refuses_bad_calls) {
    // argument checks come before any device work: they hold without a GPU too
    auto refused = [](int type, int64_t rows, int64_t k, int64_t n, int64_t ldy, const char *needle) {
        float dummy[4] = {0, 0, 0, 0};
        try {
            hg::cuda::matmul(type, dummy, rows, k, dummy, n, dummy, ldy, false, dummy, 0, nullptr);
        } catch (const hg::Error &e) {
            return std::string(e.what()).find(needle) != std::string::npos;
        }
        return false;
    };
    CHECK(refused(HG_TYPE_Q2_K, 4, 256, 1, 4, "not supported"));
    CHECK(refused(HG_TYPE_Q4_0, 4, 48, 1, 4, "multiple of the block"));
    CHECK(refused(HG_TYPE_Q4_K, 4, 128, 1, 4, "multiple of the block"));
    CHECK(refused(HG_TYPE_F32, 0, 8, 1, 4, "empty shape"));
    CHECK(refused(HG_TYPE_F32, 8, 8, 1, 4, "ldy"));
    CHECK(refused(HG_TYPE_Q8_0, 4, 32, 1, 4, "scratch"));
}

TEST(get_rows_every_type_matches_cpu_dequantize) {
    need_device();
    std::mt19937 rng(7);
    const std::vector<int32_t> rows = {3, -1, 0, 10, 10, 1, -1, 7};
    for (int t : {HG_TYPE_Q4_0, HG_TYPE_Q8_0, HG_TYPE_Q4_1, HG_TYPE_Q5_0, HG_TYPE_Q5_1, HG_TYPE_Q4_K, HG_TYPE_Q5_K,
                  HG_TYPE_Q6_K, HG_TYPE_F32, HG_TYPE_F16, HG_TYPE_BF16}) {
        for (int64_t n : {256, 512}) {
            const std::vector<uint8_t> table = make_weights(t, 11, n, rng);
            const std::vector<float> want = cpu_rows(t, table, n, rows);
            Dev dt = Dev::of(table), dr = Dev::of(rows),
                dout = Dev::of(std::vector<float>(rows.size() * (size_t)n, -5.0f));
            hg::cuda::get_rows(t, dt.p<void>(), n, dr.p<int32_t>(), (int64_t)rows.size(), dout.p<float>(), nullptr);
            const std::vector<float> got = dout.read<float>(want.size());
            // the same dequantization: bit for bit (rows of -1 keep their -5)
            CHECK_MSG(count_diff(got, want, 0, name_of(t)) == 0, std::string(name_of(t)) + " n=" + std::to_string(n));
        }
    }
}

TEST(rms_norm_matches_cpu) {
    need_device();
    std::mt19937 rng(11);
    for (int64_t n : {1, 31, 64, 97, 3072, 5120})
        for (int64_t rows : {1, 3, 17}) {
            const std::vector<float> x = randn((size_t)(n * rows), rng, 2.0f), w = randn((size_t)n, rng);
            std::vector<float> want((size_t)(n * rows));
            hg::rms_norm(x.data(), w.data(), want.data(), n, rows, 1e-5f);
            Dev dx = Dev::of(x), dw = Dev::of(w), dy(want.size() * 4);
            hg::cuda::rms_norm(dx.p<float>(), dw.p<float>(), dy.p<float>(), n, rows, 1e-5f, nullptr);
            // only the order of the sum of squares differs (~sqrt(n) 2^-24 relative, halved by the sqrt)
            CHECK_MSG(count_diff(dy.read<float>(want.size()), want, 2e-5, "rms_norm") == 0, std::to_string(n));
        }
}

TEST(rope_matches_cpu_bit_for_bit) {
    need_device();
    std::mt19937 rng(13);
    struct C {
        int64_t n_tokens, n_heads, head_dim;
        int n_rot;
        int64_t pos0;
    };
    for (const C c :
         {C{1, 1, 2, 2, 0}, C{5, 3, 16, 12, 7}, C{9, 6, 96, 96, 1000}, C{4, 40, 128, 64, 31}, C{3, 5, 80, 32, 3}}) {
        const int64_t stride = c.n_heads * c.head_dim + 5, n_ctx = c.pos0 + c.n_tokens, half = c.n_rot / 2;
        std::vector<int32_t> pos((size_t)n_ctx);
        for (int64_t p = 0; p < n_ctx; p++) pos[(size_t)p] = (int32_t)p;
        std::vector<float> cs((size_t)(n_ctx * half)), sn((size_t)(n_ctx * half));
        hg::rope_cos_sin(pos.data(), n_ctx, c.n_rot, 10000.0f, cs.data(), sn.data());
        std::vector<float> x = randn((size_t)(stride * c.n_tokens), rng), want = x;
        hg::rope_apply(want.data(), c.n_tokens, stride, c.n_heads, c.head_dim, c.n_rot, &cs[(size_t)(c.pos0 * half)],
                       &sn[(size_t)(c.pos0 * half)]);
        Dev dx = Dev::of(x), dc = Dev::of(cs), ds = Dev::of(sn);
        hg::cuda::rope(dx.p<float>(), c.n_tokens, stride, c.n_heads, c.head_dim, c.n_rot, dc.p<float>(), ds.p<float>(),
                       c.pos0, nullptr);
        CHECK_MSG(count_diff(dx.read<float>(x.size()), want, 0, "rope") == 0, std::to_string(c.head_dim));
    }
}

TEST(silu_mul_and_add_match_cpu) {
    need_device();
    std::mt19937 rng(17);
    for (int64_t n_ff : {1, 95, 8192})
        for (int64_t nt : {1, 6}) {
            std::vector<float> gu = randn((size_t)(2 * n_ff * nt), rng, 4.0f), want((size_t)(n_ff * nt));
            gu[0] = -100.0f; // exp overflow: silu gives -0
            hg::silu_mul(gu.data(), want.data(), n_ff, nt);
            Dev dg = Dev::of(gu), da(want.size() * 4);
            hg::cuda::silu_mul(dg.p<float>(), da.p<float>(), n_ff, nt, nullptr);
            CHECK_MSG(count_diff(da.read<float>(want.size()), want, 1e-6, "silu_mul") == 0, std::to_string(n_ff));
        }
    const std::vector<float> a = randn(1001, rng), b = randn(1001, rng);
    std::vector<float> want(a.size());
    for (size_t i = 0; i < a.size(); i++) want[i] = a[i] + b[i];
    Dev da = Dev::of(a), db = Dev::of(b);
    hg::cuda::add(da.p<float>(), db.p<float>(), (int64_t)a.size(), nullptr);
    CHECK(count_diff(da.read<float>(a.size()), want, 0, "add") == 0);
}

TEST(attention_matches_cpu_gqa_window_long_context) {
    need_device();
    std::mt19937 rng(19);
    hg::ThreadPool pool(2);
    struct C {
        int64_t n_heads, n_kv, hd, n_tokens, pos0, window;
        int type;
    };
    const C cases[] = {
        {4, 2, 16, 12, 0, 0, HG_TYPE_F32},
        {4, 2, 16, 1, 11, 0, HG_TYPE_F16},
        {4, 4, 16, 7, 3, 5, HG_TYPE_F16},
        {6, 2, 96, 1, 1500, 0, HG_TYPE_F16},
        {6, 3, 80, 9, 40, 0, HG_TYPE_F32},
        {32, 32, 96, 1, 4000, 0, HG_TYPE_F16},
        {40, 10, 128, 3, 700, 256, HG_TYPE_F16},
        {2, 1, 256, 2, 70, 0, HG_TYPE_F16},
        {3, 1, 40, 33, 0, 0, HG_TYPE_F16},
        // prefills (8 tokens or more: the flash kernel): partial query tiles, several key
        // tiles, GQA, windows cutting into tiles, head sizes that are not a multiple of 32,
        // 256 (past 48 KiB of shared memory with an f32 cache)
        {4, 2, 16, 17, 0, 0, HG_TYPE_F16},
        {32, 8, 96, 64, 5, 0, HG_TYPE_F16},
        {6, 2, 128, 65, 30, 40, HG_TYPE_F16},
        {2, 1, 256, 20, 3, 0, HG_TYPE_F32},
        {5, 5, 40, 9, 0, 7, HG_TYPE_F32},
        {8, 2, 64, 33, 100, 16, HG_TYPE_F16},
        {4, 4, 96, 8, 0, 0, HG_TYPE_F16},
        {2, 2, 72, 40, 0, 33, HG_TYPE_F32},
    };
    for (bool flash : {true, false})
        for (const C &c : cases) {
            hg::cuda::attention_use_flash(flash);
            const int64_t n_ctx = c.pos0 + c.n_tokens + 3, kvw = c.n_kv * c.hd, qs = c.n_heads * c.hd + 2 * kvw;
            // the cache filled through both kv_store ops from one set of K/V rows
            const int64_t n_fill = c.pos0 + c.n_tokens;
            const std::vector<float> kvrows = randn((size_t)(n_fill * qs), rng);
            std::vector<uint8_t> kc((size_t)hg::kv_layer_bytes(c.type, n_ctx, c.n_kv, c.hd)), vc(kc.size());
            hg::kv_layer cpu;
            cpu.type = c.type, cpu.k = kc.data(), cpu.v = vc.data(), cpu.n_ctx = n_ctx, cpu.n_kv_heads = c.n_kv,
            cpu.head_dim = c.hd;
            const float *k0 = kvrows.data() + c.n_heads * c.hd, *v0 = k0 + kvw;
            hg::kv_store(cpu, k0, v0, qs, n_fill, 0);
            Dev dkv = Dev::of(kvrows), dk(kc.size()), dv(vc.size());
            hg::cuda::kv_cache_layer gpu;
            gpu.type = c.type, gpu.k = dk.p<void>(), gpu.v = dv.p<void>(), gpu.n_ctx = n_ctx, gpu.n_kv_heads = c.n_kv,
            gpu.head_dim = c.hd;
            // stored in two calls, as a prefill then a chunk would
            const float *dk0 = dkv.p<float>() + c.n_heads * c.hd, *dv0 = dk0 + kvw;
            if (c.pos0 > 0) hg::cuda::kv_store(gpu, dk0, dv0, qs, c.pos0, 0, nullptr);
            hg::cuda::kv_store(gpu, dk0 + c.pos0 * qs, dv0 + c.pos0 * qs, qs, c.n_tokens, c.pos0, nullptr);

            const std::vector<float> q = randn((size_t)(c.n_tokens * qs), rng);
            const int64_t os = c.n_heads * c.hd + 1;
            std::vector<float> want((size_t)(c.n_tokens * os), 0.0f);
            hg::attention(pool, cpu, q.data(), qs, c.n_tokens, c.pos0, c.n_heads, c.window, want.data(), os);
            Dev dq = Dev::of(q), dout = Dev::of(std::vector<float>(want.size(), 0.0f));
            const size_t sf = hg::cuda::attention_scratch_floats(c.n_tokens, c.n_heads, c.hd, n_ctx, c.window);
            Dev dscr(sf * 4);
            hg::cuda::attention(gpu, dq.p<float>(), qs, c.n_tokens, c.pos0, c.n_heads, c.window, dout.p<float>(), os,
                                dscr.p<float>(), sf, nullptr);
            const std::vector<float> got = dout.read<float>(want.size());
            char what[96];
            std::snprintf(what, sizeof what, "attention h%lld/%lld d%lld t%lld@%lld w%lld %s%s", (long long)c.n_heads,
                          (long long)c.n_kv, (long long)c.hd, (long long)c.n_tokens, (long long)c.pos0,
                          (long long)c.window, name_of(c.type),
                          hg::cuda::attention_uses_flash(c.n_tokens) ? " flash" : "");
            // the same cache values; only the order of float sums and exp differ
            CHECK_MSG(count_diff(got, want, 2e-5, what) == 0, what);
        }
    hg::cuda::attention_use_flash(true);
}

TEST(hlora_linear_matches_cpu) {
    need_device();
    std::mt19937 rng(23);
    hg::ThreadPool pool(2);
    struct C {
        int w_type, ad_type;
        int64_t in, out, rank, experts, n;
    };
    const C cases[] = {{HG_TYPE_F32, HG_TYPE_F32, 64, 96, 8, 4, 1},
                       {HG_TYPE_Q8_0, HG_TYPE_F16, 96, 64, 16, 4, 5},
                       {HG_TYPE_Q4_0, HG_TYPE_Q8_0, 256, 320, 64, 4, 3},
                       {HG_TYPE_F16, HG_TYPE_BF16, 64, 33, 6, 3, 9},
                       {HG_TYPE_Q4_K, HG_TYPE_F32, 256, 40, 8, 2, 2}};
    for (const C &c : cases) {
        const std::vector<float> R = randn((size_t)(c.experts * c.in), rng),
                                 A = randn((size_t)(c.rank * c.in), rng, 0.2f),
                                 B = randn((size_t)(c.out * c.rank), rng, 0.2f);
        hg::HLoraTensor tr{HG_TYPE_F32, R.data(), c.experts, c.in}, ta{HG_TYPE_F32, A.data(), c.rank, c.in},
            tb{HG_TYPE_F32, B.data(), c.out, c.rank};
        hg::HLoraAdapter ad = hg::HLoraAdapter::make("test", c.in, c.out, c.rank, c.experts, 16.0f, tr, ta, tb);
        ad.convert(c.ad_type); // plain layouts: never packed here
        const std::vector<uint8_t> w = make_weights(c.w_type, c.out, c.in, rng);
        const std::vector<float> x = randn((size_t)(c.in * c.n), rng);
        std::vector<float> want((size_t)(c.out * c.n));
        hg::hlora_linear(pool, ad, c.w_type, w.data(), x.data(), c.n, want.data());

        Dev dw = Dev::of(w), dra = Dev::of(ad.router_lora_a), db = Dev::of(ad.lora_b), dx = Dev::of(x);
        Dev dy(want.size() * 4), dla((size_t)(ad.ra_rows() * c.n) * 4), dg((size_t)(c.rank * c.n) * 4);
        size_t sb = 256;
        for (int t : {c.w_type, ad.router_lora_a_type}) sb = std::max(sb, hg::cuda::matmul_scratch_bytes(t, c.in, c.n));
        sb = std::max(sb, hg::cuda::matmul_scratch_bytes(ad.lora_b_type, c.rank, c.n));
        Dev ds(sb);
        hg::cuda::hlora_adapter da;
        da.ra_type = ad.router_lora_a_type, da.b_type = ad.lora_b_type, da.ra = dra.p<void>(), da.b = db.p<void>();
        da.in = c.in, da.out = c.out, da.rank = c.rank, da.n_experts = c.experts, da.a_row = ad.a_row,
        da.ra_rows = ad.ra_rows();
        da.scale = ad.scale();
        hg::cuda::hlora_linear(c.w_type, dw.p<void>(), da, dx.p<float>(), c.n, dy.p<float>(), dla.p<float>(),
                               dg.p<float>(), ds.p<void>(), sb, nullptr);
        // f32 / f16 adapters: float rounding alone. bf16 / q8_0 adapters round g (which differs
        // between the two in its last bits) before B: a value on a rounding boundary may go either
        // way, one bf16 / q8_0 step of one g value. K-quant weights meet q8_0 activations on the
        // GPU, q8_K ones on the CPU.
        const double tol = c.w_type == HG_TYPE_Q4_K    ? 2e-2
                           : c.ad_type == HG_TYPE_Q8_0 ? 1e-2
                           : c.ad_type == HG_TYPE_BF16 ? 3e-3
                                                       : 1e-4;
        CHECK_MSG(count_diff(dy.read<float>(want.size()), want, tol, "hlora_linear") == 0,
                  std::string("w ") + name_of(c.w_type) + ", adapters " + name_of(c.ad_type));
    }
}

TEST(greedy_pick_matches_cpu_on_ties_nan_and_every_range) {
    need_device();
    std::mt19937 rng(41);
    const float nan = std::nanf(""), inf = INFINITY;
    int bad = 0, cases = 0;
    for (int n : {2, 3, 31, 32, 33, 1023, 1024, 1025, 8192, 32064, 40206}) {
        for (int variant = 0; variant < 6; variant++) {
            // values from a few levels, so that ties are everywhere; NaN and infinities sprinkled
            std::vector<float> row((size_t)n);
            std::uniform_int_distribution<int> level(0, variant == 0 ? 3 : 1000);
            for (float &v : row) v = (float)level(rng) * 0.25f - 10;
            std::uniform_int_distribution<int> at(0, n - 1);
            if (variant == 1)
                for (int i = 0; i < n / 3 + 1; i++) row[(size_t)at(rng)] = nan;
            if (variant == 2) std::fill(row.begin(), row.end(), nan);
            if (variant == 3) std::fill(row.begin(), row.end(), -inf);
            if (variant == 4) row[(size_t)at(rng)] = inf, row[(size_t)at(rng)] = inf;
            if (variant == 5) row[0] = nan, row[(size_t)(n - 1)] = 1e30f;
            const Dev d = Dev::of(row);
            for (int r = 0; r < 4; r++) {
                std::uniform_int_distribution<int> lo_d(0, n - 1);
                int32_t lo = r == 0 ? 0 : lo_d(rng), hi = r == 0 ? n : lo + 1;
                if (r >= 2) hi = std::uniform_int_distribution<int>(lo + 1, n)(rng);
                const std::vector<int32_t> range = {lo, hi, -7};
                Dev dr = Dev::of(range);
                hg::cuda::greedy_pick(d.p<float>(), dr.p<int32_t>(), dr.p<int32_t>() + 2, nullptr);
                const int32_t got = dr.read<int32_t>(3)[2], want = hg::greedy_pick(row.data(), lo, hi);
                cases++;
                if (got != want && bad++ < 5)
                    std::fprintf(stderr, "    n %d variant %d [%d, %d): gpu %d cpu %d\n", n, variant, lo, hi, got,
                                 want);
            }
        }
    }
    std::printf("    %d ranges, %d differ\n", cases, bad);
    CHECK(bad == 0);
}

// ---- whole models ----

namespace {

hg_model *load(const std::string &path, int kv_type, int gpu, int gpu_layers = -1) {
    hg_model_params p = hg_model_default_params();
    p.gpu_layers = gpu_layers;
    p.kv_type = kv_type;
    p.n_ctx = 32;
    p.n_threads = 2;
    p.gpu = gpu;
    hg_model *m = hg_model_load(path.c_str(), &p);
    CHECK_MSG(m != nullptr, path + ": " + hg_last_error());
    return m;
}

double rel_diff(const std::vector<float> &a, const std::vector<float> &b) {
    double d = 0, mx = 0;
    for (size_t i = 0; i < a.size(); i++) {
        if (!std::isfinite(a[i])) return INFINITY;
        d = std::max(d, (double)std::fabs(a[i] - b[i]));
        mx = std::max(mx, (double)std::fabs(b[i]));
    }
    return d / mx;
}

std::vector<int32_t> greedy(hg_model *m, int plugin, std::vector<int32_t> prompt, int steps) {
    const int V = hg_model_n_vocab(m);
    std::vector<float> logits((size_t)V);
    hg_model_kv_clear(m, 0);
    std::vector<int32_t> out;
    if (hg_model_eval_plugin(m, plugin, prompt.data(), (int)prompt.size(), 0, logits.data(), 0) != 0) return out;
    for (int s = 0; s < steps; s++) {
        const int32_t next = (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
        out.push_back(next);
        if (hg_model_eval_plugin(m, plugin, &next, 1, (int)(prompt.size() + s), logits.data(), 0) != 0) break;
    }
    return out;
}

// Prefill (all logits), decode step by step, and greedy tokens: CUDA against the CPU.
void compare_models(hg_model *cpu, hg_model *gpu, int pc, int pg, const std::vector<int32_t> &tokens, double tol,
                    const std::string &what) {
    const int n = (int)tokens.size(), V = hg_model_n_vocab(cpu);
    std::vector<float> a((size_t)n * V), b((size_t)n * V);
    hg_model_kv_clear(cpu, 0), hg_model_kv_clear(gpu, 0);
    CHECK(hg_model_eval_plugin(cpu, pc, tokens.data(), n, 0, a.data(), 1) == 0);
    CHECK_MSG(hg_model_eval_plugin(gpu, pg, tokens.data(), n, 0, b.data(), 1) == 0, hg_last_error());
    const double rp = rel_diff(b, a);
    hg_model_kv_clear(gpu, 0);
    for (int t = 0; t < n; t++) CHECK(hg_model_eval_plugin(gpu, pg, &tokens[t], 1, t, &b[(size_t)t * V], 0) == 0);
    const double rd = rel_diff(b, a);
    const std::vector<int32_t> prompt(tokens.begin(), tokens.begin() + 6);
    const bool same = greedy(cpu, pc, prompt, 16) == greedy(gpu, pg, prompt, 16);
    std::printf("    %-40s prefill %.3g, decode %.3g (tol %.0e), greedy %s\n", what.c_str(), rp, rd, tol,
                same ? "identical" : "DIFFERENT");
    CHECK_MSG(rp <= tol && rd <= tol, what + ": " + std::to_string(rp) + " / " + std::to_string(rd));
    CHECK_MSG(same, what + ": greedy tokens differ");
}

} // namespace

TEST(phi3_fixtures_on_cuda_match_cpu) {
    need_device();
    struct V {
        const char *name;
        int kv_type;
        double tol; // f32 / f16 weights: float rounding alone; q8_0: a quant step may flip
    };
    for (const V &v :
         {V{"gqa.f32", HG_TYPE_F32, 1e-4}, V{"gqa.f32", HG_TYPE_F16, 1e-4}, V{"gqa.f16", HG_TYPE_F16, 1e-4},
          V{"gqa.q8_0", HG_TYPE_F16, 1e-2}, V{"swa.f32", HG_TYPE_F32, 1e-4}, V{"swa.q8_0", HG_TYPE_F16, 1e-2}}) {
        const std::string path = std::string("test/fixtures/phi3/") + v.name + ".gguf";
        const Reference ref = read_reference(std::string("test/fixtures/phi3/") + v.name + ".logits");
        CHECK(ref.ok);
        hg_model *cpu = load(path, v.kv_type, HG_GPU_OFF), *gpu = load(path, v.kv_type, HG_GPU_CUDA);
        if (cpu && gpu && ref.ok) {
            CHECK_MSG(std::string(hg_model_backend(gpu)).rfind("cuda: ", 0) == 0, hg_model_backend(gpu));
            compare_models(cpu, gpu, -1, -1, ref.tokens, v.tol,
                           std::string(v.name) + (v.kv_type == HG_TYPE_F16 ? " kv f16" : " kv f32"));
        }
        hg_model_free(cpu);
        hg_model_free(gpu);
    }
}

TEST(plugins_and_embedding_rows_on_cuda_match_cpu) {
    need_device();
    const std::string dir = "test/fixtures/phi3-hlora/";
    const Reference ref = read_reference(dir + "base.f32.none.logits");
    CHECK(ref.ok);
    if (!ref.ok) return;
    for (const char *base : {"base.f32", "base.q8_0"}) {
        hg_model *cpu = load(dir + base + ".gguf", HG_TYPE_F16, HG_GPU_OFF),
                 *gpu = load(dir + base + ".gguf", HG_TYPE_F16, HG_GPU_CUDA);
        if (!cpu || !gpu) {
            hg_model_free(cpu), hg_model_free(gpu);
            continue;
        }
        const double tol = std::string(base) == "base.f32" ? 1e-4 : 1e-2;
        for (const char *plugin : {"comprehension.f32", "generation.f32", "comprehension.bf16", "generation.f16"}) {
            const int pc = hg_model_load_plugin(cpu, (dir + plugin + ".gguf").c_str(), nullptr);
            const int pg = hg_model_load_plugin(gpu, (dir + plugin + ".gguf").c_str(), nullptr);
            CHECK_MSG(pc >= 0 && pg >= 0, hg_last_error());
            if (pc < 0 || pg < 0) continue;
            compare_models(cpu, gpu, pc, pg, ref.tokens,
                           std::string(plugin).find("f32") != std::string::npos ? tol : std::max(tol, 1e-3),
                           std::string(base) + " + " + plugin);
        }
        compare_models(cpu, gpu, -1, -1, ref.tokens, tol, std::string(base) + ", no plugin after plugins");

        // positions 2..5 take vectors in place of tokens (image features)
        const int n = (int)ref.tokens.size(), E = hg_model_n_embd(cpu), V = hg_model_n_vocab(cpu);
        std::mt19937 rng(29);
        const std::vector<float> embd = randn((size_t)(4 * E), rng, 0.05f);
        std::vector<int32_t> toks = ref.tokens;
        for (int i = 2; i < 6; i++) toks[(size_t)i] = -1;
        std::vector<float> a((size_t)n * V), b((size_t)n * V);
        hg_model_kv_clear(cpu, 0), hg_model_kv_clear(gpu, 0);
        CHECK(hg_model_eval_embd(cpu, 1, toks.data(), embd.data(), n, 0, a.data(), 1) == 0);
        CHECK_MSG(hg_model_eval_embd(gpu, 1, toks.data(), embd.data(), n, 0, b.data(), 1) == 0, hg_last_error());
        const double r = rel_diff(b, a);
        std::printf("    %-40s %.3g (tol %.0e)\n", (std::string(base) + " embedding rows").c_str(), r, tol);
        CHECK(r <= tol);
        hg_model_free(cpu);
        hg_model_free(gpu);
    }
}

TEST(first_layers_on_cuda_the_rest_on_cpu_match_cpu) {
    need_device();
    const std::string dir = "test/fixtures/phi3-hlora/";
    const Reference ref = read_reference(dir + "base.f32.none.logits");
    CHECK(ref.ok);
    hg_model *cpu = load(dir + "base.f32.gguf", HG_TYPE_F16, HG_GPU_OFF);
    hg_model *split = load(dir + "base.f32.gguf", HG_TYPE_F16, HG_GPU_CUDA, 1);
    if (cpu && split && ref.ok) {
        const std::string b = hg_model_backend(split);
        CHECK_MSG(b.find("layers 0..0 of 2") != std::string::npos, b);
        compare_models(cpu, split, -1, -1, ref.tokens, 1e-4, "base.f32, 1 of 2 layers on cuda");
        const std::string plugin = dir + "generation.f32.gguf"; // own token_embd and output rows
        const int pc = hg_model_load_plugin(cpu, plugin.c_str(), nullptr),
                  ps = hg_model_load_plugin(split, plugin.c_str(), nullptr);
        CHECK_MSG(pc >= 0 && ps >= 0, hg_last_error());
        if (pc >= 0 && ps >= 0)
            compare_models(cpu, split, pc, ps, ref.tokens, 1e-4, "base.f32 + generation.f32, 1 of 2 layers");
    }
    hg_model_free(cpu);
    hg_model_free(split);
}

TEST(decode_steps_as_cuda_graphs_equal_plain_launches) {
    need_device();
    // the same kernels with the same launch shapes: bit for bit, at every position, with all
    // layers on the device (the graph ends with the logits) and with the first of two (it ends
    // with the hidden state, the CPU runs the second layer and the head)
    const std::string path = "test/fixtures/phi3-hlora/base.f32.gguf";
    for (int gpu_layers : {-1, 1}) {
        hg_model *graphed = load(path, HG_TYPE_F16, HG_GPU_CUDA, gpu_layers);
        setenv("HEALTHGPT_CUDA_GRAPHS", "0", 1);
        hg_model *plain = load(path, HG_TYPE_F16, HG_GPU_CUDA, gpu_layers);
        unsetenv("HEALTHGPT_CUDA_GRAPHS");
        if (graphed && plain) {
            const std::string plugin = "test/fixtures/phi3-hlora/generation.f32.gguf";
            CHECK(hg_model_load_plugin(graphed, plugin.c_str(), nullptr) == 0);
            CHECK(hg_model_load_plugin(plain, plugin.c_str(), nullptr) == 0);
            const int V = hg_model_n_vocab(plain);
            std::vector<float> a((size_t)V), b((size_t)V);
            int bad = 0;
            for (int plug : {-1, 0, -1}) {
                hg_model_kv_clear(graphed, 0), hg_model_kv_clear(plain, 0);
                for (int t = 0; t < 20; t++) {
                    const int32_t tok = (int32_t)((t * 37 + 11) % V);
                    CHECK(hg_model_eval_plugin(graphed, plug, &tok, 1, t, a.data(), 0) == 0);
                    CHECK(hg_model_eval_plugin(plain, plug, &tok, 1, t, b.data(), 0) == 0);
                    if (std::memcmp(a.data(), b.data(), a.size() * 4) != 0 && bad++ < 3)
                        std::fprintf(stderr,
                                     "    gpu_layers %d plugin %d position %d: graph and plain launches differ\n",
                                     gpu_layers, plug, t);
                }
            }
            CHECK_MSG(bad == 0, "gpu_layers " + std::to_string(gpu_layers));
        }
        hg_model_free(graphed);
        hg_model_free(plain);
    }
}

TEST(greedy_segments_on_cuda_pick_what_the_rows_give) {
    need_device();
    // the device's pick (in the recorded graph and in plain launches, with the head on the
    // device) and the CPU's (the head here, the first layer on the device): the token of the
    // row the same model returns for the same positions, at every step
    const std::string path = "test/fixtures/phi3-hlora/base.f32.gguf";
    for (int variant = 0; variant < 3; variant++) {
        if (variant == 1) setenv("HEALTHGPT_CUDA_GRAPHS", "0", 1);
        hg_model *m = load(path, HG_TYPE_F16, HG_GPU_CUDA, variant == 2 ? 1 : -1);
        unsetenv("HEALTHGPT_CUDA_GRAPHS");
        if (!m) continue;
        const int plugin = hg_model_load_plugin(m, "test/fixtures/phi3-hlora/generation.f32.gguf", nullptr);
        CHECK_MSG(plugin == 0, hg_last_error());
        const int V = hg_model_n_vocab(m);
        std::vector<float> row((size_t)V);
        int bad = 0;
        for (int plug : {-1, 0}) {
            std::vector<int32_t> toks = {11, 48, 85, 122, 159};
            for (int t = 0; t < 12; t++) {
                // the row, then the same positions again with picks over three ranges
                const int pos = (int)toks.size() - (t == 0 ? 5 : 1), n = t == 0 ? 5 : 1;
                hg_model_kv_clear(m, pos);
                CHECK(hg_model_eval_plugin(m, plug, toks.data() + pos, n, pos, row.data(), 0) == 0);
                const int32_t top = (int32_t)(std::max_element(row.begin(), row.end()) - row.begin());
                const int32_t ranges[3][2] = {{0, V}, {top + 1 < V ? top + 1 : 0, top + 1 < V ? V : top}, {3, 4}};
                for (const auto &r : ranges) {
                    hg_model_kv_clear(m, pos);
                    int32_t picked = -2;
                    hg_batch_seq s{};
                    s.seq = 0, s.plugin = plug, s.start_pos = pos, s.n_tokens = n, s.tokens = toks.data() + pos;
                    s.logits = 1, s.greedy_lo = r[0], s.greedy_hi = r[1], s.next = &picked;
                    CHECK_MSG(hg_model_eval_batch(m, &s, 1, nullptr) == 0, hg_last_error());
                    const int32_t want = hg::greedy_pick(row.data(), r[0], r[1]);
                    if (picked != want && bad++ < 3)
                        std::fprintf(stderr, "    variant %d plugin %d step %d [%d, %d): picked %d, the row's %d\n",
                                     variant, plug, t, r[0], r[1], picked, want);
                }
                toks.push_back(top);
            }
        }
        CHECK_MSG(bad == 0, "variant " + std::to_string(variant));
        hg_model_free(m);
    }
}

TEST(cuda_model_refuses_bad_calls_and_keeps_its_state) {
    need_device();
    hg_model *m = load("test/fixtures/phi3/gqa.f32.gguf", HG_TYPE_F16, HG_GPU_CUDA);
    if (!m) return;
    const int32_t toks[3] = {1, 2, 3}, bad = 100000;
    std::vector<float> logits((size_t)hg_model_n_vocab(m));
    CHECK(hg_model_eval(m, toks, 3, 0, logits.data(), 0) == 0);
    CHECK(hg_model_eval(m, &bad, 1, 3, logits.data(), 0) != 0);
    CHECK(hg_model_n_past(m) == 3);
    std::vector<int32_t> many(40, 1);
    CHECK(hg_model_eval(m, many.data(), 40, 3, logits.data(), 0) != 0); // past n_ctx 32
    CHECK(hg_model_eval(m, toks, 1, 3, logits.data(), 0) == 0);
    hg_model_free(m);
}

HG_TEST_MAIN()
