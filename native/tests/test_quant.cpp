// The type table and the scalar reference conversions and dot products: round-trip error
// per type, dots against double precision, edge values, and bytes against llama.cpp's
// rounding through the gguf-py fixtures in test/fixtures/quant (tools/reference/
// gen_quant_vectors.py makes them; the test only reads them).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "quant/quant.h"
#include "quant/quant_ref.h"
#include "quant/repack.h"
#include "tests/check.h"

namespace {

typedef std::vector<uint8_t> bytes;

const int SUPPORTED[] = {HG_TYPE_F32,  HG_TYPE_F16,  HG_TYPE_BF16, HG_TYPE_Q4_0, HG_TYPE_Q4_1,
                         HG_TYPE_Q5_0, HG_TYPE_Q5_1, HG_TYPE_Q8_0, HG_TYPE_Q8_1, HG_TYPE_Q4_K,
                         HG_TYPE_Q5_K, HG_TYPE_Q6_K, HG_TYPE_Q8_K};
const int WEIGHTS[] = {HG_TYPE_F32,  HG_TYPE_F16,  HG_TYPE_BF16, HG_TYPE_Q4_0, HG_TYPE_Q4_1, HG_TYPE_Q5_0,
                       HG_TYPE_Q5_1, HG_TYPE_Q8_0, HG_TYPE_Q4_K, HG_TYPE_Q5_K, HG_TYPE_Q6_K};

const hg::type_info &info(int type) {
    const hg::type_info *t = hg::type_traits(type);
    if (!t) hg::fail("no type " + std::to_string(type));
    return *t;
}

bytes quantize(int type, const std::vector<float> &x) {
    bytes q(hg::row_bytes(type, (int64_t)x.size()));
    info(type).from_float_ref(x.data(), q.data(), (int64_t)x.size());
    return q;
}

std::vector<float> dequantize(int type, const bytes &q, int64_t n) {
    std::vector<float> y((size_t)n);
    info(type).to_float(q.data(), y.data(), n);
    return y;
}

std::vector<float> gaussian(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> x(n);
    for (float &v : x) v = nd(rng);
    return x;
}

double rmse(const std::vector<float> &a, const std::vector<float> &b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return std::sqrt(s / (double)a.size());
}

// Round-trip RMSE of N(0, 1) data must stay under these (measured values are printed by
// quant_rmse_table; bounds leave ~15% margin). f32 is exact.
double rmse_bound(int type) {
    switch (type) {
    case HG_TYPE_F32: return 0.0;
    case HG_TYPE_F16: return 2.4e-4;  // measured 2.09e-4
    case HG_TYPE_BF16: return 1.9e-3; // 1.67e-3
    case HG_TYPE_Q8_0: return 6.2e-3; // 5.40e-3 (llama.cpp's rounding, bit for bit)
    case HG_TYPE_Q8_1: return 6.2e-3; // 5.40e-3
    case HG_TYPE_Q8_K: return 8.0e-3; // 7.03e-3: one scale per 256 values
    case HG_TYPE_Q4_0: return 0.100;  // 0.0865
    case HG_TYPE_Q4_1: return 0.090;  // 0.0784
    case HG_TYPE_Q5_0: return 0.050;  // 0.0432
    case HG_TYPE_Q5_1: return 0.044;  // 0.0383
    case HG_TYPE_Q4_K: return 0.082;  // 0.0719
    case HG_TYPE_Q5_K: return 0.042;  // 0.0364
    case HG_TYPE_Q6_K: return 0.0205; // 0.0178
    }
    return 0.0;
}

// The d field of block b (the super-block scale for k-quants), for the all-zero checks.
float block_d(int type, const uint8_t *b) {
    hg::fp16_t h;
    switch (type) {
    case HG_TYPE_Q8_K: {
        float d;
        std::memcpy(&d, b, 4);
        return d;
    }
    case HG_TYPE_Q6_K: std::memcpy(&h, b + offsetof(hg::block_q6_K, d), 2); break;
    default: std::memcpy(&h, b, 2); break; // q4_0 .. q8_1, q4_K, q5_K lead with d
    }
    return hg::fp16_to_f32(h);
}

const double EPS = 0x1p-24; // half an ulp of float at 1

} // namespace

// ---------------------------------------------------------------- the type table

