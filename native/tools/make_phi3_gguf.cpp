// make_phi3_gguf: writes a phi3 GGUF with random weights in the shape of Phi-3-mini (or one
// given on the command line), for timing this engine and llama.cpp on the same file where no
// Node is available (tools/device-check.sh). The same recipe as tools/bench-model.mjs: norms
// near 1, linears of one quant type whose values have a standard deviation of 1/sqrt(in),
// and a SentencePiece vocabulary llama.cpp loads (specials, the 256 bytes, letter strings).
// Weights are random quant blocks drawn directly (values do not matter for speed), so a
// 2 GB file takes seconds. Not a trained model: its text is noise.
//
// --type q4_k_m mixes the K-quants as llama.cpp's Q4_K_M does for phi3: attn_qkv q5_K,
// ffn_down q6_K in the layers that get more bits (the first and last eighth, every third
// between), output q6_K, the rest q4_K. --plugin comprehension|generation writes an H-LoRA
// plugin file for that shape instead (f16 adapters with HealthGPT's ranks: 64 / 256, alpha 2r,
// 4 experts; generation with its own token_embd / output rows for the 8195 image tokens at the
// end of the vocabulary), for timing the adapters' decode overhead.
//
//   make_phi3_gguf OUT.gguf [--type q4_0|q8_0|f16|q4_k_m] [--plugin comprehension|generation]
//                  [--layers N] [--vocab N] [--hidden N] [--ffn N] [--heads N] [--kv-heads N]
//                  [--context N]
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
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
    if (type == HG_TYPE_Q4_K) return n / 256 * 144;
    if (type == HG_TYPE_Q5_K) return n / 256 * 176;
    if (type == HG_TYPE_Q6_K) return n / 256 * 210;
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
    if (type == HG_TYPE_Q4_K || type == HG_TYPE_Q5_K || type == HG_TYPE_Q6_K) {
        // random bytes, then scales that give values of about std_dev: q4_K / q5_K values are
        // d sc q - dmin m with sc, m, q uniform (dmin centres them); q6_K's d sc (q - 32) with
        // sc a random int8
        for (uint64_t i = 0; i < bytes; i += 4) {
            const uint32_t r = rng.next();
            std::memcpy(out.data() + i, &r, std::min<uint64_t>(4, bytes - i));
        }
        const size_t bb = type == HG_TYPE_Q4_K ? 144 : type == HG_TYPE_Q5_K ? 176 : 210;
        const float q_std = type == HG_TYPE_Q4_K ? 4.6f : type == HG_TYPE_Q5_K ? 9.2f : 18.5f;
        const float sc_mean = type == HG_TYPE_Q6_K ? 74.0f : 31.5f; // |sc| on average
        const uint16_t d = hg::f32_to_fp16(std_dev / (q_std * sc_mean));
        const uint16_t dmin = hg::f32_to_fp16(std_dev / (q_std * sc_mean) * (type == HG_TYPE_Q4_K ? 7.5f : 15.5f));
        for (uint64_t b = 0; b < bytes / bb; b++) {
            uint8_t *p = out.data() + b * bb;
            if (type == HG_TYPE_Q6_K) {
                std::memcpy(p + 208, &d, 2);
            } else {
                std::memcpy(p, &d, 2);
                std::memcpy(p + 2, &dmin, 2);
            }
        }
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
    std::fprintf(stderr,
                 "usage: make_phi3_gguf OUT.gguf [--type q4_0|q8_0|f16|q4_k_m] [--plugin comprehension|generation]\n"
                 "                      [--layers N] [--vocab N] [--hidden N] [--ffn N] [--heads N] [--kv-heads N]\n"
                 "                      [--context N]\n");
    return 2;
}

// llama.cpp's Q4_K_M choice of more bits for a layer's ffn_down (use_more_bits).
bool more_bits(uint32_t il, uint32_t n) { return il < n / 8 || il >= 7 * n / 8 || (il - n / 8) % 3 == 2; }

