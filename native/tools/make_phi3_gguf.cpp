// make_phi3_gguf: writes a phi3 GGUF with random weights in the shape of Phi-3-mini (or one
// given on the command line), for timing this engine and llama.cpp on the same file where no
// Node is available (tools/device-check.sh). The same recipe as tools/bench-model.mjs: norms
// near 1, linears of one quant type whose values have a standard deviation of 1/sqrt(in),
// and a SentencePiece vocabulary llama.cpp loads (specials, the 256 bytes, letter strings).
// Weights are random quant blocks drawn directly (values do not matter for speed), so a
// 2 GB file takes seconds. Not a trained model: its text is noise.
//
//   make_phi3_gguf OUT.gguf [--type q4_0|q8_0|f16] [--layers N] [--vocab N] [--hidden N]
//                  [--ffn N] [--heads N] [--kv-heads N] [--context N]
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "healthgpt.h"

namespace {

struct Shape {
    uint32_t vocab = 40206, hidden = 3072, ffn = 8192, layers = 32, heads = 32, kv_heads = 32, context = 4096;
};

struct Rng { // xorshift32
    uint32_t s;
    uint32_t next() {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        return s;
    }
    float uniform() { return (float)(int32_t)next() / 2147483648.0f; } // [-1, 1)
};

struct Writer {
    FILE *f;
    bool ok = true;
    void bytes(const void *p, size_t n) { ok = ok && std::fwrite(p, 1, n, f) == n; }
    template <class T> void put(T v) { bytes(&v, sizeof v); }
    void str(const std::string &s) {
        put<uint64_t>(s.size());
        bytes(s.data(), s.size());
    }
    void key(const std::string &k, uint32_t type) { str(k), put<uint32_t>(type); }
    void kv_u32(const std::string &k, uint32_t v) { key(k, HG_GGUF_UINT32), put(v); }
    void kv_f32(const std::string &k, float v) { key(k, HG_GGUF_FLOAT32), put(v); }
    void kv_str(const std::string &k, const std::string &v) { key(k, HG_GGUF_STRING), str(v); }
};

struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;
    int type;
    uint64_t bytes, offset;
};

uint64_t tensor_bytes(int type, const std::vector<uint64_t> &ne) {
    uint64_t n = 1;
    for (uint64_t d : ne) n *= d;
    if (type == HG_TYPE_F32) return n * 4;
    if (type == HG_TYPE_F16) return n * 2;
    if (type == HG_TYPE_Q4_0) return n / 32 * 18;
    return n / 32 * 34; // q8_0
}

// The SentencePiece pieces of tools/bench-model.mjs's benchSpmVocab.
std::vector<std::string> vocab_pieces(uint32_t n) {
    std::vector<std::string> t = {"<unk>", "<s>", "</s>"};
    char buf[16];
    for (int b = 0; b < 256; b++) std::snprintf(buf, sizeof buf, "<0x%02X>", b), t.push_back(buf);
    const std::string mark = "\xe2\x96\x81"; // U+2581, SentencePiece's word start
    t.push_back(mark);
    const std::string letters = "etaoinshrdlucmfwypvbgkjqxz";
    std::vector<std::string> level = {""};
    while (t.size() < n) {
        std::vector<std::string> next;
        for (const std::string &p : level)
            for (char c : letters) next.push_back(p + c);
        level.swap(next);
        for (const std::string &p : level) {
            if (t.size() >= n) break;
            t.push_back(mark + p);
        }
        for (const std::string &p : level) {
            if (t.size() >= n) break;
            t.push_back(p);
        }
    }
    t.resize(n);
    return t;
}

