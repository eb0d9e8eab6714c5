// The VQGAN on a CUDA device: VqganModel::decode and encode (models/vqgan.cpp) step for step
// on device buffers through cuda/vision_ops.h. Decode: the indices go in, the final CHW image
// comes out; encode: the image goes in, the argmax indices (and the logits when asked) come
// out. Every activation between stays on the device in four buffers of the largest
// activation's size (a ResBlock reads one and writes another through two scratch ones) plus
// the attention block's q, k, v and scores. One call at a time per model (a mutex).
#include "cuda/vqgan_cuda.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "cuda/backend.h"
#include "cuda/vision_ops.h"
#include "models/vqgan.h"

namespace hg {

namespace {

constexpr int64_t kGroups = 32; // taming's Normalize, as models/vqgan.cpp
constexpr float kNormEps = 1e-6f;

std::string mib(size_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

DeviceBuffer upload_floats(const std::vector<float> &v) {
    DeviceBuffer b(4 * v.size());
    cuda_copy_to_device(b.get(), v.data(), 4 * v.size());
    return b;
}

struct Conv {
    int type = 0;
    cuda::conv2d_shape shape;
    DeviceBuffer w, b;
};
struct Norm {
    DeviceBuffer gamma, beta;
};
struct Res {
    int64_t c_in = 0, c_out = 0;
    Norm n1, n2;
    Conv c1, c2, nin;
};
struct Attn {
    int64_t c = 0;
    Norm n;
    Conv q, k, v, proj;
};
struct Level {
    std::vector<Res> block;
    std::vector<Attn> attn;
    bool resample = false;
    Conv up; // the decoder's upsample conv or the encoder's downsample conv
};

Conv conv(const VqganConv &c) {
    Conv d;
    d.type = c.w.type;
    d.shape.c_in = c.w.c_in, d.shape.c_out = c.w.c_out, d.shape.kh = c.w.kh, d.shape.kw = c.w.kw;
    d.shape.pad_top = d.shape.pad_left = d.shape.pad_bottom = d.shape.pad_right = c.w.kh / 2; // "same"
    const size_t bytes = (size_t)(c.w.c_out * c.w.kh * c.w.kw * c.w.c_in) * (c.w.type == HG_TYPE_F32 ? 4 : 2);
    d.w = DeviceBuffer(bytes);
    cuda_copy_to_device(d.w.get(), c.w.data, bytes);
    d.b = upload_floats(c.bias);
    return d;
}
Norm norm(const VqganNorm &n) { return Norm{upload_floats(n.gamma), upload_floats(n.beta)}; }
Res res(const VqganResBlock &b) {
    Res r;
    r.c_in = b.c_in, r.c_out = b.c_out;
    r.n1 = norm(b.norm1), r.n2 = norm(b.norm2);
    r.c1 = conv(b.conv1), r.c2 = conv(b.conv2);
    if (b.c_in != b.c_out) r.nin = conv(b.nin_shortcut);
    return r;
}
Attn attn(const VqganAttnBlock &a) {
    Attn r;
    r.c = a.c, r.n = norm(a.norm);
    r.q = conv(a.q), r.k = conv(a.k), r.v = conv(a.v), r.proj = conv(a.proj_out);
    return r;
}

} // namespace

class CudaVqgan final : public VqganDevice {
  public:
    explicit CudaVqgan(const VqganModel &m);
    std::string describe() const override { return describe_; }
    void decode(const int32_t *indices, float *image_chw) override;
    bool has_encoder() const override { return has_encoder_; }
    void encode(const float *image_chw, int32_t *indices, float *logits) override;

  private:
    void run_conv(const Conv &c, const float *x, int64_t h, int64_t w, float *y, bool accumulate = false);
    void norm_swish(const Norm &n, const float *x, float *y, int64_t n_pos, int64_t c, bool swish);
    // x -> y through t1, t2 (four distinct buffers)
    void resblock(const Res &b, const float *x, float *y, float *t1, float *t2, int64_t h, int64_t w);
    // in place on x, through t
    void attnblock(const Attn &a, float *x, float *t, int64_t h, int64_t w);

