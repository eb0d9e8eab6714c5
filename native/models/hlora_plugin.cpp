// H-LoRA plugin files: the format and its loader.
//
// A plugin is a GGUF file (v2 or v3) of its own, beside the base model's phi3 GGUF:
//
// metadata
//   general.architecture          string  "hlora"
//   hlora.plugin                  string  the plugin's name: "comprehension", "generation", ...
//   hlora.rank                    uint32  r, the same for every linear
//   hlora.alpha                   float32 alpha; the adapter's scale is alpha / r * n
//   hlora.expert_count            uint32  n; r must be a multiple of n (expert j owns rank
//                                         slots j*r/n .. (j+1)*r/n - 1)
//   hlora.base.block_count        uint32  the base's phi3.block_count        } checked against
//   hlora.base.embedding_length   uint32  the base's phi3.embedding_length   } the base model
//   hlora.base.feed_forward_length uint32 the base's phi3.feed_forward_length} at load
//   hlora.token_embd.first_row    uint32  only with token_embd.weight (below)
//   hlora.output.first_row        uint32  only with output.weight (below)
//
// tensors (shapes in ggml order, ne[0] = row length, rows stored one after another), for every
// layer N in 0 .. block_count - 1 and every linear L of the layer:
//   L = attn_qkv (qkv_proj, in n_embd, out (n_head + 2 n_head_kv) head_dim),
//       attn_output (o_proj, n_embd -> n_embd), ffn_up (gate_up_proj, n_embd -> 2 n_ff, gate
//       rows first), ffn_down (down_proj, n_ff -> n_embd); never output (lm_head):
//   blk.N.L.router   [in, n]   the router R (n x in)            f32, f16 or bf16
//   blk.N.L.lora_A   [in, r]   A (r x in)                       f32, f16 or bf16
//   blk.N.L.lora_B   [r, out]  B (out x r)                      f32, f16 or bf16
// optional, where the plugin trained them:
//   token_embd.weight [n_embd, k]  rows first_row .. first_row + k - 1 of the base's
//   output.weight     [n_embd, k]  token_embd / output, replaced while this plugin runs
//                                  (any matmul type; the rows must lie inside the base vocab)
//   mm.0.weight [vision_width, d], mm.0.bias [d], mm.2.weight [d, n_embd], mm.2.bias [n_embd]:
//                                  the plugin's projector (mlp2x_gelu), all four or none;
//                                  biases f32
// Every required tensor must be present, of its shape, and finite; an adapter that fails is
// refused whole with a message naming the file and the tensor.
#include "models/hlora_plugin.h"

#include <cmath>

#include "core/error.h"
#include "models/gguf_meta.h"

