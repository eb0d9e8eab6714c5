#include "models/phi3.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <string>

#include "core/error.h"
#include "models/gguf_meta.h"
#include "ops/activation.h"
#include "ops/greedy.h"
#include "ops/hlora.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "quant/quant.h"
#include "models/device_choice.h"
#ifdef HEALTHGPT_HAVE_CUDA
#include "cuda/phi3_cuda.h"
#endif

namespace hg {

namespace {

// Tokens per forward chunk: bounds the scratch memory of a long prefill (gate_up is
// chunk x 2 x n_ff floats) while keeping the matmuls wide enough to reuse weight tiles.
constexpr int64_t kChunk = 256;

// Sequences one model may hold: each slot's cache is only address space until written.
constexpr int kMaxSeq = 256;

Phi3Weight weight(const GGUFFile &f, const std::string &name, int64_t ne0, int64_t ne1) {
    return Phi3Weight{&checked_tensor(f, name, ne0, ne1)};
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
    if (type != HG_TYPE_F16 && type != HG_TYPE_F32 && type != HG_TYPE_Q8_0)
        fail(HG_ERR_UNSUPPORTED, "KV cache type " + type_name(type) + " is not supported (f16, f32 or q8_0)");
    if (type == HG_TYPE_Q8_0 && hp.head_dim % 32 != 0)
        fail(HG_ERR_UNSUPPORTED, "a q8_0 KV cache needs a head size that is a multiple of 32; this model's is " +
                                     std::to_string(hp.head_dim) + " (use f16)");
    const int64_t per_layer = kv_layer_bytes(type, n_ctx, hp.n_head_kv, hp.head_dim);
    // Left uninitialised: only positions below n_past are ever read, and untouched pages of
    // a long context cost no memory until they are used.
    try {
        k_.reset(new uint8_t[per_layer * hp.n_layer]);
        v_.reset(new uint8_t[per_layer * hp.n_layer]);
    } catch (const std::bad_alloc &) {
        fail(HG_ERR_NO_MEMORY, "KV cache of " + std::to_string(2 * per_layer * hp.n_layer >> 20) + " MiB (n_ctx " +
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
    // 128k-context Phi-3 / Phi-3.5 / Phi-4-mini files scale each rotary frequency (LongRoPE);
    // without it every position past the first few would be rotated wrong, silently
    for (const char *t : {"rope_factors_long.weight", "rope_factors_short.weight"})
        if (f.find_tensor(t) >= 0)
            fail(f.name() + ": LongRoPE (tensor " + t +
                 ") is not supported: HealthGPT's Phi-3-mini (4k context) and Phi-4 do not use it");

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
    if (n_ctx > kMaxDim) fail(HG_ERR_INVALID_ARG, "phi3: n_ctx " + std::to_string(n_ctx) + " is too large");
    if (opt.n_seq < 1 || opt.n_seq > kMaxSeq)
        fail(HG_ERR_INVALID_ARG,
             "phi3: n_seq " + std::to_string(opt.n_seq) + " (1 to " + std::to_string(kMaxSeq) + " sequences)");
    for (int s = 0; s < opt.n_seq; s++) m->kv_.emplace_back(new Phi3KVCache(hp, opt.kv_type, n_ctx));
    m->file_ = std::move(file);
    if (opt.gpu != HG_GPU_OFF && opt.n_seq > 1) {
        // the device holds one KV cache: several sequences run on the CPU
        const std::string why = "the CUDA backend holds one sequence, n_seq is " + std::to_string(opt.n_seq);
        if (opt.gpu == HG_GPU_CUDA) fail(HG_ERR_UNSUPPORTED, "gpu 'cuda': " + why);
        m->backend_ = "cpu (" + why + ")";
    } else if (opt.gpu != HG_GPU_OFF) {
        m->use_device(opt.gpu, n_ctx, opt.kv_type, opt.gpu_layers);
    }
    if (opt.repack && m->cpu_first_layer() < hp.n_layer) m->pack_weights(opt.pool);
    return m;
}

// ---- the device ----

void Phi3Model::use_device(int gpu, int64_t n_ctx, int kv_type, int64_t gpu_layers) {
    // HG_GPU_CUDA: any failure is the load's; HG_GPU_AUTO: the CPU, saying why
    std::string why = cuda_unavailable();
#ifdef HEALTHGPT_HAVE_CUDA
    if (why.empty()) {
        try {
            device_ = make_phi3_cuda(*this, kv_type, n_ctx, kChunk, gpu_layers);
            release_device_weights();
            backend_ = device_->describe();
            if (device_->n_layers() < hp_.n_layer)
                backend_ += ", layers 0.." + std::to_string(device_->n_layers() - 1) + " of " +
                            std::to_string(hp_.n_layer) + " (the rest and the output on the cpu)";
            return;
        } catch (const Error &e) {
            if (gpu == HG_GPU_CUDA) throw;
            why = e.what();
        }
    }
#else
    (void)n_ctx, (void)kv_type, (void)gpu_layers;
#endif
    backend_ = cpu_backend(gpu, "", why);
}

// The device holds its own copies: their pages of the mapping go back (read again from the
// file only if something ever touches them), so resident memory holds one copy of the model.
void Phi3Model::release_device_weights() {
    file_->release(*token_embd_.t); // embeddings are always looked up on the device
    for (int64_t il = 0; il < device_->n_layers(); il++) {
        const Phi3Layer &l = layers_[(size_t)il];
        for (const Phi3Weight *w : {&l.attn_norm, &l.attn_qkv, &l.attn_output, &l.ffn_norm, &l.ffn_up, &l.ffn_down})
            file_->release(*w->t);
    }
    if (device_->n_layers() == hp_.n_layer) file_->release(*output_.t), file_->release(*output_norm_.t);
}

// ---- packing ----

void Phi3Model::pack_weights(ThreadPool *pool) {
    // f16 stays in place: its rows already stream one after another at decode, where the
    // packed f16 kernel measured about 10% slower
    // (the layers a device runs are read from the mapping by its upload: left as they are)
    std::vector<Phi3Weight *> ws;
    for (int64_t il = cpu_first_layer(); il < hp_.n_layer; il++)
        for (Phi3Weight *w : {&layers_[(size_t)il].attn_qkv, &layers_[(size_t)il].attn_output,
                              &layers_[(size_t)il].ffn_up, &layers_[(size_t)il].ffn_down})
            ws.push_back(w);
    ws.push_back(&output_);
    std::vector<const GGUFTensor *> ts;
    for (Phi3Weight *w : ws) ts.push_back(w->t);
    const std::vector<const void *> packed = packed_.pack(*file_, ts, pool, false);
    for (size_t i = 0; i < ws.size(); i++) ws[i]->packed = packed[i];
}

// ---- forward ----

const Phi3KVCache &Phi3Model::kv_cache(int seq) const {
    if (seq < 0 || seq >= n_seq())
        fail("sequence " + std::to_string(seq) + " is not a slot of this model (n_seq " + std::to_string(n_seq()) +
             ")");
    return *kv_[(size_t)seq];
}

void Phi3Model::kv_clear(int64_t from_pos, int seq) {
    if (from_pos < 0) fail("kv_clear: position " + std::to_string(from_pos) + " is negative");
    kv_cache(seq); // checks the slot
    Phi3KVCache &kv = *kv_[(size_t)seq];
    kv.set_n_past(std::min(kv.n_past(), from_pos));
}

HLoraBaseShape Phi3Model::base_shape() const {
    HLoraBaseShape b;
    b.n_layer = hp_.n_layer;
    b.n_embd = hp_.n_embd;
    b.n_ff = hp_.n_ff;
    b.n_qkv = hp_.n_qkv();
    b.n_vocab = hp_.n_vocab;
    return b;
}

int Phi3Model::add_plugin(std::unique_ptr<HLoraPlugin> plugin) {
    if (!plugin) fail("add_plugin: no plugin");
    if (plugins_.size() >= 1024) fail("add_plugin: 1024 plugins are loaded already");
    if (device_) device_->add_plugin(*plugin);
    plugins_.push_back(std::move(plugin));
    return (int)plugins_.size() - 1;
}

const HLoraPlugin &Phi3Model::plugin(int id) const {
    if (id < 0 || id >= (int)plugins_.size())
        fail("plugin " + std::to_string(id) + " is not loaded (" + std::to_string(plugins_.size()) + " plugins)");
    return *plugins_[(size_t)id];
}

void Phi3Model::eval(ThreadPool &pool, const int32_t *tokens, int64_t n_tokens, int64_t start_pos, float *logits,
                     bool all_logits, int plugin_id, const float *embd) {
    Phi3Segment s;
    s.plugin = plugin_id;
    s.start_pos = start_pos;
    s.n_tokens = n_tokens;
    s.tokens = tokens;
    s.embd = embd;
    s.logits = !logits ? 0 : all_logits ? 2 : 1;
    eval_batch(pool, &s, 1, logits);
}

// Everything eval refuses, before anything runs. who: "eval", or the segment in a batch.
void Phi3Model::check_segment(const Phi3Segment &s, const char *who) const {
    const std::string w = who;
    if (!s.tokens || s.n_tokens <= 0) fail(w + ": no tokens");
    if (s.logits < 0 || s.logits > 2) fail(w + ": logits " + std::to_string(s.logits) + " (0, 1 or 2)");
    if (s.greedy() && s.logits != 1)
        fail(w + ": a greedy pick needs logits 1 (the last row), not " + std::to_string(s.logits));
    if (s.greedy() && !(s.greedy_lo >= 0 && s.greedy_lo < s.greedy_hi && s.greedy_hi <= hp_.n_vocab))
        fail(w + ": greedy range [" + std::to_string(s.greedy_lo) + ", " + std::to_string(s.greedy_hi) +
             ") is empty or outside the vocabulary of " + std::to_string(hp_.n_vocab));
    if (s.seq < 0 || s.seq >= n_seq())
        fail(w + ": sequence " + std::to_string(s.seq) + " is not a slot of this model (n_seq " +
             std::to_string(n_seq()) + ")");
    const Phi3KVCache &kv = *kv_[(size_t)s.seq];
    if (s.start_pos != kv.n_past())
        fail(w + ": start_pos " + std::to_string(s.start_pos) + " but the KV cache holds " +
             std::to_string(kv.n_past()) + " positions (kv_clear to reuse a shorter prefix)");
    if (s.start_pos + s.n_tokens > kv.n_ctx())
        fail(HG_ERR_CONTEXT_FULL, w + ": " + std::to_string(s.n_tokens) + " tokens at position " +
                                      std::to_string(s.start_pos) + " would exceed the context of " +
                                      std::to_string(kv.n_ctx()) + " tokens");
    if (s.plugin != -1) plugin(s.plugin);
    int64_t n_embd_rows = 0;
    for (int64_t i = 0; i < s.n_tokens; i++) {
        const int32_t t = s.tokens[i];
        if (t == -1 && s.embd) {
            const float *row = s.embd + n_embd_rows++ * hp_.n_embd;
            for (int64_t j = 0; j < hp_.n_embd; j++)
                if (!std::isfinite(row[j]))
                    fail(w + ": embedding row " + std::to_string(n_embd_rows - 1) + " (position " +
                         std::to_string(s.start_pos + i) + ") has a non-finite value at " + std::to_string(j));
            continue;
        }
        if (t < 0 || t >= hp_.n_vocab)
            fail(w + ": token " + std::to_string(t) + " at index " + std::to_string(i) + " (position " +
                 std::to_string(s.start_pos + i) + ") is outside the vocabulary of " + std::to_string(hp_.n_vocab) +
                 (t == -1 ? " (-1 takes an embedding row: none given)" : ""));
    }
}

void Phi3Model::eval_batch(ThreadPool &pool, const Phi3Segment *segs, int n_segs, float *logits) {
    if (!segs || n_segs <= 0) fail("eval_batch: no segments");
    std::vector<bool> seen((size_t)n_seq(), false);
    for (int i = 0; i < n_segs; i++) {
        const Phi3Segment &s = segs[i];
        const std::string who = n_segs == 1 && s.seq == 0 ? std::string("eval")
                                                          : "eval_batch: segment " + std::to_string(i) + " (sequence " +
                                                                std::to_string(s.seq) + ")";
        if (s.seq >= 0 && s.seq < n_seq() && seen[(size_t)s.seq])
            fail(who + ": the sequence appears twice in one batch");
        check_segment(s, who.c_str());
        seen[(size_t)s.seq] = true;
        if (s.n_logits() > 0 && !logits) fail(who + ": logits asked for but no output buffer");
    }
    std::vector<int64_t> n_past0;
    for (int i = 0; i < n_segs; i++) n_past0.push_back(segs[i].start_pos);
    try {
        if (device_) // it holds one sequence: n_seq is 1, so this is one segment on slot 0
            return eval_on_device(pool, segs[0], logits);
        // passes of at most kChunk rows, each taking the next rows of every segment in turn;
        // a greedy segment's last row goes to a row of its own, picked from after the passes
        std::vector<float *> out((size_t)n_segs, nullptr);
        const int64_t n_picks = std::count_if(segs, segs + n_segs, [](const Phi3Segment &s) { return s.greedy(); });
        std::vector<float> picked_rows((size_t)(n_picks * hp_.n_vocab));
        for (int i = 0, row = 0, pick = 0; i < n_segs; row += (int)segs[i].n_logits(), i++)
            out[(size_t)i] = segs[i].greedy()     ? picked_rows.data() + (int64_t)pick++ * hp_.n_vocab
                             : segs[i].n_logits() ? logits + (int64_t)row * hp_.n_vocab
                                                  : nullptr;
        std::vector<int64_t> done((size_t)n_segs, 0);
        std::vector<const float *> embd((size_t)n_segs);
        for (int i = 0; i < n_segs; i++) embd[(size_t)i] = segs[i].embd;
        for (int first = 0; first < n_segs;) {
            std::vector<Piece> pieces;
            int64_t rows = 0;
            for (int i = first; i < n_segs && rows < kChunk; i++) {
                const Phi3Segment &s = segs[i];
                if (done[(size_t)i] == s.n_tokens) continue;
                Piece p;
                p.kv = kv_[(size_t)s.seq].get();
                p.plugin = s.plugin == -1 ? nullptr : &plugin(s.plugin);
                p.tokens = s.tokens + done[(size_t)i];
                p.embd = embd[(size_t)i];
                p.n = std::min(s.n_tokens - done[(size_t)i], kChunk - rows);
                p.pos0 = s.start_pos + done[(size_t)i];
                p.all_logits = s.logits == 2;
                if (s.logits == 2)
                    p.logits = out[(size_t)i] + done[(size_t)i] * hp_.n_vocab;
                else if (s.logits == 1 && done[(size_t)i] + p.n == s.n_tokens) {
                    p.logits = out[(size_t)i];
                    if (s.greedy()) p.need_lo = s.greedy_lo, p.need_hi = s.greedy_hi;
                }
                for (int64_t t = 0; t < p.n; t++) embd[(size_t)i] += p.tokens[t] == -1 && p.embd ? hp_.n_embd : 0;
                done[(size_t)i] += p.n;
                rows += p.n;
                pieces.push_back(p);
            }
            // one adapter pass per plugin: its pieces side by side
            std::stable_sort(pieces.begin(), pieces.end(), [this](const Piece &a, const Piece &b) {
                return plugin_index(a.plugin) < plugin_index(b.plugin);
            });
            eval_pass(pool, pieces);
            for (const Piece &p : pieces) p.kv->set_n_past(p.pos0 + p.n);
            while (first < n_segs && done[(size_t)first] == segs[first].n_tokens) first++;
        }
        for (int i = 0; i < n_segs; i++)
            if (segs[i].greedy()) *segs[i].next = greedy_pick(out[(size_t)i], segs[i].greedy_lo, segs[i].greedy_hi);
    } catch (...) {
        for (int i = 0; i < n_segs; i++) kv_[(size_t)segs[i].seq]->set_n_past(n_past0[(size_t)i]);
        throw;
    }
}

int Phi3Model::plugin_index(const HLoraPlugin *p) const {
    for (size_t i = 0; p && i < plugins_.size(); i++)
        if (plugins_[i].get() == p) return (int)i;
    return -1;
}

// One segment through the device, in chunks of kChunk tokens (the device holds one sequence).
void Phi3Model::eval_on_device(ThreadPool &pool, const Phi3Segment &s, float *logits) {
    Phi3KVCache &kv = *kv_[(size_t)s.seq];
    const bool all_logits = s.logits == 2;
    if (s.logits == 0) logits = nullptr;
    // a greedy pick: on the device when it runs the output head, else from the row the CPU computes
    const bool cpu_head = device_->n_layers() != hp_.n_layer;
    std::vector<float> picked_row(s.greedy() && cpu_head ? (size_t)hp_.n_vocab : 0);
    if (s.greedy()) logits = cpu_head ? picked_row.data() : nullptr;
    Phi3Pick pick;
    pick.lo = s.greedy_lo, pick.hi = s.greedy_hi, pick.next = s.next;
    const int32_t *tokens = s.tokens;
    const float *e = s.embd;
    for (int64_t c = 0; c < s.n_tokens; c += kChunk) {
        const int64_t n = std::min(kChunk, s.n_tokens - c), pos = s.start_pos + c;
        const bool last = c + n == s.n_tokens;
        float *out = !logits ? nullptr : all_logits ? logits + c * hp_.n_vocab : last ? logits : nullptr;
        if (!cpu_head) {
            if (s.greedy() && last)
                device_->eval_chunk(tokens + c, e, n, pos, nullptr, false, s.plugin, nullptr, &pick);
            else
                device_->eval_chunk(tokens + c, e, n, pos, out, all_logits, s.plugin, nullptr);
        } else { // the first layers on the device, the rest here
            std::vector<float> hidden((size_t)(n * hp_.n_embd));
            device_->eval_chunk(tokens + c, e, n, pos, nullptr, false, s.plugin, hidden.data());
            Piece p;
            p.kv = &kv;
            p.plugin = s.plugin == -1 ? nullptr : &plugin(s.plugin);
            p.tokens = tokens + c, p.embd = e, p.n = n, p.pos0 = pos, p.logits = out, p.all_logits = all_logits;
            if (s.greedy() && last) p.need_lo = s.greedy_lo, p.need_hi = s.greedy_hi;
            eval_pass(pool, {p}, hidden.data(), device_->n_layers());
        }
        if (e)
            for (int64_t i = c; i < c + n; i++) e += tokens[i] == -1 ? hp_.n_embd : 0;
        kv.set_n_past(pos + n);
    }
    if (s.greedy() && cpu_head) *s.next = greedy_pick(picked_row.data(), s.greedy_lo, s.greedy_hi);
}

void Phi3Model::eval_pass(ThreadPool &pool, const std::vector<Piece> &pieces, const float *hidden_in,
                          int64_t first_layer) {
    const Phi3HParams &hp = hp_;
    const int64_t E = hp.n_embd, Q = hp.n_qkv(), F = hp.n_ff, hd = hp.head_dim;
    int64_t n = 0;
    for (const Piece &p : pieces) n += p.n;
    std::vector<float> hidden_state(n * E), normed(n * E), qkv(n * Q), attn(n * E), proj(n * E), gate_up(n * 2 * F),
        act(n * F);

    // Every row: its token (or the embedding row it takes), its position, its piece's
    // plugin; and the runs of rows under one plugin.
    std::vector<int32_t> tokens(n), pos(n);
    std::vector<const float *> given(n, nullptr);
    std::vector<const HLoraPlugin *> row_plugin(n);
    struct Group {
        int64_t r0, r1;
        const HLoraPlugin *plugin;
    };
    std::vector<Group> groups;
    std::vector<int64_t> at(pieces.size(), 0); // each piece's first row
    for (size_t i = 1; i < pieces.size(); i++) at[i] = at[i - 1] + pieces[i - 1].n;
    for (size_t i = 0; i < pieces.size(); i++) {
        const Piece &p = pieces[i];
        const float *e = p.embd;
        for (int64_t t = 0, r = at[i]; t < p.n; t++, r++) {
            tokens[r] = p.tokens[t];
            pos[r] = (int32_t)(p.pos0 + t);
            row_plugin[r] = p.plugin;
            if (p.tokens[t] == -1) given[r] = e, e += E;
        }
        if (!groups.empty() && groups.back().plugin == p.plugin)
            groups.back().r1 = at[i] + p.n;
        else
            groups.push_back({at[i], at[i] + p.n, p.plugin});
    }

    // Embedding rows, dequantized from whatever type token_embd has (the plugin's own rows
    // where it trained them), or the caller's vectors at positions whose token is -1; or, when
    // a device ran the layers before first_layer, the hidden state it handed back.
    if (hidden_in)
        std::copy(hidden_in, hidden_in + n * E, hidden_state.begin());
    else
        for_rows(pool, n, [&](int64_t r0, int64_t r1) {
            for (int64_t t = r0; t < r1; t++) {
                const HLoraRows *own =
                    row_plugin[t] && row_plugin[t]->token_embd().t ? &row_plugin[t]->token_embd() : nullptr;
                if (given[t]) {
                    std::copy(given[t], given[t] + E, &hidden_state[t * E]);
                } else if (own && own->covers(tokens[t])) {
                    const int type = own->t->type;
                    type_traits(type)->to_float(own->t->data + (tokens[t] - own->first_row) * row_bytes(type, E),
                                                &hidden_state[t * E], E);
                } else {
                    const int type = token_embd_.type();
                    type_traits(type)->to_float(static_cast<const uint8_t *>(token_embd_.data()) +
                                                    tokens[t] * row_bytes(type, E),
                                                &hidden_state[t * E], E);
                }
            }
        });

    // Every linear of a layer: W x over all rows, and each plugin's adapter on its own rows
    // (never lm_head), as one pool job at a decode step (hlora_linear_parts). Every product
    // keeps a row's bits independent of the rows beside it (matmul's exact_columns), so a
    // sequence gets what it gets alone.
    using Adapter = HLoraAdapter HLoraPlugin::Layer::*;
    auto linear = [&](const Phi3Weight &w, int64_t il, Adapter which, int64_t rows, int64_t k, const float *x,
                      float *y) {
        std::vector<HLoraPart> parts;
        bool fused = true;
        for (const Group &g : groups)
            if (g.plugin) {
                parts.push_back({&(g.plugin->layer(il).*which), g.r0, g.r1});
                fused = fused && g.plugin->fused();
            }
        if (fused && !parts.empty()) {
            hlora_linear_parts(pool, w.type(), w.data(), k, rows, x, n, parts.data(), parts.size(), y);
            return;
        }
        // no plugin, or an unfused one (benchmarks): W x, then each adapter in its passes
        matmul(pool, w.type(), w.data(), rows, k, x, n, y, true);
        for (const Group &g : groups)
            if (g.plugin)
                hlora_add(pool, g.plugin->layer(il).*which, g.plugin->fused(), x + g.r0 * k, g.r1 - g.r0,
                          y + g.r0 * rows);
    };

    std::vector<float> rope_cos(n * (hp.n_rot / 2)), rope_sin(n * (hp.n_rot / 2));
    rope_cos_sin(pos.data(), n, hp.n_rot, hp.rope_freq_base, rope_cos.data(), rope_sin.data());

    auto add_residual = [&](const std::vector<float> &delta) {
        for_rows(pool, n, [&](int64_t r0, int64_t r1) {
            for (int64_t i = r0 * E; i < r1 * E; i++) hidden_state[i] += delta[i];
        });
    };
    auto norm = [&](const Phi3Weight &w) {
        for_rows(pool, n, [&](int64_t r0, int64_t r1) {
            rms_norm(&hidden_state[r0 * E], static_cast<const float *>(w.data()), &normed[r0 * E], E, r1 - r0,
                     hp.rms_eps);
        });
    };

    std::vector<attention_segment> segs(pieces.size());
    for (int64_t il = first_layer; il < hp.n_layer; il++) {
        const Phi3Layer &l = layers_[il];
        // Attention block. qkv_proj rows: q heads, then k heads, then v heads.
        norm(l.attn_norm);
        linear(l.attn_qkv, il, &HLoraPlugin::Layer::attn_qkv, Q, E, normed.data(), qkv.data());
        float *q = qkv.data(), *k = q + hp.n_head * hd, *v = k + hp.n_head_kv * hd;
        for_rows(pool, n, [&](int64_t r0, int64_t r1) {
            const int64_t half = hp.n_rot / 2;
            rope_apply(q + r0 * Q, r1 - r0, Q, hp.n_head, hd, hp.n_rot, &rope_cos[r0 * half], &rope_sin[r0 * half]);
            rope_apply(k + r0 * Q, r1 - r0, Q, hp.n_head_kv, hd, hp.n_rot, &rope_cos[r0 * half], &rope_sin[r0 * half]);
        });
        // each piece's keys and values into its own slot (the threads share the (piece, kv
        // head) pairs), then every piece's attention in one pool job
        const int64_t n_kv = hp.n_head_kv;
        pool.run([&](int ith, int nth) {
            int64_t a, b;
            split_range((int64_t)pieces.size() * n_kv, ith, nth, a, b);
            for (int64_t w = a; w < b;) {
                const size_t i = (size_t)(w / n_kv);
                const int64_t h0 = w % n_kv, h1 = std::min(n_kv, h0 + (b - w));
                const int64_t r = at[i];
                kv_store(pieces[i].kv->layer(il), k + r * Q, v + r * Q, Q, pieces[i].n, pieces[i].pos0, h0, h1);
                w += h1 - h0;
            }
        });
        for (size_t i = 0; i < pieces.size(); i++) {
            const Piece &p = pieces[i];
            segs[i] = {p.kv->layer(il), q + at[i] * Q, p.n, p.pos0, &attn[at[i] * E]};
        }
        attention_segments(pool, segs.data(), segs.size(), Q, hp.n_head, hp.sliding_window, E);
        linear(l.attn_output, il, &HLoraPlugin::Layer::attn_output, E, E, attn.data(), proj.data());
        add_residual(proj);

        // MLP block: gate_up_proj, silu(gate) * up, down_proj.
        norm(l.ffn_norm);
        linear(l.ffn_up, il, &HLoraPlugin::Layer::ffn_up, 2 * F, E, normed.data(), gate_up.data());
        for_rows(pool, n, [&](int64_t r0, int64_t r1) { silu_mul(&gate_up[r0 * 2 * F], &act[r0 * F], F, r1 - r0); });
        linear(l.ffn_down, il, &HLoraPlugin::Layer::ffn_down, E, F, act.data(), proj.data());
        add_residual(proj);
    }

    // lm_head on the rows asked for only (a decode or a prefill wanting the last token skips
    // the others' share of the widest matmul), gathered in row order, so one plugin's rows
    // stay side by side.
    struct Asked {
        int64_t row;
        float *out;
        const HLoraPlugin *plugin;
        int64_t lo, hi; // the logits wanted: [lo, hi)
    };
    const int64_t V = hp.n_vocab;
    std::vector<Asked> asked;
    for (size_t i = 0; i < pieces.size(); i++) {
        const Piece &p = pieces[i];
        if (p.logits)
            for (int64_t t = p.all_logits ? 0 : p.n - 1; t < p.n; t++)
                asked.push_back({at[i] + t, p.logits + (p.all_logits ? t : 0) * V, p.plugin, p.need_hi ? p.need_lo : 0,
                                 p.need_hi ? p.need_hi : V});
    }
    if (asked.empty()) return;
    const int64_t rows = (int64_t)asked.size();
    for (int64_t i = 0; i < rows; i++)
        rms_norm(&hidden_state[asked[i].row * E], static_cast<const float *>(output_norm_.data()), &normed[i * E], E, 1,
                 hp.rms_eps);
    // The base's rows any asked row needs: none where its plugin's own rows hold all it wants
    // (an image token's pick), else its range, widened to whole row groups (quant.h) so that
    // packed weights can start there; each row's logit is the same from any range.
    int64_t b_lo = V, b_hi = 0;
    for (const Asked &a : asked) {
        const HLoraRows *o = a.plugin && a.plugin->output().t ? &a.plugin->output() : nullptr;
        if (o && a.lo >= o->first_row && a.hi <= o->first_row + o->n_rows) continue;
        b_lo = std::min(b_lo, a.lo / kRowBlock * kRowBlock);
        b_hi = std::max(b_hi, std::min(V, (a.hi + kRowBlock - 1) / kRowBlock * kRowBlock));
    }
    // rows that follow each other in the caller's buffer (one segment, or segments in order)
    // go straight there
    bool direct = true;
    for (int64_t i = 1; i < rows; i++) direct = direct && asked[(size_t)i].out == asked[0].out + i * V;
    std::vector<float> gathered(direct ? 0 : (size_t)(rows * V));
    float *logits = direct ? asked[0].out : gathered.data();
    if (b_lo == 0 && b_hi == V) {
        matmul(pool, output_.type(), output_.data(), V, E, normed.data(), rows, logits, true);
    } else if (b_lo < b_hi) {
        const int64_t m = b_hi - b_lo;
        std::vector<float> part((size_t)(m * rows));
        matmul(pool, output_.type(),
               static_cast<const uint8_t *>(output_.data()) + b_lo * row_bytes(plain_type(output_.type()), E), m, E,
               normed.data(), rows, part.data(), true);
        for (int64_t c = 0; c < rows; c++)
            std::copy(&part[(size_t)(c * m)], &part[(size_t)((c + 1) * m)], logits + c * V + b_lo);
    }
    // the plugin's trained lm_head rows replace the base's for its token range
    for (int64_t i0 = 0, i1; i0 < rows; i0 = i1) {
        const HLoraPlugin *pl = asked[i0].plugin;
        bool wanted = false;
        for (i1 = i0; i1 < rows && asked[i1].plugin == pl; i1++)
            wanted = wanted || (pl && pl->output().t && asked[i1].lo < pl->output().first_row + pl->output().n_rows &&
                                asked[i1].hi > pl->output().first_row);
        if (!wanted) continue;
        const HLoraRows &o = pl->output();
        std::vector<float> own_logits((size_t)(o.n_rows * (i1 - i0)));
        matmul(pool, o.t->type, o.t->data, o.n_rows, E, &normed[i0 * E], i1 - i0, own_logits.data(), true);
        for (int64_t c = i0; c < i1; c++)
            std::copy(&own_logits[(size_t)((c - i0) * o.n_rows)], &own_logits[(size_t)((c - i0 + 1) * o.n_rows)],
                      logits + c * V + o.first_row);
    }
    if (!direct)
        for (int64_t i = 0; i < rows; i++) std::copy(&logits[i * V], &logits[(i + 1) * V], asked[i].out);
}

} // namespace hg