TEST(type_table_sizes_names_and_support) {
    struct row {
        int id;
        const char *name;
        int64_t block;
        size_t bytes;
    };
    // gguf-py 0.19.0 GGML_QUANT_SIZES, except q8_1: ggml's struct is 36 bytes
    const row rows[] = {
        {0, "f32", 1, 4},         {1, "f16", 1, 2},         {2, "q4_0", 32, 18},      {3, "q4_1", 32, 20},
        {6, "q5_0", 32, 22},      {7, "q5_1", 32, 24},      {8, "q8_0", 32, 34},      {9, "q8_1", 32, 36},
        {10, "q2_K", 256, 84},    {11, "q3_K", 256, 110},   {12, "q4_K", 256, 144},   {13, "q5_K", 256, 176},
        {14, "q6_K", 256, 210},   {15, "q8_K", 256, 292},   {16, "iq2_xxs", 256, 66}, {17, "iq2_xs", 256, 74},
        {18, "iq3_xxs", 256, 98}, {19, "iq1_s", 256, 50},   {20, "iq4_nl", 32, 18},   {21, "iq3_s", 256, 110},
        {22, "iq2_s", 256, 82},   {23, "iq4_xs", 256, 136}, {24, "i8", 1, 1},         {25, "i16", 1, 2},
        {26, "i32", 1, 4},        {27, "i64", 1, 8},        {28, "f64", 1, 8},        {29, "iq1_m", 256, 56},
        {30, "bf16", 1, 2},       {34, "tq1_0", 256, 54},   {35, "tq2_0", 256, 66},   {39, "mxfp4", 32, 17},
        {40, "nvfp4", 64, 36},    {41, "q1_0", 128, 18},
    };
    bool listed[HG_TYPE_COUNT] = {};
    for (const row &r : rows) {
        listed[r.id] = true;
        const hg::type_info *t = hg::type_traits(r.id);
        CHECK_MSG(t != nullptr, r.name);
        if (!t) continue;
        CHECK_MSG(std::string(t->name) == r.name, r.name);
        CHECK_MSG(t->block_size == r.block, r.name);
        CHECK_MSG(t->block_bytes == r.bytes, r.name);
        bool sup = false;
        for (int s : SUPPORTED) sup |= s == r.id;
        CHECK_MSG(t->supported == sup, r.name);
        CHECK_MSG((t->to_float != nullptr) == sup && (t->from_float_ref != nullptr) == sup, r.name);
    }
    for (int id = 0; id < HG_TYPE_COUNT; id++)
        if (!listed[id]) CHECK_MSG(hg::type_traits(id) == nullptr, "retired id " + std::to_string(id));
    CHECK(hg::type_traits(-1) == nullptr);
    CHECK(hg::type_traits(HG_TYPE_COUNT) == nullptr);
    CHECK(hg::type_traits(1000) == nullptr);

    // llama.cpp's pairing of weight and activation types
    CHECK(info(HG_TYPE_F32).vec_dot_type == HG_TYPE_F32);
    CHECK(info(HG_TYPE_F16).vec_dot_type == HG_TYPE_F32);
    CHECK(info(HG_TYPE_BF16).vec_dot_type == HG_TYPE_BF16);
    CHECK(info(HG_TYPE_Q4_0).vec_dot_type == HG_TYPE_Q8_0);
    CHECK(info(HG_TYPE_Q5_0).vec_dot_type == HG_TYPE_Q8_0);
    CHECK(info(HG_TYPE_Q8_0).vec_dot_type == HG_TYPE_Q8_0);
    CHECK(info(HG_TYPE_Q4_1).vec_dot_type == HG_TYPE_Q8_1);
    CHECK(info(HG_TYPE_Q5_1).vec_dot_type == HG_TYPE_Q8_1);
    CHECK(info(HG_TYPE_Q4_K).vec_dot_type == HG_TYPE_Q8_K);
    CHECK(info(HG_TYPE_Q5_K).vec_dot_type == HG_TYPE_Q8_K);
    CHECK(info(HG_TYPE_Q6_K).vec_dot_type == HG_TYPE_Q8_K);
}

