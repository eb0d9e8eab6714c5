#include "models/vqgan.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "core/fp16.h"
#include "healthgpt.h"
#include "ops/group_norm.h"
#include "ops/spatial_attention.h"
#include "ops/upsample.h"
#include "models/device_choice.h"
#ifdef HEALTHGPT_HAVE_CUDA
#include "cuda/vqgan_cuda.h"
#endif

namespace hg {

namespace {

// Bounds every size read from the file, far from overflowing the products below.
constexpr int64_t kMaxDim = int64_t(1) << 16;
constexpr int64_t kGroups = 32; // taming's Normalize
constexpr float kNormEps = 1e-6f;

int64_t meta_int(const GGUFFile &f, const std::string &key) {
    const int64_t i = f.find_key(key);
    if (i < 0) fail(f.name() + ": metadata key " + key + " is missing");
    const hg_gguf_value_type t = f.kv(i).type;
    int64_t v;
    if (t == HG_GGUF_UINT8 || t == HG_GGUF_UINT16 || t == HG_GGUF_UINT32 || t == HG_GGUF_UINT64) {
        const uint64_t u = f.kv_u64(i);
        v = u > (uint64_t)kMaxDim ? kMaxDim + 1 : (int64_t)u;
    } else if (t == HG_GGUF_INT8 || t == HG_GGUF_INT16 || t == HG_GGUF_INT32 || t == HG_GGUF_INT64) {
        v = f.kv_i64(i);
    } else {
        fail(f.name() + ": metadata key " + key + " is a " + gguf_type_name(t) + ", expected an integer");
    }
    if (v <= 0 || v > kMaxDim)
        fail(f.name() + ": metadata key " + key + " = " + std::to_string(v) + " is out of range");
    return v;
}

std::vector<int64_t> meta_int_array(const GGUFFile &f, const std::string &key, size_t min_n) {
    const int64_t i = f.find_key(key);
    if (i < 0) fail(f.name() + ": metadata key " + key + " is missing");
    const GGUFKV &kv = f.kv_array(i);
    if (kv.arr_n < min_n || kv.arr_n > 16)
        fail(f.name() + ": metadata key " + key + " has " + std::to_string(kv.arr_n) + " values");
    std::vector<int64_t> out;
    for (uint64_t j = 0; j < kv.arr_n; j++) {
        const hg_gguf_value_type t = kv.arr_type;
        const bool is_unsigned =
            t == HG_GGUF_UINT8 || t == HG_GGUF_UINT16 || t == HG_GGUF_UINT32 || t == HG_GGUF_UINT64;
        const bool is_signed = t == HG_GGUF_INT8 || t == HG_GGUF_INT16 || t == HG_GGUF_INT32 || t == HG_GGUF_INT64;
        if (!is_unsigned && !is_signed)
            fail(f.name() + ": metadata key " + key + " is an array of " + gguf_type_name(t) + ", expected integers");
        const int64_t v = is_unsigned ? (int64_t)std::min<uint64_t>(f.arr_u64(i, j), kMaxDim + 1) : f.arr_i64(i, j);
        if (v <= 0 || v > kMaxDim)
            fail(f.name() + ": metadata key " + key + "[" + std::to_string(j) + "] = " + std::to_string(v) +
                 " is out of range");
        out.push_back(v);
    }
    return out;
}

std::string shape_str(const int64_t *ne, int n) {
    std::string s = "[";
    for (int i = 0; i < n; i++) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
}

// The tensor, checked to have exactly the shape `want` (ggml order) and type f32 or f16.
const GGUFTensor &tensor(const GGUFFile &f, const std::string &name, std::vector<int64_t> want) {
    const int64_t i = f.find_tensor(name);
    if (i < 0) fail(f.name() + ": tensor " + name + " is missing");
    const GGUFTensor &t = f.tensor(i);
    bool ok = t.n_dims <= (int)want.size();
    for (size_t d = 0; d < 4; d++) ok = ok && t.ne[d] == (d < want.size() ? want[d] : 1);
    if (!ok)
        fail(f.name() + ": tensor " + name + " has shape " + shape_str(t.ne, t.n_dims) + ", expected " +
             shape_str(want.data(), (int)want.size()));
    if (t.type != HG_TYPE_F32 && t.type != HG_TYPE_F16)
        fail(HG_ERR_UNSUPPORTED,
             f.name() + ": tensor " + name + " has type " + hg_type_name(t.type) + ", expected f32 or f16");
    return t;
}

std::vector<float> floats(const GGUFTensor &t) {
    const int64_t n = t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
    std::vector<float> v((size_t)n);
    for (int64_t i = 0; i < n; i++)
        v[i] = t.type == HG_TYPE_F32 ? reinterpret_cast<const float *>(t.data)[i]
                                     : fp16_to_f32(reinterpret_cast<const fp16_t *>(t.data)[i]);
    return v;
}

std::vector<float> vec(const GGUFFile &f, const std::string &name, int64_t n) { return floats(tensor(f, name, {n})); }

VqganNorm norm(const GGUFFile &f, const std::string &p, int64_t c) {
    if (c % kGroups != 0)
        fail(f.name() + ": " + p + " normalises " + std::to_string(c) + " channels, not a multiple of " +
             std::to_string(kGroups) + " groups (check vqgan.ch and vqgan.ch_mult)");
    return VqganNorm{vec(f, p + ".weight", c), vec(f, p + ".bias", c)};
}

VqganConv conv(const GGUFFile &f, const std::string &p, int64_t c_in, int64_t c_out, int64_t k) {
    const GGUFTensor &t = tensor(f, p + ".weight", {k, k, c_in, c_out});
    VqganConv c;
    c.bias = vec(f, p + ".bias", c_out);
    c.w.type = t.type;
    c.w.c_in = c_in, c.w.c_out = c_out, c.w.kh = k, c.w.kw = k;
    if (k == 1) {
        c.w.data = t.data;
    } else {
        c.reordered.resize((size_t)t.bytes);
        conv2d_weight_from_torch(t.data, t.type == HG_TYPE_F32 ? 4 : 2, c_out, c_in, k, k, c.reordered.data());
        c.w.data = c.reordered.data();
    }
    c.w.bias = c.bias.data();
    return c;
}

VqganResBlock load_resblock(const GGUFFile &f, const std::string &p, int64_t c_in, int64_t c_out) {
    VqganResBlock b;
    b.c_in = c_in, b.c_out = c_out;
    b.norm1 = norm(f, p + ".norm1", c_in);
    b.conv1 = conv(f, p + ".conv1", c_in, c_out, 3);
    b.norm2 = norm(f, p + ".norm2", c_out);
    b.conv2 = conv(f, p + ".conv2", c_out, c_out, 3);
    if (c_in != c_out) b.nin_shortcut = conv(f, p + ".nin_shortcut", c_in, c_out, 1);
    return b;
}

VqganAttnBlock load_attnblock(const GGUFFile &f, const std::string &p, int64_t c) {
    VqganAttnBlock a;
    a.c = c;
    a.norm = norm(f, p + ".norm", c);
    a.q = conv(f, p + ".q", c, c, 1);
    a.k = conv(f, p + ".k", c, c, 1);
    a.v = conv(f, p + ".v", c, c, 1);
    a.proj_out = conv(f, p + ".proj_out", c, c, 1);
    return a;
}

VqganAct act(int64_t h, int64_t w, int64_t c) {
    VqganAct a;
    a.h = h, a.w = w, a.c = c;
    a.d.resize((size_t)(h * w * c));
    return a;
}

VqganAct run_conv(ThreadPool &pool, const VqganConv &c, const VqganAct &x, const Conv2dGeom &g) {
    const int64_t oh = conv2d_out_size(x.h, c.w.kh, g.stride, g.pad_top, g.pad_bottom);
    const int64_t ow = conv2d_out_size(x.w, c.w.kw, g.stride, g.pad_left, g.pad_right);
    VqganAct y = act(oh, ow, c.w.c_out);
    conv2d(pool, c.w, g, x.d.data(), x.h, x.w, y.d.data());
    return y;
}

Conv2dGeom same(int64_t k) {
    Conv2dGeom g;
    g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = k / 2;
    return g;
}

void norm_swish(ThreadPool &pool, const VqganNorm &n, const VqganAct &x, VqganAct &y) {
    group_norm(pool, x.d.data(), y.d.data(), x.h * x.w, x.c, kGroups, n.gamma.data(), n.beta.data(), kNormEps, true);
}

} // namespace

std::unique_ptr<VqganModel> VqganModel::load(std::unique_ptr<GGUFFile> file, int gpu) {
    if (!file) fail("vqgan: no file");
    const GGUFFile &f = *file;
    const int64_t arch = f.find_key("general.architecture");
    if (arch < 0) fail(f.name() + ": metadata key general.architecture is missing");
    if (f.kv_str(arch) != "vqgan")
        fail(f.name() + ": architecture is '" + std::string(f.kv_str(arch)) + "', expected 'vqgan'");

    std::unique_ptr<VqganModel> m(new VqganModel());
    VqganHParams &hp = m->hp_;
    hp.ch = meta_int(f, "vqgan.ch");
    hp.num_res_blocks = meta_int(f, "vqgan.num_res_blocks");
    hp.z_channels = meta_int(f, "vqgan.z_channels");
    hp.resolution = meta_int(f, "vqgan.resolution");
    hp.in_channels = meta_int(f, "vqgan.in_channels");
    hp.out_ch = meta_int(f, "vqgan.out_ch");
    hp.embed_dim = meta_int(f, "vqgan.embed_dim");
    hp.n_embed = meta_int(f, "vqgan.n_embed");
    hp.ch_mult = meta_int_array(f, "vqgan.ch_mult", 1);
    hp.attn_resolutions = meta_int_array(f, "vqgan.attn_resolutions", 0);
    const int64_t L = (int64_t)hp.ch_mult.size();
    if (hp.num_res_blocks > 64) fail(f.name() + ": vqgan.num_res_blocks is out of range");
    if (hp.resolution % (int64_t(1) << (L - 1)) != 0)
        fail(f.name() + ": vqgan.resolution " + std::to_string(hp.resolution) + " is not divisible by 2^" +
             std::to_string(L - 1) + " (" + std::to_string(L) + " levels in vqgan.ch_mult)");
    if (hp.latent() * hp.latent() > (int64_t(1) << 20)) fail(f.name() + ": vqgan.resolution is out of range");
    for (int64_t v : hp.ch_mult)
        if (hp.ch * v > kMaxDim) fail(f.name() + ": vqgan.ch * ch_mult is out of range");
    auto has_attn = [&](int64_t res) {
        return std::find(hp.attn_resolutions.begin(), hp.attn_resolutions.end(), res) != hp.attn_resolutions.end();
    };

    // Decoder, in taming's construction order (the top level first).
    m->embed_ = &tensor(f, "quantize.embed.weight", {hp.embed_dim, hp.n_embed});
    m->post_quant_conv_ = conv(f, "post_quant_conv", hp.embed_dim, hp.z_channels, 1);
    int64_t block_in = hp.ch * hp.ch_mult[L - 1];
    int64_t res = hp.latent();
    m->dec_conv_in_ = conv(f, "decoder.conv_in", hp.z_channels, block_in, 3);
    m->dec_mid1_ = load_resblock(f, "decoder.mid.block_1", block_in, block_in);
    m->dec_mid_attn_ = load_attnblock(f, "decoder.mid.attn_1", block_in);
    m->dec_mid2_ = load_resblock(f, "decoder.mid.block_2", block_in, block_in);
    m->up_.resize((size_t)L);
    for (int64_t lv = L - 1; lv >= 0; lv--) {
        VqganLevel &up = m->up_[(size_t)lv];
        const std::string p = "decoder.up." + std::to_string(lv);
        const int64_t block_out = hp.ch * hp.ch_mult[(size_t)lv];
        for (int64_t ib = 0; ib <= hp.num_res_blocks; ib++) {
            up.block.push_back(load_resblock(f, p + ".block." + std::to_string(ib), block_in, block_out));
            block_in = block_out;
            if (has_attn(res)) up.attn.push_back(load_attnblock(f, p + ".attn." + std::to_string(ib), block_in));
        }
        if (lv != 0) {
            up.resample = true;
            up.resample_conv = conv(f, p + ".upsample.conv", block_in, block_in, 3);
            res *= 2;
        }
    }
    m->dec_norm_out_ = norm(f, "decoder.norm_out", block_in);
    m->dec_conv_out_ = conv(f, "decoder.conv_out", block_in, hp.out_ch, 3);

    // Encoder: optional as a whole.
    m->has_encoder_ = f.find_tensor("encoder.conv_in.weight") >= 0;
    if (m->has_encoder_) {
        m->enc_conv_in_ = conv(f, "encoder.conv_in", hp.in_channels, hp.ch, 3);
        res = hp.resolution;
        block_in = hp.ch;
        m->down_.resize((size_t)L);
        for (int64_t lv = 0; lv < L; lv++) {
            VqganLevel &down = m->down_[(size_t)lv];
            const std::string p = "encoder.down." + std::to_string(lv);
            block_in = hp.ch * (lv == 0 ? 1 : hp.ch_mult[(size_t)lv - 1]);
            const int64_t block_out = hp.ch * hp.ch_mult[(size_t)lv];
            for (int64_t ib = 0; ib < hp.num_res_blocks; ib++) {
                down.block.push_back(load_resblock(f, p + ".block." + std::to_string(ib), block_in, block_out));
                block_in = block_out;
                if (has_attn(res)) down.attn.push_back(load_attnblock(f, p + ".attn." + std::to_string(ib), block_in));
            }
            if (lv != L - 1) {
                down.resample = true;
                down.resample_conv = conv(f, p + ".downsample.conv", block_in, block_in, 3);
                res /= 2;
            }
        }
        m->enc_mid1_ = load_resblock(f, "encoder.mid.block_1", block_in, block_in);
        m->enc_mid_attn_ = load_attnblock(f, "encoder.mid.attn_1", block_in);
        m->enc_mid2_ = load_resblock(f, "encoder.mid.block_2", block_in, block_in);
        m->enc_norm_out_ = norm(f, "encoder.norm_out", block_in);
        m->enc_conv_out_ = conv(f, "encoder.conv_out", block_in, hp.z_channels, 3);
        m->quant_conv_ = conv(f, "quant_conv", hp.z_channels, hp.embed_dim, 1);
        // GumbelQuantize(z_channels, embed_dim, n_embed): proj reads quant_conv's embed_dim
        // outputs, so taming only runs when the two are equal (they are: 256, 256).
        m->proj_ = conv(f, "quantize.proj", hp.embed_dim, hp.n_embed, 1);
    }
    m->file_ = std::move(file);
    if (gpu != HG_GPU_OFF) m->use_device(gpu);
    return m;
}

void VqganModel::use_device(int gpu) {
    std::string why = cuda_unavailable();
#ifdef HEALTHGPT_HAVE_CUDA
    if (why.empty()) {
        try {
            device_ = make_vqgan_cuda(*this);
            backend_ = device_->describe();
            file_->release_tensors(); // as ClipModel::use_device: one copy resident
            return;
        } catch (const Error &e) {
            if (gpu == HG_GPU_CUDA) throw;
            why = e.what();
        }
    }
#endif
    backend_ = cpu_backend(gpu, "vqgan: ", why);
}

VqganAct VqganModel::resblock(ThreadPool &pool, const VqganResBlock &b, const VqganAct &x) const {
    VqganAct t = act(x.h, x.w, x.c);
    norm_swish(pool, b.norm1, x, t);
    VqganAct h = run_conv(pool, b.conv1, t, same(3));
    norm_swish(pool, b.norm2, h, h);
    VqganAct out = run_conv(pool, b.conv2, h, same(3));
    const VqganAct *sc = &x;
    VqganAct shortcut;
    if (b.c_in != b.c_out) {
        shortcut = run_conv(pool, b.nin_shortcut, x, same(1));
        sc = &shortcut;
    }
    const float *s = sc->d.data();
    float *o = out.d.data();
    const int64_t n = (int64_t)out.d.size();
    pool.run([&](int ith, int nth) {
        int64_t i0, i1;
        split_range(n, ith, nth, i0, i1);
        for (int64_t i = i0; i < i1; i++) o[i] += s[i];
    });
    return out;
}

void VqganModel::attnblock(ThreadPool &pool, const VqganAttnBlock &a, VqganAct &x) const {
    VqganAct t = act(x.h, x.w, x.c);
    group_norm(pool, x.d.data(), t.d.data(), x.h * x.w, x.c, kGroups, a.norm.gamma.data(), a.norm.beta.data(), kNormEps,
               false);
    const VqganAct q = run_conv(pool, a.q, t, same(1));
    const VqganAct k = run_conv(pool, a.k, t, same(1));
    const VqganAct v = run_conv(pool, a.v, t, same(1));
    spatial_attention(pool, q.d.data(), k.d.data(), v.d.data(), x.h * x.w, x.c, t.d.data());
    const VqganAct o = run_conv(pool, a.proj_out, t, same(1));
    float *xd = x.d.data();
    const float *od = o.d.data();
    const int64_t n = (int64_t)x.d.size();
    pool.run([&](int ith, int nth) {
        int64_t i0, i1;
        split_range(n, ith, nth, i0, i1);
        for (int64_t i = i0; i < i1; i++) xd[i] += od[i];
    });
}

void VqganModel::decode(ThreadPool &pool, const int32_t *indices, float *image_chw) const {
    if (!indices || !image_chw) fail("vqgan decode: null indices or output");
    const int64_t lat = hp_.latent(), n = lat * lat, E = hp_.embed_dim;
    for (int64_t i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= hp_.n_embed)
            fail("vqgan decode: index " + std::to_string(indices[i]) + " at position " + std::to_string(i) +
                 " is outside the codebook [0, " + std::to_string(hp_.n_embed) + ")");
    if (device_) return device_->decode(indices, image_chw);
    // Codebook lookup: the hard one-hot of GumbelQuantize is a row of quantize.embed.
    VqganAct z = act(lat, lat, E);
    for (int64_t i = 0; i < n; i++) {
        const int64_t row = indices[i];
        for (int64_t e = 0; e < E; e++)
            z.d[(size_t)(i * E + e)] = embed_->type == HG_TYPE_F32
                                           ? reinterpret_cast<const float *>(embed_->data)[row * E + e]
                                           : fp16_to_f32(reinterpret_cast<const fp16_t *>(embed_->data)[row * E + e]);
    }
    VqganAct h = run_conv(pool, post_quant_conv_, z, same(1));
    h = run_conv(pool, dec_conv_in_, h, same(3));
    h = resblock(pool, dec_mid1_, h);
    attnblock(pool, dec_mid_attn_, h);
    h = resblock(pool, dec_mid2_, h);
    for (int64_t lv = (int64_t)up_.size() - 1; lv >= 0; lv--) {
        const VqganLevel &up = up_[(size_t)lv];
        for (size_t ib = 0; ib < up.block.size(); ib++) {
            h = resblock(pool, up.block[ib], h);
            if (!up.attn.empty()) attnblock(pool, up.attn[ib], h);
        }
        if (up.resample) {
            VqganAct u = act(2 * h.h, 2 * h.w, h.c);
            upsample_nearest2x(pool, h.d.data(), h.h, h.w, h.c, u.d.data());
            h = run_conv(pool, up.resample_conv, u, same(3));
        }
    }
    norm_swish(pool, dec_norm_out_, h, h);
    const VqganAct out = run_conv(pool, dec_conv_out_, h, same(3));
    const int64_t hw = out.h * out.w;
    for (int64_t p = 0; p < hw; p++)
        for (int64_t c = 0; c < out.c; c++) image_chw[c * hw + p] = out.d[(size_t)(p * out.c + c)];
}

void VqganModel::encode(ThreadPool &pool, const float *image_chw, int32_t *indices, float *logits) const {
    if (!has_encoder_) fail(file_->name() + ": this file has no encoder (tensor encoder.conv_in.weight is missing)");
    if (!image_chw || !indices) fail("vqgan encode: null image or indices");
    const int64_t R = hp_.resolution, C = hp_.in_channels;
    VqganAct h = act(R, R, C);
    for (int64_t c = 0; c < C; c++)
        for (int64_t p = 0; p < R * R; p++) {
            const float v = image_chw[c * R * R + p];
            if (!std::isfinite(v))
                fail("vqgan encode: pixel " + std::to_string(p) + " of channel " + std::to_string(c) +
                     " is not finite");
            h.d[(size_t)(p * C + c)] = v;
        }
    if (device_ && device_->has_encoder()) return device_->encode(image_chw, indices, logits);
    h = run_conv(pool, enc_conv_in_, h, same(3));
    for (const VqganLevel &down : down_) {
        for (size_t ib = 0; ib < down.block.size(); ib++) {
            h = resblock(pool, down.block[ib], h);
            if (!down.attn.empty()) attnblock(pool, down.attn[ib], h);
        }
        if (down.resample) {
            Conv2dGeom g; // taming's Downsample: pad right and bottom by one, 3x3 stride 2
            g.stride = 2;
            g.pad_bottom = g.pad_right = 1;
            h = run_conv(pool, down.resample_conv, h, g);
        }
    }
    h = resblock(pool, enc_mid1_, h);
    attnblock(pool, enc_mid_attn_, h);
    h = resblock(pool, enc_mid2_, h);
    norm_swish(pool, enc_norm_out_, h, h);
    h = run_conv(pool, enc_conv_out_, h, same(3));
    h = run_conv(pool, quant_conv_, h, same(1));
    const VqganAct l = run_conv(pool, proj_, h, same(1));
    const int64_t n = l.h * l.w, K = l.c;
    for (int64_t p = 0; p < n; p++) {
        const float *row = &l.d[(size_t)(p * K)];
        int64_t best = 0;
        for (int64_t k = 1; k < K; k++)
            if (row[k] > row[best]) best = k; // the first of equal maxima, as torch.argmax
        indices[p] = (int32_t)best;
    }
    if (logits) std::copy(l.d.begin(), l.d.end(), logits);
}

void vqgan_to_rgb8(const float *image_chw, int64_t channels, int64_t h, int64_t w, uint8_t *hwc) {
    const int64_t hw = h * w;
    for (int64_t p = 0; p < hw; p++)
        for (int64_t c = 0; c < channels; c++) {
            float v = image_chw[c * hw + p];
            v = std::isnan(v) ? -1.0f : std::min(1.0f, std::max(-1.0f, v));
            hwc[p * channels + c] = (uint8_t)((v + 1.0f) / 2.0f * 255.0f);
        }
}

} // namespace hg
