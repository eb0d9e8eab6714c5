// H-LoRA linear (native/ops/hlora.cpp): the fused path against the unfused double-precision
// reference over odd shapes and base weight types, both against torch's golden vectors
// (tools/reference/make_hlora_reference.py), and refusal of bad adapters.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/threadpool.h"
#include "healthgpt.h"
#include "ops/hlora.h"
#include "ops/matmul.h"
#include "tests/check.h"

namespace {

std::vector<float> randn(size_t n, uint32_t seed, float std) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, std);
    std::vector<float> v(n);
    for (auto &x : v) x = nd(rng);
    return v;
}

std::vector<uint8_t> quantize(int type, const std::vector<float> &w, int64_t rows, int64_t in) {
    const size_t row = (size_t)(in / hg_type_block_size(type)) * hg_type_block_bytes(type);
    std::vector<uint8_t> out(row * rows);
    for (int64_t r = 0; r < rows; r++) hg_quantize_row(type, &w[r * in], &out[r * row], in);
    return out;
}

double max_rel(const std::vector<float> &got, const std::vector<float> &ref) {
    double d = 0, m = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        d = std::max(d, (double)std::fabs(got[i] - ref[i]));
        m = std::max(m, (double)std::fabs(ref[i]));
    }
    return d / m;
}

struct Golden {
    uint32_t in = 0, out = 0, rank = 0, experts = 0, tokens = 0;
    float alpha = 0;
    std::vector<float> w, router, lora_a, lora_b, x, y;
};

bool read_golden(const std::string &path, Golden &g) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    char magic[4];
    uint32_t hdr[6];
    f.read(magic, 4);
    f.read(reinterpret_cast<char *>(hdr), sizeof hdr);
    f.read(reinterpret_cast<char *>(&g.alpha), 4);
    if (std::memcmp(magic, "HGHL", 4) != 0 || hdr[0] != 1) return false;
    g.in = hdr[1], g.out = hdr[2], g.rank = hdr[3], g.experts = hdr[4], g.tokens = hdr[5];
    auto arr = [&](std::vector<float> &v, size_t n) {
        v.resize(n);
        f.read(reinterpret_cast<char *>(v.data()), (std::streamsize)(n * 4));
    };
    arr(g.w, (size_t)g.out * g.in);
    arr(g.router, (size_t)g.experts * g.in);
    arr(g.lora_a, (size_t)g.rank * g.in);
    arr(g.lora_b, (size_t)g.out * g.rank);
    arr(g.x, (size_t)g.tokens * g.in);
    arr(g.y, (size_t)g.tokens * g.out);
    return (bool)f;
}

} // namespace

TEST(hlora_matches_torch_golden_vectors) {
    hg::ThreadPool pool(2);
    for (const char *name : {"comprehension", "generation"}) {
        Golden g;
        const bool ok = read_golden(std::string("test/fixtures/hlora/") + name + ".bin", g);
        CHECK_MSG(ok, std::string("cannot read test/fixtures/hlora/") + name + ".bin (run from the repo root)");
        if (!ok) continue;
        auto ad = hg::HLoraAdapter::make(name, g.in, g.out, g.rank, g.experts, g.alpha, g.router, g.lora_a, g.lora_b);
        std::vector<float> fused(g.y.size()), ref(g.y.size());
        hg::hlora_linear(pool, ad, HG_TYPE_F32, g.w.data(), g.x.data(), g.tokens, fused.data());
        hg::hlora_linear_ref(ad, HG_TYPE_F32, g.w.data(), g.x.data(), g.tokens, ref.data());
        // float32 weights and inputs, float64 in torch: only float32 rounding of dot products
        // of <= 256 terms remains (~1e-6 relative)
        std::printf("    %s (r=%u, %u experts): fused %.2e, reference %.2e max rel err vs torch\n", name, g.rank, g.experts,
                    max_rel(fused, g.y), max_rel(ref, g.y));
        CHECK(max_rel(fused, g.y) < 1e-4);
        CHECK(max_rel(ref, g.y) < 1e-5);
    }
}

