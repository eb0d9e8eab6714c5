// The CLIP vision tower (native/models/clip.cpp) and its ops: layer_norm, the GELUs, the
// patch embedding and the bidirectional attention against their scalar references over odd
// shapes; the whole tower and both projectors against transformers' golden vectors
// (tools/reference/make_clip_reference.py) in every weight type; the tap rule; refusal of
// bad files naming the key or tensor.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "core/threadpool.h"
#include "gguf/gguf.h"
#include "healthgpt.h"
#include "models/clip.h"
#include "ops/gelu.h"
#include "ops/layer_norm.h"
#include "ops/patch_embed.h"
#include "ops/vit_attention.h"
#include "quant/quant.h"
#include "tests/check.h"
#include "tests/gguf_builder.h"

namespace {

std::vector<float> randn(size_t n, uint32_t seed, float mean = 0.0f, float std = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(mean, std);
    std::vector<float> v(n);
    for (auto &x : v) x = nd(rng);
    return v;
}

// max |got - ref| / max |ref|
double max_rel(const float *got, const float *ref, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        d = std::max(d, (double)std::fabs(got[i] - ref[i]));
        m = std::max(m, (double)std::fabs(ref[i]));
    }
    return d / m;
}

std::string fixture(const std::string &name) { return "test/fixtures/clip/" + name; }