TEST(row_bytes_checks_whole_blocks) {
    CHECK(hg::row_bytes(HG_TYPE_F32, 7) == 28);
    CHECK(hg::row_bytes(HG_TYPE_Q4_0, 64) == 36);
    CHECK(hg::row_bytes(HG_TYPE_Q4_K, 4096) == 16 * 144);
    CHECK(hg::row_bytes(HG_TYPE_Q8_1, 32) == 36);
    CHECK(hg::row_bytes(HG_TYPE_IQ2_XXS, 512) == 132); // known, unsupported: still sized
    CHECK(hg::row_bytes(HG_TYPE_Q6_K, 0) == 0);
    auto message = [](int type, int64_t n) -> std::string {
        try {
            hg::row_bytes(type, n);
        } catch (const hg::Error &e) {
            return e.what();
        }
        return "";
    };
    const std::string m1 = message(HG_TYPE_Q4_K, 100);
    CHECK_MSG(m1.find("q4_K") != std::string::npos && m1.find("100") != std::string::npos, m1);
    const std::string m2 = message(HG_TYPE_Q8_0, 33);
    CHECK_MSG(m2.find("q8_0") != std::string::npos && m2.find("33") != std::string::npos, m2);
    const std::string m3 = message(4, 32); // retired q4_2
    CHECK_MSG(!m3.empty() && m3.find('4') != std::string::npos, m3);
    CHECK(!message(-3, 32).empty());
    CHECK(!message(HG_TYPE_F32, -1).empty());
}

TEST(scalar_kernel_table_is_complete) {
    const hg::kernel_table &k = hg::kernels_scalar();
    for (int t : WEIGHTS) CHECK_MSG(k.vec_dot[t] != nullptr, info(t).name);
    const int acts[] = {HG_TYPE_Q8_0, HG_TYPE_Q8_1, HG_TYPE_Q8_K, HG_TYPE_F16, HG_TYPE_BF16, HG_TYPE_F32};
    for (int t : acts) CHECK_MSG(k.from_float[t] != nullptr, info(t).name);
    // every weight type's activation partner can be produced
    for (int t : WEIGHTS) CHECK_MSG(k.from_float[info(t).vec_dot_type] != nullptr, info(t).name);
}

// ---------------------------------------------------------------- round-trip error

TEST(quant_rmse_table) {
    const size_t n = 256 * 128;
    const std::vector<float> x = gaussian(n, 42);
    std::printf("  %-6s %12s %12s %12s\n", "type", "rmse/std", "max |err|", "bound");
    for (int t : SUPPORTED) {
        const std::vector<float> y = dequantize(t, quantize(t, x), (int64_t)n);
        double max_err = 0;
        for (size_t i = 0; i < n; i++) max_err = std::fmax(max_err, std::fabs((double)y[i] - x[i]));
        const double e = rmse(x, y); // the data's std is 1
        std::printf("  %-6s %12.6f %12.6f %12.6f\n", info(t).name, e, max_err, rmse_bound(t));
        CHECK_MSG(e <= rmse_bound(t), std::string(info(t).name) + " rmse " + std::to_string(e));
    }
}

// Scale invariance of the error: the same data at 1e-3 and 1e3 (and the fp16 scales then
// sit well inside their range) keeps the relative error within the same bounds.
TEST(quant_rmse_scales_with_data) {
    const size_t n = 256 * 16;
    for (float scale : {1e-3f, 1e3f}) {
        const std::vector<float> x = gaussian(n, 7, scale);
        for (int t : SUPPORTED) {
            const std::vector<float> y = dequantize(t, quantize(t, x), (int64_t)n);
            const double e = rmse(x, y) / scale;
            CHECK_MSG(e <= rmse_bound(t) * 1.1 + 1e-7,
                      std::string(info(t).name) + " at scale " + std::to_string(scale) + ": " + std::to_string(e));
        }
    }
}

// ---------------------------------------------------------------- dot products

