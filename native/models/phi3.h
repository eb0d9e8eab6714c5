// The Phi-3 / Phi-4 decoder (llama.cpp architecture "phi3") on the CPU: hyper-parameters
// and weights from a GGUF file, KV cache slots (one per sequence), and the forward pass of
// one or several sequences.
//
//   hidden_state = token_embd[token]
//   per layer:  h = hidden_state + attn_output(attention(rope(attn_qkv(rms_norm(hidden_state)))))
//               hidden_state = h + ffn_down(silu(gate) * up),  gate, up = ffn_up(rms_norm(h))
//   logits = output(rms_norm(hidden_state))
//
// Weights stay in the file's mapping, except the linears of a type the row-block kernels
// read packed (quant/repack.h): those are regrouped once at load into memory of the model's
// own, and their pages of the mapping are given back, so resident memory stays one copy.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/threadpool.h"
#include "gguf/gguf.h"
#include "models/hlora_plugin.h"
#include "models/packed_weights.h"
#include "models/phi3_device.h"
#include "ops/attention.h"
#include "quant/quant.h"

namespace hg {

struct Phi3HParams {
    int64_t n_vocab = 0;             // rows of token_embd
    int64_t n_ctx_train = 0;         // phi3.context_length
    int64_t n_embd = 0;              // phi3.embedding_length (hidden size)
    int64_t n_ff = 0;                // phi3.feed_forward_length
    int64_t n_layer = 0;             // phi3.block_count
    int64_t n_head = 0;              // phi3.attention.head_count
    int64_t n_head_kv = 0;           // phi3.attention.head_count_kv (default: n_head)
    int64_t head_dim = 0;            // n_embd / n_head
    int n_rot = 0;                   // phi3.rope.dimension_count (default: head_dim)
    float rope_freq_base = 10000.0f; // phi3.rope.freq_base
    float rms_eps = 1e-5f;           // phi3.attention.layer_norm_rms_epsilon
    int64_t sliding_window = 0;      // phi3.attention.sliding_window, 0: none

    int64_t n_qkv() const { return (n_head + 2 * n_head_kv) * head_dim; }
};

// A weight as the forward pass uses it: type, shape (ggml order) and bytes in the mapping,
// or in packed groups (type() is then the packed type).
struct Phi3Weight {
    const GGUFTensor *t = nullptr;
    const void *packed = nullptr;
    int type() const { return packed ? packed_type(t->type) : t->type; }
    const void *data() const { return packed ? packed : t->data; }
    int64_t ne0() const { return t->ne[0]; } // row length
    int64_t ne1() const { return t->ne[1]; } // rows
};

struct Phi3Layer {
    Phi3Weight attn_norm, attn_qkv, attn_output, ffn_norm, ffn_up, ffn_down;
};

// Keys and values of every layer for positions 0..n_ctx-1; n_past of them are filled. The
// memory is left uncommitted until written: a slot that is never used costs address space.
// n_past is atomic so that a caller may read it while a batch runs on another thread.
class Phi3KVCache {
  public:
    Phi3KVCache(const Phi3HParams &hp, int type, int64_t n_ctx);
    int type() const { return type_; }
    int64_t n_ctx() const { return n_ctx_; }
    int64_t n_past() const { return n_past_.load(std::memory_order_relaxed); }
    void set_n_past(int64_t n) { n_past_.store(n, std::memory_order_relaxed); }
    const kv_layer &layer(int64_t il) const { return layers_[il]; }

  private:
    int type_;
    int64_t n_ctx_;
    std::atomic<int64_t> n_past_{0};
    std::unique_ptr<uint8_t[]> k_, v_;
    std::vector<kv_layer> layers_;
};

struct Phi3Options {
    int64_t n_ctx = 0;         // <= 0: the model's context_length
    int n_seq = 1;             // KV cache slots (sequences), each of n_ctx positions
    int kv_type = HG_TYPE_F16; // HG_TYPE_F16, HG_TYPE_F32 or HG_TYPE_Q8_0 (ops/attention.h)
    // Pack the linears whose type has a packed layout (q4_0). Off: every weight is read in
    // place from the mapping (no copy at load, pages the kernel may evict under pressure).
    bool repack = true;
    ThreadPool *pool = nullptr; // packs with these threads; null: the calling thread
    // HG_GPU_OFF: the CPU; HG_GPU_CUDA: the CUDA backend or an error saying why not;
    // HG_GPU_AUTO: CUDA when the engine has it, a device is present and the model fits, else
    // the CPU (backend() says why).
    int gpu = HG_GPU_OFF;
    // With a device: the first gpu_layers layers run there, the rest and the output head on the
    // CPU (one copy of the hidden state per chunk between them); < 0 or >= n_layer: all.
    int64_t gpu_layers = -1;
};

// One sequence's part of a batch (hg_batch_seq): n_tokens tokens continuing slot seq.
struct Phi3Segment {
    int seq = 0;
    int plugin = -1; // -1: the base model; else an id from add_plugin
    int64_t start_pos = 0;
    int64_t n_tokens = 0;
    const int32_t *tokens = nullptr; // -1 takes the next row of embd
    const float *embd = nullptr;
    int logits = 0; // 0: none, 1: the last token's row, 2: every token's row
    // greedy in the engine (logits 1): *next gets ops/greedy.h's pick in [greedy_lo,
    // greedy_hi) of the last row, which is not returned
    int32_t greedy_lo = 0, greedy_hi = 0;
    int32_t *next = nullptr;
    bool greedy() const { return next != nullptr; }
    // rows the caller's logits buffer receives
    int64_t n_logits() const { return logits == 2 ? n_tokens : logits == 1 && !greedy() ? 1 : 0; }
};

class Phi3Model {
  public:
    // Reads and validates the hyper-parameters and every tensor (presence, shape, type);
    // throws hg::Error naming the file and the key or tensor at fault.
    static std::unique_ptr<Phi3Model> load(std::unique_ptr<GGUFFile> file, const Phi3Options &opt);

