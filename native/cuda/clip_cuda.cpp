// The CLIP tower on a CUDA device: ClipModel::encode and project (models/clip.cpp), step for
// step, on device buffers through the ops of cuda/vision_ops.h. f32 / f16 / bf16 linears run
// on the f32 tile product (bf16 with bf16-rounded activations, as the CPU pairs them); q8_0
// and the other quant types on cuda/ops.h matmul (activations quantized to q8_0 on the
// device exactly as the CPU does, int8 tensor cores past 8 rows). Weights are uploaded once;
// a call copies the pixels in and its result out and synchronizes, so a failure belongs to
// the call that caused it. One call at a time per model (a mutex): the activations are shared.
#include "cuda/clip_cuda.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "cuda/backend.h"
#include "cuda/ops.h"
#include "cuda/vision_ops.h"
#include "models/clip.h"
#include "quant/quant.h"

namespace hg {

namespace {

std::string mib(size_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

struct DevMatrix {
    int type = 0;
    int64_t rows = 0, k = 0;
    DeviceBuffer buf;
};

class CudaClip final : public ClipDevice {
  public:
    explicit CudaClip(const ClipHParams &hp);
    std::string describe() const override { return describe_; }
    void encode(const float *pixels, int64_t hidden_state, float *out) override;
    void project(int kind, const float *in, int64_t n, float *out) override;
    void encode_project(const float *pixels, int64_t hidden_state, int kind, float *out) override;
    void use_projector(int kind, const ClipProjector &pj) override;

    // filled by make_clip_cuda, which may read ClipModel's weights
    struct Layer {
        DevMatrix q, k, v, out, up, down;
        DeviceBuffer ln1_w, ln1_b, q_b, k_b, v_b, out_b, ln2_w, ln2_b, up_b, down_b;
    };
    struct Projector {
        bool present = false;
        int64_t n_mid = 0, n_out = 0;
        DevMatrix w0, w2;
        DeviceBuffer b0, b2;
    };
    DevMatrix upload(const ClipWeight &w, int64_t rows, int64_t k, const std::string &name);
    DeviceBuffer upload_f32(const ClipWeight &w, int64_t n);
    void set_embeddings(const ClipWeight &cls, const ClipWeight &pos);
    Projector upload_projector(const ClipProjector &p, const std::string &prefix);
    void allocate();
    void allocate_projector_buffers();

    DevMatrix patch_;
    DeviceBuffer pos_cls_, pre_ln_w_, pre_ln_b_;
    std::vector<Layer> layers_;
    Projector proj_[2];

  private:
    void linear(const DevMatrix &w, const float *bias, const float *x, int64_t n, float *y, bool residual,
                void *scratch, size_t scratch_bytes);
    void run_tower(const float *pixels, int64_t hidden_state); // leaves the hidden state in x_
    void run_projector(int kind, const float *in, int64_t n, float *mid, float *out, void *scratch,
                       size_t scratch_bytes);
    size_t scratch_bytes(int64_t n) const;

    ClipHParams hp_;
    std::string describe_;
    std::mutex mu_;
    CudaStream stream_;
    DeviceBuffer pixels_, cols_, x_, h_, q_, k_, v_, attn_, up_, tmp_, mid_, proj_out_, scratch_;
    size_t scratch_bytes_ = 0;
};

CudaClip::CudaClip(const ClipHParams &hp) : hp_(hp) {
    const cuda_device_props props = cuda_device_properties(0);
    char cc[64];
    std::snprintf(cc, sizeof cc, " (sm_%d%d, %.1f GiB)", props.cc_major, props.cc_minor,
                  props.total_bytes / 1073741824.0);
    describe_ = "cuda: " + props.name + cc;
    if (hp_.head_dim > 64)
        fail("cuda clip: head_dim " + std::to_string(hp_.head_dim) + " (the attention kernel takes up to 64)");
}

DevMatrix CudaClip::upload(const ClipWeight &w, int64_t rows, int64_t k, const std::string &name) {
    const int type = w.t->type; // the file's type: the packed copies are the CPU's
    const bool ok = cuda::gemm_supports(type) || (cuda::matmul_supports(type) && k % 32 == 0);
    if (!ok) {
        const type_info *ti = type_traits(type);
        fail("cuda clip: tensor " + name + " has type " + (ti ? ti->name : std::to_string(type)) +
             ", which the CUDA kernels do not read");
    }
    DevMatrix d;
    d.type = type, d.rows = rows, d.k = k;
    const size_t bytes = row_bytes(type, k) * (size_t)rows;
    d.buf = DeviceBuffer(bytes);
    cuda_copy_to_device(d.buf.get(), w.t->data, bytes);
    return d;
}

DeviceBuffer CudaClip::upload_f32(const ClipWeight &w, int64_t n) {
    DeviceBuffer b(4 * (size_t)n);
    cuda_copy_to_device(b.get(), w.f32(), 4 * (size_t)n);
    return b;
}

// One table for both: row 0 = class embedding + position 0, row p = position p (the CPU adds
// the same two floats).
void CudaClip::set_embeddings(const ClipWeight &cls, const ClipWeight &pos) {
    const int64_t E = hp_.n_embd, n = hp_.n_pos();
    std::vector<float> c((size_t)E), t((size_t)(n * E));
    type_traits(cls.t->type)->to_float(cls.t->data, c.data(), E);
    const size_t rb = row_bytes(pos.t->type, E);
    for (int64_t r = 0; r < n; r++)
        type_traits(pos.t->type)->to_float(static_cast<const uint8_t *>(pos.t->data) + r * rb, &t[(size_t)(r * E)], E);
    for (int64_t i = 0; i < E; i++) t[(size_t)i] = c[(size_t)i] + t[(size_t)i];
    pos_cls_ = DeviceBuffer(t.size() * 4);
    cuda_copy_to_device(pos_cls_.get(), t.data(), t.size() * 4);
}

size_t CudaClip::scratch_bytes(int64_t n) const {
    size_t b = cuda::matmul_scratch_bytes(patch_.type, patch_.k, n);
    for (const Layer &l : layers_)
        for (const DevMatrix *w : {&l.q, &l.k, &l.v, &l.out, &l.up, &l.down})
            b = std::max(b, cuda::matmul_scratch_bytes(w->type, w->k, n));
    for (const Projector &p : proj_)
        if (p.present)
            b = std::max({b, cuda::matmul_scratch_bytes(p.w0.type, p.w0.k, n),
                          cuda::matmul_scratch_bytes(p.w2.type, p.w2.k, n)});
    return std::max<size_t>(b, 256);
}

void CudaClip::allocate() {
    const int64_t E = hp_.n_embd, F = hp_.n_ff, n = hp_.n_pos(), P = hp_.patch_size, S = hp_.image_size;
    int64_t D = 1;
    for (const Projector &p : proj_) D = std::max({D, p.n_mid, p.n_out});
    scratch_bytes_ = scratch_bytes(n);
    const size_t floats = (size_t)(3 * S * S + hp_.n_patches() * 3 * P * P + 7 * n * E + n * F + 2 * n * D);
    size_t free_b = 0, total_b = 0;
    cuda_memory_info(free_b, total_b);
    const size_t need = 4 * floats + scratch_bytes_, reserve = 64u << 20;
    if (need + reserve > free_b)
        fail("cuda clip: the activations of one image need " + mib(need) + " of device memory, " + mib(free_b) +
             " are free");
    auto f = [](int64_t count) { return DeviceBuffer(4 * (size_t)count); };
    pixels_ = f(3 * S * S), cols_ = f(hp_.n_patches() * 3 * P * P);
    x_ = f(n * E), h_ = f(n * E), q_ = f(n * E), k_ = f(n * E), v_ = f(n * E), attn_ = f(n * E), tmp_ = f(n * E);
    up_ = f(n * F);
    allocate_projector_buffers();
}

// The projectors' rows of one image, and the products' scratch, for the projectors now held.
void CudaClip::allocate_projector_buffers() {
    int64_t mid = 1, out = 1;
    for (const Projector &p : proj_) mid = std::max(mid, p.n_mid), out = std::max(out, p.n_out);
    const int64_t np = hp_.n_patches();
    mid_ = DeviceBuffer(), proj_out_ = DeviceBuffer(), scratch_ = DeviceBuffer(); // free before allocating
    mid_ = DeviceBuffer(4 * (size_t)(np * mid)), proj_out_ = DeviceBuffer(4 * (size_t)(np * out));
    scratch_bytes_ = scratch_bytes(hp_.n_pos());
    scratch_ = DeviceBuffer(scratch_bytes_);
}

CudaClip::Projector CudaClip::upload_projector(const ClipProjector &p, const std::string &prefix) {
    Projector g;
    g.present = true, g.n_mid = p.n_mid, g.n_out = p.n_out;
    g.w0 = upload(p.w0, p.n_mid, hp_.n_embd, prefix + "0.weight");
    g.w2 = upload(p.w2, p.n_out, p.n_mid, prefix + "2.weight");
    g.b0 = upload_f32(p.b0, p.n_mid), g.b2 = upload_f32(p.b2, p.n_out);
    return g;
}

// A plugin's projector in place of the file's: uploaded whole before the old one goes, so a
// failure (a type the kernels lack, no memory) leaves the device as it was.
void CudaClip::use_projector(int kind, const ClipProjector &pj) {
    std::lock_guard<std::mutex> lock(mu_);
    Projector g = upload_projector(pj, "the plugin's mm.");
    std::swap(proj_[kind], g);
    try {
        allocate_projector_buffers();
    } catch (...) {
        std::swap(proj_[kind], g);
        allocate_projector_buffers(); // the old sizes: what was there a moment ago
        throw;
    }
}

// y = W x (+ bias); residual: y = y + (W x + bias).
void CudaClip::linear(const DevMatrix &w, const float *bias, const float *x, int64_t n, float *y, bool residual,
                      void *scratch, size_t scratch_bytes) {
    void *s = stream_.get();
    if (cuda::gemm_supports(w.type)) {
        cuda::gemm(w.type, w.buf.get(), w.rows, w.k, x, w.k, n, bias, y, w.rows, residual, s);
        return;
    }
    if (!residual) {
        cuda::matmul(w.type, w.buf.get(), w.rows, w.k, x, n, y, w.rows, false, scratch, scratch_bytes, s);
        if (bias) cuda::bias_act(y, bias, w.rows, n, cuda::BIAS_ONLY, s);
        return;
    }
    float *t = tmp_.as<float>(); // rows <= n_embd here: the residual linears end in the model width
    cuda::matmul(w.type, w.buf.get(), w.rows, w.k, x, n, t, w.rows, false, scratch, scratch_bytes, s);
    cuda::add_bias_residual(y, t, bias, w.rows, n, s);
}

void CudaClip::run_tower(const float *pixels, int64_t hidden_state) {
    const int64_t E = hp_.n_embd, F = hp_.n_ff, n = hp_.n_pos(), S = hp_.image_size, np = hp_.n_patches();
    void *s = stream_.get();
    float *x = x_.as<float>(), *h = h_.as<float>();
    cuda_copy_to_device_async(pixels_.get(), pixels, 4 * (size_t)(3 * S * S), s);
    // embeddings: class position 0, patches 1.., plus the positions, then pre_ln
    cuda::patch_im2col(pixels_.as<float>(), 3, S, S, hp_.patch_size, cols_.as<float>(), s);
    linear(patch_, nullptr, cols_.as<float>(), np, x + E, false, scratch_.get(), scratch_bytes_);
    cuda_memset_async(x, 0, 4 * (size_t)E, s);
    cuda::add_f32(x, pos_cls_.as<float>(), n * E, s);
    cuda::layer_norm(x, pre_ln_w_.as<float>(), pre_ln_b_.as<float>(), x, E, n, hp_.eps, s);
    for (int64_t il = 0; il < hidden_state; il++) { // layers past the tap are not run
        const Layer &l = layers_[(size_t)il];
        cuda::layer_norm(x, l.ln1_w.as<float>(), l.ln1_b.as<float>(), h, E, n, hp_.eps, s);
        linear(l.q, l.q_b.as<float>(), h, n, q_.as<float>(), false, scratch_.get(), scratch_bytes_);
        linear(l.k, l.k_b.as<float>(), h, n, k_.as<float>(), false, scratch_.get(), scratch_bytes_);
        linear(l.v, l.v_b.as<float>(), h, n, v_.as<float>(), false, scratch_.get(), scratch_bytes_);
        cuda::vit_attention(q_.as<float>(), k_.as<float>(), v_.as<float>(), E, n, hp_.n_head, hp_.head_dim,
                            attn_.as<float>(), E, s);
        linear(l.out, l.out_b.as<float>(), attn_.as<float>(), n, x, true, scratch_.get(), scratch_bytes_);
        cuda::layer_norm(x, l.ln2_w.as<float>(), l.ln2_b.as<float>(), h, E, n, hp_.eps, s);
        linear(l.up, nullptr, h, n, up_.as<float>(), false, scratch_.get(), scratch_bytes_);
        cuda::bias_act(up_.as<float>(), l.up_b.as<float>(), F, n, cuda::BIAS_QUICK_GELU, s);
        linear(l.down, l.down_b.as<float>(), up_.as<float>(), n, x, true, scratch_.get(), scratch_bytes_);
    }
}

void CudaClip::run_projector(int kind, const float *in, int64_t n, float *mid, float *out, void *scratch,
                             size_t scratch_bytes) {
    const Projector &p = proj_[kind];
    linear(p.w0, nullptr, in, n, mid, false, scratch, scratch_bytes);
    cuda::bias_act(mid, p.b0.as<float>(), p.n_mid, n, cuda::BIAS_GELU_ERF, stream_.get());
    linear(p.w2, p.b2.as<float>(), mid, n, out, false, scratch, scratch_bytes);
}

void CudaClip::encode(const float *pixels, int64_t hidden_state, float *out) {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t E = hp_.n_embd;
    run_tower(pixels, hidden_state);
    cuda_copy_to_host_async(out, x_.as<float>() + E, 4 * (size_t)(hp_.n_patches() * E), stream_.get());
    stream_.synchronize();
}

void CudaClip::project(int kind, const float *in, int64_t n, float *out) {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t E = hp_.n_embd, M = proj_[kind].n_mid, D = proj_[kind].n_out;
    void *s = stream_.get();
    // any number of rows: buffers of this call's size
    DeviceBuffer din(4 * (size_t)(n * E)), dmid(4 * (size_t)(n * M)), dout(4 * (size_t)(n * D));
    const size_t sb = scratch_bytes(n);
    DeviceBuffer scratch(sb);
    cuda_copy_to_device_async(din.get(), in, 4 * (size_t)(n * E), s);
    run_projector(kind, din.as<float>(), n, dmid.as<float>(), dout.as<float>(), scratch.get(), sb);
    cuda_copy_to_host_async(out, dout.get(), 4 * (size_t)(n * D), s);
    stream_.synchronize();
}

void CudaClip::encode_project(const float *pixels, int64_t hidden_state, int kind, float *out) {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t E = hp_.n_embd, np = hp_.n_patches();
    run_tower(pixels, hidden_state);
    run_projector(kind, x_.as<float>() + E, np, mid_.as<float>(), proj_out_.as<float>(), scratch_.get(),
                  scratch_bytes_);
    // the language model's input embeddings are filled from the host for now
    cuda_copy_to_host_async(out, proj_out_.get(), 4 * (size_t)(np * proj_[kind].n_out), stream_.get());
    stream_.synchronize();
}

} // namespace

std::unique_ptr<ClipDevice> make_clip_cuda(const ClipModel &m) {
    cuda_set_device(0);
    const ClipHParams &hp = m.hp_;
    std::unique_ptr<CudaClip> d(new CudaClip(hp));
    // the weights' bytes, said up front when they cannot fit
    size_t bytes = 0;
    auto count = [&](const ClipWeight &w) { bytes += (size_t)w.t->bytes; };
    count(m.patch_embd_);
    for (const ClipLayer &l : m.layers_)
        for (const ClipWeight *w : {&l.attn_q_w, &l.attn_k_w, &l.attn_v_w, &l.attn_out_w, &l.ffn_up_w, &l.ffn_down_w})
            count(*w);
    for (const ClipProjector &p : m.proj_)
        if (p.present) count(p.w0), count(p.w2);
    size_t free_b = 0, total_b = 0;
    cuda_memory_info(free_b, total_b);
    if (bytes + (256u << 20) > free_b)
        fail("cuda clip: the weights need " + mib(bytes) + " of device memory (plus 256 MiB reserve), " + mib(free_b) +
             " of " + mib(total_b) + " are free");

    const int64_t E = hp.n_embd, F = hp.n_ff, P = hp.patch_size;
    d->patch_ = d->upload(m.patch_embd_, E, 3 * P * P, "v.patch_embd.weight");
    d->set_embeddings(m.class_embd_, m.position_embd_);
    d->pre_ln_w_ = d->upload_f32(m.pre_ln_w_, E), d->pre_ln_b_ = d->upload_f32(m.pre_ln_b_, E);
    for (size_t il = 0; il < m.layers_.size(); il++) {
        const ClipLayer &l = m.layers_[il];
        const std::string p = "v.blk." + std::to_string(il) + ".";
        CudaClip::Layer g;
        g.q = d->upload(l.attn_q_w, E, E, p + "attn_q.weight");
        g.k = d->upload(l.attn_k_w, E, E, p + "attn_k.weight");
        g.v = d->upload(l.attn_v_w, E, E, p + "attn_v.weight");
        g.out = d->upload(l.attn_out_w, E, E, p + "attn_out.weight");
        g.up = d->upload(l.ffn_up_w, F, E, p + "ffn_up.weight");
        g.down = d->upload(l.ffn_down_w, E, F, p + "ffn_down.weight");
        g.ln1_w = d->upload_f32(l.ln1_w, E), g.ln1_b = d->upload_f32(l.ln1_b, E);
        g.ln2_w = d->upload_f32(l.ln2_w, E), g.ln2_b = d->upload_f32(l.ln2_b, E);
        g.q_b = d->upload_f32(l.attn_q_b, E), g.k_b = d->upload_f32(l.attn_k_b, E);
        g.v_b = d->upload_f32(l.attn_v_b, E), g.out_b = d->upload_f32(l.attn_out_b, E);
        g.up_b = d->upload_f32(l.ffn_up_b, F), g.down_b = d->upload_f32(l.ffn_down_b, E);
        d->layers_.push_back(std::move(g));
    }
    for (int kind = 0; kind < 2; kind++) {
        const ClipProjector &p = m.proj_[kind];
        if (!p.present) continue;
        const std::string pre = kind == 0 ? "mm." : "mm.gen.";
        d->proj_[kind] = d->upload_projector(p, pre);
    }
    d->allocate();
    return d;
}

} // namespace hg