// The kernel against a double dot of what it was given, dequantized. k-quant weights are
// d sc q - dmin m: their rounding scales with |d sc q| + |dmin m|, which may cancel.
static void check_vec_dot(int wt, size_t n, uint32_t seed) {
    const hg::type_info &w = info(wt);
    const int at = w.vec_dot_type;
    const std::vector<float> wx = gaussian(n, seed), ax = gaussian(n, seed + 1000);
    const bytes wq = quantize(wt, wx), aq = quantize(at, ax);
    const std::vector<float> wd = dequantize(wt, wq, (int64_t)n), ad = dequantize(at, aq, (int64_t)n);

    std::vector<double> mag(n); // magnitude each weight value is computed from
    for (size_t i = 0; i < n; i++) mag[i] = std::fabs(wd[i]);
    if (wt == HG_TYPE_Q4_K || wt == HG_TYPE_Q5_K) {
        for (size_t b = 0; b < n / 256; b++) {
            const uint8_t *blk = wq.data() + b * w.block_bytes;
            hg::fp16_t hmin;
            std::memcpy(&hmin, blk + 2, 2);
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                hg::get_scale_min_k4(j, blk + 4, &sc, &m);
                const double dm = std::fabs(hg::fp16_to_f32(hmin) * m);
                for (int l = 0; l < 32; l++) mag[b * 256 + 32 * j + l] = 2 * (std::fabs(wd[b * 256 + 32 * j + l]) + dm);
            }
        }
    }
    // First-order rounding bound of the float evaluation: one ulp of every running sum (one
    // add per block), a few of every block term, and those of the dequantized values the
    // reference itself was given (relative to the magnitudes they were computed from).
    const size_t bs = (size_t)w.block_size;
    double ref = 0, sum_partial = 0, sum_term = 0, sum_mag = 0;
    for (size_t b = 0; b < n / bs; b++) {
        double term = 0;
        for (size_t i = b * bs; i < (b + 1) * bs; i++) {
            term += (double)wd[i] * ad[i];
            sum_mag += mag[i] * std::fabs(ad[i]);
        }
        ref += term;
        sum_partial += std::fabs(ref);
        sum_term += std::fabs(term);
    }
    // q8_1's s is fp16(d * sum q) from the unrounded d, not the sum of the dequantized
    // values: the kernel's min term m * s differs from m * sum(ad) by exactly that.
    if (at == HG_TYPE_Q8_1) {
        for (size_t b = 0; b < n / 32; b++) {
            const hg::block_q8_1 *a = (const hg::block_q8_1 *)aq.data() + b;
            hg::fp16_t hm;
            std::memcpy(&hm, wq.data() + b * w.block_bytes + 2, 2);
            const double m = hg::fp16_to_f32(hm), s = hg::fp16_to_f32(a->s);
            double sum_ad = 0;
            for (int j = 0; j < 32; j++) sum_ad += ad[b * 32 + j];
            ref += m * (s - sum_ad);
            sum_term += std::fabs(m * s);
        }
    }
    const double tol = 2 * EPS * (sum_partial + 3 * sum_term + 2 * sum_mag);
    float got = NAN;
    hg::kernels_scalar().vec_dot[wt]((int64_t)n, &got, wq.data(), aq.data());
    CHECK_MSG(std::fabs(got - ref) <= tol, std::string(w.name) + " n=" + std::to_string(n) + ": got " +
                                               std::to_string(got) + " want " + std::to_string(ref) + " tol " +
                                               std::to_string(tol));
}

TEST(vec_dot_matches_double_dot_of_dequantized) {
    for (int t : WEIGHTS) {
        check_vec_dot(t, (size_t)info(t).block_size * (info(t).block_size == 1 ? 32 : 1), 1); // one block
        check_vec_dot(t, 256, 2);
        check_vec_dot(t, 4096, 3);
        check_vec_dot(t, 4096 * 4, 4);
    }
}

// The dot of a vector with itself through q8 x q8 is positive and close to |x|^2.
TEST(vec_dot_q8_0_self_is_norm) {
    const std::vector<float> x = gaussian(1024, 9);
    const bytes q = quantize(HG_TYPE_Q8_0, x);
    float s = 0;
    hg::vec_dot_q8_0_q8_0_ref(1024, &s, q.data(), q.data());
    double norm = 0;
    for (float v : x) norm += (double)v * v;
    CHECK_NEAR(s / norm, 1.0, 0.01);
}

// ---------------------------------------------------------------- activation types

