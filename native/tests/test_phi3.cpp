// The Phi-3 / Phi-4 decoder against transformers' Phi3ForCausalLM (golden logits in
// test/fixtures/phi3, made by tools/reference/make_phi3_reference.py), its ops against naive
// double-precision versions at odd shapes, and its refusals of bad files and bad calls.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "core/threadpool.h"
#include "healthgpt.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "quant/quant.h"
#include "tests/check.h"
#include "tests/reference_logits.h"

namespace {

bool contains(const std::string &s, const std::string &needle) { return s.find(needle) != std::string::npos; }

#define CHECK_ERROR(call, needle)                                                                                      \
    do {                                                                                                               \
        const bool _failed = (call);                                                                                   \
        const std::string _msg = hg_last_error();                                                                      \
        CHECK_MSG(_failed, std::string("no failure; expected: ") + (needle));                                          \
        CHECK_MSG(contains(_msg, needle), "message '" + _msg + "' lacks '" + (needle) + "'");                          \
    } while (0)

// ---- golden logits ----

// max |got - ref| / max |ref| over rows [r0, r1): one number that does not blow up on the
// many logits near zero. Argmax must agree on every row.
struct Compare {
    double rel = 0;
    int argmax_mismatches = 0;
};

Compare compare_rows(const Reference &ref, const float *got, int r0, int r1) {
    Compare c;
    double max_diff = 0, max_ref = 0;
    const int V = ref.n_vocab;
    for (int r = r0; r < r1; r++) {
        const float *g = got + (size_t)(r - r0) * V, *e = &ref.logits[(size_t)r * V];
        for (int i = 0; i < V; i++) {
            max_diff = std::max(max_diff, (double)std::fabs(g[i] - e[i]));
            max_ref = std::max(max_ref, (double)std::fabs(e[i]));
        }
        if (std::max_element(g, g + V) - g != std::max_element(e, e + V) - e) c.argmax_mismatches++;
    }
    c.rel = max_diff / max_ref;
    return c;
}

struct Variant {
    const char *name;
    int kv_type;
    // Tolerance on max|diff| / max|ref|. The reference ran in float64 on the weights exactly
    // as the file holds them (dequantized), so what is left is the engine's own rounding
    // (the figures in brackets are what these fixtures show):
    //  - f32 weights, f32 cache: float32 rounding alone. A logit is a chain of ~10 dot
    //    products of length <= 96 over unit-scale values; float32 sums are good to
    //    ~n * 2^-24 ~ 6e-6 relative at worst, so 1e-4 leaves a wide margin while a wrong
    //    pairing, mask or layout is off by O(1) [2e-7].
    //  - f16 cache: K and V are stored in f16 and, for the kernels, q and the softmax
    //    probabilities are rounded to f16 too (as llama.cpp does): 2^-11 = 4.9e-4 relative per
    //    value, mostly averaging out over a head [3.3e-4]: 2e-3.
    //  - f16 weights: the matmul also rounds its activations to f16 (f16 x f16 kernel), the
    //    same size of error again [5.6e-4]: 3e-3.
    //  - q8_0 weights: activations are quantized to 8 bits per block of 32 (a step of the
    //    block's largest value / 127) before each of the 7 matmuls of a token [1.4e-2]: 3e-2.
    double tol;
};

const Variant kVariants[] = {
    {"gqa.f32", HG_TYPE_F32, 1e-4},  {"gqa.f32", HG_TYPE_F16, 2e-3}, {"gqa.f16", HG_TYPE_F16, 3e-3},
    {"gqa.q8_0", HG_TYPE_F16, 3e-2}, {"swa.f32", HG_TYPE_F32, 1e-4}, {"swa.f32", HG_TYPE_F16, 2e-3},
    {"swa.q8_0", HG_TYPE_F16, 3e-2},
};

hg_model *load_fixture(const std::string &name, int kv_type, int n_threads, int n_ctx = 32) {
    hg_model_params p = hg_model_default_params();
    p.kv_type = kv_type;
    p.n_threads = n_threads;
    p.n_ctx = n_ctx;
    hg_model *m = hg_model_load(("test/fixtures/phi3/" + name + ".gguf").c_str(), &p);
    CHECK_MSG(m != nullptr, name + ": " + hg_last_error());
    return m;
}

void check_result(const char *what, const Variant &v, const Compare &c) {
    std::printf("    %-9s kv %-3s %-22s max rel err %.3g (tol %.0e)\n", v.name,
                v.kv_type == HG_TYPE_F32 ? "f32" : "f16", what, c.rel, v.tol);
    CHECK_MSG(c.rel <= v.tol, std::string(v.name) + " " + what + ": rel err " + std::to_string(c.rel));
    CHECK_MSG(c.argmax_mismatches == 0, std::string(v.name) + " " + what + ": argmax differs at " +
                                            std::to_string(c.argmax_mismatches) + " positions");
}

} // namespace

