#include "models/phi3.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <string>

#include "core/error.h"
#include "ops/activation.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "quant/quant.h"

namespace hg {

namespace {

// Upper bound for every size read from the file: keeps the products below far from
// overflowing int64 and refuses absurd files before any allocation.
constexpr int64_t kMaxDim = int64_t(1) << 24;

// Tokens per forward chunk: bounds the scratch memory of a long prefill (gate_up is
// chunk x 2 x n_ff floats) while keeping the matmuls wide enough to reuse weight tiles.
constexpr int64_t kChunk = 256;

std::string shape_str(const int64_t *ne, int n) {
    std::string s = "[";
    for (int i = 0; i < n; i++) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
}

std::string type_name(int type) {
    const type_info *ti = type_traits(type);
    return ti ? ti->name : "type " + std::to_string(type);
}

// An integer hyper-parameter (llama.cpp writes UINT32; any integer kind is accepted).
int64_t meta_int(const GGUFFile &f, const char *key, int64_t fallback, bool required) {
    const int64_t i = f.find_key(key);
    if (i < 0) {
        if (required) fail(f.name() + ": metadata key " + key + " is missing");
        return fallback;
    }
    const hg_gguf_value_type type = f.kv(i).type;
    int64_t v;
    if (type == HG_GGUF_UINT8 || type == HG_GGUF_UINT16 || type == HG_GGUF_UINT32 || type == HG_GGUF_UINT64) {
        const uint64_t u = f.kv_u64(i);
        v = u > (uint64_t)kMaxDim ? kMaxDim + 1 : (int64_t)u;
    } else if (type == HG_GGUF_INT8 || type == HG_GGUF_INT16 || type == HG_GGUF_INT32 || type == HG_GGUF_INT64) {
        v = f.kv_i64(i);
    } else {
        fail(f.name() + ": metadata key " + key + " is a " + gguf_type_name(type) + ", expected an integer");
    }
    if (v < 0 || v > kMaxDim)
        fail(f.name() + ": metadata key " + key + " = " + std::to_string(v) + " is out of range");
    return v;
}

double meta_float(const GGUFFile &f, const char *key, double fallback, bool required) {
    const int64_t i = f.find_key(key);
    if (i < 0) {
        if (required) fail(f.name() + ": metadata key " + key + " is missing");
        return fallback;
    }
    const double v = f.kv_f64(i);
    if (!std::isfinite(v)) fail(f.name() + ": metadata key " + key + " is not finite");
    return v;
}

// Looks a weight up and checks it is exactly what the forward pass will read. ne1 == 0: a
// vector (the norms, kept F32 by every converter); otherwise a ne0 x ne1 matrix of any type
// the matmul supports, with rows that are whole blocks.
Phi3Weight weight(const GGUFFile &f, const std::string &name, int64_t ne0, int64_t ne1) {
    const int64_t i = f.find_tensor(name);
    if (i < 0) fail(f.name() + ": tensor " + name + " is missing");
    const GGUFTensor &t = f.tensor(i);
    const int n_dims = ne1 == 0 ? 1 : 2;
    const int64_t want[4] = {ne0, ne1 == 0 ? 1 : ne1, 1, 1};
    if (t.n_dims > n_dims || t.ne[0] != want[0] || t.ne[1] != want[1] || t.ne[2] != 1 || t.ne[3] != 1)
        fail(f.name() + ": tensor " + name + " has shape " + shape_str(t.ne, t.n_dims) +
             ", expected " + shape_str(want, n_dims));
    const type_info *ti = type_traits(t.type);
    if (ne1 == 0) {
        if (t.type != HG_TYPE_F32)
            fail(f.name() + ": tensor " + name + " has type " + type_name(t.type) + ", expected f32");
    } else {
        if (!ti || !ti->supported)
            fail(f.name() + ": tensor " + name + " has type " + type_name(t.type) +
                 ", which this engine cannot multiply");
        const int64_t act_block = type_traits(ti->vec_dot_type)->block_size;
        if (ne0 % ti->block_size != 0 || ne0 % act_block != 0)
            fail(f.name() + ": tensor " + name + " has rows of " + std::to_string(ne0) +
                 " values, not a whole number of " + ti->name + " blocks");
    }
    return Phi3Weight{&t};
}

// Runs fn(r0, r1) over [0, n) rows split among the pool's threads; a single row (decode)
// runs on the caller, where waking the pool would cost more than the work.
template <class Fn> void for_rows(ThreadPool &pool, int64_t n, Fn &&fn) {
    if (n <= 1) {
        fn(int64_t(0), n);
        return;
    }
    pool.run([&](int ith, int nth) {
        int64_t r0, r1;
        split_range(n, ith, nth, r0, r1);
        if (r0 < r1) fn(r0, r1);
    });
}

} // namespace

// ---- KV cache ----

Phi3KVCache::Phi3KVCache(const Phi3HParams &hp, int type, int64_t n_ctx) : type_(type), n_ctx_(n_ctx) {
    if (type != HG_TYPE_F16 && type != HG_TYPE_F32)
        fail("KV cache type " + type_name(type) + " is not supported (f16 or f32)");
    const int64_t per_layer = kv_layer_bytes(type, n_ctx, hp.n_head_kv, hp.head_dim);
    // Left uninitialised: only positions below n_past are ever read, and untouched pages of
    // a long context cost no memory until they are used.
    try {
        k_.reset(new uint8_t[per_layer * hp.n_layer]);
        v_.reset(new uint8_t[per_layer * hp.n_layer]);
    } catch (const std::bad_alloc &) {
        fail("KV cache of " + std::to_string(2 * per_layer * hp.n_layer >> 20) + " MiB (n_ctx " +
             std::to_string(n_ctx) + ") could not be allocated");
    }
    for (int64_t il = 0; il < hp.n_layer; il++) {
        kv_layer l;
        l.type = type;
        l.k = k_.get() + il * per_layer;
        l.v = v_.get() + il * per_layer;
        l.n_ctx = n_ctx;
        l.n_kv_heads = hp.n_head_kv;
        l.head_dim = hp.head_dim;
        layers_.push_back(l);
    }
}

// ---- loading ----

std::unique_ptr<Phi3Model> Phi3Model::load(std::unique_ptr<GGUFFile> file, const Phi3Options &opt) {
    if (!file) fail("phi3: no file");
    const GGUFFile &f = *file;
    const int64_t arch = f.find_key("general.architecture");
    if (arch < 0) fail(f.name() + ": metadata key general.architecture is missing");
    if (f.kv_str(arch) != "phi3")
        fail(f.name() + ": architecture is '" + std::string(f.kv_str(arch)) + "', expected 'phi3'");

    std::unique_ptr<Phi3Model> m(new Phi3Model());
    Phi3HParams &hp = m->hp_;
    hp.n_ctx_train = meta_int(f, "phi3.context_length", 0, true);
    hp.n_embd = meta_int(f, "phi3.embedding_length", 0, true);
    hp.n_ff = meta_int(f, "phi3.feed_forward_length", 0, true);
    hp.n_layer = meta_int(f, "phi3.block_count", 0, true);
    hp.n_head = meta_int(f, "phi3.attention.head_count", 0, true);
    hp.n_head_kv = meta_int(f, "phi3.attention.head_count_kv", hp.n_head, false);
    hp.rms_eps = (float)meta_float(f, "phi3.attention.layer_norm_rms_epsilon", 1e-5, true);
    hp.rope_freq_base = (float)meta_float(f, "phi3.rope.freq_base", 10000.0, false);
    hp.sliding_window = meta_int(f, "phi3.attention.sliding_window", 0, false);
    for (auto [key, v] : {std::pair<const char *, int64_t>{"phi3.context_length", hp.n_ctx_train},
                          {"phi3.embedding_length", hp.n_embd},
                          {"phi3.feed_forward_length", hp.n_ff},
                          {"phi3.block_count", hp.n_layer},
                          {"phi3.attention.head_count", hp.n_head},
                          {"phi3.attention.head_count_kv", hp.n_head_kv}})
        if (v <= 0) fail(f.name() + ": metadata key " + key + " is 0");
    if (hp.n_embd % hp.n_head != 0)
        fail(f.name() + ": embedding_length " + std::to_string(hp.n_embd) + " is not a multiple of head_count " +
             std::to_string(hp.n_head));
    if (hp.n_head % hp.n_head_kv != 0)
        fail(f.name() + ": head_count " + std::to_string(hp.n_head) + " is not a multiple of head_count_kv " +
             std::to_string(hp.n_head_kv));
    hp.head_dim = hp.n_embd / hp.n_head;
    hp.n_rot = (int)meta_int(f, "phi3.rope.dimension_count", hp.head_dim, false);
    if (hp.n_rot <= 0 || hp.n_rot % 2 != 0 || hp.n_rot > hp.head_dim)
        fail(f.name() + ": rope.dimension_count " + std::to_string(hp.n_rot) +
             " must be even and within the head dim " + std::to_string(hp.head_dim));
    if (!(hp.rms_eps > 0)) fail(f.name() + ": attention.layer_norm_rms_epsilon must be > 0");
    if (!(hp.rope_freq_base > 0)) fail(f.name() + ": rope.freq_base must be > 0");

    const int64_t tok = f.find_tensor("token_embd.weight");
    if (tok < 0) fail(f.name() + ": tensor token_embd.weight is missing");
    hp.n_vocab = f.tensor(tok).ne[1];
    if (hp.n_vocab <= 0 || hp.n_vocab > kMaxDim || hp.n_vocab > std::numeric_limits<int32_t>::max())
        fail(f.name() + ": tensor token_embd.weight has " + std::to_string(hp.n_vocab) + " rows");

    const int64_t E = hp.n_embd;
    m->token_embd_ = weight(f, "token_embd.weight", E, hp.n_vocab);
    for (int64_t il = 0; il < hp.n_layer; il++) {
        const std::string p = "blk." + std::to_string(il) + ".";
        Phi3Layer l;
        l.attn_norm = weight(f, p + "attn_norm.weight", E, 0);
        l.attn_qkv = weight(f, p + "attn_qkv.weight", E, hp.n_qkv());
        l.attn_output = weight(f, p + "attn_output.weight", E, E);
        l.ffn_norm = weight(f, p + "ffn_norm.weight", E, 0);
        l.ffn_up = weight(f, p + "ffn_up.weight", E, 2 * hp.n_ff);
        l.ffn_down = weight(f, p + "ffn_down.weight", hp.n_ff, E);
        m->layers_.push_back(l);
    }
    m->output_norm_ = weight(f, "output_norm.weight", E, 0);
    m->output_ = weight(f, "output.weight", E, hp.n_vocab);

    const int64_t n_ctx = opt.n_ctx > 0 ? opt.n_ctx : hp.n_ctx_train;
    if (n_ctx > kMaxDim) fail("phi3: n_ctx " + std::to_string(n_ctx) + " is too large");
    m->kv_ = Phi3KVCache(hp, opt.kv_type, n_ctx);
    m->file_ = std::move(file);
    return m;
}

// ---- forward ----

void Phi3Model::kv_clear(int64_t from_pos) {
    if (from_pos < 0) fail("kv_clear: position " + std::to_string(from_pos) + " is negative");
    kv_.set_n_past(std::min(kv_.n_past(), from_pos));
}

void Phi3Model::eval(ThreadPool &pool, const int32_t *tokens, int64_t n_tokens, int64_t start_pos,
                     float *logits, bool all_logits) {
    if (!tokens || n_tokens <= 0) fail("eval: no tokens");
    if (start_pos != kv_.n_past())
        fail("eval: start_pos " + std::to_string(start_pos) + " but the KV cache holds " +
             std::to_string(kv_.n_past()) + " positions (kv_clear to reuse a shorter prefix)");
    if (start_pos + n_tokens > kv_.n_ctx())
        fail("eval: " + std::to_string(n_tokens) + " tokens at position " + std::to_string(start_pos) +
             " would exceed the context of " + std::to_string(kv_.n_ctx()) + " tokens");
    for (int64_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= hp_.n_vocab)
            fail("eval: token " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                 " (position " + std::to_string(start_pos + i) + ") is outside the vocabulary of " +
                 std::to_string(hp_.n_vocab));
    try {
        for (int64_t c = 0; c < n_tokens; c += kChunk) {
            const int64_t n = std::min(kChunk, n_tokens - c);
            const bool last = c + n == n_tokens;
            float *out = !logits ? nullptr : all_logits ? logits + c * hp_.n_vocab : last ? logits : nullptr;
            eval_chunk(pool, tokens + c, n, start_pos + c, out, all_logits);
            kv_.set_n_past(start_pos + c + n);
        }
    } catch (...) {
        kv_.set_n_past(start_pos);
        throw;
    }
}

void Phi3Model::eval_chunk(ThreadPool &pool, const int32_t *tokens, int64_t n, int64_t pos0,
                           float *logits, bool all_logits) {
    const Phi3HParams &hp = hp_;
    const int64_t E = hp.n_embd, Q = hp.n_qkv(), F = hp.n_ff, hd = hp.head_dim;
    std::vector<float> hidden_state(n * E), normed(n * E), qkv(n * Q), attn(n * E), proj(n * E),
        gate_up(n * 2 * F), act(n * F);

    // Embedding rows, dequantized from whatever type token_embd has.
    const type_info *ti = type_traits(token_embd_.type());
    const size_t embd_row = row_bytes(token_embd_.type(), E);
    const uint8_t *embd = static_cast<const uint8_t *>(token_embd_.data());
    for_rows(pool, n, [&](int64_t r0, int64_t r1) {
        for (int64_t t = r0; t < r1; t++) ti->to_float(embd + tokens[t] * embd_row, &hidden_state[t * E], E);
    });

    std::vector<int32_t> pos(n);
    for (int64_t t = 0; t < n; t++) pos[t] = (int32_t)(pos0 + t);
    std::vector<float> rope_cos(n * (hp.n_rot / 2)), rope_sin(n * (hp.n_rot / 2));
    rope_cos_sin(pos.data(), n, hp.n_rot, hp.rope_freq_base, rope_cos.data(), rope_sin.data());

    auto add_residual = [&](const std::vector<float> &delta) {
        for_rows(pool, n, [&](int64_t r0, int64_t r1) {
            for (int64_t i = r0 * E; i < r1 * E; i++) hidden_state[i] += delta[i];
        });
    };
    auto norm = [&](const Phi3Weight &w) {
        for_rows(pool, n, [&](int64_t r0, int64_t r1) {
            rms_norm(&hidden_state[r0 * E], static_cast<const float *>(w.data()), &normed[r0 * E], E,
                     r1 - r0, hp.rms_eps);
        });
    };

    for (int64_t il = 0; il < hp.n_layer; il++) {
        const Phi3Layer &l = layers_[il];
        // Attention block. qkv_proj rows: q heads, then k heads, then v heads.
        norm(l.attn_norm);
        matmul(pool, l.attn_qkv.type(), l.attn_qkv.data(), Q, E, normed.data(), n, qkv.data());
        float *q = qkv.data(), *k = q + hp.n_head * hd, *v = k + hp.n_head_kv * hd;
        for_rows(pool, n, [&](int64_t r0, int64_t r1) {
            const int64_t half = hp.n_rot / 2;
            rope_apply(q + r0 * Q, r1 - r0, Q, hp.n_head, hd, hp.n_rot, &rope_cos[r0 * half], &rope_sin[r0 * half]);
            rope_apply(k + r0 * Q, r1 - r0, Q, hp.n_head_kv, hd, hp.n_rot, &rope_cos[r0 * half], &rope_sin[r0 * half]);
        });
        kv_store(kv_.layer(il), k, v, Q, n, pos0);
        attention(pool, kv_.layer(il), q, Q, n, pos0, hp.n_head, hp.sliding_window, attn.data(), E);
        matmul(pool, l.attn_output.type(), l.attn_output.data(), E, E, attn.data(), n, proj.data());
        add_residual(proj);

        // MLP block: gate_up_proj, silu(gate) * up, down_proj.
        norm(l.ffn_norm);
        matmul(pool, l.ffn_up.type(), l.ffn_up.data(), 2 * F, E, normed.data(), n, gate_up.data());
        for_rows(pool, n, [&](int64_t r0, int64_t r1) {
            silu_mul(&gate_up[r0 * 2 * F], &act[r0 * F], F, r1 - r0);
        });
        matmul(pool, l.ffn_down.type(), l.ffn_down.data(), E, F, act.data(), n, proj.data());
        add_residual(proj);
    }

    if (!logits) return;
    // lm_head on the rows asked for only: a decode or a prefill wanting the last token
    // skips n - 1 of the widest matmul.
    const int64_t first = all_logits ? 0 : n - 1, rows = n - first;
    rms_norm(&hidden_state[first * E], static_cast<const float *>(output_norm_.data()), normed.data(), E,
             rows, hp.rms_eps);
    matmul(pool, output_.type(), output_.data(), hp.n_vocab, E, normed.data(), rows, logits);
}

} // namespace hg