TEST(q8_1_sum_and_q8_K_bsums) {
    const std::vector<float> x = gaussian(512, 11);
    const bytes q1 = quantize(HG_TYPE_Q8_1, x);
    for (int b = 0; b < 16; b++) {
        const hg::block_q8_1 &blk = ((const hg::block_q8_1 *)q1.data())[b];
        int sum = 0;
        float amax = 0;
        for (int j = 0; j < 32; j++) {
            sum += blk.qs[j];
            amax = std::fmax(amax, std::fabs(x[b * 32 + j]));
        }
        CHECK(blk.s == hg::f32_to_fp16((float)sum * (amax / 127)));
    }
    const bytes qk = quantize(HG_TYPE_Q8_K, x);
    for (int b = 0; b < 2; b++) {
        const hg::block_q8_K &blk = ((const hg::block_q8_K *)qk.data())[b];
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += blk.qs[16 * j + l];
            CHECK(blk.bsums[j] == sum);
        }
        // the largest magnitude lands on -127 (its sign flipped into d)
        int imax = 0;
        for (int j = 1; j < 256; j++)
            if (std::fabs(x[b * 256 + j]) > std::fabs(x[b * 256 + imax])) imax = j;
        CHECK(blk.qs[imax] == -127);
        CHECK_NEAR(blk.d * -127, x[b * 256 + imax], 1e-6 * std::fabs(x[b * 256 + imax]));
    }
}

// ---------------------------------------------------------------- edge values

TEST(edge_all_zeros) {
    for (int t : SUPPORTED) {
        const int64_t n = 512;
        const std::vector<float> x(n, 0.0f);
        const bytes q = quantize(t, x);
        const std::vector<float> y = dequantize(t, q, n);
        bool ok = true;
        for (float v : y) ok &= v == 0.0f;
        CHECK_MSG(ok, std::string(info(t).name) + ": zeros do not come back as zeros");
        if (info(t).block_size > 1)
            for (size_t b = 0; b < q.size() / info(t).block_bytes; b++)
                CHECK_MSG(block_d(t, q.data() + b * info(t).block_bytes) == 0.0f, info(t).name);
        if (t == HG_TYPE_Q8_K)
            for (int j = 0; j < 16; j++) CHECK(((const hg::block_q8_K *)q.data())->bsums[j] == 0);
    }
}

TEST(edge_denormals) {
    const float tiny[] = {1e-40f, -1e-40f, 1.4e-45f, -3e-39f, 1e-38f, 0.0f, 5e-41f, -1.4e-45f};
    std::vector<float> x(512);
    for (size_t i = 0; i < x.size(); i++) x[i] = tiny[i % 8];
    for (int t : SUPPORTED) {
        const std::vector<float> y = dequantize(t, quantize(t, x), (int64_t)x.size());
        bool ok = true;
        for (size_t i = 0; i < y.size(); i++) ok &= std::isfinite(y[i]) && std::fabs(y[i] - x[i]) <= 1e-37f;
        CHECK_MSG(ok, std::string(info(t).name) + ": denormal input gives non-finite or large output");
    }
}

TEST(edge_large_values) {
    std::mt19937 rng(5);
    std::vector<float> pm(1024), big = gaussian(1024, 6, 1e4f);
    for (float &v : pm) v = (rng() & 1) ? 1e4f : -1e4f;
    for (int t : SUPPORTED) {
        for (const std::vector<float> *x : {&pm, &big}) {
            const std::vector<float> y = dequantize(t, quantize(t, *x), (int64_t)x->size());
            bool finite = true;
            for (float v : y) finite &= std::isfinite(v);
            CHECK_MSG(finite, info(t).name);
            const double e = rmse(*x, y) / 1e4;
            CHECK_MSG(e <= rmse_bound(t) * 1.5 + 1e-7, std::string(info(t).name) + " large: " + std::to_string(e));
        }
    }
}

TEST(edge_single_spike) {
    for (int t : SUPPORTED) {
        std::vector<float> x(512, 0.0f);
        x[37] = 50.0f;   // first super-block
        x[300] = -50.0f; // second
        const std::vector<float> y = dequantize(t, quantize(t, x), 512);
        CHECK_MSG(std::fabs(y[37] - 50.0f) <= 0.5f && std::fabs(y[300] + 50.0f) <= 0.5f,
                  std::string(info(t).name) + ": spike " + std::to_string(y[37]) + ", " + std::to_string(y[300]));
        double worst = 0;
        for (int i = 0; i < 512; i++)
            if (i != 37 && i != 300) worst = std::fmax(worst, std::fabs(y[i]));
        CHECK_MSG(worst <= 0.5, std::string(info(t).name) + ": zeros near a spike off by " + std::to_string(worst));
    }
}