TEST(phi3_matches_transformers_prefill_decode_and_prefix_reuse) {
    for (const Variant &v : kVariants) {
        const Reference ref = read_reference(std::string("test/fixtures/phi3/") + v.name + ".logits");
        CHECK_MSG(ref.ok, std::string("cannot read the reference of ") + v.name);
        if (!ref.ok) continue;
        hg_model *m = load_fixture(v.name, v.kv_type, 3);
        if (!m) continue;
        CHECK(hg_model_n_vocab(m) == ref.n_vocab);
        CHECK(hg_model_n_ctx(m) == 32);
        const int n = (int)ref.tokens.size(), V = ref.n_vocab;
        std::vector<float> logits((size_t)n * V);

        // (a) the whole sequence in one batch, every position's logits
        CHECK(hg_model_eval(m, ref.tokens.data(), n, 0, logits.data(), 1) == 0);
        CHECK(hg_model_n_past(m) == n);
        check_result("prefill", v, compare_rows(ref, logits.data(), 0, n));

        // (b) token by token through the cache
        CHECK(hg_model_kv_clear(m, 0) == 0);
        CHECK(hg_model_n_past(m) == 0);
        for (int t = 0; t < n; t++) CHECK(hg_model_eval(m, &ref.tokens[t], 1, t, &logits[(size_t)t * V], 0) == 0);
        check_result("decode", v, compare_rows(ref, logits.data(), 0, n));

        // (c) a prefix prefilled, cut back, then a batch and single steps on top of it
        const int prefix = 7, keep = 4, batch = 3;
        CHECK(hg_model_kv_clear(m, 0) == 0);
        CHECK(hg_model_eval(m, ref.tokens.data(), prefix, 0, nullptr, 0) == 0);
        CHECK(hg_model_kv_clear(m, keep) == 0);
        CHECK(hg_model_n_past(m) == keep);
        CHECK(hg_model_eval(m, &ref.tokens[keep], batch, keep, &logits[(size_t)keep * V], 1) == 0);
        for (int t = keep + batch; t < n; t++)
            CHECK(hg_model_eval(m, &ref.tokens[t], 1, t, &logits[(size_t)t * V], 0) == 0);
        check_result("prefix reuse", v, compare_rows(ref, logits.data() + (size_t)keep * V, keep, n));

        // last-token logits of a prefill are the last row of the all-logits run
        CHECK(hg_model_kv_clear(m, 0) == 0);
        std::vector<float> last(V);
        CHECK(hg_model_eval(m, ref.tokens.data(), n, 0, last.data(), 0) == 0);
        check_result("prefill, last row", v, compare_rows(ref, last.data(), n - 1, n));
        hg_model_free(m);
    }
}

TEST(phi3_results_do_not_depend_on_thread_count) {
    const Reference ref = read_reference("test/fixtures/phi3/gqa.q8_0.logits");
    CHECK(ref.ok);
    if (!ref.ok) return;
    const int n = (int)ref.tokens.size(), V = ref.n_vocab;
    std::vector<float> one((size_t)n * V), many((size_t)n * V);
    for (int threads : {1, 4}) {
        hg_model *m = load_fixture("gqa.q8_0", HG_TYPE_F16, threads);
        if (!m) return;
        CHECK(hg_model_eval(m, ref.tokens.data(), n, 0, (threads == 1 ? one : many).data(), 1) == 0);
        hg_model_free(m);
    }
    // Every output element is one dot product computed whole by one thread: bit-identical.
    CHECK(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)) == 0);
}

TEST(phi3_matches_transformers_at_every_kernel_level) {
    // The run above uses the best kernels of this CPU; the scalar references (and AVX2 on an
    // AVX-512 machine) must give the same answers within the same tolerances.
    for (int isa = HG_ISA_SCALAR; isa <= hg_isa_best(); isa++) {
        CHECK(hg_isa_force(isa) == 0);
        for (const Variant &v : kVariants) {
            const Reference ref = read_reference(std::string("test/fixtures/phi3/") + v.name + ".logits");
            if (!ref.ok) continue;
            hg_model *m = load_fixture(v.name, v.kv_type, 2);
            if (!m) continue;
            const int n = (int)ref.tokens.size();
            std::vector<float> logits((size_t)n * ref.n_vocab);
            CHECK(hg_model_eval(m, ref.tokens.data(), n, 0, logits.data(), 1) == 0);
            const Compare c = compare_rows(ref, logits.data(), 0, n);
            CHECK_MSG(c.rel <= v.tol && c.argmax_mismatches == 0,
                      std::string(v.name) + " at isa " + std::to_string(isa) + ": rel err " + std::to_string(c.rel));
            hg_model_free(m);
        }
    }
    hg_isa_force(-1);
}