std::vector<uint8_t> read_all(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// The expected error text of fn(), or "" when it did not throw.
template <class Fn> std::string error_of(Fn &&fn) {
    try {
        fn();
    } catch (const hg::Error &e) {
        return e.what();
    }
    return "";
}
bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

// ---- ops against their references ----

TEST(layer_norm_matches_reference) {
    for (int64_t n : {1, 7, 32, 1024, 1031}) {
        // an offset mean and a large spread: the two-pass variance must not cancel
        auto x = randn((size_t)(3 * n), (uint32_t)n, 50.0f, 3.0f), w = randn((size_t)n, 2, 1.0f, 0.2f),
             b = randn((size_t)n, 3, 0.0f, 0.2f);
        std::vector<float> y(x.size()), r(x.size());
        hg::layer_norm(x.data(), w.data(), b.data(), y.data(), n, 3, 1e-5f);
        hg::layer_norm_ref(x.data(), w.data(), b.data(), r.data(), n, 3, 1e-5f);
        // float sums over up to 1031 values: measured up to 7.2e-7 relative; 1e-5 leaves margin
        const double e = max_rel(y.data(), r.data(), y.size());
        std::printf("  n %5lld: max rel %.2e\n", (long long)n, e);
        CHECK_MSG(e < 1e-5, "n = " + std::to_string(n));
        if (n == 1) CHECK_NEAR(y[0], b[0], 1e-6); // one value: the deviation is 0, y = bias
    }
}

TEST(gelus_match_reference) {
    const std::vector<float> xs = {-100.0f, -20.0f, -3.0f, -1.0f, -0.1f, 0.0f, 0.1f, 1.0f, 3.0f, 20.0f, 100.0f};
    const std::vector<float> bias = {0.5f};
    for (float x : xs) {
        float a = x, b = x, c = x;
        hg::bias_quick_gelu(&a, nullptr, 1, 1);
        hg::bias_gelu_erf(&b, nullptr, 1, 1);
        hg::bias_gelu_erf(&c, bias.data(), 1, 1);
        // one float exp/erf each: a few ulps
        CHECK_NEAR(a, hg::quick_gelu_ref(x), 1e-6 * std::max(1.0, (double)std::fabs(x)));
        CHECK_NEAR(b, hg::gelu_erf_ref(x), 1e-6 * std::max(1.0, (double)std::fabs(x)));
        CHECK_NEAR(c, hg::gelu_erf_ref(x + 0.5), 1e-6 * std::max(1.0, (double)std::fabs(x)));
        CHECK(std::isfinite(a) && std::isfinite(b));
    }
    // the two differ where they should: quick_gelu(1) = 1 / (1 + e^-1.702), gelu(1) = Phi(1)
    CHECK_NEAR(hg::quick_gelu_ref(1.0), 0.845796, 1e-6);
    CHECK_NEAR(hg::gelu_erf_ref(1.0), 0.841345, 1e-6);
}

TEST(patch_embed_matches_reference) {
    hg::ThreadPool pool(3);
    struct Case {
        int64_t c, h, w, p, e;
    };
    for (Case s : {Case{3, 28, 42, 14, 5}, Case{3, 56, 56, 14, 33}, Case{2, 9, 6, 3, 7}}) {
        const int64_t k = s.c * s.p * s.p, n = (s.h / s.p) * (s.w / s.p);
        auto w = randn((size_t)(s.e * k), 7), px = randn((size_t)(s.c * s.h * s.w), 8);
        std::vector<float> got((size_t)(n * s.e)), ref(got.size());
        hg::patch_embed_ref(w.data(), s.e, px.data(), s.c, s.h, s.w, s.p, ref.data());
        hg::patch_embed(pool, HG_TYPE_F32, w.data(), s.e, px.data(), s.c, s.h, s.w, s.p, got.data());
        // f32 dots of up to 588 terms: measured 1.0e-7 relative
        const double e = max_rel(got.data(), ref.data(), got.size());
        CHECK_MSG(e < 1e-5, "patch " + std::to_string(s.p));
        // F16 weights (as mmproj files store the conv): the reference on the rounded weights;
        // the activations are rounded to f16 too (the kernel's pairing): measured 2.6e-4
        std::vector<hg::fp16_t> wh(w.size());
        std::vector<float> wr(w.size());
        for (size_t i = 0; i < w.size(); i++) wr[i] = hg::fp16_to_f32(wh[i] = hg::f32_to_fp16(w[i]));
        hg::patch_embed_ref(wr.data(), s.e, px.data(), s.c, s.h, s.w, s.p, ref.data());
        hg::patch_embed(pool, HG_TYPE_F16, wh.data(), s.e, px.data(), s.c, s.h, s.w, s.p, got.data());
        const double e16 = max_rel(got.data(), ref.data(), got.size());
        std::printf("  %lldx%lld patch %lld: max rel f32 %.2e, f16 %.2e\n", (long long)s.h, (long long)s.w,
                    (long long)s.p, e, e16);
        CHECK_MSG(e16 < 3e-3, "f16 patch " + std::to_string(s.p));
    }
    std::vector<float> w(3 * 14 * 14), px(3 * 30 * 30), out(4);
    CHECK(contains(
        error_of([&] { hg::patch_embed(pool, HG_TYPE_F32, w.data(), 1, px.data(), 3, 30, 30, 14, out.data()); }),
        "not a whole number of 14 px patches"));
}

TEST(vit_attention_matches_reference) {
    hg::ThreadPool pool(3);
    struct Case {
        int64_t n, heads, hd;
    };
    // every build of the kernel this CPU can run (isa_force refuses the others)
    for (int isa : {HG_ISA_SCALAR, HG_ISA_AVX2, HG_ISA_AVX512})
        for (Case s : {Case{1, 1, 8}, Case{17, 2, 16}, Case{70, 3, 64}, Case{33, 16, 4}, Case{577, 2, 64}}) {
            try {
                hg::isa_force(isa);
            } catch (const hg::Error &) {
                continue;
            }
            const int64_t E = s.heads * s.hd, stride = 3 * E + 5; // q, k, v interleaved, padded
            auto qkv = randn((size_t)(s.n * stride), (uint32_t)s.n, 0.0f, 2.0f);
            std::vector<float> got((size_t)(s.n * E)), ref(got.size());
            hg::vit_attention(pool, qkv.data(), qkv.data() + E, qkv.data() + 2 * E, stride, s.n, s.heads, s.hd,
                              got.data(), E);
            hg::vit_attention_ref(qkv.data(), qkv.data() + E, qkv.data() + 2 * E, stride, s.n, s.heads, s.hd,
                                  ref.data(), E);
            // float softmax and sums over up to 577 keys: measured up to 2.2e-6 relative
            const double e = max_rel(got.data(), ref.data(), got.size());
            hg::isa_force(-1);
            std::printf("  isa %d, %lld positions, %lld heads of %lld: max rel %.2e\n", isa, (long long)s.n,
                        (long long)s.heads, (long long)s.hd, e);
            CHECK_MSG(e < 1e-5, "n = " + std::to_string(s.n));
        }
}

// ---- the tower against transformers ----

struct Golden {
    uint32_t image = 0, n_embd = 0, n_patches = 0, n_hidden = 0, proj = 0, gen_proj = 0, comprehension = 0,
             generation = 0;
    std::vector<float> pixels, hidden, projected, gen_projected;
};

bool read_golden(const std::string &path, Golden &g) {
    std::ifstream f(path, std::ios::binary);
    char magic[4];
    uint32_t h[9];
    if (!f.read(magic, 4) || std::memcmp(magic, "HGCL", 4) != 0 || !f.read((char *)h, sizeof h) || h[0] != 1)
        return false;
    g.image = h[1], g.n_embd = h[2], g.n_patches = h[3], g.n_hidden = h[4], g.proj = h[5], g.gen_proj = h[6];
    g.comprehension = h[7], g.generation = h[8];
    auto arr = [&](std::vector<float> &v, size_t n) {
        v.resize(n);
        return (bool)f.read((char *)v.data(), (std::streamsize)(n * 4));
    };
    return arr(g.pixels, 3 * (size_t)g.image * g.image) && arr(g.hidden, (size_t)g.n_hidden * g.n_patches * g.n_embd) &&
           arr(g.projected, (size_t)g.n_patches * g.proj) && arr(g.gen_projected, (size_t)g.n_patches * g.gen_proj);
}

// Relative tolerance per weight type on the tiny tower, against a float64 reference on the
// same (dequantized) weights. Measured max relative errors over hidden states 0..3 and the
// two projectors: f32 2.1e-7; f16 4.0e-4 (activations rounded to f16 before each matmul, as
// llama.cpp does); bf16 3.0e-3 (activations to bf16: 8 bits of mantissa); q8_0 1.1e-2
// (activations to q8_0 blocks, growing layer by layer: 6.5e-3, 7.7e-3, 1.0e-2). Limits: f32
// at the 1e-4 the issue asks for, the others about 3x their measurement.
double tolerance(const std::string &variant) {
    return variant == "f32" ? 1e-4 : variant == "f16" ? 1.5e-3 : variant == "bf16" ? 1e-2 : 3e-2;
}

TEST(tower_matches_transformers) {
    hg::ThreadPool pool(2);
    for (std::string variant : {"f32", "f16", "bf16", "q8_0"}) {
        Golden g;
        CHECK_MSG(read_golden(fixture("tiny." + variant + ".ref"), g), "read tiny." + variant + ".ref");
        if (g.n_hidden == 0) continue;
        auto m = hg::ClipModel::load(hg::GGUFFile::open(fixture("tiny." + variant + ".gguf")));
        const hg::ClipHParams &hp = m->hparams();
        CHECK(hp.image_size == g.image && hp.n_embd == g.n_embd && hp.n_patches() == g.n_patches);
        CHECK(hp.n_layer == 3 && hp.n_head == 2 && hp.head_dim == 16);
        // the file keeps 3 of 4 layers with feature_layer [3]: hidden state -2 of the tower
        CHECK(m->tap_layer(hg::CLIP_TAP_COMPREHENSION) == g.comprehension && g.comprehension == 3);
        CHECK(m->tap_layer(hg::CLIP_TAP_GENERATION) == g.generation && g.generation == 1);
        CHECK_NEAR(hp.image_mean[0], 0.48145466, 1e-7);
        CHECK_NEAR(hp.image_std[2], 0.27577711, 1e-7);
        const size_t per = (size_t)g.n_patches * g.n_embd;
        std::vector<float> out(per);
        for (uint32_t h = 0; h < g.n_hidden; h++) {
            m->encode(pool, g.pixels.data(), h, out.data());
            const double e = max_rel(out.data(), &g.hidden[h * per], per);
            std::printf("  %-5s hidden state %u: max rel %.2e\n", variant.c_str(), h, e);
            CHECK_MSG(e < tolerance(variant),
                      variant + " hidden state " + std::to_string(h) + ": " + std::to_string(e));
        }
        // projectors on the reference's own features, so only the projector is measured
        std::vector<float> proj((size_t)g.n_patches * g.proj), gen((size_t)g.n_patches * g.gen_proj);
        CHECK(m->projector(hg::CLIP_PROJECTOR_COMPREHENSION).n_out == g.proj);
        CHECK(m->projector(hg::CLIP_PROJECTOR_GENERATION).n_out == g.gen_proj);
        m->project(pool, hg::CLIP_PROJECTOR_COMPREHENSION, &g.hidden[g.comprehension * per], g.n_patches, proj.data());
        m->project(pool, hg::CLIP_PROJECTOR_GENERATION, &g.hidden[g.generation * per], g.n_patches, gen.data());
        const double ep = max_rel(proj.data(), g.projected.data(), proj.size());
        const double eg = max_rel(gen.data(), g.gen_projected.data(), gen.size());
        std::printf("  %-5s projector: max rel %.2e, generation projector %.2e\n", variant.c_str(), ep, eg);
        CHECK_MSG(ep < tolerance(variant), variant + " projector: " + std::to_string(ep));
        CHECK_MSG(eg < tolerance(variant), variant + " generation projector: " + std::to_string(eg));
    }
}

TEST(threads_do_not_change_the_result) {
    Golden g;
    CHECK(read_golden(fixture("tiny.f32.ref"), g));
    auto m = hg::ClipModel::load(hg::GGUFFile::open(fixture("tiny.f32.gguf")));
    hg::ThreadPool one(1), four(4);
    std::vector<float> a((size_t)g.n_patches * g.n_embd), b(a.size());
    m->encode(one, g.pixels.data(), 3, a.data());
    m->encode(four, g.pixels.data(), 3, b.data());
    CHECK(a == b); // every element is computed by one thread in one order, whatever the split
}

// ---- the real geometry: ViT-L/14-336 width, weights from a shared generator ----

// The generator of make_clip_reference.py (its docstring): no weights are committed for the
// real geometry; both sides draw the same values.
uint64_t fnv1a64(const std::string &s) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
    return h;
}
float uniform(uint64_t seed, uint64_t i) {
    uint64_t z = seed + i + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((int64_t)(z >> 40) - (1 << 23)) / (float)(1 << 23);
}
bool ends_with(const std::string &s, const std::string &e) {
    return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}
