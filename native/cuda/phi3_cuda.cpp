// The Phi-3 decoder on a CUDA device: the steps of Phi3Model::eval_chunk (models/phi3.cpp),
// one for one, on device buffers through the ops of cuda/ops.h. Weights are uploaded once at
// load in their file types; the KV cache and every activation stay on the device; a chunk
// ends with its logits copied back and the stream synchronized, so a failure belongs to the
// call that caused it.
#include "cuda/phi3_cuda.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "cuda/backend.h"
#include "cuda/ops.h"
#include "models/phi3.h"
#include "ops/rope.h"
#include "quant/quant.h"

namespace hg {
namespace {

std::string mib(size_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

// A weight (or adapter matrix) in device memory, with what the kernels need to read it.
struct DevMatrix {
    int type = 0;
    int64_t rows = 0, cols = 0;
    DeviceBuffer buf;
};

// Counts bytes before anything is allocated, so that "does not fit" is said up front.
struct Plan {
    size_t bytes = 0;
    void add(size_t b) { bytes += (b + 255) / 256 * 256; }
};

class CudaPhi3 final : public Phi3Device {
  public:
    CudaPhi3(const Phi3Model &m, int kv_type, int64_t n_ctx, int64_t max_chunk, int64_t n_layers);
    std::string describe() const override { return describe_; }
    int64_t n_layers() const override { return n_layers_; }
    void eval_chunk(const int32_t *tokens, const float *embd, int64_t n, int64_t pos0, float *logits, bool all_logits,
                    int plugin, float *hidden_out, const Phi3Pick *pick) override;
    void add_plugin(const HLoraPlugin &plugin) override;

  private:
    struct Adapter {
        int64_t in = 0, out = 0, rank = 0, n_experts = 0, a_row = 0;
        float scale = 0;
        DevMatrix ra, b; // [router; lora_A] and lora_B
    };
    struct Plugin {
        std::vector<Adapter> adapters; // layer-major: attn_qkv, attn_output, ffn_up, ffn_down
        DevMatrix token_embd, output;  // the plugin's own rows, or empty
        int64_t embd_first = 0, out_first = 0;
    };
    struct Layer {
        DevMatrix attn_norm, attn_qkv, attn_output, ffn_norm, ffn_up, ffn_down;
    };

    static void check_weight(const Phi3Weight &w, const char *name);
    DevMatrix upload(int type, const void *data, int64_t rows, int64_t cols);
    void check_fits(size_t need, const std::string &what) const;
    void linear(const DevMatrix &w, const Adapter *ad, const float *x, int64_t n, float *y);
    void ensure_logits(int64_t rows);
    void enqueue_forward(int64_t n, int64_t pos0, const int32_t *pos_dev, bool any_base, bool any_own, int64_t n_given,
                         int64_t n_logits, const Plugin *pl);
    void decode_with_graph(int32_t token, int64_t pos0, float *logits, int plugin_id, float *hidden_out,
                           const Phi3Pick *pick);
    void enqueue_pick(void *s);
    void drop_graphs() { graphs_.clear(); }

    Phi3HParams hp_;
    int64_t n_ctx_, max_chunk_;
    int64_t n_layers_; // layers on the device: all (and then the output head too) or the first ones
    bool head_ = true; // the output head is here
    std::string describe_, device_name_;
    CudaStream stream_;
    DevMatrix token_embd_, output_norm_, output_;
    std::vector<Layer> layers_;
    DeviceBuffer k_cache_, v_cache_;
    std::vector<cuda::kv_cache_layer> kv_;
    DeviceBuffer rope_cos_, rope_sin_;
    DeviceBuffer hidden_, normed_, qkv_, attn_, proj_, gate_up_, act_;
    DeviceBuffer mm_scratch_, attn_scratch_, lora_la_, lora_g_;
    DeviceBuffer rows_, embd_rows_, logits_;
    size_t mm_scratch_bytes_ = 0, attn_scratch_floats_ = 0;
    int64_t logits_rows_ = 0, lora_ra_max_ = 0, lora_rank_max_ = 0;
    std::vector<Plugin> plugins_;
    // decode steps as CUDA graphs, two per plugin (index 2 (plugin + 1) + 1 for the one that
    // ends with a greedy pick), recorded at first use
    bool use_graphs_ = true;
    std::vector<std::unique_ptr<CudaGraph>> graphs_;
    // step_in_: a step's rows (base, own, given), its position and a greedy pick's range;
    // step_out_: its logits (all layers here), hidden state (the first ones) or picked token
    std::unique_ptr<PinnedBuffer> step_in_, step_out_;
    DeviceBuffer pos_dev_; // position, range lo, range hi, picked token
};

void CudaPhi3::check_weight(const Phi3Weight &w, const char *name) {
    if (!cuda::matmul_supports(w.t->type)) {
        const type_info *ti = type_traits(w.t->type);
        fail(std::string("cuda: tensor ") + name + " has type " + (ti ? ti->name : std::to_string(w.t->type)) +
             ", which the CUDA kernels do not read yet");
    }
}

DevMatrix CudaPhi3::upload(int type, const void *data, int64_t rows, int64_t cols) {
    DevMatrix d;
    d.type = type, d.rows = rows, d.cols = cols;
    const size_t bytes = row_bytes(type, cols) * (size_t)rows;
    d.buf = DeviceBuffer(bytes);
    cuda_copy_to_device(d.buf.get(), data, bytes);
    return d;
}

void CudaPhi3::check_fits(size_t need, const std::string &what) const {
    size_t free_b = 0, total_b = 0;
    cuda_memory_info(free_b, total_b);
    const size_t reserve = 256u << 20; // the context, the kernels' modules, fragmentation
    if (need + reserve > free_b)
        fail("cuda: " + what + " needs " + mib(need) + " of device memory (plus " + mib(reserve) + " reserve), " +
             mib(free_b) + " of " + mib(total_b) + " are free on " + device_name_);
}

CudaPhi3::CudaPhi3(const Phi3Model &m, int kv_type, int64_t n_ctx, int64_t max_chunk, int64_t n_layers)
    : hp_(m.hparams()), n_ctx_(n_ctx), max_chunk_(max_chunk),
      n_layers_(n_layers < 0 || n_layers >= m.hparams().n_layer ? m.hparams().n_layer : n_layers) {
    if (n_layers_ <= 0) fail("cuda: no layers to run on the device");
    head_ = n_layers_ == hp_.n_layer;
    const cuda_device_props props = cuda_device_properties(0);
    cuda_set_device(0);
    device_name_ = props.name;
    char cc[64];
    std::snprintf(cc, sizeof cc, " (sm_%d%d, %.1f GiB)", props.cc_major, props.cc_minor,
                  props.total_bytes / 1073741824.0);
    describe_ = "cuda: " + props.name + cc;
    if (kv_type != HG_TYPE_F16 && kv_type != HG_TYPE_F32)
        fail("cuda: KV cache type must be f16 or f32 (a q8_0 cache runs on the CPU only)");
    if (hp_.head_dim > 256) fail("cuda: head_dim " + std::to_string(hp_.head_dim) + " (the kernels take up to 256)");

    const int64_t E = hp_.n_embd, F = hp_.n_ff, Q = hp_.n_qkv(), V = hp_.n_vocab, C = max_chunk_;
    // every weight's type, and what the model needs in all
    Plan plan;
    auto plan_weight = [&](const Phi3Weight &w, const char *name) {
        check_weight(w, name);
        plan.add(row_bytes(w.t->type, w.t->ne[0]) * (size_t)std::max<int64_t>(1, w.t->ne[1]));
    };
    plan_weight(m.token_embd(), "token_embd.weight");
    if (head_) plan_weight(m.output_norm(), "output_norm.weight"), plan_weight(m.output(), "output.weight");
    for (int64_t il = 0; il < n_layers_; il++) {
        const Phi3Layer &l = m.layer(il);
        plan_weight(l.attn_norm, "attn_norm"), plan_weight(l.attn_qkv, "attn_qkv");
        plan_weight(l.attn_output, "attn_output"), plan_weight(l.ffn_norm, "ffn_norm");
        plan_weight(l.ffn_up, "ffn_up"), plan_weight(l.ffn_down, "ffn_down");
    }
    const size_t weights = plan.bytes;
    const size_t kv_elem = kv_type == HG_TYPE_F16 ? 2 : 4;
    const size_t kv_layer = kv_elem * (size_t)(n_ctx * hp_.n_head_kv * hp_.head_dim);
    plan.add(kv_layer * (size_t)n_layers_), plan.add(kv_layer * (size_t)n_layers_);
    const size_t kv_bytes = plan.bytes - weights;
    if (head_) mm_scratch_bytes_ = cuda::matmul_scratch_bytes(m.output().t->type, E, C);
    for (int64_t il = 0; il < n_layers_; il++) {
        const Phi3Layer &l = m.layer(il);
        for (const Phi3Weight *w : {&l.attn_qkv, &l.attn_output, &l.ffn_up})
            mm_scratch_bytes_ = std::max(mm_scratch_bytes_, cuda::matmul_scratch_bytes(w->t->type, E, C));
        mm_scratch_bytes_ = std::max(mm_scratch_bytes_, cuda::matmul_scratch_bytes(l.ffn_down.t->type, F, C));
    }
    mm_scratch_bytes_ = std::max<size_t>(mm_scratch_bytes_, 256);
    // split-K partials: tokens x heads x splits x (head_dim + 2), splits <= max(1, 512 / (tokens x heads))
    attn_scratch_floats_ = (size_t)std::max<int64_t>(C * hp_.n_head, 512) * (size_t)(hp_.head_dim + 2);
    const int half = hp_.n_rot / 2;
    const size_t scratch = 4 * (size_t)(C * (4 * E + Q + 3 * F)) + mm_scratch_bytes_ + 4 * attn_scratch_floats_ +
                           8 * (size_t)(n_ctx * half) + 4 * (size_t)(3 * C + C * E) + 4 * (size_t)V;
    plan.add(scratch);
    check_fits(plan.bytes, "the model (weights " + mib(weights) + ", KV cache " + mib(kv_bytes) + " for " +
                               std::to_string(n_ctx) + " positions, scratch " + mib(scratch) + ")");

    // weights, in the file's types
    auto up = [&](const Phi3Weight &w) {
        return upload(w.t->type, w.t->data, std::max<int64_t>(1, w.t->ne[1]), w.t->ne[0]);
    };
    token_embd_ = up(m.token_embd());
    if (head_) {
        output_norm_ = up(m.output_norm());
        output_ = up(m.output());
        if (output_norm_.type != HG_TYPE_F32) fail("cuda: output_norm.weight is not f32");
    }
    for (int64_t il = 0; il < n_layers_; il++) {
        const Phi3Layer &l = m.layer(il);
        Layer d;
        d.attn_norm = up(l.attn_norm), d.attn_qkv = up(l.attn_qkv), d.attn_output = up(l.attn_output);
        d.ffn_norm = up(l.ffn_norm), d.ffn_up = up(l.ffn_up), d.ffn_down = up(l.ffn_down);
        for (const DevMatrix *n : {&d.attn_norm, &d.ffn_norm})
            if (n->type != HG_TYPE_F32) fail("cuda: layer " + std::to_string(il) + " norm weight is not f32");
        layers_.push_back(std::move(d));
    }

    // KV cache
    k_cache_ = DeviceBuffer(kv_layer * (size_t)n_layers_);
    v_cache_ = DeviceBuffer(kv_layer * (size_t)n_layers_);
    for (int64_t il = 0; il < n_layers_; il++) {
        cuda::kv_cache_layer l;
        l.type = kv_type;
        l.k = k_cache_.as<uint8_t>() + il * kv_layer;
        l.v = v_cache_.as<uint8_t>() + il * kv_layer;
        l.n_ctx = n_ctx, l.n_kv_heads = hp_.n_head_kv, l.head_dim = hp_.head_dim;
        kv_.push_back(l);
    }

    // rope tables for every position, from the CPU's own function: the same angles to the bit
    {
        std::vector<int32_t> pos((size_t)n_ctx);
        for (int64_t p = 0; p < n_ctx; p++) pos[(size_t)p] = (int32_t)p;
        std::vector<float> c((size_t)(n_ctx * half)), s((size_t)(n_ctx * half));
        rope_cos_sin(pos.data(), n_ctx, hp_.n_rot, hp_.rope_freq_base, c.data(), s.data());
        rope_cos_ = DeviceBuffer(c.size() * 4), rope_sin_ = DeviceBuffer(s.size() * 4);
        cuda_copy_to_device(rope_cos_.get(), c.data(), c.size() * 4);
        cuda_copy_to_device(rope_sin_.get(), s.data(), s.size() * 4);
    }

    // scratch for one chunk
    hidden_ = DeviceBuffer(4 * (size_t)(C * E)), normed_ = DeviceBuffer(4 * (size_t)(C * E));
    qkv_ = DeviceBuffer(4 * (size_t)(C * Q)), attn_ = DeviceBuffer(4 * (size_t)(C * E));
    proj_ = DeviceBuffer(4 * (size_t)(C * E)), gate_up_ = DeviceBuffer(4 * (size_t)(C * 2 * F));
    act_ = DeviceBuffer(4 * (size_t)(C * F));
    mm_scratch_ = DeviceBuffer(mm_scratch_bytes_);
    attn_scratch_ = DeviceBuffer(4 * attn_scratch_floats_);
    rows_ = DeviceBuffer(4 * (size_t)(3 * C));
    embd_rows_ = DeviceBuffer(4 * (size_t)(C * E));
    ensure_logits(1);

    const char *g = std::getenv("HEALTHGPT_CUDA_GRAPHS"); // "0": every step launches its kernels
    use_graphs_ = !(g && std::string(g) == "0");
    step_in_.reset(new PinnedBuffer(6 * 4));
    step_out_.reset(new PinnedBuffer(4 * (size_t)(head_ ? V : E)));
    pos_dev_ = DeviceBuffer(4 * 4);
}

void CudaPhi3::ensure_logits(int64_t rows) {
    if (rows <= logits_rows_) return;
    drop_graphs();            // they hold the old buffer's address
    logits_ = DeviceBuffer(); // free before allocating the larger one
    logits_rows_ = 0;         // and if that fails, none: the next call allocates again
    logits_ = DeviceBuffer(4 * (size_t)(rows * hp_.n_vocab));
    logits_rows_ = rows;
}

void CudaPhi3::add_plugin(const HLoraPlugin &p) {
    const int64_t C = max_chunk_;
    Plan plan;
    // the weights, then the shared buffers that must grow (one each, sized by the largest use)
    size_t scratch = mm_scratch_bytes_;
    int64_t ra_max = lora_ra_max_, rank_max = lora_rank_max_;
    auto plan_adapter = [&](const HLoraAdapter &ad) {
        for (int t : {ad.router_lora_a_type, ad.lora_b_type})
            if (is_packed(t) || !cuda::matmul_supports(t))
                fail("cuda: plugin " + p.name() + ": adapter " + ad.name +
                     " is in a layout the CUDA kernels do not read");
        plan.add(ad.router_lora_a.size()), plan.add(ad.lora_b.size());
        scratch = std::max({scratch, cuda::matmul_scratch_bytes(ad.router_lora_a_type, ad.in, C),
                            cuda::matmul_scratch_bytes(ad.lora_b_type, ad.rank, C)});
        ra_max = std::max(ra_max, ad.ra_rows()), rank_max = std::max(rank_max, ad.rank);
    };
    for (int64_t il = 0; il < n_layers_; il++) {
        const HLoraPlugin::Layer &l = p.layer(il);
        for (const HLoraAdapter *ad : {&l.attn_qkv, &l.attn_output, &l.ffn_up, &l.ffn_down}) plan_adapter(*ad);
    }
    for (const HLoraRows *r : {&p.token_embd(), &p.output()})
        if (r->t && (head_ || r == &p.token_embd())) {
            if (!cuda::matmul_supports(r->t->type)) fail("cuda: plugin " + p.name() + ": rows of an unsupported type");
            plan.add(row_bytes(r->t->type, r->t->ne[0]) * (size_t)r->n_rows);
            if (r == &p.output()) scratch = std::max(scratch, cuda::matmul_scratch_bytes(r->t->type, hp_.n_embd, C));
        }
    if (scratch > mm_scratch_.size()) plan.add(scratch);
    if (4 * (size_t)(C * ra_max) > lora_la_.size()) plan.add(4 * (size_t)(C * ra_max));
    if (4 * (size_t)(C * rank_max) > lora_g_.size()) plan.add(4 * (size_t)(C * rank_max));
    check_fits(plan.bytes, "plugin " + p.name());
    drop_graphs(); // scratch may move below

    Plugin d;
    for (int64_t il = 0; il < n_layers_; il++) {
        const HLoraPlugin::Layer &l = p.layer(il);
        for (const HLoraAdapter *ad : {&l.attn_qkv, &l.attn_output, &l.ffn_up, &l.ffn_down}) {
            Adapter a;
            a.in = ad->in, a.out = ad->out, a.rank = ad->rank, a.n_experts = ad->n_experts, a.a_row = ad->a_row;
            a.scale = ad->scale();
            a.ra = upload(ad->router_lora_a_type, ad->router_lora_a.data(), ad->ra_rows(), ad->in);
            a.b = upload(ad->lora_b_type, ad->lora_b.data(), ad->out, ad->rank);
            lora_ra_max_ = std::max(lora_ra_max_, ad->ra_rows());
            lora_rank_max_ = std::max(lora_rank_max_, ad->rank);
            mm_scratch_bytes_ =
                std::max({mm_scratch_bytes_, cuda::matmul_scratch_bytes(ad->router_lora_a_type, ad->in, C),
                          cuda::matmul_scratch_bytes(ad->lora_b_type, ad->rank, C)});
            d.adapters.push_back(std::move(a));
        }
    }
    const int64_t E = hp_.n_embd;
    if (p.token_embd().t) {
        const HLoraRows &r = p.token_embd();
        d.token_embd = upload(r.t->type, r.t->data, r.n_rows, E);
        d.embd_first = r.first_row;
    }
    if (p.output().t && head_) {
        const HLoraRows &r = p.output();
        d.output = upload(r.t->type, r.t->data, r.n_rows, E);
        d.out_first = r.first_row;
        // its rows' matmul quantizes the activations when they are q4_0, q8_0 or a K-quant
        mm_scratch_bytes_ = std::max(mm_scratch_bytes_, cuda::matmul_scratch_bytes(r.t->type, E, C));
    }
    // scratch the adapters need beyond the base model's
    if (mm_scratch_.size() < mm_scratch_bytes_) mm_scratch_ = DeviceBuffer(mm_scratch_bytes_);
    if (lora_la_.size() < 4 * (size_t)(C * lora_ra_max_)) lora_la_ = DeviceBuffer(4 * (size_t)(C * lora_ra_max_));
    if (lora_g_.size() < 4 * (size_t)(C * lora_rank_max_)) lora_g_ = DeviceBuffer(4 * (size_t)(C * lora_rank_max_));
    plugins_.push_back(std::move(d));
}

// W x alone, or with the plugin's adapter (cuda::hlora_linear).
void CudaPhi3::linear(const DevMatrix &w, const Adapter *ad, const float *x, int64_t n, float *y) {
    void *s = stream_.get();
    if (!ad) {
        cuda::matmul(w.type, w.buf.get(), w.rows, w.cols, x, n, y, w.rows, false, mm_scratch_.get(), mm_scratch_.size(),
                     s);
        return;
    }
    cuda::hlora_adapter a;
    a.ra_type = ad->ra.type, a.ra = ad->ra.buf.get(), a.ra_rows = ad->ra.rows;
    a.b_type = ad->b.type, a.b = ad->b.buf.get();
    a.in = ad->in, a.out = ad->out, a.rank = ad->rank, a.n_experts = ad->n_experts, a.a_row = ad->a_row;
    a.scale = ad->scale;
    if (w.rows != a.out || w.cols != a.in) fail("cuda: adapter shape differs from its weight's");
    cuda::hlora_linear(w.type, w.buf.get(), a, x, n, y, lora_la_.as<float>(), lora_g_.as<float>(), mm_scratch_.get(),
                       mm_scratch_.size(), s);
}

void CudaPhi3::eval_chunk(const int32_t *tokens, const float *embd, int64_t n, int64_t pos0, float *logits,
                          bool all_logits, int plugin_id, float *hidden_out, const Phi3Pick *pick) {
    if (n <= 0 || n > max_chunk_) fail("cuda eval: chunk of " + std::to_string(n) + " tokens");
    if (pos0 < 0 || pos0 + n > n_ctx_) fail("cuda eval: positions past the context");
    if (plugin_id < -1 || plugin_id >= (int)plugins_.size()) fail("cuda eval: plugin " + std::to_string(plugin_id));
    if (!head_ && !hidden_out) fail("cuda eval: the device runs some of the layers: the hidden state must come back");
    if (pick && (!head_ || logits || all_logits || !pick->next || pick->lo < 0 || pick->lo >= pick->hi ||
                 pick->hi > hp_.n_vocab))
        fail("cuda eval: a greedy pick needs the output head here, no logits and a range in the vocabulary");
    if (n == 1 && tokens[0] != -1 && use_graphs_)
        return decode_with_graph(tokens[0], pos0, logits, plugin_id, hidden_out, pick);
    const Plugin *pl = plugin_id >= 0 ? &plugins_[(size_t)plugin_id] : nullptr;
    const int64_t E = hp_.n_embd, V = hp_.n_vocab;
    void *s = stream_.get();

    // Embeddings: the base table's rows, the plugin's own rows, or the caller's vectors where
    // the token is -1 (Phi3Model::eval checked every index).
    std::vector<int32_t> rows((size_t)(3 * n), -1);
    int32_t *base = rows.data(), *own = base + n, *given = own + n;
    int64_t n_given = 0;
    bool any_base = false, any_own = false;
    for (int64_t t = 0; t < n; t++) {
        const int32_t tok = tokens[t];
        if (tok == -1)
            given[t] = (int32_t)n_given++;
        else if (pl && pl->token_embd.rows && tok >= pl->embd_first && tok < pl->embd_first + pl->token_embd.rows)
            own[t] = (int32_t)(tok - pl->embd_first), any_own = true;
        else
            base[t] = tok, any_base = true;
    }
    if (n_given && !embd) fail("cuda eval: embedding rows expected");
    const int64_t n_logits = pick ? 1 : !logits || !head_ ? 0 : all_logits ? n : 1;
    if (n_logits) ensure_logits(n_logits);
    cuda_copy_to_device_async(rows_.get(), rows.data(), rows.size() * 4, s);
    if (n_given) cuda_copy_to_device_async(embd_rows_.get(), embd, (size_t)(n_given * E) * 4, s);
    enqueue_forward(n, pos0, nullptr, any_base, any_own, n_given, n_logits, pl);
    if (pick) {
        int32_t *in = step_in_->as<int32_t>();
        in[4] = pick->lo, in[5] = pick->hi;
        enqueue_pick(s);
    } else if (n_logits)
        cuda_copy_to_host_async(logits, logits_.get(), (size_t)(n_logits * V) * 4, s);
    if (!head_) cuda_copy_to_host_async(hidden_out, hidden_.get(), (size_t)(n * E) * 4, s);
    stream_.synchronize();
    if (pick) *pick->next = step_out_->as<int32_t>()[0];
}

// The greedy pick of logits_'s first row in the range at step_in_[4..5], into step_out_[0]:
// the range goes through pinned memory (a recorded graph reads each launch's), 4 bytes back.
void CudaPhi3::enqueue_pick(void *s) {
    int32_t *d = pos_dev_.as<int32_t>();
    cuda_copy_to_device_async(d + 1, step_in_->as<int32_t>() + 4, 2 * 4, s);
    cuda::greedy_pick(logits_.as<float>(), d + 1, d + 3, s);
    cuda_copy_to_host_async(step_out_->as<int32_t>(), d + 3, 4, s);
}

// One token through a recorded graph: the step's rows and position (and a pick's range) go
// through pinned memory, so the same graph serves every position; recorded at this plugin's
// first decode step of each kind. With the first layers only on the device, the graph ends
// with the hidden state copied back, and the CPU runs the rest of the step; with a greedy
// pick, with the picked token (4 bytes) in place of the logits.
void CudaPhi3::decode_with_graph(int32_t token, int64_t pos0, float *logits, int plugin_id, float *hidden_out,
                                 const Phi3Pick *pick) {
    const Plugin *pl = plugin_id >= 0 ? &plugins_[(size_t)plugin_id] : nullptr;
    const int64_t V = hp_.n_vocab, E = hp_.n_embd;
    void *s = stream_.get();
    int32_t *in = step_in_->as<int32_t>(); // base row, own row, given row, position
    const bool own =
        pl && pl->token_embd.rows && token >= pl->embd_first && token < pl->embd_first + pl->token_embd.rows;
    in[0] = own ? -1 : token;
    in[1] = own ? (int32_t)(token - pl->embd_first) : -1;
    in[2] = -1;
    in[3] = (int32_t)pos0;
    if (pick) in[4] = pick->lo, in[5] = pick->hi;
    if (graphs_.size() < 2 * (plugins_.size() + 1)) graphs_.resize(2 * (plugins_.size() + 1));
    std::unique_ptr<CudaGraph> &g = graphs_[(size_t)(2 * (plugin_id + 1) + (pick ? 1 : 0))];
    if (!g || !g->ready()) {
        g.reset(new CudaGraph());
        try {
            g->begin(s);
            cuda_copy_to_device_async(rows_.get(), in, 3 * 4, s);
            cuda_copy_to_device_async(pos_dev_.get(), in + 3, 4, s);
            enqueue_forward(1, pos0, pos_dev_.as<int32_t>(), true, pl && pl->token_embd.rows, 0, head_ ? 1 : 0, pl);
            if (pick)
                enqueue_pick(s);
            else if (head_)
                cuda_copy_to_host_async(step_out_->as<float>(), logits_.get(), (size_t)V * 4, s);
            else
                cuda_copy_to_host_async(step_out_->as<float>(), hidden_.get(), (size_t)E * 4, s);
            g->end(s);
        } catch (const std::exception &e) {
            // A capture the driver refuses (lazily loaded kernels on drivers before 12.3, say)
            // must not fail every step: this model launches its kernels one by one from now
            // on, and says so once. An error that is not the capture's fails that path too.
            g->abandon(s);
            g.reset();
            use_graphs_ = false;
            std::fprintf(stderr, "healthgpt: CUDA graph capture failed (%s): decoding without graphs\n", e.what());
            return eval_chunk(&token, nullptr, 1, pos0, logits, false, plugin_id, hidden_out, pick);
        }
    }
    g->launch(s);
    stream_.synchronize();
    const float *o = step_out_->as<float>();
    if (pick)
        *pick->next = step_out_->as<int32_t>()[0];
    else if (head_ && logits)
        std::copy(o, o + V, logits);
    if (!head_) std::copy(o, o + E, hidden_out);
}

// The steps of Phi3Model::eval_chunk for n tokens whose embedding rows are in rows_ (base,
// own, given; embd_rows_ holds the given vectors), at pos0, or at *pos_dev when given; the
// last n_logits rows' logits into logits_.
void CudaPhi3::enqueue_forward(int64_t n, int64_t pos0, const int32_t *pos_dev, bool any_base, bool any_own,
                               int64_t n_given, int64_t n_logits, const Plugin *pl) {
    const int64_t E = hp_.n_embd, Q = hp_.n_qkv(), F = hp_.n_ff, hd = hp_.head_dim, V = hp_.n_vocab;
    void *s = stream_.get();
    float *hidden = hidden_.as<float>(), *normed = normed_.as<float>(), *qkv = qkv_.as<float>();
    float *attn = attn_.as<float>(), *proj = proj_.as<float>(), *gate_up = gate_up_.as<float>(),
          *act = act_.as<float>();
    const int32_t *d_rows = rows_.as<int32_t>();
    if (any_base) cuda::get_rows(token_embd_.type, token_embd_.buf.get(), E, d_rows, n, hidden, s);
    if (any_own) cuda::get_rows(pl->token_embd.type, pl->token_embd.buf.get(), E, d_rows + n, n, hidden, s);
    if (n_given) cuda::get_rows(HG_TYPE_F32, embd_rows_.get(), E, d_rows + 2 * n, n, hidden, s);

    for (int64_t il = 0; il < n_layers_; il++) {
        const Layer &l = layers_[(size_t)il];
        const Adapter *ad = pl ? &pl->adapters[(size_t)(il * 4)] : nullptr;
        const cuda::kv_cache_layer &kv = kv_[(size_t)il];
        // attention block; qkv rows: q heads, k heads, v heads
        cuda::rms_norm(hidden, l.attn_norm.buf.as<float>(), normed, E, n, hp_.rms_eps, s);
        linear(l.attn_qkv, ad ? ad + 0 : nullptr, normed, n, qkv);
        float *k = qkv + hp_.n_head * hd, *v = k + hp_.n_head_kv * hd;
        // q and k heads are adjacent: one rotation over both
        cuda::rope(qkv, n, Q, hp_.n_head + hp_.n_head_kv, hd, hp_.n_rot, rope_cos_.as<float>(), rope_sin_.as<float>(),
                   pos0, s, pos_dev);
        cuda::kv_store(kv, k, v, Q, n, pos0, s, pos_dev);
        cuda::attention(kv, qkv, Q, n, pos0, hp_.n_head, hp_.sliding_window, attn, E, attn_scratch_.as<float>(),
                        attn_scratch_floats_, s, pos_dev);
        linear(l.attn_output, ad ? ad + 1 : nullptr, attn, n, proj);
        cuda::add(hidden, proj, n * E, s);
        // MLP block
        cuda::rms_norm(hidden, l.ffn_norm.buf.as<float>(), normed, E, n, hp_.rms_eps, s);
        linear(l.ffn_up, ad ? ad + 2 : nullptr, normed, n, gate_up);
        cuda::silu_mul(gate_up, act, F, n, s);
        linear(l.ffn_down, ad ? ad + 3 : nullptr, act, n, proj);
        cuda::add(hidden, proj, n * E, s);
    }
    if (!n_logits) return;
    // lm_head on the rows asked for only; the plugin's trained rows replace the base's
    const int64_t first = n - n_logits;
    float *dl = logits_.as<float>();
    cuda::rms_norm(hidden + first * E, output_norm_.buf.as<float>(), normed, E, n_logits, hp_.rms_eps, s);
    cuda::matmul(output_.type, output_.buf.get(), V, E, normed, n_logits, dl, V, false, mm_scratch_.get(),
                 mm_scratch_.size(), s);
    if (pl && pl->output.rows)
        cuda::matmul(pl->output.type, pl->output.buf.get(), pl->output.rows, E, normed, n_logits, dl + pl->out_first, V,
                     false, mm_scratch_.get(), mm_scratch_.size(), s);
}

} // namespace

std::unique_ptr<Phi3Device> make_phi3_cuda(const Phi3Model &m, int kv_type, int64_t n_ctx, int64_t max_chunk,
                                           int64_t n_layers) {
    return std::unique_ptr<Phi3Device>(new CudaPhi3(m, kv_type, n_ctx, max_chunk, n_layers));
}

} // namespace hg