// Blocks are independent: quantizing one block alone gives the bytes it has inside a row.
TEST(one_block_equals_block_of_row) {
    for (int t : SUPPORTED) {
        const hg::type_info &ti = info(t);
        const int64_t bs = ti.block_size == 1 ? 1 : ti.block_size, nb = 24;
        const std::vector<float> x = gaussian((size_t)(bs * nb), 13);
        const bytes row = quantize(t, x);
        for (int64_t b : {(int64_t)0, (int64_t)7, nb - 1}) {
            const std::vector<float> one(x.begin() + b * bs, x.begin() + (b + 1) * bs);
            const bytes q = quantize(t, one);
            CHECK_MSG(std::memcmp(q.data(), row.data() + b * ti.block_bytes, ti.block_bytes) == 0,
                      std::string(ti.name) + " block " + std::to_string(b));
        }
    }
}

// ---------------------------------------------------------------- gguf-py golden vectors

namespace {

struct fixture {
    uint32_t type = 0, kind = 0, n = 0;
    bytes src, dst;
};

bool load_fixture(const std::string &path, fixture &f, std::string &err) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        err = "cannot open " + path + " (tests run from the repo root)";
        return false;
    }
    char magic[4];
    uint32_t h[6];
    in.read(magic, 4);
    in.read((char *)h, sizeof h);
    if (!in || std::memcmp(magic, "HGQF", 4) != 0 || h[0] != 1) {
        err = path + ": not a version 1 HGQF file";
        return false;
    }
    f.type = h[1];
    f.kind = h[2];
    f.n = h[3];
    f.src.resize(h[4]);
    f.dst.resize(h[5]);
    in.read((char *)f.src.data(), (std::streamsize)f.src.size());
    in.read((char *)f.dst.data(), (std::streamsize)f.dst.size());
    if (!in || in.peek() != EOF) {
        err = path + ": truncated or trailing bytes";
        return false;
    }
    return true;
}

void check_fixture(const char *name) {
    const std::string path = std::string("test/fixtures/quant/") + name;
    fixture f;
    std::string err;
    if (!load_fixture(path, f, err)) {
        CHECK_MSG(false, err);
        return;
    }
    const hg::type_info &ti = info((int)f.type);
    const size_t rb = hg::row_bytes((int)f.type, f.n);
    if (f.kind == 0) { // floats -> block bytes
        CHECK_MSG(f.src.size() == f.n * 4 && f.dst.size() == rb, path + ": sizes");
        if (f.src.size() != f.n * 4 || f.dst.size() != rb) return;
        bytes got(rb);
        ti.from_float_ref((const float *)(const void *)f.src.data(), got.data(), f.n);
        size_t bad = 0, first = rb;
        for (size_t i = 0; i < rb; i++)
            if (got[i] != f.dst[i]) {
                if (!bad) first = i;
                bad++;
            }
        CHECK_MSG(bad == 0, path + ": " + std::to_string(bad) + " bytes differ, first in block " +
                                std::to_string(first / ti.block_bytes));
    } else { // block bytes -> floats, bit for bit (a NaN matches any NaN)
        CHECK_MSG(f.src.size() == rb && f.dst.size() == f.n * 4, path + ": sizes");
        if (f.src.size() != rb || f.dst.size() != f.n * 4) return;
        std::vector<float> got(f.n), want(f.n);
        std::memcpy(want.data(), f.dst.data(), f.dst.size());
        ti.to_float(f.src.data(), got.data(), f.n);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < f.n; i++) {
            const bool same =
                (std::isnan(got[i]) && std::isnan(want[i])) || hg::f32_to_bits(got[i]) == hg::f32_to_bits(want[i]);
            if (!same && !bad++) first = i;
        }
        CHECK_MSG(bad == 0, path + ": " + std::to_string(bad) + " values differ, first at " + std::to_string(first) +
                                " (" + std::to_string(got[first]) + " vs " + std::to_string(want[first]) + ")");
    }
}

} // namespace

TEST(golden_quantize_bytes_match_gguf_py) {
    for (const char *name : {"f16_quantize.bin", "bf16_quantize.bin", "q4_0_quantize.bin", "q4_1_quantize.bin",
                             "q5_0_quantize.bin", "q5_1_quantize.bin", "q8_0_quantize.bin"})
        check_fixture(name);
}