TEST(hlora_fused_matches_reference_over_shapes_and_types) {
    const int types[] = {HG_TYPE_F32, HG_TYPE_F16, HG_TYPE_Q8_0, HG_TYPE_Q4_0};
    const int64_t shapes[][3] = {{96, 72, 8}, {160, 33, 64}, {64, 40, 256}}; // in, out, rank
    uint32_t seed = 1;
    for (int threads : {1, 3}) {
        hg::ThreadPool pool(threads);
        for (auto &s : shapes)
            for (int type : types)
                for (int64_t tokens : {1, 7}) {
                    const int64_t in = s[0], out = s[1], r = s[2], n = 4;
                    seed += 5;
                    auto w = randn((size_t)(out * in), seed, 1.0f / std::sqrt((float)in));
                    auto ad = hg::HLoraAdapter::make("t", in, out, r, n, 2.0f * r, randn(n * in, seed + 1, 0.5f),
                                                     randn(r * in, seed + 2, 0.1f), randn(out * r, seed + 3, 0.1f));
                    auto x = randn((size_t)(in * tokens), seed + 4, 1.0f);
                    auto wq = type == HG_TYPE_F32 ? std::vector<uint8_t>(reinterpret_cast<uint8_t *>(w.data()),
                                                                         reinterpret_cast<uint8_t *>(w.data() + w.size()))
                                                  : quantize(type, w, out, in);
                    std::vector<float> fused((size_t)(out * tokens)), ref(fused.size());
                    hg::hlora_linear(pool, ad, type, wq.data(), x.data(), tokens, fused.data());
                    hg::hlora_linear_ref(ad, type, wq.data(), x.data(), tokens, ref.data());
                    // same (dequantized) W on both sides: only the fused path's rounding of
                    // activations differs: none for f32, half for f16, 8-bit blocks for q8_0/q4_0
                    const double tol = type == HG_TYPE_F32 ? 1e-5 : type == HG_TYPE_F16 ? 3e-3 : 3e-2;
                    CHECK_MSG(max_rel(fused, ref) < tol, "type " + std::to_string(type) + " in " + std::to_string(in) +
                                                             " r " + std::to_string(r) + " tokens " + std::to_string(tokens) +
                                                             ": " + std::to_string(max_rel(fused, ref)));
                }
    }
}

TEST(hlora_refuses_bad_adapters_naming_the_tensor) {
    auto expect_fail = [](const char *needle, auto &&fn) {
        std::string msg;
        try {
            fn();
        } catch (const hg::Error &e) {
            msg = e.what();
        }
        CHECK_MSG(msg.find(needle) != std::string::npos, "message '" + msg + "' lacks '" + needle + "'");
    };
    const std::vector<float> r4(4 * 8, 0.1f), a6(6 * 8, 0.1f), b6(5 * 6, 0.1f), a8(8 * 8, 0.1f), b8(5 * 8, 0.1f);
    expect_fail("rank 6 is not divisible by 4 experts", [&] { hg::HLoraAdapter::make("blk.0.attn_qkv", 8, 5, 6, 4, 12, r4, a6, b6); });
    expect_fail("blk.0.attn_qkv.lora_B: 39 values, expected 5 x 8", [&] {
        std::vector<float> b(39, 0.1f);
        hg::HLoraAdapter::make("blk.0.attn_qkv", 8, 5, 8, 4, 16, r4, a8, b);
    });
    expect_fail("blk.1.ffn_down.lora_A: non-finite value at index 3", [&] {
        std::vector<float> a = a8;
        a[3] = NAN;
        hg::HLoraAdapter::make("blk.1.ffn_down", 8, 5, 8, 4, 16, r4, a, b8);
    });
    expect_fail("blk.1.ffn_down.router: 31 values", [&] {
        std::vector<float> r(31, 0.1f);
        hg::HLoraAdapter::make("blk.1.ffn_down", 8, 5, 8, 4, 16, r, a8, b8);
    });
}

TEST(hlora_cost_against_the_base_matmul) {
    // printed, not asserted: the plugin's cost at a Phi-3 shape (qkv_proj 3072 -> 9216, q4_0)
    hg::ThreadPool pool(2);
    const int64_t in = 3072, out = 9216;
    auto wq = quantize(HG_TYPE_Q4_0, randn((size_t)(out * in), 7, 0.02f), out, in);
    for (int64_t r : {64, 256}) {
        auto ad = hg::HLoraAdapter::make("bench", in, out, r, 4, 2.0f * r, randn(4 * in, 8, 0.02f), randn(r * in, 9, 0.02f),
                                         randn(out * r, 10, 0.02f));
        for (int64_t tokens : {1, 64}) {
            auto x = randn((size_t)(in * tokens), 11, 1.0f);
            std::vector<float> y((size_t)(out * tokens));
            auto time = [&](auto &&fn) {
                double best = 1e30;
                for (int i = 0; i < 5; i++) {
                    auto t0 = std::chrono::steady_clock::now();
                    fn();
                    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
                }
                return best;
            };
            const double base = time([&] { hg::matmul(pool, HG_TYPE_Q4_0, wq.data(), out, in, x.data(), tokens, y.data()); });
            const double fused = time([&] { hg::hlora_linear(pool, ad, HG_TYPE_Q4_0, wq.data(), x.data(), tokens, y.data()); });
            std::printf("    r=%3lld tokens=%2lld: base %.3f ms, with plugin %.3f ms (+%.0f%%)\n", (long long)r, (long long)tokens, base,
                        fused, 100 * (fused / base - 1));
        }
    }
}

HG_TEST_MAIN()