// ---- a synthetic phi3 GGUF for shape, chunking and error tests ----

namespace {

struct GGUFBuilder {
    std::vector<uint8_t> kv_bytes;
    uint64_t n_kv = 0;
    struct Tensor {
        std::string name;
        std::vector<uint64_t> dims;
        uint32_t type;
        std::vector<uint8_t> data;
    };
    std::vector<Tensor> tensors;

    template <class T> static void put(std::vector<uint8_t> &b, T v) {
        uint8_t tmp[sizeof(T)];
        std::memcpy(tmp, &v, sizeof(T));
        b.insert(b.end(), tmp, tmp + sizeof(T));
    }
    static void put_str(std::vector<uint8_t> &b, const std::string &s) {
        put<uint64_t>(b, s.size());
        b.insert(b.end(), s.begin(), s.end());
    }
    void kv_str(const std::string &k, const std::string &v) {
        put_str(kv_bytes, k), put<uint32_t>(kv_bytes, HG_GGUF_STRING), put_str(kv_bytes, v), n_kv++;
    }
    void kv_u32(const std::string &k, uint32_t v) {
        put_str(kv_bytes, k), put<uint32_t>(kv_bytes, HG_GGUF_UINT32), put<uint32_t>(kv_bytes, v), n_kv++;
    }
    void kv_f32(const std::string &k, float v) {
        put_str(kv_bytes, k), put<uint32_t>(kv_bytes, HG_GGUF_FLOAT32), put<float>(kv_bytes, v), n_kv++;
    }
    void tensor(const std::string &name, std::vector<uint64_t> dims, uint32_t type, std::vector<uint8_t> data) {
        tensors.push_back({name, std::move(dims), type, std::move(data)});
    }
    std::vector<uint8_t> bytes() const {
        std::vector<uint8_t> b;
        put<uint32_t>(b, 0x46554747);
        put<uint32_t>(b, 3);
        put<uint64_t>(b, tensors.size());
        put<uint64_t>(b, n_kv);
        b.insert(b.end(), kv_bytes.begin(), kv_bytes.end());
        uint64_t off = 0;
        for (auto &t : tensors) {
            put_str(b, t.name);
            put<uint32_t>(b, (uint32_t)t.dims.size());
            for (uint64_t d : t.dims) put<uint64_t>(b, d);
            put<uint32_t>(b, t.type);
            put<uint64_t>(b, off);
            off += (t.data.size() + 31) / 32 * 32;
        }
        while (b.size() % 32) b.push_back(0);
        for (auto &t : tensors) {
            b.insert(b.end(), t.data.begin(), t.data.end());
            while (b.size() % 32) b.push_back(0);
        }
        return b;
    }
};

struct Shape {
    int vocab = 40, hidden = 32, ffn = 64, layers = 2, heads = 4, kv_heads = 2, ctx = 320;
};

// Fault injection: drop a tensor, give one a wrong shape or type, drop a metadata key.
struct Faults {
    std::string drop_tensor, bad_shape_tensor, f16_tensor, drop_key, arch = "phi3";
    bool long_rope = false; // rope_factors_long / _short, as 128k-context Phi-3 files carry
};

std::vector<uint8_t> f32_bytes(size_t n, std::mt19937 &rng, float mean, float std) {
    std::normal_distribution<float> nd(mean, std);
    std::vector<uint8_t> b(n * 4);
    for (size_t i = 0; i < n; i++) {
        float v = nd(rng);
        std::memcpy(&b[i * 4], &v, 4);
    }
    return b;
}

std::vector<uint8_t> synthetic_phi3(const Shape &s, const Faults &fault = {}) {
    GGUFBuilder g;
    std::mt19937 rng(5);
    auto key_u32 = [&](const std::string &k, uint32_t v) {
        if (k != fault.drop_key) g.kv_u32(k, v);
    };
    g.kv_str("general.architecture", fault.arch);
    key_u32("phi3.context_length", s.ctx);
    key_u32("phi3.embedding_length", s.hidden);
    key_u32("phi3.feed_forward_length", s.ffn);
    key_u32("phi3.block_count", s.layers);
    key_u32("phi3.attention.head_count", s.heads);
    key_u32("phi3.attention.head_count_kv", s.kv_heads);
    key_u32("phi3.rope.dimension_count", s.hidden / s.heads);
    if (fault.drop_key != "phi3.attention.layer_norm_rms_epsilon")
        g.kv_f32("phi3.attention.layer_norm_rms_epsilon", 1e-5f);
    g.kv_f32("phi3.rope.freq_base", 10000.0f);
    const uint64_t hd = s.hidden / s.heads, qkv = s.hidden + 2 * s.kv_heads * hd;
    auto add = [&](const std::string &name, std::vector<uint64_t> dims) {
        if (name == fault.drop_tensor) return;
        if (name == fault.bad_shape_tensor) dims[0] += 1;
        uint64_t n = 1;
        for (uint64_t d : dims) n *= d;
        if (name == fault.f16_tensor) {
            g.tensor(name, dims, HG_TYPE_F16, std::vector<uint8_t>(n * 2, 0));
            return;
        }
        const bool vec = dims.size() == 1;
        g.tensor(name, dims, HG_TYPE_F32,
                 f32_bytes(n, rng, vec ? 1.0f : 0.0f, vec ? 0.1f : 1.0f / std::sqrt((float)dims[0])));
    };
    add("token_embd.weight", {(uint64_t)s.hidden, (uint64_t)s.vocab});
    for (int i = 0; i < s.layers; i++) {
        const std::string p = "blk." + std::to_string(i) + ".";
        add(p + "attn_norm.weight", {(uint64_t)s.hidden});
        add(p + "attn_qkv.weight", {(uint64_t)s.hidden, qkv});
        add(p + "attn_output.weight", {(uint64_t)s.hidden, (uint64_t)s.hidden});
        add(p + "ffn_norm.weight", {(uint64_t)s.hidden});
        add(p + "ffn_up.weight", {(uint64_t)s.hidden, 2 * (uint64_t)s.ffn});
        add(p + "ffn_down.weight", {(uint64_t)s.ffn, (uint64_t)s.hidden});
    }
    add("output_norm.weight", {(uint64_t)s.hidden});
    add("output.weight", {(uint64_t)s.hidden, (uint64_t)s.vocab});
    if (fault.long_rope) {
        add("rope_factors_long.weight", {hd / 2});
        add("rope_factors_short.weight", {hd / 2});
    }
    return g.bytes();
}

std::string temp_path() {
    static int counter = 0;
    struct stat st;
    const std::string dir = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    return dir + "/hg_test_phi3_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + ".gguf";
}

struct TempFile {
    std::string path;
    explicit TempFile(const std::vector<uint8_t> &bytes) : path(temp_path()) {
        FILE *f = std::fopen(path.c_str(), "wb");
        if (f) {
            std::fwrite(bytes.data(), 1, bytes.size(), f);
            std::fclose(f);
        }
    }
    ~TempFile() { std::remove(path.c_str()); }
};

hg_model *load_bytes(const std::vector<uint8_t> &bytes, int n_ctx = 0, int kv_type = HG_TYPE_F16) {
    TempFile tf(bytes);
    hg_model_params p = hg_model_default_params();
    p.n_ctx = n_ctx;
    p.n_threads = 2;
    p.kv_type = kv_type;
    return hg_model_load(tf.path.c_str(), &p); // the mapping outlives the unlinked file
}

} // namespace