float scale_of(const std::string &name) {
    if (ends_with(name, "ffn_down.weight")) return 1.0f / 32;
    if (ends_with(name, ".weight") &&
        (contains(name, "attn_") || contains(name, "ffn_up") || contains(name, "patch_embd")))
        return 1.0f / 16;
    if (name == "v.class_embd" || name == "v.position_embd.weight") return 0.5f;
    return 1.0f / 8;
}
bool is_norm(const std::string &name) {
    if (!ends_with(name, ".weight")) return false;
    const std::string stem = name.substr(0, name.size() - 7);
    return contains(stem.substr(stem.rfind('.') + 1), "ln");
}

// The GGUF make_clip_reference.py's make_vitl336() describes: 2 of 3 layers, feature_layer
// [2], matrices in `type` (F32 or F16), built in memory.
std::vector<uint8_t> vitl336_gguf(int type) {
    using namespace gguftest;
    const uint64_t E = 1024, F = 4096, P = 14, POS = 577;
    FileSpec s;
    s.kvs = {{"general.architecture", str_value("clip")},
             {"clip.has_vision_encoder", scalar<uint8_t>(HG_GGUF_BOOL, 1)},
             {"clip.has_llava_projector", scalar<uint8_t>(HG_GGUF_BOOL, 1)},
             {"clip.projector_type", str_value("mlp")},
             {"clip.use_gelu", scalar<uint8_t>(HG_GGUF_BOOL, 0)},
             {"clip.vision.image_size", scalar<uint32_t>(HG_GGUF_UINT32, 336)},
             {"clip.vision.patch_size", scalar<uint32_t>(HG_GGUF_UINT32, 14)},
             {"clip.vision.embedding_length", scalar<uint32_t>(HG_GGUF_UINT32, 1024)},
             {"clip.vision.feed_forward_length", scalar<uint32_t>(HG_GGUF_UINT32, 4096)},
             {"clip.vision.attention.head_count", scalar<uint32_t>(HG_GGUF_UINT32, 16)},
             {"clip.vision.attention.layer_norm_epsilon", scalar<float>(HG_GGUF_FLOAT32, 1e-5f)},
             {"clip.vision.block_count", scalar<uint32_t>(HG_GGUF_UINT32, 2)},
             {"clip.vision.feature_layer", array_of<int32_t>(HG_GGUF_INT32, {2})}};
    auto add = [&](const std::string &name, std::vector<uint64_t> dims) {
        s.tensors.push_back({name, dims, (uint32_t)(dims.size() >= 2 ? type : HG_TYPE_F32)});
    };
    add("v.patch_embd.weight", {P, P, 3, E});
    add("v.class_embd", {E});
    add("v.position_embd.weight", {E, POS});
    add("v.pre_ln.weight", {E});
    add("v.pre_ln.bias", {E});
    for (int il = 0; il < 2; il++) {
        const std::string p = "v.blk." + std::to_string(il) + ".";
        for (const char *m : {"attn_q", "attn_k", "attn_v", "attn_out"}) {
            add(p + m + ".weight", {E, E});
            add(p + m + ".bias", {E});
        }
        add(p + "ffn_up.weight", {E, F});
        add(p + "ffn_up.bias", {F});
        add(p + "ffn_down.weight", {F, E});
        add(p + "ffn_down.bias", {E});
        for (const char *m : {"ln1", "ln2"}) {
            add(p + m + ".weight", {E});
            add(p + m + ".bias", {E});
        }
    }
    Built b = build(s); // the header; the data (past build's small-file limit) filled here
    uint64_t end = 0;
    for (size_t t = 0; t < s.tensors.size(); t++) end = std::max(end, b.offsets[t] + b.sizes[t]);
    b.bytes.resize(b.data_offset + end);
    for (size_t t = 0; t < s.tensors.size(); t++) {
        const TensorSpec &ts = s.tensors[t];
        uint64_t n = 1;
        for (uint64_t d : ts.dims) n *= d;
        const uint64_t seed = fnv1a64(ts.name);
        const float scale = scale_of(ts.name), shift = is_norm(ts.name) ? 1.0f : 0.0f;
        uint8_t *dst = b.bytes.data() + b.data_offset + b.offsets[t];
        for (uint64_t i = 0; i < n; i++) {
            const float v = uniform(seed, i) * scale + shift;
            if (ts.type == HG_TYPE_F16) {
                const hg::fp16_t h = hg::f32_to_fp16(v);
                std::memcpy(dst + 2 * i, &h, 2);
            } else {
                std::memcpy(dst + 4 * i, &v, 4);
            }
        }
    }
    return b.bytes;
}

