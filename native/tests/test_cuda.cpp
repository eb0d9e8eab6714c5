// CUDA backend (native/cuda/backend.cu): the device query never fails, and on a machine with a
// GPU the q8_0 -> f32 kernel matches a CPU computation bit for bit. Without a device the test
// prints "no CUDA device: skipped" and passes.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "cuda/backend.h"
#include "healthgpt.h"
#include "tests/check.h"

namespace {

constexpr int QK = 32;
constexpr int BLOCK_BYTES = 34;

// q8_0 blocks with every q in -128..127 and scales that include 0, negatives, the smallest
// subnormal, the largest finite half, and random normals.
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

bool have_device() {
    static const bool have = [] {
        const int n = hg::cuda_device_count();
        if (n == 0) {
            const std::string why = hg::cuda_status();
            std::printf("no CUDA device: skipped%s%s\n", why.empty() ? "" : " - ", why.c_str());
        }
        return n > 0;
    }();
    return have;
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

TEST(device_query_never_fails) {
    const int n = hg::cuda_device_count();
    CHECK(n >= 0);
    CHECK(hg::cuda_device_count() == n); // stable
    CHECK(hg_cuda_devices() == n);
    if (n == 0) return;
    for (int d = 0; d < n; d++) {
        const hg::cuda_device_props p = hg::cuda_device_properties(d);
        std::printf("  device %d: %s, sm_%d%d, %d SMs, %.1f GiB\n", d, p.name.c_str(), p.cc_major,
                    p.cc_minor, p.multiprocessors, p.total_bytes / 1073741824.0);
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
}

TEST(dequantize_q8_0_host_matches_cpu) {
    if (!have_device()) return;
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
    if (!have_device()) return;
    // A tensor at an odd device address: d must still be read correctly.
    const int64_t n_blocks = 513, n = n_blocks * QK;
    const std::vector<uint8_t> q = make_q8_0(n_blocks, 99);
    const std::vector<float> want = cpu_dequantize(q, n);
    uint8_t *src = static_cast<uint8_t *>(hg::cuda_malloc(q.size() + 1));
    float *dst = static_cast<float *>(hg::cuda_malloc((size_t)n * sizeof(float)));
    hg::cuda_copy_to_device(src + 1, q.data(), q.size());
    hg::cuda_dequantize_q8_0(src + 1, dst, n);
    hg::cuda_synchronize();
    std::vector<float> got((size_t)n);
    hg::cuda_copy_to_host(got.data(), dst, got.size() * sizeof(float));
    hg::cuda_free(src);
    hg::cuda_free(dst);
    CHECK(count_mismatches(got, want) == 0);
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

HG_TEST_MAIN()