TEST(phi3_long_prefill_in_chunks_matches_decode) {
    // 300 tokens: more than one internal chunk of 256, so the chunk boundary is crossed.
    const Shape s;
    hg_model *m = load_bytes(synthetic_phi3(s));
    CHECK_MSG(m != nullptr, hg_last_error());
    if (!m) return;
    CHECK(hg_model_n_ctx(m) == s.ctx);
    CHECK(hg_model_n_embd(m) == s.hidden);
    const int n = 300, V = s.vocab;
    std::vector<int32_t> tokens(n);
    for (int i = 0; i < n; i++) tokens[i] = (i * 7 + 3) % V;
    std::vector<float> prefill((size_t)n * V), decode((size_t)n * V);
    CHECK(hg_model_eval(m, tokens.data(), n, 0, prefill.data(), 1) == 0);
    CHECK(hg_model_kv_clear(m, 0) == 0);
    for (int t = 0; t < n; t++) CHECK(hg_model_eval(m, &tokens[t], 1, t, &decode[(size_t)t * V], 0) == 0);
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < prefill.size(); i++) {
        max_diff = std::max(max_diff, (double)std::fabs(prefill[i] - decode[i]));
        max_ref = std::max(max_ref, (double)std::fabs(prefill[i]));
    }
    // Same arithmetic per element on both paths; only the f16 rounding of q/probs is shared.
    CHECK_MSG(max_diff <= 1e-5 * max_ref, "prefill vs decode " + std::to_string(max_diff / max_ref));
    hg_model_free(m);
}