// Hidden states 1 and 2 at the real width (577 positions, 16 heads of 64, MLP 4096) against
// transformers on every 23rd patch row. Measured max relative errors: f32 2.7e-7 (limit: the
// issue's 1e-4); f16 2.9e-4 (activations rounded to f16 before each matmul; limit ~3x, 1e-3).
TEST(real_geometry_matches_transformers) {
    std::ifstream f(fixture("vitl336.ref"), std::ios::binary);
    char magic[4];
    uint32_t head[2];
    CHECK(f.read(magic, 4) && std::memcmp(magic, "HGCR", 4) == 0 && f.read((char *)head, 8) && head[0] == 1);
    std::vector<uint32_t> rows(head[1]);
    f.read((char *)rows.data(), (std::streamsize)(rows.size() * 4));
    std::vector<float> want(4 * rows.size() * 1024);
    CHECK(f.read((char *)want.data(), (std::streamsize)(want.size() * 4)));
    if (!f) return;

    std::vector<float> pixels(3 * 336 * 336);
    for (size_t i = 0; i < pixels.size(); i++) pixels[i] = uniform(fnv1a64("pixels"), i) * 2.0f;
    hg::ThreadPool pool(0);
    std::vector<float> out(576 * 1024), got(rows.size() * 1024);
    int set = 0;
    for (int type : {HG_TYPE_F32, HG_TYPE_F16}) {
        const std::vector<uint8_t> bytes = vitl336_gguf(type);
        auto m = hg::ClipModel::load(hg::GGUFFile::parse(bytes.data(), bytes.size(), "vitl336.gguf"));
        CHECK(m->hparams().n_patches() == 576 && m->tap_layer(hg::CLIP_TAP_COMPREHENSION) == 2);
        for (int64_t h : {int64_t(1), int64_t(2)}) {
            m->encode(pool, pixels.data(), h, out.data());
            for (size_t r = 0; r < rows.size(); r++) std::copy_n(&out[rows[r] * 1024], 1024, &got[r * 1024]);
            const double e = max_rel(got.data(), &want[(size_t)set * rows.size() * 1024], got.size());
            std::printf("  %s hidden state %lld: max rel %.2e\n", type == HG_TYPE_F32 ? "f32" : "f16", (long long)h, e);
            CHECK_MSG(e < (type == HG_TYPE_F32 ? 1e-4 : 1e-3), "hidden state " + std::to_string(h));
            set++;
        }
    }
}