// The metadata of a base model or of a plugin, written as GGUF key-value pairs.
struct Meta {
    uint64_t count = 0;
    std::vector<std::function<void(Writer &)>> items;
    void add(std::function<void(Writer &)> f) { items.push_back(std::move(f)), count++; }
};

} // namespace

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') return usage();
    const std::string out = argv[1];
    Shape s;
    int type = HG_TYPE_Q4_0;
    bool k_mix = false;
    std::string plugin;
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
            else if (v == "q4_k_m")
                type = HG_TYPE_Q4_K, k_mix = true;
            else
                return usage();
        } else if (a == "--plugin") {
            if (v != "comprehension" && v != "generation") return usage();
            plugin = v;
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
    const uint32_t block = k_mix ? 256 : 32;
    if (!s.layers || !s.heads || !s.kv_heads || s.hidden % s.heads || s.heads % s.kv_heads || s.hidden % block ||
        s.ffn % block || s.vocab < 300) {
        std::fprintf(stderr, "make_phi3_gguf: inconsistent shape (hidden and ffn in multiples of %u)\n", block);
        return 2;
    }
    const uint64_t hd = s.hidden / s.heads, qkv = s.hidden + 2 * s.kv_heads * hd;

    std::vector<Tensor> ts;
    auto add = [&](const std::string &name, std::vector<uint64_t> ne, int t) {
        ts.push_back({name, ne, t, tensor_bytes(t, ne), 0});
    };
    Meta meta;
    auto kv_u32 = [&](const char *k, uint32_t v) { meta.add([=](Writer &w) { w.kv_u32(k, v); }); };
    auto kv_f32 = [&](const char *k, float v) { meta.add([=](Writer &w) { w.kv_f32(k, v); }); };
    auto kv_str = [&](const char *k, std::string v) { meta.add([=](Writer &w) { w.kv_str(k, v); }); };
    uint32_t embd_rows = 0;
    if (plugin.empty()) {
        add("token_embd.weight", {s.hidden, s.vocab}, type);
        for (uint32_t l = 0; l < s.layers; l++) {
            const std::string p = "blk." + std::to_string(l) + ".";
            add(p + "attn_norm.weight", {s.hidden}, HG_TYPE_F32);
            add(p + "attn_qkv.weight", {s.hidden, qkv}, k_mix ? HG_TYPE_Q5_K : type);
            add(p + "attn_output.weight", {s.hidden, s.hidden}, type);
            add(p + "ffn_norm.weight", {s.hidden}, HG_TYPE_F32);
            add(p + "ffn_up.weight", {s.hidden, 2ull * s.ffn}, type);
            add(p + "ffn_down.weight", {s.ffn, s.hidden}, k_mix && more_bits(l, s.layers) ? HG_TYPE_Q6_K : type);
        }
        add("output_norm.weight", {s.hidden}, HG_TYPE_F32);
        add("output.weight", {s.hidden, s.vocab}, k_mix ? HG_TYPE_Q6_K : type);

        const std::vector<std::string> pieces = vocab_pieces(s.vocab);
        kv_str("general.architecture", "phi3");
        kv_str("general.name", "healthgpt bench: random weights (not a trained model)");
        kv_u32("general.file_type", k_mix ? 15 : type == HG_TYPE_Q4_0 ? 2 : type == HG_TYPE_Q8_0 ? 7 : 1);
        kv_u32("general.quantization_version", 2);
        kv_u32("phi3.context_length", s.context);
        kv_u32("phi3.embedding_length", s.hidden);
        kv_u32("phi3.feed_forward_length", s.ffn);
        kv_u32("phi3.block_count", s.layers);
        kv_u32("phi3.attention.head_count", s.heads);
        kv_u32("phi3.attention.head_count_kv", s.kv_heads);
        kv_f32("phi3.attention.layer_norm_rms_epsilon", 1e-5f);
        kv_u32("phi3.rope.dimension_count", (uint32_t)hd);
        kv_f32("phi3.rope.freq_base", 10000.0f);
        kv_str("tokenizer.ggml.model", "llama");
        kv_str("tokenizer.ggml.pre", "default");
        meta.add([pieces](Writer &w) {
            w.key("tokenizer.ggml.tokens", HG_GGUF_ARRAY);
            w.put<uint32_t>(HG_GGUF_STRING), w.put<uint64_t>(pieces.size());
            for (const std::string &p : pieces) w.str(p);
        });
        const uint64_t n_pieces = pieces.size();
        meta.add([n_pieces](Writer &w) {
            w.key("tokenizer.ggml.scores", HG_GGUF_ARRAY);
            w.put<uint32_t>(HG_GGUF_FLOAT32), w.put<uint64_t>(n_pieces);
            for (uint64_t i = 0; i < n_pieces; i++) w.put<float>(i < 259 ? 0.0f : -(float)i);
        });
        meta.add([n_pieces](Writer &w) {
            w.key("tokenizer.ggml.token_type", HG_GGUF_ARRAY);
            w.put<uint32_t>(HG_GGUF_INT32), w.put<uint64_t>(n_pieces);
            for (uint64_t i = 0; i < n_pieces; i++) w.put<int32_t>(i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1);
        });
        kv_u32("tokenizer.ggml.unknown_token_id", 0);
        kv_u32("tokenizer.ggml.bos_token_id", 1);
        kv_u32("tokenizer.ggml.eos_token_id", 2);
    } else {
        const bool gen = plugin == "generation";
        const uint32_t rank = gen ? 256 : 64, experts = 4;
        const uint64_t io[4][2] = {{s.hidden, qkv}, {s.hidden, s.hidden}, {s.hidden, 2ull * s.ffn}, {s.ffn, s.hidden}};
        const char *linears[4] = {"attn_qkv", "attn_output", "ffn_up", "ffn_down"};
        for (uint32_t l = 0; l < s.layers; l++)
            for (int j = 0; j < 4; j++) {
                const std::string p = "blk." + std::to_string(l) + "." + linears[j];
                add(p + ".router", {io[j][0], experts}, HG_TYPE_F16);
                add(p + ".lora_A", {io[j][0], rank}, HG_TYPE_F16);
                add(p + ".lora_B", {rank, io[j][1]}, HG_TYPE_F16);
            }
        kv_str("general.architecture", "hlora");
        kv_str("hlora.plugin", plugin);
        kv_u32("hlora.rank", rank);
        kv_f32("hlora.alpha", 2.0f * rank);
        kv_u32("hlora.expert_count", experts);
        kv_u32("hlora.base.block_count", s.layers);
        kv_u32("hlora.base.embedding_length", s.hidden);
        kv_u32("hlora.base.feed_forward_length", s.ffn);
        if (gen) { // the image tokens: the vocabulary's last 8195 rows (or its upper half)
            embd_rows = s.vocab > 8195 + 300 ? 8195 : s.vocab / 2;
            add("token_embd.weight", {s.hidden, embd_rows}, HG_TYPE_F16);
            add("output.weight", {s.hidden, embd_rows}, HG_TYPE_F16);
            kv_u32("hlora.token_embd.first_row", s.vocab - embd_rows);
            kv_u32("hlora.output.first_row", s.vocab - embd_rows);
        }
    }
    const uint64_t align = 32;
    uint64_t off = 0;
    for (Tensor &t : ts) t.offset = off, off += (t.bytes + align - 1) / align * align;

    FILE *f = std::fopen(out.c_str(), "wb");
    if (!f) {
        std::fprintf(stderr, "make_phi3_gguf: cannot write %s\n", out.c_str());
        return 1;
    }
    Writer w{f};
    w.bytes("GGUF", 4);
    w.put<uint32_t>(3);
    w.put<uint64_t>(ts.size());
    w.put<uint64_t>(meta.count);
    for (const auto &item : meta.items) item(w);
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
    if (plugin.empty())
        std::printf("make_phi3_gguf: %s (%u layers, hidden %u, ffn %u, vocab %u, %s, %.2f GB)\n", out.c_str(), s.layers,
                    s.hidden, s.ffn, s.vocab, k_mix ? "q4_k_m" : hg_type_name(type), (double)off / 1e9);
    else
        std::printf("make_phi3_gguf: %s (H-LoRA plugin %s for %u layers, hidden %u, ffn %u%s, %.2f GB)\n", out.c_str(),
                    plugin.c_str(), s.layers, s.hidden, s.ffn,
                    embd_rows ? (", " + std::to_string(embd_rows) + " own rows").c_str() : "", (double)off / 1e9);
    return 0;
}