TEST(phi3_refuses_bad_files) {
    const Shape s;
    struct Case {
        Faults fault;
        const char *needle;
    };
    Faults missing, shape, type, key, arch, nokv, long_rope;
    missing.drop_tensor = "blk.1.ffn_down.weight";
    shape.bad_shape_tensor = "blk.0.attn_qkv.weight";
    type.f16_tensor = "blk.0.ffn_norm.weight";
    key.drop_key = "phi3.attention.head_count";
    arch.arch = "llama";
    nokv.drop_tensor = "output.weight";
    long_rope.long_rope = true;
    const Case cases[] = {
        {missing, "tensor blk.1.ffn_down.weight is missing"},
        {shape, "tensor blk.0.attn_qkv.weight has shape [33, 64], expected [32, 64]"},
        {type, "tensor blk.0.ffn_norm.weight has type f16, expected f32"},
        {key, "metadata key phi3.attention.head_count is missing"},
        {arch, "architecture is 'llama', expected 'phi3'"},
        {nokv, "tensor output.weight is missing"},
        {long_rope, "LongRoPE (tensor rope_factors_long.weight) is not supported"},
    };
    for (const Case &c : cases) CHECK_ERROR(load_bytes(synthetic_phi3(s, c.fault)) == nullptr, c.needle);

    Shape odd = s;
    odd.kv_heads = 3; // 4 heads cannot share 3 kv heads
    CHECK_ERROR(load_bytes(synthetic_phi3(odd)) == nullptr, "not a multiple of head_count_kv");
    CHECK_ERROR(load_bytes(synthetic_phi3(s), 0, HG_TYPE_Q4_0) == nullptr, "KV cache type q4_0 is not supported");
    CHECK_ERROR(load_bytes(synthetic_phi3(s), 0, HG_TYPE_Q8_0) == nullptr,
                "a q8_0 KV cache needs a head size that is a multiple of 32; this model's is 8");
    CHECK_ERROR(hg_model_load("/nonexistent/phi3.gguf", nullptr) == nullptr, "/nonexistent/phi3.gguf");
    CHECK_ERROR(hg_model_load(nullptr, nullptr) == nullptr, "null path");
}

TEST(phi3_refuses_bad_calls_and_keeps_its_state) {
    Shape s;
    s.ctx = 64;
    hg_model *m = load_bytes(synthetic_phi3(s), 8);
    CHECK_MSG(m != nullptr, hg_last_error());
    if (!m) return;
    CHECK(hg_model_n_ctx(m) == 8);
    std::vector<float> logits((size_t)9 * s.vocab);
    const int32_t ok[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const int32_t bad[3] = {1, 40, 2};
    const int32_t negative[2] = {3, -1};

    CHECK_ERROR(hg_model_eval(m, bad, 3, 0, logits.data(), 0) != 0, "token 40 at index 1 (position 1)");
    CHECK_ERROR(hg_model_eval(m, negative, 2, 0, logits.data(), 0) != 0, "token -1 at index 1");
    CHECK(hg_model_n_past(m) == 0);
    CHECK_ERROR(hg_model_eval(m, ok, 9, 0, logits.data(), 0) != 0, "would exceed the context of 8");
    CHECK(hg_model_eval(m, ok, 5, 0, logits.data(), 0) == 0);
    CHECK_ERROR(hg_model_eval(m, ok, 4, 5, logits.data(), 0) != 0, "4 tokens at position 5 would exceed");
    CHECK(hg_model_n_past(m) == 5);
    CHECK_ERROR(hg_model_eval(m, ok, 1, 3, logits.data(), 0) != 0, "start_pos 3 but the KV cache holds 5");
    CHECK_ERROR(hg_model_eval(m, ok, 0, 5, logits.data(), 0) != 0, "no tokens");
    CHECK_ERROR(hg_model_eval(m, ok, 1, -1, logits.data(), 0) != 0, "negative");
    CHECK_ERROR(hg_model_kv_clear(m, -2) != 0, "negative");
    CHECK(hg_model_eval(m, ok, 3, 5, logits.data(), 0) == 0); // exactly full
    CHECK(hg_model_n_past(m) == 8);
    CHECK(hg_model_kv_clear(m, 100) == 0); // past the end: nothing to forget
    CHECK(hg_model_n_past(m) == 8);
    hg_model_free(m);

    CHECK_ERROR(hg_model_eval(nullptr, ok, 1, 0, logits.data(), 0) != 0, "null model");
    CHECK_ERROR(hg_model_n_vocab(nullptr) == -1, "null model");
    hg_model_free(nullptr);
}

// ---- ops against naive double-precision versions ----

TEST(rms_norm_matches_double) {
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.5f, 3.0f);
    for (int n : {1, 7, 37, 3072}) {
        const int rows = 3;
        std::vector<float> x(rows * n), w(n), y(rows * n), y_ref(rows * n);
        for (auto &v : x) v = nd(rng);
        for (auto &v : w) v = nd(rng);
        hg::rms_norm(x.data(), w.data(), y.data(), n, rows, 1e-5f);
        hg::rms_norm_ref(x.data(), w.data(), y_ref.data(), n, rows, 1e-5f);
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int i = 0; i < n; i++) ss += (double)x[r * n + i] * x[r * n + i];
            const double inv = 1.0 / std::sqrt(ss / n + 1e-5);
            for (int i = 0; i < n; i++) {
                const double want = x[r * n + i] * inv * w[i];
                CHECK_NEAR(y[r * n + i], want, 1e-5 * std::fabs(want) + 1e-6);
                CHECK_NEAR(y_ref[r * n + i], want, 1e-6 * std::fabs(want) + 1e-7);
            }
        }
        // in place
        std::vector<float> z = x;
        hg::rms_norm(z.data(), w.data(), z.data(), n, rows, 1e-5f);
        CHECK(z == y);
    }
}