void fill(int type, uint64_t k, uint64_t bytes, Rng &rng, std::vector<uint8_t> &out) {
    out.resize(bytes);
    const float std_dev = 1.0f / std::sqrt((float)k);
    if (type == HG_TYPE_F16) {
        uint16_t *h = reinterpret_cast<uint16_t *>(out.data());
        for (uint64_t i = 0; i < bytes / 2; i++) h[i] = hg::f32_to_fp16(rng.uniform() * std_dev * 1.7320508f);
        return;
    }
    const bool q4 = type == HG_TYPE_Q4_0;
    const size_t bb = q4 ? 18 : 34;
    // q4_0: (q - 8) uniform on -8..7 has std ~4.6; q8_0: uniform on -127..127 has std ~73
    const uint16_t d = hg::f32_to_fp16(std_dev / (q4 ? 4.6f : 73.3f));
    for (uint64_t b = 0; b < bytes / bb; b++) {
        uint8_t *p = out.data() + b * bb;
        std::memcpy(p, &d, 2);
        for (size_t j = 2; j < bb; j += 4) {
            const uint32_t r = rng.next();
            std::memcpy(p + j, &r, std::min<size_t>(4, bb - j));
        }
        if (!q4)
            for (size_t j = 2; j < bb; j++)
                if (p[j] == 0x80) p[j] = 0x81; // -128 is outside q8_0's range
    }
}