// ---- bad files ----

// The f32 fixture with one edit: a key's u32 value, or a tensor name's bytes.
std::vector<uint8_t> patched(const std::string &find, const std::function<void(uint8_t *)> &edit) {
    std::vector<uint8_t> bytes = read_all(fixture("tiny.f32.gguf"));
    auto it = std::search(bytes.begin(), bytes.end(), find.begin(), find.end());
    CHECK_MSG(it != bytes.end(), "fixture has " + find);
    if (it != bytes.end()) edit(&*it + find.size());
    return bytes;
}
std::string load_error(const std::vector<uint8_t> &bytes) {
    return error_of([&] { hg::ClipModel::load(hg::GGUFFile::parse(bytes.data(), bytes.size(), "bad.gguf")); });
}
// a u32 key's value sits after its type (u32 4)
std::function<void(uint8_t *)> set_u32(uint32_t v) {
    return [v](uint8_t *p) { std::memcpy(p + 4, &v, 4); };
}

TEST(bad_files_are_refused_naming_the_fault) {
    std::string e = load_error(patched("v.blk.1.attn_k.weight", [](uint8_t *p) { p[-8] = 'x'; }));
    CHECK_MSG(contains(e, "bad.gguf: tensor v.blk.1.attn_k.weight is missing"), e);

    e = load_error(patched("clip.vision.feed_forward_length", set_u32(96)));
    CHECK_MSG(contains(e, "tensor v.blk.0.ffn_up.weight has shape [32, 64], expected [32, 96]"), e);

    e = load_error(patched("clip.vision.embedding_length", set_u32(30)));
    CHECK_MSG(contains(e, "not a multiple of clip.vision.attention.head_count") ||
                  contains(e, "v.patch_embd.weight has shape"),
              e);

    e = load_error(patched("clip.vision.generation_feature_layer", set_u32(4)));
    CHECK_MSG(contains(e, "clip.vision.generation_feature_layer 4 is past the 3 layers"), e);

    e = load_error(patched("clip.vision.block_count", set_u32(2)));
    CHECK_MSG(contains(e, "comprehension tap is hidden state 3 but the file holds 2 layers"), e);

    e = load_error(patched("clip.vision.image_size", set_u32(60)));
    CHECK_MSG(contains(e, "clip.vision.image_size 60 is not a multiple of clip.vision.patch_size 14"), e);

    e = load_error(patched("clip.use_gelu", [](uint8_t *p) { p[4] = 1; }));
    CHECK_MSG(contains(e, "clip.use_gelu is true"), e);

    e = load_error(patched("general.architecture", [](uint8_t *p) { p[12] = 'k'; })); // "clip" -> "klip"
    CHECK_MSG(contains(e, "architecture is 'klip', expected 'clip'"), e);

    // a norm stored in f16 (tensor info: name, u32 n_dims = 1, u64 ne0, u32 type)
    e = load_error(patched("v.blk.0.ln1.weight", [](uint8_t *p) { p[12] = HG_TYPE_F16; }));
    CHECK_MSG(contains(e, "tensor v.blk.0.ln1.weight has type f16, expected f32"), e);

    // a missing generation projector is a load-time absence, a call-time error
    auto bytes = patched("mm.gen.0.weight", [](uint8_t *p) { p[-9] = 'x'; });
    auto m = hg::ClipModel::load(hg::GGUFFile::parse(bytes.data(), bytes.size(), "nogen.gguf"));
    hg::ThreadPool pool(1);
    std::vector<float> in(16 * 32), out(16 * 64);
    e = error_of([&] { m->project(pool, hg::CLIP_PROJECTOR_GENERATION, in.data(), 16, out.data()); });
    CHECK_MSG(contains(e, "no generation projector (mm.gen.0, mm.gen.2)"), e);
    e = error_of([&] { m->encode(pool, in.data(), 4, out.data()); });
    CHECK_MSG(contains(e, "hidden state 4 is outside 0..3"), e);
}