    VqganHParams hp_;
    std::string describe_;
    std::mutex mu_;
    CudaStream stream_;
    int embed_type_ = 0;
    DeviceBuffer embed_;
    Conv post_quant_, conv_in_, conv_out_;
    Res mid1_, mid2_;
    Attn mid_attn_;
    Norm norm_out_;
    std::vector<Level> up_;
    // the encoder (when the file has one)
    bool has_encoder_ = false;
    Conv enc_conv_in_, enc_conv_out_, quant_conv_, proj_;
    Res enc_mid1_, enc_mid2_;
    Attn enc_mid_attn_;
    Norm enc_norm_out_;
    std::vector<Level> down_;
    DeviceBuffer slot_[4], q_, k_, v_, scores_, gn_scratch_, idx_, logits_;
};

CudaVqgan::CudaVqgan(const VqganModel &m) : hp_(m.hp_) {
    const cuda_device_props props = cuda_device_properties(0);
    char cc[64];
    std::snprintf(cc, sizeof cc, " (sm_%d%d, %.1f GiB)", props.cc_major, props.cc_minor,
                  props.total_bytes / 1073741824.0);
    describe_ = "cuda: " + props.name + cc;

    // sizes first: the largest activation and attention, walking the decoder's geometry
    const int64_t L = (int64_t)hp_.ch_mult.size(), lat = hp_.latent();
    int64_t c = hp_.ch * hp_.ch_mult[(size_t)(L - 1)];
    int64_t act = lat * lat * std::max({hp_.embed_dim, hp_.z_channels, c}), att_nc = lat * lat * c,
            att_nn = lat * lat * lat * lat;
    for (int64_t lv = L - 1; lv >= 0; lv--) {
        const int64_t r = lat << (L - 1 - lv), c_out = hp_.ch * hp_.ch_mult[(size_t)lv];
        act = std::max(act, r * r * std::max(c, c_out));
        if (!m.up_[(size_t)lv].attn.empty()) {
            att_nc = std::max(att_nc, r * r * c_out);
            att_nn = std::max(att_nn, r * r * r * r);
        }
        if (m.up_[(size_t)lv].resample) act = std::max(act, 4 * r * r * c_out);
        c = c_out;
    }
    act = std::max(act, hp_.resolution * hp_.resolution * hp_.out_ch);
    has_encoder_ = m.has_encoder_;
    if (has_encoder_) { // the encoder's geometry, level 0 (full resolution) down
        const int64_t R = hp_.resolution;
        act = std::max(act, R * R * std::max(hp_.in_channels, hp_.ch));
        for (int64_t lv = 0; lv < L; lv++) {
            const int64_t r = R >> lv, c_in = hp_.ch * (lv == 0 ? 1 : hp_.ch_mult[(size_t)lv - 1]),
                          c_out = hp_.ch * hp_.ch_mult[(size_t)lv];
            act = std::max(act, r * r * std::max(c_in, c_out));
            if (!m.down_[(size_t)lv].attn.empty()) {
                att_nc = std::max(att_nc, r * r * c_out);
                att_nn = std::max(att_nn, r * r * r * r);
            }
        }
        act = std::max(act, lat * lat * std::max(hp_.z_channels, hp_.embed_dim));
    }
    const int64_t logits = has_encoder_ ? lat * lat * hp_.n_embed : 0;
    // the activations; the weights (a few hundred MiB at most) fail on their own allocation
    const size_t floats = (size_t)(4 * act + 3 * att_nc + att_nn + logits);
    size_t free_b = 0, total_b = 0;
    cuda_memory_info(free_b, total_b);
    if (4 * floats + (256u << 20) > free_b)
        fail("cuda vqgan: a decode's activations need " + mib(4 * floats) +
             " of device memory (plus 256 MiB reserve), " + mib(free_b) + " of " + mib(total_b) + " are free on " +
             props.name);

    embed_type_ = m.embed_->type;
    embed_ = DeviceBuffer((size_t)m.embed_->bytes);
    cuda_copy_to_device(embed_.get(), m.embed_->data, (size_t)m.embed_->bytes);
    post_quant_ = conv(m.post_quant_conv_), conv_in_ = conv(m.dec_conv_in_), conv_out_ = conv(m.dec_conv_out_);
    mid1_ = res(m.dec_mid1_), mid2_ = res(m.dec_mid2_), mid_attn_ = attn(m.dec_mid_attn_);
    norm_out_ = norm(m.dec_norm_out_);
    for (const VqganLevel &l : m.up_) {
        Level d;
        for (const VqganResBlock &b : l.block) d.block.push_back(res(b));
        for (const VqganAttnBlock &a : l.attn) d.attn.push_back(attn(a));
        d.resample = l.resample;
        if (l.resample) d.up = conv(l.resample_conv);
        up_.push_back(std::move(d));
    }
    if (has_encoder_) {
        enc_conv_in_ = conv(m.enc_conv_in_), enc_conv_out_ = conv(m.enc_conv_out_);
        quant_conv_ = conv(m.quant_conv_), proj_ = conv(m.proj_);
        enc_mid1_ = res(m.enc_mid1_), enc_mid2_ = res(m.enc_mid2_), enc_mid_attn_ = attn(m.enc_mid_attn_);
        enc_norm_out_ = norm(m.enc_norm_out_);
        for (const VqganLevel &l : m.down_) {
            Level d;
            for (const VqganResBlock &b : l.block) d.block.push_back(res(b));
            for (const VqganAttnBlock &a : l.attn) d.attn.push_back(attn(a));
            d.resample = l.resample;
            if (l.resample) { // taming's Downsample: pad right and bottom by one, 3x3 stride 2
                d.up = conv(l.resample_conv);
                d.up.shape.stride = 2;
                d.up.shape.pad_top = d.up.shape.pad_left = 0;
                d.up.shape.pad_bottom = d.up.shape.pad_right = 1;
            }
            down_.push_back(std::move(d));
        }
        logits_ = DeviceBuffer(4 * (size_t)logits);
    }
    for (DeviceBuffer &s : slot_) s = DeviceBuffer(4 * (size_t)act);
    q_ = DeviceBuffer(4 * (size_t)att_nc), k_ = DeviceBuffer(4 * (size_t)att_nc), v_ = DeviceBuffer(4 * (size_t)att_nc);
    scores_ = DeviceBuffer(4 * (size_t)att_nn);
    gn_scratch_ = DeviceBuffer(4 * (size_t)cuda::group_norm_scratch_floats(kGroups));
    idx_ = DeviceBuffer(4 * (size_t)(lat * lat));
}

void CudaVqgan::run_conv(const Conv &c, const float *x, int64_t h, int64_t w, float *y, bool accumulate) {
    cuda::conv2d(c.type, c.w.get(), c.b.as<float>(), c.shape, x, h, w, y, accumulate, stream_.get());
}

void CudaVqgan::norm_swish(const Norm &n, const float *x, float *y, int64_t n_pos, int64_t c, bool swish) {
    cuda::group_norm(x, y, n_pos, c, kGroups, n.gamma.as<float>(), n.beta.as<float>(), kNormEps, swish,
                     gn_scratch_.as<float>(), stream_.get());
}

// y = conv2(swish(norm2(conv1(swish(norm1(x)))))) + (nin_shortcut(x) or x), added in the CPU's order
void CudaVqgan::resblock(const Res &b, const float *x, float *y, float *t1, float *t2, int64_t h, int64_t w) {
    norm_swish(b.n1, x, t1, h * w, b.c_in, true);
    run_conv(b.c1, t1, h, w, t2);
    norm_swish(b.n2, t2, t2, h * w, b.c_out, true);
    run_conv(b.c2, t2, h, w, y);
    if (b.c_in != b.c_out)
        run_conv(b.nin, x, h, w, y, true);
    else
        cuda::add_f32(y, x, h * w * b.c_out, stream_.get());
}

// x += proj_out(attention(q, k, v of norm(x)))
void CudaVqgan::attnblock(const Attn &a, float *x, float *t, int64_t h, int64_t w) {
    const int64_t n = h * w;
    norm_swish(a.n, x, t, n, a.c, false);
    run_conv(a.q, t, h, w, q_.as<float>());
    run_conv(a.k, t, h, w, k_.as<float>());
    run_conv(a.v, t, h, w, v_.as<float>());
    cuda::spatial_attention(q_.as<float>(), k_.as<float>(), v_.as<float>(), n, a.c, scores_.as<float>(), t,
                            stream_.get());
    run_conv(a.proj, t, h, w, x, true);
}

void CudaVqgan::decode(const int32_t *indices, float *image_chw) {
    std::lock_guard<std::mutex> lock(mu_);
    void *s = stream_.get();
    const int64_t lat = hp_.latent(), n = lat * lat;
    float *buf[4] = {slot_[0].as<float>(), slot_[1].as<float>(), slot_[2].as<float>(), slot_[3].as<float>()};
    int cur = 0;
    // the i-th (1..3) buffer other than the current one
    auto other = [&](int i) { return buf[(cur + i) % 4]; };
    cuda_copy_to_device_async(idx_.get(), indices, 4 * (size_t)n, s);
    cuda::codebook_rows(embed_type_, embed_.get(), hp_.embed_dim, idx_.as<int32_t>(), n, buf[0], s);
    run_conv(post_quant_, buf[0], lat, lat, buf[1]);
    run_conv(conv_in_, buf[1], lat, lat, buf[2]);
    cur = 2;
    int64_t h = lat, c = conv_in_.shape.c_out;
    auto block = [&](const Res &b) {
        resblock(b, buf[cur], other(1), other(2), other(3), h, h);
        cur = (cur + 1) % 4;
        c = b.c_out;
    };
    block(mid1_);
    attnblock(mid_attn_, buf[cur], other(1), h, h);
    block(mid2_);
    for (int64_t lv = (int64_t)up_.size() - 1; lv >= 0; lv--) {
        const Level &up = up_[(size_t)lv];
        for (size_t ib = 0; ib < up.block.size(); ib++) {
            block(up.block[ib]);
            if (!up.attn.empty()) attnblock(up.attn[ib], buf[cur], other(1), h, h);
        }
        if (up.resample) {
            cuda::upsample_nearest2x(buf[cur], h, h, c, other(1), s);
            h *= 2;
            run_conv(up.up, other(1), h, h, other(2));
            cur = (cur + 2) % 4;
        }
    }
    norm_swish(norm_out_, buf[cur], buf[cur], h * h, c, true);
    run_conv(conv_out_, buf[cur], h, h, other(1));
    cuda::to_chw(other(1), h * h, hp_.out_ch, other(2), s);
    cuda_copy_to_host_async(image_chw, other(2), 4 * (size_t)(h * h * hp_.out_ch), s);
    stream_.synchronize();
}

void CudaVqgan::encode(const float *image_chw, int32_t *indices, float *logits) {
    if (!has_encoder_) fail("cuda vqgan: the encoder is not on the device");
    std::lock_guard<std::mutex> lock(mu_);
    void *s = stream_.get();
    const int64_t R = hp_.resolution, lat = hp_.latent(), n = lat * lat;
    float *buf[4] = {slot_[0].as<float>(), slot_[1].as<float>(), slot_[2].as<float>(), slot_[3].as<float>()};
    int cur = 0;
    auto other = [&](int i) { return buf[(cur + i) % 4]; };
    cuda_copy_to_device_async(buf[0], image_chw, 4 * (size_t)(hp_.in_channels * R * R), s);
    cuda::to_hwc(buf[0], R * R, hp_.in_channels, buf[1], s);
    run_conv(enc_conv_in_, buf[1], R, R, buf[2]);
    cur = 2;
    int64_t h = R, c = enc_conv_in_.shape.c_out;
    auto block = [&](const Res &b) {
        resblock(b, buf[cur], other(1), other(2), other(3), h, h);
        cur = (cur + 1) % 4;
        c = b.c_out;
    };
    for (const Level &down : down_) {
        for (size_t ib = 0; ib < down.block.size(); ib++) {
            block(down.block[ib]);
            if (!down.attn.empty()) attnblock(down.attn[ib], buf[cur], other(1), h, h);
        }
        if (down.resample) {
            run_conv(down.up, buf[cur], h, h, other(1));
            h /= 2;
            cur = (cur + 1) % 4;
        }
    }
    block(enc_mid1_);
    attnblock(enc_mid_attn_, buf[cur], other(1), h, h);
    block(enc_mid2_);
    norm_swish(enc_norm_out_, buf[cur], buf[cur], h * h, c, true);
    run_conv(enc_conv_out_, buf[cur], h, h, other(1));
    cur = (cur + 1) % 4;
    run_conv(quant_conv_, buf[cur], h, h, other(1));
    cur = (cur + 1) % 4;
    run_conv(proj_, buf[cur], h, h, logits_.as<float>());
    cuda::argmax_rows(logits_.as<float>(), n, hp_.n_embed, idx_.as<int32_t>(), s);
    cuda_copy_to_host_async(indices, idx_.get(), 4 * (size_t)n, s);
    if (logits) cuda_copy_to_host_async(logits, logits_.get(), 4 * (size_t)(n * hp_.n_embed), s);
    stream_.synchronize();
}

std::unique_ptr<VqganDevice> make_vqgan_cuda(const VqganModel &m) {
    cuda_set_device(0);
    return std::unique_ptr<VqganDevice>(new CudaVqgan(m));
}

} // namespace hg