namespace hg {

namespace {

const char *const kLinears[] = {"attn_qkv", "attn_output", "ffn_up", "ffn_down"};

HLoraTensor adapter_tensor(const GGUFFile &f, const std::string &name) {
    const int64_t i = f.find_tensor(name);
    if (i < 0) fail(f.name() + ": tensor " + name + " is missing");
    const GGUFTensor &t = f.tensor(i);
    if (t.n_dims > 2 || t.ne[2] != 1 || t.ne[3] != 1)
        fail(f.name() + ": tensor " + name + " has shape " + shape_str(t.ne, t.n_dims) + ", expected a matrix");
    HLoraTensor h;
    h.type = t.type;
    h.data = t.data;
    h.rows = t.ne[1];
    h.cols = t.ne[0];
    return h;
}

// token_embd / output rows the plugin trained: [n_embd, k] placed at first_row of the base.
HLoraRows rows_of(const GGUFFile &f, const char *tensor, const char *key, const HLoraBaseShape &base) {
    HLoraRows r;
    const int64_t i = f.find_tensor(tensor);
    const bool has_key = f.find_key(key) >= 0;
    if (i < 0) {
        if (has_key) fail(f.name() + ": metadata key " + key + " is set but tensor " + tensor + " is missing");
        return r;
    }
    if (!has_key) fail(f.name() + ": tensor " + std::string(tensor) + " needs metadata key " + key);
    const int64_t k = f.tensor(i).ne[1];
    r.t = &checked_tensor(f, tensor, base.n_embd, k);
    r.first_row = meta_int(f, key, 0, true);
    r.n_rows = k;
    if (k <= 0 || r.first_row + k > base.n_vocab)
        fail(f.name() + ": tensor " + std::string(tensor) + " holds rows " + std::to_string(r.first_row) + ".." +
             std::to_string(r.first_row + k - 1) + ", outside the base vocabulary of " + std::to_string(base.n_vocab));
    return r;
}

void check_finite(const GGUFFile &f, const GGUFTensor &t) {
    const type_info *ti = type_traits(t.type);
    const int64_t row = t.ne[0], rows = t.ne[1];
    const size_t bytes = row_bytes(t.type, row);
    std::vector<float> v((size_t)row);
    for (int64_t r = 0; r < rows; r++) {
        ti->to_float(t.data + (size_t)r * bytes, v.data(), row);
        for (int64_t c = 0; c < row; c++)
            if (!std::isfinite(v[(size_t)c]))
                fail(f.name() + ": tensor " + t.name + ": non-finite value at row " + std::to_string(r) + ", column " +
                     std::to_string(c));
    }
}

} // namespace

std::unique_ptr<HLoraPlugin> HLoraPlugin::load(std::unique_ptr<GGUFFile> file, const HLoraBaseShape &base,
                                               const HLoraPluginOptions &opt) {
    if (!file) fail("hlora: no file");
    const GGUFFile &f = *file;
    const std::string arch = meta_str(f, "general.architecture");
    if (arch != "hlora") fail(f.name() + ": architecture is '" + arch + "', expected 'hlora' (an H-LoRA plugin)");

    std::unique_ptr<HLoraPlugin> p(new HLoraPlugin());
    p->name_ = meta_str(f, "hlora.plugin");
    if (p->name_.empty()) fail(f.name() + ": metadata key hlora.plugin is empty");
    p->rank_ = meta_int(f, "hlora.rank", 0, true);
    p->n_experts_ = meta_int(f, "hlora.expert_count", 0, true);
    p->alpha_ = (float)meta_float(f, "hlora.alpha", 0, true);
    p->fused_ = opt.fused;
    if (p->rank_ <= 0 || p->n_experts_ <= 0)
        fail(f.name() + ": hlora.rank and hlora.expert_count must be positive (rank " + std::to_string(p->rank_) +
             ", experts " + std::to_string(p->n_experts_) + ")");
    if (p->rank_ % p->n_experts_ != 0)
        fail(f.name() + ": hlora.rank " + std::to_string(p->rank_) + " is not divisible by hlora.expert_count " +
             std::to_string(p->n_experts_) + " (each expert owns rank / experts slots)");
    for (auto [key, want] : {std::pair<const char *, int64_t>{"hlora.base.block_count", base.n_layer},
                             {"hlora.base.embedding_length", base.n_embd},
                             {"hlora.base.feed_forward_length", base.n_ff}}) {
        const int64_t got = meta_int(f, key, 0, true);
        if (got != want)
            fail(f.name() + ": metadata key " + key + " = " + std::to_string(got) + " but the base model has " +
                 std::to_string(want) + ": this plugin was made for another model");
    }

    const int64_t E = base.n_embd;
    const int64_t shapes[4][2] = {{E, base.n_qkv}, {E, E}, {E, 2 * base.n_ff}, {base.n_ff, E}}; // in, out
    for (int64_t il = 0; il < base.n_layer; il++) {
        Layer l;
        HLoraAdapter *ads[4] = {&l.attn_qkv, &l.attn_output, &l.ffn_up, &l.ffn_down};
        for (int j = 0; j < 4; j++) {
            const std::string stem = "blk." + std::to_string(il) + "." + kLinears[j];
            *ads[j] = HLoraAdapter::make(f.name() + ": " + stem, shapes[j][0], shapes[j][1], p->rank_, p->n_experts_,
                                         p->alpha_, adapter_tensor(f, stem + ".router"),
                                         adapter_tensor(f, stem + ".lora_A"), adapter_tensor(f, stem + ".lora_B"));
            if (opt.adapter_type >= 0) ads[j]->convert(opt.adapter_type);
            if (opt.pack) ads[j]->pack();
        }
        p->layers_.push_back(std::move(l));
    }

    p->token_embd_ = rows_of(f, "token_embd.weight", "hlora.token_embd.first_row", base);
    p->output_ = rows_of(f, "output.weight", "hlora.output.first_row", base);
    for (const HLoraRows *r : {&p->token_embd_, &p->output_})
        if (r->t) check_finite(f, *r->t);

    const char *mm[4] = {"mm.0.weight", "mm.0.bias", "mm.2.weight", "mm.2.bias"};
    int n_mm = 0;
    for (const char *name : mm) n_mm += f.find_tensor(name) >= 0;
    if (n_mm != 0 && n_mm != 4)
        fail(f.name() + ": the projector needs all of mm.0.weight, mm.0.bias, mm.2.weight, mm.2.bias (" +
             std::to_string(n_mm) + " of 4 present)");
    if (n_mm == 4) {
        const GGUFTensor &w0 = f.tensor(f.find_tensor("mm.0.weight"));
        const int64_t vision = w0.ne[0], d = w0.ne[1];
        p->mm_[0] = &checked_tensor(f, "mm.0.weight", vision, d);
        p->mm_[1] = &checked_tensor(f, "mm.0.bias", d, 0);
        p->mm_[2] = &checked_tensor(f, "mm.2.weight", d, E);
        p->mm_[3] = &checked_tensor(f, "mm.2.bias", E, 0);
        for (const GGUFTensor *t : p->mm_) check_finite(f, *t);
    }
    p->file_ = std::move(file);
    return p;
}

} // namespace hg