// The tap rule without clip.vision.feature_layer (older LLaVA mmproj files): a llava
// converter dropped the last layer, so -2 is the last layer the file holds; a plain tower
// keeps them all, so -2 is the one before. Keys are hidden by renaming them in the bytes.
TEST(tap_rule_follows_the_converter) {
    auto rename = [](std::vector<uint8_t> &bytes, const std::string &key) {
        auto it = std::search(bytes.begin(), bytes.end(), key.begin(), key.end());
        CHECK_MSG(it != bytes.end(), "fixture has " + key);
        if (it != bytes.end()) *(it + (std::ptrdiff_t)key.size() - 1) = 'X';
    };
    auto bytes = read_all(fixture("tiny.f32.gguf"));
    rename(bytes, "clip.vision.feature_layer");
    auto llava = hg::ClipModel::load(hg::GGUFFile::parse(bytes.data(), bytes.size(), "llava.gguf"));
    CHECK(llava->tap_layer(hg::CLIP_TAP_COMPREHENSION) == 3);
    rename(bytes, "clip.has_llava_projector");
    auto plain = hg::ClipModel::load(hg::GGUFFile::parse(bytes.data(), bytes.size(), "plain.gguf"));
    CHECK(plain->tap_layer(hg::CLIP_TAP_COMPREHENSION) == 2);
    rename(bytes, "clip.vision.generation_feature_layer");
    auto nogen = hg::ClipModel::load(hg::GGUFFile::parse(bytes.data(), bytes.size(), "nogen.gguf"));
    CHECK(nogen->tap_layer(hg::CLIP_TAP_GENERATION) == 1); // HealthGPT's default
    CHECK(contains(error_of([&] { nogen->tap_layer(2); }), "tap 2 is not 0"));
}