TEST(rope_matches_double_rotate_half) {
    std::mt19937 rng(2);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    struct Case {
        int head_dim, n_rot, heads;
        float base;
    };
    for (const Case c :
         {Case{24, 24, 5, 10000.0f}, Case{24, 16, 3, 250000.0f}, Case{6, 2, 1, 10000.0f}, Case{96, 96, 2, 10000.0f}}) {
        const int n_tokens = 6, stride = c.heads * c.head_dim + 5; // padding: Q inside qkv
        const std::vector<int32_t> pos = {0, 1, 2, 17, 1023, 4095};
        std::vector<float> x(n_tokens * stride);
        for (auto &v : x) v = nd(rng);
        std::vector<float> fast = x, ref = x;
        std::vector<float> cs(n_tokens * c.n_rot / 2), sn(n_tokens * c.n_rot / 2);
        hg::rope_cos_sin(pos.data(), n_tokens, c.n_rot, c.base, cs.data(), sn.data());
        hg::rope_apply(fast.data(), n_tokens, stride, c.heads, c.head_dim, c.n_rot, cs.data(), sn.data());
        hg::rope_ref(ref.data(), n_tokens, stride, c.heads, c.head_dim, c.n_rot, pos.data(), c.base);
        for (int t = 0; t < n_tokens; t++) {
            // The angle is formed in float, as transformers does: its error grows with the
            // position (about pos * 2^-24 radians), the rest is float rounding.
            const double tol = 4e-7 * (1 + pos[t]) + 2e-6;
            for (int h = 0; h < c.heads; h++)
                for (int i = 0; i < c.head_dim; i++) {
                    const int at = t * stride + h * c.head_dim + i, half = c.n_rot / 2;
                    double want = x[at];
                    if (i < c.n_rot) {
                        const int j = i % half;
                        const double angle = pos[t] * std::pow((double)c.base, -2.0 * j / c.n_rot);
                        const double a = x[t * stride + h * c.head_dim + j],
                                     b = x[t * stride + h * c.head_dim + j + half];
                        want = i < half ? a * std::cos(angle) - b * std::sin(angle)
                                        : b * std::cos(angle) + a * std::sin(angle);
                    }
                    CHECK_NEAR(fast[at], want, tol);
                    CHECK_NEAR(ref[at], want, 1e-6);
                }
            for (int i = c.heads * c.head_dim; i < stride; i++) CHECK(fast[t * stride + i] == x[t * stride + i]);
        }
    }
}

TEST(silu_mul_matches_double) {
    const int n_ff = 13, n_tokens = 3;
    std::vector<float> gate_up(2 * n_ff * n_tokens), act(n_ff * n_tokens);
    for (size_t i = 0; i < gate_up.size(); i++) gate_up[i] = (float)((int)(i * 37 % 41) - 20) * 0.7f;
    gate_up[0] = -200.0f; // exp overflow: silu -> 0
    gate_up[1] = 200.0f;  // silu -> x
    hg::silu_mul(gate_up.data(), act.data(), n_ff, n_tokens);
    for (int t = 0; t < n_tokens; t++)
        for (int i = 0; i < n_ff; i++) {
            const double g = gate_up[t * 2 * n_ff + i], u = gate_up[t * 2 * n_ff + n_ff + i];
            const double want = g / (1 + std::exp(-g)) * u;
            CHECK_NEAR(act[t * n_ff + i], want, 1e-6 * std::fabs(want) + 1e-30);
        }
}