TEST(golden_dequantize_floats_match_gguf_py) {
    for (const char *name :
         {"q4_0_dequantize.bin", "q4_1_dequantize.bin", "q5_0_dequantize.bin", "q5_1_dequantize.bin",
          "q8_0_dequantize.bin", "q4_K_dequantize.bin", "q5_K_dequantize.bin", "q6_K_dequantize.bin"})
        check_fixture(name);
}

// Packed layouts (quant/repack.h): every block of every row comes back from its group, rows
// past the last whole group stay as they were, ranges packed apart give the whole, and
// ranges that cut a group are refused.
TEST(repack_round_trip) {
    std::mt19937 rng(77);
    for (int type : {HG_TYPE_Q4_0, HG_TYPE_Q8_0, HG_TYPE_F16, HG_TYPE_Q4_K, HG_TYPE_Q5_K, HG_TYPE_Q6_K}) {
        const hg::type_info *ti = hg::type_traits(type);
        const int64_t k = 5 * std::max<int64_t>(32, ti->block_size);
        const size_t w_row = hg::row_bytes(type, k), bb = ti->block_bytes;
        for (int64_t rows : {16, 37, 48, 5}) {
            std::vector<uint8_t> plain(w_row * rows);
            for (auto &b : plain) b = (uint8_t)rng();
            std::vector<uint8_t> whole(plain.size(), 0xee), parts(plain.size(), 0xee);
            hg::pack_rows(type, plain.data(), rows, k, 0, rows, whole.data());
            const int64_t cut = rows >= 32 ? 16 : 0;
            hg::pack_rows(type, plain.data(), rows, k, 0, cut, parts.data());
            hg::pack_rows(type, plain.data(), rows, k, cut, rows, parts.data());
            CHECK(whole == parts);
            const int64_t groups = rows / hg::kRowBlock;
            for (int64_t r = 0; r < rows; r++) {
                if (r >= groups * hg::kRowBlock) {
                    CHECK(std::memcmp(&whole[r * w_row], &plain[r * w_row], w_row) == 0);
                    continue;
                }
                const int64_t g = r / hg::kRowBlock;
                for (int64_t b = 0; b < (int64_t)(w_row / bb); b++) {
                    uint8_t blk[256];
                    hg::unpack_block(type, &whole[g * hg::kRowBlock * w_row], (int64_t)(w_row / bb),
                                     (int)(r % hg::kRowBlock), b, blk);
                    CHECK_MSG(std::memcmp(blk, &plain[r * w_row + b * bb], bb) == 0,
                              std::string(ti->name) + " row " + std::to_string(r));
                }
            }
            if (groups > 0) CHECK(whole != plain); // something moved
            // block by block, in a scrambled order, pack_block builds the same groups
            std::vector<uint8_t> blockwise(plain.size(), 0xee);
            const int64_t nb = (int64_t)(w_row / bb);
            for (int64_t i = 0; i < groups * hg::kRowBlock * nb; i++) {
                const int64_t at = (i * 7919) % (groups * hg::kRowBlock * nb), r = at / nb, b = at % nb;
                hg::pack_block(type, &blockwise[r / hg::kRowBlock * hg::kRowBlock * w_row], nb,
                               (int)(r % hg::kRowBlock), b, &plain[r * w_row + b * bb]);
            }
            CHECK(std::memcmp(blockwise.data(), whole.data(), groups * hg::kRowBlock * w_row) == 0);
        }
        CHECK(hg::packable(type));
    }
    const int64_t k = 64;
    std::vector<uint8_t> a(hg::row_bytes(HG_TYPE_Q4_0, k) * 40), b(a.size());
    auto refused = [&](int type, int64_t r0, int64_t r1) {
        try {
            hg::pack_rows(type, a.data(), 40, k, r0, r1, b.data());
        } catch (const hg::Error &) {
            return true;
        }
        return false;
    };
    CHECK(refused(HG_TYPE_Q4_0, 8, 40)); // starts inside a group
    CHECK(refused(HG_TYPE_Q4_0, 0, 20)); // ends inside one
    CHECK(refused(HG_TYPE_Q5_0, 0, 40)); // no packed layout
    CHECK(!hg::packable(HG_TYPE_Q5_0));
}

HG_TEST_MAIN()