// Random byte flips in the header (keys, shapes, types, offsets) of the f32 fixture: every
// file either loads and encodes (whatever the numbers) or is refused with an hg::Error; no
// other exception, and under HEALTHGPT_SANITIZE no memory error.
TEST(mutated_headers_load_or_are_refused) {
    const std::vector<uint8_t> good = read_all(fixture("tiny.f32.gguf"));
    const size_t header = (size_t)hg::GGUFFile::parse(good.data(), good.size(), "tiny")->data_offset();
    std::mt19937 rng(2024);
    hg::ThreadPool pool(1);
    std::vector<float> pixels(3 * 56 * 56, 0.5f), out(16 * 32);
    int loaded = 0, refused = 0, other = 0;
    for (int it = 0; it < 1500; it++) {
        std::vector<uint8_t> b = good;
        const int flips = 1 + (int)(rng() % 4);
        for (int k = 0; k < flips; k++) b[rng() % header] ^= (uint8_t)(1u << (rng() % 8));
        try {
            auto m = hg::ClipModel::load(hg::GGUFFile::parse(b.data(), b.size(), "mutated.gguf"));
            if (m->hparams().n_patches() * m->hparams().n_embd <= (int64_t)out.size() && m->hparams().image_size == 56)
                m->encode(pool, pixels.data(), m->tap_layer(hg::CLIP_TAP_COMPREHENSION), out.data());
            loaded++;
        } catch (const hg::Error &) {
            refused++;
        } catch (...) {
            other++;
        }
    }
    std::printf("  1500 mutated headers: %d loaded, %d refused\n", loaded, refused);
    CHECK(other == 0);
    CHECK(refused > 0 && loaded > 0); // both paths were exercised
}

// ---- the C API ----

TEST(c_api_encodes_and_projects) {
    Golden g;
    CHECK(read_golden(fixture("tiny.f32.ref"), g));
    hg_clip_params p = hg_clip_default_params();
    p.n_threads = 2;
    hg_clip *c = hg_clip_load(fixture("tiny.f32.gguf").c_str(), &p);
    CHECK(c != nullptr);
    if (!c) return;
    CHECK(hg_clip_image_size(c) == 56 && hg_clip_patch_size(c) == 14 && hg_clip_n_embd(c) == 32);
    CHECK(hg_clip_n_patches(c) == 16 && hg_clip_n_layer(c) == 3);
    CHECK(hg_clip_tap_layer(c, HG_CLIP_TAP_COMPREHENSION) == 3 && hg_clip_tap_layer(c, HG_CLIP_TAP_GENERATION) == 1);
    CHECK(hg_clip_projector_dim(c, HG_CLIP_PROJECTOR_COMPREHENSION) == 64);
    CHECK(hg_clip_projector_dim(c, HG_CLIP_PROJECTOR_GENERATION) == 32);
    const size_t per = (size_t)g.n_patches * g.n_embd;
    std::vector<float> out(per), proj((size_t)g.n_patches * 64);
    for (int tap : {HG_CLIP_TAP_COMPREHENSION, HG_CLIP_TAP_GENERATION}) {
        CHECK(hg_clip_encode(c, g.pixels.data(), tap, out.data()) == 0);
        const uint32_t h = tap == HG_CLIP_TAP_COMPREHENSION ? g.comprehension : g.generation;
        CHECK(max_rel(out.data(), &g.hidden[h * per], per) < 1e-4); // as the f32 tower test
    }
    CHECK(hg_clip_project(c, HG_CLIP_PROJECTOR_GENERATION, out.data(), (int)g.n_patches, proj.data()) == 0);
    CHECK(max_rel(proj.data(), g.gen_projected.data(), (size_t)g.n_patches * 32) < 1e-4);
    // encode then project in one call: the two calls' bits, for every tap and projector
    for (int tap : {HG_CLIP_TAP_COMPREHENSION, HG_CLIP_TAP_GENERATION})
        for (int pj : {HG_CLIP_PROJECTOR_COMPREHENSION, HG_CLIP_PROJECTOR_GENERATION}) {
            const size_t n = (size_t)g.n_patches * hg_clip_projector_dim(c, pj);
            std::vector<float> two(n), one(n, -1.0f);
            CHECK(hg_clip_encode(c, g.pixels.data(), tap, out.data()) == 0);
            CHECK(hg_clip_project(c, pj, out.data(), (int)g.n_patches, two.data()) == 0);
            CHECK(hg_clip_encode_project(c, g.pixels.data(), tap, pj, one.data()) == 0);
            CHECK(std::memcmp(one.data(), two.data(), n * sizeof(float)) == 0);
        }
    CHECK(hg_clip_encode_project(c, g.pixels.data(), 7, 0, proj.data()) == -1);
    CHECK(contains(hg_last_error(), "tap 7 is not 0 (comprehension) or 1 (generation)"));
    CHECK(hg_clip_encode_project(c, g.pixels.data(), 0, 2, proj.data()) == -1);
    CHECK(contains(hg_last_error(), "projector 2 is not 0 (comprehension) or 1 (generation)"));
    CHECK(hg_clip_encode_project(c, nullptr, 0, 0, proj.data()) == -1);
    CHECK(contains(hg_last_error(), "null pixels or output"));
    CHECK(hg_clip_encode_project(nullptr, g.pixels.data(), 0, 0, proj.data()) == -1);
    // errors come back as -1 with a message, never an abort
    CHECK(hg_clip_encode(c, g.pixels.data(), 7, out.data()) == -1);
    CHECK(contains(hg_last_error(), "tap 7 is not 0 (comprehension) or 1 (generation)"));
    CHECK(hg_clip_project(c, 2, out.data(), 1, proj.data()) == -1);
    CHECK(hg_clip_encode(c, nullptr, 0, out.data()) == -1);
    CHECK(hg_clip_n_embd(nullptr) == -1);
    CHECK(std::string(hg_clip_backend(c)) == "cpu");
    hg_clip_free(c);
    CHECK(hg_clip_backend(nullptr) == nullptr);
    p.gpu = HG_GPU_AUTO; // CUDA when there is one, else the CPU saying why
    c = hg_clip_load(fixture("tiny.f32.gguf").c_str(), &p);
    CHECK(c != nullptr);
    const std::string backend = c ? hg_clip_backend(c) : "";
    hg_clip_free(c);
    CHECK(backend.rfind("cuda: ", 0) == 0 || backend == "cpu (this engine was built without the CUDA backend)" ||
          backend.rfind("cpu (no CUDA device", 0) == 0);
    if (backend.rfind("cpu (", 0) == 0) { // then 'cuda' is a load error giving the same reason
        p.gpu = HG_GPU_CUDA;
        CHECK(hg_clip_load(fixture("tiny.f32.gguf").c_str(), &p) == nullptr);
        CHECK(hg_last_status() == HG_ERR_UNSUPPORTED);
        CHECK(contains(hg_last_error(), "gpu 'cuda': " + backend.substr(5, backend.size() - 6)));
    }
    p.gpu = 7;
    CHECK(hg_clip_load(fixture("tiny.f32.gguf").c_str(), &p) == nullptr && hg_last_status() == HG_ERR_INVALID_ARG);
    CHECK(contains(hg_last_error(), "hg_clip_load: gpu 7 (0 off, 1 auto, 2 cuda)"));
    CHECK(hg_clip_load("test/fixtures/clip/no-such-file.gguf", nullptr) == nullptr);
    CHECK(contains(hg_last_error(), "no-such-file.gguf"));
    CHECK(hg_clip_load(fixture("../phi3/gqa.f32.gguf").c_str(), nullptr) == nullptr);
    CHECK(contains(hg_last_error(), "architecture is 'phi3', expected 'clip'"));
}