    const Phi3HParams &hparams() const { return hp_; }
    int n_seq() const { return (int)kv_.size(); }
    const Phi3KVCache &kv_cache(int seq = 0) const;
    // The weights as the file holds them, for a device to upload.
    const Phi3Weight &token_embd() const { return token_embd_; }
    const Phi3Weight &output_norm() const { return output_norm_; }
    const Phi3Weight &output() const { return output_; }
    const Phi3Layer &layer(int64_t il) const { return layers_[(size_t)il]; }
    // Where the forward pass runs: "cpu", "cuda: <device>", or "cpu (<why not cuda>)" when
    // gpu was HG_GPU_AUTO and CUDA could not be used.
    const std::string &backend() const { return backend_; }
    bool on_device() const { return device_ != nullptr; }

    // Runs n_tokens tokens at positions start_pos.. (start_pos must equal n_past: the cache
    // is continued, never silently overwritten) and fills logits with the last token's
    // n_vocab logits, or with all n_tokens rows when all_logits; logits may be null when the
    // caller only fills the cache. Prefill and decode share this path; long batches run in
    // chunks so scratch memory stays bounded. On a failure the cache keeps its old n_past.
    //
    // plugin: -1 runs the base model alone; else the id add_plugin returned, whose adapters
    // join every linear. The cache does not remember which plugin filled it: the caller must
    // not continue a prefix computed under another plugin (LanguageModel keys it).
    // embd: where tokens[i] is -1, the position takes the next row of embd (n_embd floats,
    // rows in order) in place of a token's embedding, e.g. projected image features.
    // This runs on slot 0: eval_batch with one segment.
    void eval(ThreadPool &pool, const int32_t *tokens, int64_t n_tokens, int64_t start_pos, float *logits,
              bool all_logits, int plugin = -1, const float *embd = nullptr);

    // Several sequences in one call, each segment continuing its own slot (at most once per
    // batch) under its own plugin; logits rows in segment order (n_logits() rows each). The
    // same checks as eval, for every segment before anything runs; on a failure no slot's
    // n_past changes. Each segment's logits are bit-identical to evaluating it alone.
    void eval_batch(ThreadPool &pool, const Phi3Segment *segs, int n_segs, float *logits);

    // Takes a plugin loaded against this model's shape (HLoraPlugin::load with base_shape());
    // returns its id. Plugins share the base weights and stay until the model is freed.
    int add_plugin(std::unique_ptr<HLoraPlugin> plugin);
    int n_plugins() const { return (int)plugins_.size(); }
    const HLoraPlugin &plugin(int id) const;
    HLoraBaseShape base_shape() const;

    // Forgets positions from_pos.. of slot seq so a shared prefix can be reused (0 clears it).
    void kv_clear(int64_t from_pos, int seq = 0);

  private:
    Phi3Model() = default;
    void check_segment(const Phi3Segment &s, const char *who) const;
    // One segment's rows in a forward pass: n tokens at pos0.. of a slot, under a plugin (or
    // null); logits: where its rows go (every row when all_logits, else the last), or null.
    struct Piece {
        Phi3KVCache *kv = nullptr;
        const HLoraPlugin *plugin = nullptr;
        const int32_t *tokens = nullptr;
        const float *embd = nullptr; // the piece's first embedding row (tokens -1 take them in order)
        int64_t n = 0, pos0 = 0;
        float *logits = nullptr;
        bool all_logits = false;
        // a greedy pick reads only logits [need_lo, need_hi) of its row: the output head
        // computes no other (need_hi 0: the whole row)
        int32_t need_lo = 0, need_hi = 0;
    };
    // One pass over the weights for the rows of every piece (at most kChunk in all; pieces
    // of one plugin next to each other). hidden_in: the hidden state after layer
    // first_layer - 1 (a device ran the layers before), in place of the embeddings.
    void eval_pass(ThreadPool &pool, const std::vector<Piece> &pieces, const float *hidden_in = nullptr,
                   int64_t first_layer = 0);
    void eval_on_device(ThreadPool &pool, const Phi3Segment &s, float *logits);
    int plugin_index(const HLoraPlugin *p) const; // -1 for none
    void pack_weights(ThreadPool *pool);
    void use_device(int gpu, int64_t n_ctx, int kv_type, int64_t gpu_layers);
    void release_device_weights();
    int64_t cpu_first_layer() const { return device_ ? device_->n_layers() : 0; }

    std::unique_ptr<GGUFFile> file_;
    PackedWeights packed_; // the packed linears
    Phi3HParams hp_;
    Phi3Weight token_embd_, output_norm_, output_;
    std::vector<Phi3Layer> layers_;
    std::vector<std::unique_ptr<Phi3KVCache>> kv_; // one per slot
    std::vector<std::unique_ptr<HLoraPlugin>> plugins_;
    std::unique_ptr<Phi3Device> device_; // null: the CPU runs the forward pass
    std::string backend_ = "cpu";
};

} // namespace hg