namespace {

struct AttnCase {
    int heads, kv_heads, head_dim, n_ctx, pos0, n_tokens, window, cache_type;
};

// Fills a cache with random K/V for positions 0..pos0+n_tokens-1 and checks attention() and
// attention_ref() against a double-precision softmax(q k / sqrt(d)) v over the stored values.
void check_attention(hg::ThreadPool &pool, const AttnCase &c, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.5f);
    const int hd = c.head_dim, n_pos = c.pos0 + c.n_tokens, kv_width = c.kv_heads * hd, stride = kv_width + 3;
    std::vector<float> k(n_pos * stride), v(n_pos * stride), q(c.n_tokens * (c.heads * hd + 1));
    for (auto &x : k) x = nd(rng);
    for (auto &x : v) x = nd(rng);
    for (auto &x : q) x = nd(rng);
    const int64_t bytes = hg::kv_layer_bytes(c.cache_type, c.n_ctx, c.kv_heads, hd);
    std::vector<uint8_t> kbuf(bytes), vbuf(bytes);
    hg::kv_layer kv;
    kv.type = c.cache_type;
    kv.k = kbuf.data();
    kv.v = vbuf.data();
    kv.n_ctx = c.n_ctx;
    kv.n_kv_heads = c.kv_heads;
    kv.head_dim = hd;
    // In two calls, as a prefill then a batch would store them.
    hg::kv_store(kv, k.data(), v.data(), stride, c.pos0, 0);
    hg::kv_store(kv, k.data() + c.pos0 * stride, v.data() + c.pos0 * stride, stride, c.n_tokens, c.pos0);

    const int q_stride = c.heads * hd + 1, out_stride = c.heads * hd + 2;
    std::vector<float> out(c.n_tokens * out_stride, -7.0f), out_ref = out;
    hg::attention(pool, kv, q.data(), q_stride, c.n_tokens, c.pos0, c.heads, c.window, out.data(), out_stride);
    hg::attention_ref(kv, q.data(), q_stride, c.n_tokens, c.pos0, c.heads, c.window, out_ref.data(), out_stride);

    // the values as the cache holds them: f16 rounded; q8_0 each head's row quantized (and the
    // query with it, as a q8_0 cache's attention is defined)
    const bool q8 = c.cache_type == HG_TYPE_Q8_0;
    auto round_rows = [&](std::vector<float> &x, int n_rows, int row_stride, int n_heads) {
        std::vector<uint8_t> blk(hg::row_bytes(HG_TYPE_Q8_0, hd));
        for (int r = 0; r < n_rows; r++)
            for (int h = 0; h < n_heads; h++) {
                float *at = &x[(size_t)(r * row_stride + h * hd)];
                hg::kernels_active().from_float[HG_TYPE_Q8_0](at, blk.data(), hd);
                hg::type_traits(HG_TYPE_Q8_0)->to_float(blk.data(), at, hd);
            }
    };
    std::vector<float> k_held = k, v_held = v, q_held = q;
    if (q8) {
        round_rows(k_held, n_pos, stride, c.kv_heads);
        round_rows(v_held, n_pos, stride, c.kv_heads);
        round_rows(q_held, c.n_tokens, c.heads * hd + 1, c.heads);
    }
    auto stored = [&](float x) { return c.cache_type == HG_TYPE_F16 ? hg::fp16_to_f32(hg::f32_to_fp16(x)) : x; };
    // f16 cache: q and the probabilities are rounded to f16 as well (2^-11 relative). q8_0: the
    // scores are exact integer sums times two scales, the rest in float as f32's
    const double tol_fast = c.cache_type == HG_TYPE_F16 ? 4e-3 : 2e-5;
    for (int t = 0; t < c.n_tokens; t++)
        for (int h = 0; h < c.heads; h++) {
            const int kvh = h / (c.heads / c.kv_heads), p = c.pos0 + t;
            const int j0 = c.window > 0 ? std::max(0, p - c.window + 1) : 0;
            std::vector<double> w(p + 1 - j0);
            double mx = -INFINITY, sum = 0;
            for (int j = j0; j <= p; j++) {
                double s = 0;
                for (int d = 0; d < hd; d++)
                    s += (double)q_held[t * q_stride + h * hd + d] * stored(k_held[j * stride + kvh * hd + d]);
                w[j - j0] = s / std::sqrt((double)hd);
                mx = std::max(mx, w[j - j0]);
            }
            for (double &x : w) sum += (x = std::exp(x - mx));
            for (int d = 0; d < hd; d++) {
                double o = 0;
                for (int j = j0; j <= p; j++) o += w[j - j0] / sum * stored(v_held[j * stride + kvh * hd + d]);
                const float got = out[t * out_stride + h * hd + d], got_ref = out_ref[t * out_stride + h * hd + d];
                CHECK_NEAR(got, o, tol_fast * (1 + std::fabs(o)));
                CHECK_NEAR(got_ref, o, 1e-5 * (1 + std::fabs(o)));
            }
        }
    for (int t = 0; t < c.n_tokens; t++) // padding between tokens untouched
        for (int i = c.heads * hd; i < out_stride; i++) CHECK(out[t * out_stride + i] == -7.0f);
}

} // namespace