// A plugin file's projector in place of the tower's: here the tower file's own comprehension
// projector loaded as the generation one, which must then give exactly what the comprehension
// projector gives (the same weights through the same code).
TEST(c_api_loads_a_plugin_projector) {
    hg_clip *c = hg_clip_load(fixture("tiny.f32.gguf").c_str(), nullptr);
    CHECK(c != nullptr);
    if (!c) return;
    const int n = 3, e = hg_clip_n_embd(c);
    std::vector<float> x((size_t)n * e), com((size_t)n * 64), gen((size_t)n * 64);
    for (size_t i = 0; i < x.size(); i++) x[i] = std::sin(0.37f * (float)i);
    CHECK(hg_clip_project(c, HG_CLIP_PROJECTOR_COMPREHENSION, x.data(), n, com.data()) == 0);
    // a file without a projector changes nothing
    CHECK(hg_clip_load_projector(c, HG_CLIP_PROJECTOR_GENERATION, fixture("../phi3/gqa.f32.gguf").c_str()) == 0);
    CHECK(hg_clip_projector_dim(c, HG_CLIP_PROJECTOR_GENERATION) == 32);
    CHECK(hg_clip_load_projector(c, HG_CLIP_PROJECTOR_GENERATION, fixture("tiny.f32.gguf").c_str()) == 1);
    CHECK(hg_clip_projector_dim(c, HG_CLIP_PROJECTOR_GENERATION) == 64);
    CHECK(hg_clip_project(c, HG_CLIP_PROJECTOR_GENERATION, x.data(), n, gen.data()) == 0);
    CHECK(gen == com);
    CHECK(hg_clip_load_projector(c, 2, fixture("tiny.f32.gguf").c_str()) == -1);
    CHECK(hg_clip_load_projector(c, 0, fixture("no-such-file.gguf").c_str()) == -1);
    CHECK(contains(hg_last_error(), "no-such-file.gguf") && hg_last_status() == HG_ERR_FILE);
    hg_clip_free(c);
}

} // namespace

HG_TEST_MAIN()