int usage() {
    std::fprintf(stderr, "usage: make_phi3_gguf OUT.gguf [--type q4_0|q8_0|f16] [--layers N] [--vocab N] [--hidden N]\n"
                         "                      [--ffn N] [--heads N] [--kv-heads N] [--context N]\n");
    return 2;
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') return usage();
    const std::string out = argv[1];
    Shape s;
    int type = HG_TYPE_Q4_0;
    for (int i = 2; i < argc; i++) {
        const std::string a = argv[i];
        if (i + 1 >= argc) return usage();
        const std::string v = argv[++i];
        const uint32_t n = (uint32_t)std::strtoul(v.c_str(), nullptr, 10);
        if (a == "--type") {
            if (v == "q4_0")
                type = HG_TYPE_Q4_0;
            else if (v == "q8_0")
                type = HG_TYPE_Q8_0;
            else if (v == "f16")
                type = HG_TYPE_F16;
            else
                return usage();
        } else if (a == "--layers")
            s.layers = n;
        else if (a == "--vocab")
            s.vocab = n;
        else if (a == "--hidden")
            s.hidden = n;
        else if (a == "--ffn")
            s.ffn = n;
        else if (a == "--heads")
            s.heads = n;
        else if (a == "--kv-heads")
            s.kv_heads = n;
        else if (a == "--context")
            s.context = n;
        else
            return usage();
    }
    if (!s.layers || !s.heads || !s.kv_heads || s.hidden % s.heads || s.heads % s.kv_heads || s.hidden % 32 ||
        s.ffn % 32 || s.vocab < 300) {
        std::fprintf(stderr, "make_phi3_gguf: inconsistent shape\n");
        return 2;
    }
    const uint64_t hd = s.hidden / s.heads, qkv = s.hidden + 2 * s.kv_heads * hd;

    std::vector<Tensor> ts;
    auto add = [&](const std::string &name, std::vector<uint64_t> ne, int t) {
        ts.push_back({name, ne, t, tensor_bytes(t, ne), 0});
    };
    add("token_embd.weight", {s.hidden, s.vocab}, type);
    for (uint32_t l = 0; l < s.layers; l++) {
        const std::string p = "blk." + std::to_string(l) + ".";
        add(p + "attn_norm.weight", {s.hidden}, HG_TYPE_F32);
        add(p + "attn_qkv.weight", {s.hidden, qkv}, type);
        add(p + "attn_output.weight", {s.hidden, s.hidden}, type);
        add(p + "ffn_norm.weight", {s.hidden}, HG_TYPE_F32);
        add(p + "ffn_up.weight", {s.hidden, 2ull * s.ffn}, type);
        add(p + "ffn_down.weight", {s.ffn, s.hidden}, type);
    }
    add("output_norm.weight", {s.hidden}, HG_TYPE_F32);
    add("output.weight", {s.hidden, s.vocab}, type);
    const uint64_t align = 32;
    uint64_t off = 0;
    for (Tensor &t : ts) t.offset = off, off += (t.bytes + align - 1) / align * align;

    FILE *f = std::fopen(out.c_str(), "wb");
    if (!f) {
        std::fprintf(stderr, "make_phi3_gguf: cannot write %s\n", out.c_str());
        return 1;
    }
    Writer w{f};
    const std::vector<std::string> pieces = vocab_pieces(s.vocab);
    w.bytes("GGUF", 4);
    w.put<uint32_t>(3);
    w.put<uint64_t>(ts.size());
    w.put<uint64_t>(21); // key-value pairs below
    w.kv_str("general.architecture", "phi3");
    w.kv_str("general.name", "healthgpt bench: random weights (not a trained model)");
    w.kv_u32("general.file_type", type == HG_TYPE_Q4_0 ? 2 : type == HG_TYPE_Q8_0 ? 7 : 1);
    w.kv_u32("general.quantization_version", 2);
    w.kv_u32("phi3.context_length", s.context);
    w.kv_u32("phi3.embedding_length", s.hidden);
    w.kv_u32("phi3.feed_forward_length", s.ffn);
    w.kv_u32("phi3.block_count", s.layers);
    w.kv_u32("phi3.attention.head_count", s.heads);
    w.kv_u32("phi3.attention.head_count_kv", s.kv_heads);
    w.kv_f32("phi3.attention.layer_norm_rms_epsilon", 1e-5f);
    w.kv_u32("phi3.rope.dimension_count", (uint32_t)hd);
    w.kv_f32("phi3.rope.freq_base", 10000.0f);
    w.kv_str("tokenizer.ggml.model", "llama");
    w.kv_str("tokenizer.ggml.pre", "default");
    w.key("tokenizer.ggml.tokens", HG_GGUF_ARRAY);
    w.put<uint32_t>(HG_GGUF_STRING), w.put<uint64_t>(pieces.size());
    for (const std::string &p : pieces) w.str(p);
    w.key("tokenizer.ggml.scores", HG_GGUF_ARRAY);
    w.put<uint32_t>(HG_GGUF_FLOAT32), w.put<uint64_t>(pieces.size());
    for (size_t i = 0; i < pieces.size(); i++) w.put<float>(i < 259 ? 0.0f : -(float)i);
    w.key("tokenizer.ggml.token_type", HG_GGUF_ARRAY);
    w.put<uint32_t>(HG_GGUF_INT32), w.put<uint64_t>(pieces.size());
    for (size_t i = 0; i < pieces.size(); i++) w.put<int32_t>(i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1);
    w.kv_u32("tokenizer.ggml.unknown_token_id", 0);
    w.kv_u32("tokenizer.ggml.bos_token_id", 1);
    w.kv_u32("tokenizer.ggml.eos_token_id", 2);
    for (const Tensor &t : ts) {
        w.str(t.name);
        w.put<uint32_t>((uint32_t)t.ne.size());
        for (uint64_t d : t.ne) w.put<uint64_t>(d);
        w.put<uint32_t>((uint32_t)t.type);
        w.put<uint64_t>(t.offset);
    }
    long pos = std::ftell(f);
    const std::vector<uint8_t> zeros(align, 0);
    if (pos < 0)
        w.ok = false;
    else
        w.bytes(zeros.data(), (size_t)((align - (uint64_t)pos % align) % align));

    Rng rng{0x9e3779b9u};
    std::vector<uint8_t> data;
    for (size_t i = 0; i < ts.size() && w.ok; i++) {
        const Tensor &t = ts[i];
        if (t.type == HG_TYPE_F32) {
            std::vector<float> v(t.ne[0]);
            for (float &x : v) x = 1.0f + 0.1f * rng.uniform();
            w.bytes(v.data(), v.size() * 4);
        } else {
            fill(t.type, t.ne[0], t.bytes, rng, data);
            w.bytes(data.data(), data.size());
        }
        w.bytes(zeros.data(), (size_t)((align - t.bytes % align) % align));
    }
    if (std::fclose(f) != 0) w.ok = false;
    if (!w.ok) {
        std::fprintf(stderr, "make_phi3_gguf: writing %s failed\n", out.c_str());
        return 1;
    }
    std::printf("make_phi3_gguf: %s (%u layers, hidden %u, ffn %u, vocab %u, %.2f GB)\n", out.c_str(), s.layers,
                s.hidden, s.ffn, s.vocab, (double)off / 1e9);
    return 0;
}
