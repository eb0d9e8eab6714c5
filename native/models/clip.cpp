#include "models/clip.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "models/gguf_meta.h"
#include "ops/gelu.h"
#include "ops/layer_norm.h"
#include "ops/matmul.h"
#include "ops/patch_embed.h"
#include "ops/vit_attention.h"
#include "quant/quant.h"
#include "models/device_choice.h"
#ifdef HEALTHGPT_HAVE_CUDA
#include "cuda/clip_cuda.h"
#endif

namespace hg {

namespace {

// Upper bound for every size read from the file: keeps the products below far from
// overflowing int64 and refuses absurd files before any allocation (tighter than
// gguf_meta.h's, which is for the language model).
constexpr int64_t kMaxTowerDim = int64_t(1) << 20;

const GGUFKV *find_kv(const GGUFFile &f, const char *key) {
    const int64_t i = f.find_key(key);
    return i < 0 ? nullptr : &f.kv(i);
}

// the tower's sizes are bounded tighter than the decoder's
int64_t tower_int(const GGUFFile &f, const char *key, int64_t fallback, bool required) {
    return meta_int(f, key, fallback, required, kMaxTowerDim);
}

bool meta_bool(const GGUFFile &f, const char *key, bool fallback) {
    const GGUFKV *kv = find_kv(f, key);
    if (!kv) return fallback;
    if (kv->type != HG_GGUF_BOOL)
        fail(f.name() + ": metadata key " + key + " is a " + gguf_type_name(kv->type) + ", expected a bool");
    return kv->u != 0;
}

// The deepest entry of an integer array (clip.vision.feature_layer); -1 when absent.
int64_t meta_max_of_array(const GGUFFile &f, const char *key) {
    const int64_t i = f.find_key(key);
    if (i < 0) return -1;
    const GGUFKV &kv = f.kv(i);
    if (kv.type != HG_GGUF_ARRAY) fail(f.name() + ": metadata key " + key + " is not an array");
    const hg_gguf_value_type et = kv.arr_type;
    const bool is_signed = et == HG_GGUF_INT8 || et == HG_GGUF_INT16 || et == HG_GGUF_INT32 || et == HG_GGUF_INT64;
    const bool is_unsigned =
        et == HG_GGUF_UINT8 || et == HG_GGUF_UINT16 || et == HG_GGUF_UINT32 || et == HG_GGUF_UINT64;
    if (!is_signed && !is_unsigned)
        fail(f.name() + ": metadata key " + key + " holds " + gguf_type_name(et) + ", expected integers");
    if (kv.arr_n == 0) fail(f.name() + ": metadata key " + key + " is empty");
    int64_t best = -1;
    for (uint64_t j = 0; j < kv.arr_n; j++) {
        const int64_t v = is_signed ? f.arr_i64(i, j) : (int64_t)std::min<uint64_t>(f.arr_u64(i, j), kMaxTowerDim + 1);
        if (v < 0 || v > kMaxTowerDim)
            fail(f.name() + ": metadata key " + key + "[" + std::to_string(j) + "] = " + std::to_string(v) +
                 " is out of range (hidden-state indices are >= 0)");
        best = std::max(best, v);
    }
    return best;
}

// Looks a tensor up and checks its shape exactly (ggml order, unused dims 1). A vector (norm,
// bias) must be f32, as every converter keeps 1-D tensors; a matrix must have a type the
// matmul multiplies, with rows of whole blocks; a table (class and position embeddings) any
// type that converts to float row by row.
enum class Kind { vector, matrix, table };
ClipWeight tensor(const GGUFFile &f, const std::string &name, std::initializer_list<int64_t> shape, Kind kind) {
    const int64_t i = f.find_tensor(name);
    if (i < 0) fail(f.name() + ": tensor " + name + " is missing");
    const GGUFTensor &t = f.tensor(i);
    int64_t want[4] = {1, 1, 1, 1};
    int n = 0;
    for (int64_t d : shape) want[n++] = d;
    if (t.n_dims > n || t.ne[0] != want[0] || t.ne[1] != want[1] || t.ne[2] != want[2] || t.ne[3] != want[3])
        fail(f.name() + ": tensor " + name + " has shape " + shape_str(t.ne, t.n_dims) + ", expected " +
             shape_str(want, n));
    const type_info *ti = type_traits(t.type);
    if (kind == Kind::vector) {
        if (t.type != HG_TYPE_F32)
            fail(f.name() + ": tensor " + name + " has type " + type_name(t.type) + ", expected f32");
    } else {
        if (!ti || !ti->supported || !ti->to_float)
            fail(HG_ERR_UNSUPPORTED,
                 f.name() + ": tensor " + name + " has type " + type_name(t.type) + ", which this engine cannot read");
        // a matrix row: every dim but the last (the conv weight's is channels x patch x patch)
        int64_t k = 1;
        for (int d = 0; d < (kind == Kind::matrix ? n - 1 : 1); d++) k *= want[d];
        const int64_t act_block = type_traits(ti->vec_dot_type)->block_size;
        if (k % ti->block_size != 0 || (kind == Kind::matrix && k % act_block != 0))
            fail(f.name() + ": tensor " + name + " has rows of " + std::to_string(k) +
                 " values, not a whole number of " + ti->name + " blocks");
    }
    return ClipWeight{&t};
}

// Runs fn(r0, r1) over [0, n) rows split among the pool's threads.
template <class Fn> void for_rows(ThreadPool &pool, int64_t n, Fn &&fn) {
    pool.run([&](int ith, int nth) {
        int64_t r0, r1;
        split_range(n, ith, nth, r0, r1);
        if (r0 < r1) fn(r0, r1);
    });
}

// Y = W X + b over n token-major rows.
void linear(ThreadPool &pool, const ClipWeight &w, const ClipWeight &b, int64_t rows, int64_t k, const float *x,
            int64_t n, float *y) {
    matmul(pool, w.type(), w.data(), rows, k, x, n, y);
    for_rows(pool, n, [&](int64_t r0, int64_t r1) { add_bias(y + r0 * rows, b.f32(), rows, r1 - r0); });
}

void dequantize_rows(const ClipWeight &w, int64_t row_len, int64_t n_rows, std::vector<float> &out) {
    const type_info *ti = type_traits(w.type());
    const size_t rb = row_bytes(w.type(), row_len);
    out.resize((size_t)(row_len * n_rows));
    for (int64_t r = 0; r < n_rows; r++)
        ti->to_float(static_cast<const uint8_t *>(w.data()) + r * rb, &out[(size_t)(r * row_len)], row_len);
}

// The mlp2x_gelu under `p` ("mm.", "mm.gen."): absent (present false) when p0.weight is;
// else whole, taking n_embd values, and square when `square` (a vision file's).
ClipProjector read_projector(const GGUFFile &f, const std::string &p, int64_t n_embd, bool square) {
    ClipProjector pj;
    const int64_t i0 = f.find_tensor(p + "0.weight");
    if (i0 < 0) return pj;
    pj.n_mid = f.tensor(i0).ne[1];
    if (pj.n_mid <= 0 || pj.n_mid > kMaxTowerDim)
        fail(f.name() + ": tensor " + p + "0.weight has " + std::to_string(pj.n_mid) + " rows");
    pj.n_out = pj.n_mid;
    if (!square) {
        const int64_t i2 = f.find_tensor(p + "2.weight");
        if (i2 < 0) fail(f.name() + ": tensor " + p + "2.weight is missing");
        pj.n_out = f.tensor(i2).ne[1];
        if (pj.n_out <= 0 || pj.n_out > kMaxTowerDim)
            fail(f.name() + ": tensor " + p + "2.weight has " + std::to_string(pj.n_out) + " rows");
    }
    pj.w0 = tensor(f, p + "0.weight", {n_embd, pj.n_mid}, Kind::matrix);
    pj.b0 = tensor(f, p + "0.bias", {pj.n_mid}, Kind::vector);
    pj.w2 = tensor(f, p + "2.weight", {pj.n_mid, pj.n_out}, Kind::matrix);
    pj.b2 = tensor(f, p + "2.bias", {pj.n_out}, Kind::vector);
    pj.present = true;
    return pj;
}

} // namespace

std::unique_ptr<ClipModel> ClipModel::load(std::unique_ptr<GGUFFile> file, ThreadPool *pool, bool repack, int gpu) {
    if (!file) fail("clip: no file");
    const GGUFFile &f = *file;
    const int64_t arch = f.find_key("general.architecture");
    if (arch < 0) fail(f.name() + ": metadata key general.architecture is missing");
    if (f.kv_str(arch) != "clip")
        fail(f.name() + ": architecture is '" + std::string(f.kv_str(arch)) + "', expected 'clip'");
    if (!meta_bool(f, "clip.has_vision_encoder", true))
        fail(f.name() + ": clip.has_vision_encoder is false: the file holds no vision tower");
    if (meta_bool(f, "clip.use_gelu", false))
        fail(HG_ERR_UNSUPPORTED, f.name() + ": clip.use_gelu is true; only quick_gelu towers (CLIP ViT) are supported");
    if (const GGUFKV *pt = find_kv(f, "clip.projector_type")) {
        if (pt->type != HG_GGUF_STRING || f.kv_str(f.find_key("clip.projector_type")) != "mlp")
            fail(f.name() + ": clip.projector_type must be 'mlp' (mlp2x_gelu)");
    }

    std::unique_ptr<ClipModel> m(new ClipModel());
    ClipHParams &hp = m->hp_;
    hp.image_size = tower_int(f, "clip.vision.image_size", 0, true);
    hp.patch_size = tower_int(f, "clip.vision.patch_size", 0, true);
    hp.n_embd = tower_int(f, "clip.vision.embedding_length", 0, true);
    hp.n_ff = tower_int(f, "clip.vision.feed_forward_length", 0, true);
    hp.n_layer = tower_int(f, "clip.vision.block_count", 0, true);
    hp.n_head = tower_int(f, "clip.vision.attention.head_count", 0, true);
    {
        const int64_t i = f.find_key("clip.vision.attention.layer_norm_epsilon");
        if (i < 0) fail(f.name() + ": metadata key clip.vision.attention.layer_norm_epsilon is missing");
        const double eps = f.kv_f64(i);
        if (!(eps > 0 && eps < 1)) fail(f.name() + ": clip.vision.attention.layer_norm_epsilon must be in (0, 1)");
        hp.eps = (float)eps;
    }
    for (auto [key, v] : {std::pair<const char *, int64_t>{"clip.vision.image_size", hp.image_size},
                          {"clip.vision.patch_size", hp.patch_size},
                          {"clip.vision.embedding_length", hp.n_embd},
                          {"clip.vision.feed_forward_length", hp.n_ff},
                          {"clip.vision.attention.head_count", hp.n_head}})
        if (v <= 0) fail(f.name() + ": metadata key " + key + " is 0");
    if (hp.image_size % hp.patch_size != 0)
        fail(f.name() + ": clip.vision.image_size " + std::to_string(hp.image_size) +
             " is not a multiple of clip.vision.patch_size " + std::to_string(hp.patch_size));
    if (hp.n_embd % hp.n_head != 0)
        fail(f.name() + ": clip.vision.embedding_length " + std::to_string(hp.n_embd) +
             " is not a multiple of clip.vision.attention.head_count " + std::to_string(hp.n_head));
    hp.head_dim = hp.n_embd / hp.n_head;
    for (int c = 0; c < 3; c++) {
        const int64_t im = f.find_key("clip.vision.image_mean"), is = f.find_key("clip.vision.image_std");
        if (im >= 0 && f.kv_array(im).arr_n == 3) hp.image_mean[c] = (float)f.arr_f64(im, (uint64_t)c);
        if (is >= 0 && f.kv_array(is).arr_n == 3) hp.image_std[c] = (float)f.arr_f64(is, (uint64_t)c);
    }

    // The taps (see clip.h for the rule).
    const int64_t feature_layer = meta_max_of_array(f, "clip.vision.feature_layer");
    if (feature_layer >= 0)
        hp.comprehension_layer = feature_layer;
    else if (meta_bool(f, "clip.has_llava_projector", false))
        hp.comprehension_layer = hp.n_layer;
    else
        hp.comprehension_layer = hp.n_layer - 1;
    hp.generation_layer = tower_int(f, "clip.vision.generation_feature_layer", 1, false);
    if (hp.comprehension_layer < 0 || hp.comprehension_layer > hp.n_layer)
        fail(f.name() + ": the comprehension tap is hidden state " + std::to_string(hp.comprehension_layer) +
             " but the file holds " + std::to_string(hp.n_layer) + " layers (clip.vision.block_count)");
    if (hp.generation_layer > hp.n_layer)
        fail(f.name() + ": clip.vision.generation_feature_layer " + std::to_string(hp.generation_layer) +
             " is past the " + std::to_string(hp.n_layer) + " layers the file holds");

    const int64_t E = hp.n_embd, F = hp.n_ff, P = hp.patch_size;
    m->patch_embd_ = tensor(f, "v.patch_embd.weight", {P, P, 3, E}, Kind::matrix);
    m->class_embd_ = tensor(f, "v.class_embd", {E}, Kind::table);
    m->position_embd_ = tensor(f, "v.position_embd.weight", {E, hp.n_pos()}, Kind::table);
    m->pre_ln_w_ = tensor(f, "v.pre_ln.weight", {E}, Kind::vector);
    m->pre_ln_b_ = tensor(f, "v.pre_ln.bias", {E}, Kind::vector);
    for (int64_t il = 0; il < hp.n_layer; il++) {
        const std::string p = "v.blk." + std::to_string(il) + ".";
        ClipLayer l;
        l.ln1_w = tensor(f, p + "ln1.weight", {E}, Kind::vector);
        l.ln1_b = tensor(f, p + "ln1.bias", {E}, Kind::vector);
        l.attn_q_w = tensor(f, p + "attn_q.weight", {E, E}, Kind::matrix);
        l.attn_q_b = tensor(f, p + "attn_q.bias", {E}, Kind::vector);
        l.attn_k_w = tensor(f, p + "attn_k.weight", {E, E}, Kind::matrix);
        l.attn_k_b = tensor(f, p + "attn_k.bias", {E}, Kind::vector);
        l.attn_v_w = tensor(f, p + "attn_v.weight", {E, E}, Kind::matrix);
        l.attn_v_b = tensor(f, p + "attn_v.bias", {E}, Kind::vector);
        l.attn_out_w = tensor(f, p + "attn_out.weight", {E, E}, Kind::matrix);
        l.attn_out_b = tensor(f, p + "attn_out.bias", {E}, Kind::vector);
        l.ln2_w = tensor(f, p + "ln2.weight", {E}, Kind::vector);
        l.ln2_b = tensor(f, p + "ln2.bias", {E}, Kind::vector);
        // llama.cpp's legacy converter (convert_image_encoder_to_gguf.py, which wrote the
        // released LLaVA-1.5 mmproj files) names fc1 ffn_down and fc2 ffn_up; like clip.cpp,
        // take the names swapped when ffn_down is the E -> F matrix (E != F, so the shapes tell).
        std::string up = "ffn_up", down = "ffn_down";
        const int64_t di = f.find_tensor(p + "ffn_down.weight");
        if (E != F && di >= 0 && f.tensor(di).ne[0] == E && f.tensor(di).ne[1] == F) std::swap(up, down);
        l.ffn_up_w = tensor(f, p + up + ".weight", {E, F}, Kind::matrix);
        l.ffn_up_b = tensor(f, p + up + ".bias", {F}, Kind::vector);
        l.ffn_down_w = tensor(f, p + down + ".weight", {F, E}, Kind::matrix);
        l.ffn_down_b = tensor(f, p + down + ".bias", {E}, Kind::vector);
        m->layers_.push_back(l);
    }

    // Projectors: optional each (a bare tower encodes, and project() says which is absent);
    // a present one must be whole.
    const char *prefixes[2] = {"mm.", "mm.gen."};
    for (int kind = 0; kind < 2; kind++) m->proj_[kind] = read_projector(f, prefixes[kind], E, true);
    m->file_ = std::move(file);
    m->repack_ = repack;
    if (gpu != HG_GPU_OFF) m->use_device(gpu);
    if (repack && !m->device_) {
        // every product here runs over all the image's positions: packed f16 pays too
        std::vector<ClipWeight *> ws;
        for (ClipLayer &l : m->layers_)
            for (ClipWeight *w : {&l.attn_q_w, &l.attn_k_w, &l.attn_v_w, &l.attn_out_w, &l.ffn_up_w, &l.ffn_down_w})
                ws.push_back(w);
        for (ClipProjector &pj : m->proj_)
            if (pj.present) ws.push_back(&pj.w0), ws.push_back(&pj.w2);
        std::vector<const GGUFTensor *> ts;
        for (ClipWeight *w : ws) ts.push_back(w->t);
        const std::vector<const void *> packed = m->packed_.pack(*m->file_, ts, pool, true);
        for (size_t i = 0; i < ws.size(); i++) ws[i]->packed = packed[i];
    }
    return m;
}

// The device reads the weights in their file types from the mapping (not the packed copies).
void ClipModel::use_device(int gpu) {
    std::string why = cuda_unavailable();
#ifdef HEALTHGPT_HAVE_CUDA
    if (why.empty()) {
        try {
            device_ = make_clip_cuda(*this);
            backend_ = device_->describe();
            // the device holds its own copies: the mapping's pages go back (read again from
            // the file only if the CPU ever touches them), one copy of the tower stays resident
            file_->release_tensors();
            return;
        } catch (const Error &e) {
            if (gpu == HG_GPU_CUDA) throw;
            why = e.what();
        }
    }
#endif
    backend_ = cpu_backend(gpu, "clip: ", why);
}

const ClipProjector &ClipModel::projector(int kind) const {
    if (kind != CLIP_PROJECTOR_COMPREHENSION && kind != CLIP_PROJECTOR_GENERATION)
        fail("clip: projector " + std::to_string(kind) + " is not 0 (comprehension) or 1 (generation)");
    return proj_[kind];
}

const ClipProjector &ClipModel::present_projector(int kind) const {
    const ClipProjector &pj = projector(kind);
    if (!pj.present)
        fail(std::string("clip project: the file has no ") + (kind == CLIP_PROJECTOR_COMPREHENSION
                                                                  ? "comprehension projector (mm.0, mm.2)"
                                                                  : "generation projector (mm.gen.0, mm.gen.2)"));
    return pj;
}

int64_t ClipModel::tap_layer(int tap) const {
    if (tap == CLIP_TAP_COMPREHENSION) return hp_.comprehension_layer;
    if (tap == CLIP_TAP_GENERATION) return hp_.generation_layer;
    fail("clip: tap " + std::to_string(tap) + " is not 0 (comprehension) or 1 (generation)");
}

void ClipModel::check_encode(const float *pixels, int64_t hidden_state, const float *out) const {
    if (!pixels || !out) fail("clip encode: null pixels or output");
    if (hidden_state < 0 || hidden_state > hp_.n_layer)
        fail("clip encode: hidden state " + std::to_string(hidden_state) + " is outside 0.." +
             std::to_string(hp_.n_layer) + " (the layers the file holds)");
}

void ClipModel::encode(ThreadPool &pool, const float *pixels, int64_t hidden_state, float *out) const {
    const ClipHParams &hp = hp_;
    check_encode(pixels, hidden_state, out);
    if (device_) return device_->encode(pixels, hidden_state, out);
    const int64_t E = hp.n_embd, F = hp.n_ff, n = hp.n_pos(), S = hp.image_size;
    std::vector<float> x((size_t)(n * E)), h((size_t)(n * E)), q((size_t)(n * E)), k((size_t)(n * E)),
        v((size_t)(n * E)), attn((size_t)(n * E)), up((size_t)(n * F));

    // Embeddings: class position 0, patches 1..; then the learned positions, then pre_ln.
    patch_embed(pool, patch_embd_.type(), patch_embd_.data(), E, pixels, 3, S, S, hp.patch_size, &x[(size_t)E]);
    {
        std::vector<float> cls, pos;
        dequantize_rows(class_embd_, E, 1, cls);
        dequantize_rows(position_embd_, E, n, pos);
        std::copy(cls.begin(), cls.end(), x.begin());
        for (size_t i = 0; i < x.size(); i++) x[i] += pos[i];
    }
    for_rows(pool, n, [&](int64_t r0, int64_t r1) {
        layer_norm(&x[(size_t)(r0 * E)], pre_ln_w_.f32(), pre_ln_b_.f32(), &x[(size_t)(r0 * E)], E, r1 - r0, hp.eps);
    });

    auto add_residual = [&](const std::vector<float> &delta) {
        for_rows(pool, n, [&](int64_t r0, int64_t r1) {
            for (int64_t i = r0 * E; i < r1 * E; i++) x[(size_t)i] += delta[(size_t)i];
        });
    };
    auto norm = [&](const ClipWeight &w, const ClipWeight &b) {
        for_rows(pool, n, [&](int64_t r0, int64_t r1) {
            layer_norm(&x[(size_t)(r0 * E)], w.f32(), b.f32(), &h[(size_t)(r0 * E)], E, r1 - r0, hp.eps);
        });
    };

    for (int64_t il = 0; il < hidden_state; il++) {
        const ClipLayer &l = layers_[(size_t)il];
        norm(l.ln1_w, l.ln1_b);
        linear(pool, l.attn_q_w, l.attn_q_b, E, E, h.data(), n, q.data());
        linear(pool, l.attn_k_w, l.attn_k_b, E, E, h.data(), n, k.data());
        linear(pool, l.attn_v_w, l.attn_v_b, E, E, h.data(), n, v.data());
        vit_attention(pool, q.data(), k.data(), v.data(), E, n, hp.n_head, hp.head_dim, attn.data(), E);
        linear(pool, l.attn_out_w, l.attn_out_b, E, E, attn.data(), n, h.data());
        add_residual(h);

        norm(l.ln2_w, l.ln2_b);
        matmul(pool, l.ffn_up_w.type(), l.ffn_up_w.data(), F, E, h.data(), n, up.data());
        for_rows(pool, n,
                 [&](int64_t r0, int64_t r1) { bias_quick_gelu(&up[(size_t)(r0 * F)], l.ffn_up_b.f32(), F, r1 - r0); });
        linear(pool, l.ffn_down_w, l.ffn_down_b, E, F, up.data(), n, h.data());
        add_residual(h);
    }
    std::copy(x.begin() + E, x.end(), out); // the class position dropped
}

void ClipModel::project(ThreadPool &pool, int kind, const float *in, int64_t n, float *out) const {
    const ClipProjector &pj = present_projector(kind);
    if (!in || !out || n <= 0) fail("clip project: no input rows (n = " + std::to_string(n) + ")");
    if (device_) return device_->project(kind, in, n, out);
    const int64_t E = hp_.n_embd, D = pj.n_mid;
    std::vector<float> mid((size_t)(n * D));
    matmul(pool, pj.w0.type(), pj.w0.data(), D, E, in, n, mid.data());
    for_rows(pool, n, [&](int64_t r0, int64_t r1) { bias_gelu_erf(&mid[(size_t)(r0 * D)], pj.b0.f32(), D, r1 - r0); });
    linear(pool, pj.w2, pj.b2, pj.n_out, D, mid.data(), n, out);
}

bool ClipModel::use_projector(int kind, std::unique_ptr<GGUFFile> file, ThreadPool *pool) {
    projector(kind); // checks kind
    if (!file) fail("clip: no projector file");
    ClipProjector pj = read_projector(*file, "mm.", hp_.n_embd, false);
    if (!pj.present) return false;
    std::unique_ptr<PackedWeights> packed(new PackedWeights());
    if (device_) device_->use_projector(kind, pj); // first: a failure leaves the old projector in place
    if (repack_ && !device_) {
        const std::vector<const void *> p = packed->pack(*file, {pj.w0.t, pj.w2.t}, pool, true);
        pj.w0.packed = p[0];
        pj.w2.packed = p[1];
    }
    proj_[kind] = pj;
    proj_file_[kind] = std::move(file);
    proj_packed_[kind] = std::move(packed);
    return true;
}

void ClipModel::encode_project(ThreadPool &pool, const float *pixels, int64_t hidden_state, int kind,
                               float *out) const {
    check_encode(pixels, hidden_state, out);
    present_projector(kind);
    if (device_) return device_->encode_project(pixels, hidden_state, kind, out);
    std::vector<float> features((size_t)(hp_.n_patches() * hp_.n_embd));
    encode(pool, pixels, hidden_state, features.data());
    project(pool, kind, features.data(), hp_.n_patches(), out);
}

} // namespace hg