TEST(attention_matches_double) {
    hg::ThreadPool pool(3);
    const AttnCase cases[] = {
        {4, 4, 16, 32, 0, 12, 0, HG_TYPE_F32}, // plain causal prefill
        {6, 2, 20, 40, 9, 5, 0, HG_TYPE_F32},  // GQA, a batch on top of a prefix
        {6, 2, 20, 40, 9, 5, 0, HG_TYPE_F16},
        {3, 1, 12, 50, 30, 1, 0, HG_TYPE_F16}, // decode, one kv head
        {4, 4, 24, 64, 20, 7, 5, HG_TYPE_F32}, // sliding window shorter than the batch
        {4, 2, 24, 64, 20, 7, 5, HG_TYPE_F16},
        {5, 5, 7, 16, 0, 16, 1, HG_TYPE_F32}, // window 1: each token sees itself only
        {8, 2, 96, 200, 150, 33, 64, HG_TYPE_F16},
        // q8_0: whole and partial key groups, a context that is not whole groups, windows that
        // start inside a group
        {6, 2, 32, 40, 9, 5, 0, HG_TYPE_Q8_0},
        {3, 1, 64, 50, 30, 1, 0, HG_TYPE_Q8_0},
        {4, 2, 96, 70, 20, 7, 5, HG_TYPE_Q8_0},
        {8, 2, 96, 200, 150, 33, 64, HG_TYPE_Q8_0},
        {40, 10, 128, 48, 0, 48, 0, HG_TYPE_Q8_0}, // Phi-4's heads, a prompt of three groups
        {12, 1, 32, 33, 32, 1, 0, HG_TYPE_Q8_0},   // 12 query heads a kv head: two column calls
    };
    uint32_t seed = 10;
    for (const AttnCase &c : cases) check_attention(pool, c, seed++);
}

TEST(attention_4k_context_decode_is_not_slow) {
    // Phi-3-mini's attention shape (32 heads of 96) at the end of a 4096 context, f16 and q8_0
    // caches; the store of 4096 positions timed too (a q8_0 cache quantizes and packs each key).
    hg::ThreadPool pool(2);
    const int heads = 32, hd = 96, n_ctx = 4096;
    std::vector<float> kvrow(n_ctx * heads * hd);
    for (size_t i = 0; i < kvrow.size(); i++) kvrow[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    for (int type : {HG_TYPE_F16, HG_TYPE_Q8_0}) {
        const int64_t bytes = hg::kv_layer_bytes(type, n_ctx, heads, hd);
        std::vector<uint8_t> kbuf(bytes), vbuf(bytes);
        hg::kv_layer kv;
        kv.type = type;
        kv.k = kbuf.data();
        kv.v = vbuf.data();
        kv.n_ctx = n_ctx;
        kv.n_kv_heads = heads;
        kv.head_dim = hd;
        const auto s0 = std::chrono::steady_clock::now();
        hg::kv_store(kv, kvrow.data(), kvrow.data(), heads * hd, n_ctx, 0);
        const double store_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s0).count();
        std::vector<float> q(heads * hd, 0.1f), out(heads * hd);
        const int reps = 4;
        hg::attention(pool, kv, q.data(), heads * hd, 1, n_ctx - 1, heads, 0, out.data(), heads * hd); // warm
        const auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; r++)
            hg::attention(pool, kv, q.data(), heads * hd, 1, n_ctx - 1, heads, 0, out.data(), heads * hd);
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
        std::printf("    attention, 1 token over 4096 positions, 32 heads x 96, %s (%.1f MB), 2 threads: %.2f ms; "
                    "storing the 4096: %.1f ms on 1 thread\n",
                    hg::type_traits(type)->name, 2.0 * (double)bytes / 1e6, ms, store_ms);
        // ~25-50 MB of cache read per call: tens of ms at worst on a slow shared machine. A
        // second would mean a per-element pathology (conversions outside the kernels, a
        // quadratic loop).
        CHECK_MSG(ms < 1000, std::to_string(ms) + " ms");
        for (float x : out) CHECK(std::isfinite(x));
    }
}

HG_TEST_MAIN()
