// Synthetic VQGAN weights, made identically here and in tools/reference/make_vqgan_reference.py
// (see its docstring for the generator), and written as an in-memory GGUF in the engine's
// layout (native/models/vqgan.h): the 256x256 geometry's ~69M parameters need not be committed.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/fp16.h"
#include "healthgpt.h"
#include "tests/gguf_builder.h"

namespace vqsynth {

struct Config {
    int64_t ch, num_res_blocks, z_channels, resolution, in_channels, out_ch, embed_dim, n_embed;
    std::vector<int64_t> ch_mult, attn_resolutions;
    int64_t latent() const { return resolution >> (ch_mult.size() - 1); }
};

// make_vqgan_reference.py's REAL (the released model.yaml) and TINY.
inline Config real() { return {128, 2, 256, 256, 3, 3, 256, 8192, {1, 1, 2, 4}, {32}}; }
inline Config tiny() { return {32, 1, 16, 16, 3, 3, 16, 64, {1, 1}, {8}}; }

inline uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
inline uint64_t fnv1a64(const std::string &s) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
    return h;
}

// The named stream: raw value i, and r_i in [-1, 1) (exact in float).
struct Stream {
    uint64_t h;
    Stream(uint64_t seed, const std::string &name) : h(mix(seed ^ fnv1a64(name))) {}
    uint64_t raw(uint64_t i) const { return mix(h + (i + 1) * 0x9E3779B97F4A7C15ull); }
    float r(uint64_t i) const { return (float)(raw(i) >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f; }
};

inline bool ends_with(const std::string &s, const std::string &t) {
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

// A tensor in torch's shape (outermost first) and the 1/sqrt(fan_in) of its conv.
struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    double conv_scale = 0;
};

inline void add_conv(std::vector<Tensor> &ts, const std::string &p, int64_t ci, int64_t co, int64_t k) {
    const double s = 1.0 / std::sqrt((double)(ci * k * k));
    ts.push_back({p + ".weight", {co, ci, k, k}, s});
    ts.push_back({p + ".bias", {co}, s});
}
inline void add_norm(std::vector<Tensor> &ts, const std::string &p, int64_t c) {
    ts.push_back({p + ".weight", {c}});
    ts.push_back({p + ".bias", {c}});
}
inline void add_res(std::vector<Tensor> &ts, const std::string &p, int64_t ci, int64_t co) {
    add_norm(ts, p + ".norm1", ci);
    add_conv(ts, p + ".conv1", ci, co, 3);
    add_norm(ts, p + ".norm2", co);
    add_conv(ts, p + ".conv2", co, co, 3);
    if (ci != co) add_conv(ts, p + ".nin_shortcut", ci, co, 1);
}
inline void add_attn(std::vector<Tensor> &ts, const std::string &p, int64_t c) {
    add_norm(ts, p + ".norm", c);
    for (const char *n : {".q", ".k", ".v", ".proj_out"}) add_conv(ts, p + n, c, c, 1);
}

// Every tensor of taming's GumbelVQ for the config (the encoder when asked).
inline std::vector<Tensor> tensors(const Config &c, bool encoder) {
    std::vector<Tensor> ts;
    const int64_t L = (int64_t)c.ch_mult.size();
    auto attn_at = [&](int64_t res) {
        for (int64_t r : c.attn_resolutions)
            if (r == res) return true;
        return false;
    };
    if (encoder) {
        add_conv(ts, "encoder.conv_in", c.in_channels, c.ch, 3);
        int64_t res = c.resolution, bi = c.ch;
        for (int64_t lv = 0; lv < L; lv++) {
            const std::string p = "encoder.down." + std::to_string(lv);
            bi = c.ch * (lv == 0 ? 1 : c.ch_mult[lv - 1]);
            const int64_t bo = c.ch * c.ch_mult[lv];
            for (int64_t ib = 0; ib < c.num_res_blocks; ib++) {
                add_res(ts, p + ".block." + std::to_string(ib), bi, bo);
                bi = bo;
                if (attn_at(res)) add_attn(ts, p + ".attn." + std::to_string(ib), bi);
            }
            if (lv != L - 1) add_conv(ts, p + ".downsample.conv", bi, bi, 3), res /= 2;
        }
        add_res(ts, "encoder.mid.block_1", bi, bi);
        add_attn(ts, "encoder.mid.attn_1", bi);
        add_res(ts, "encoder.mid.block_2", bi, bi);
        add_norm(ts, "encoder.norm_out", bi);
        add_conv(ts, "encoder.conv_out", bi, c.z_channels, 3);
        add_conv(ts, "quant_conv", c.z_channels, c.embed_dim, 1);
        add_conv(ts, "quantize.proj", c.z_channels, c.n_embed, 1);
    }
    int64_t bi = c.ch * c.ch_mult[L - 1], res = c.latent();
    add_conv(ts, "decoder.conv_in", c.z_channels, bi, 3);
    add_res(ts, "decoder.mid.block_1", bi, bi);
    add_attn(ts, "decoder.mid.attn_1", bi);
    add_res(ts, "decoder.mid.block_2", bi, bi);
    for (int64_t lv = L - 1; lv >= 0; lv--) {
        const std::string p = "decoder.up." + std::to_string(lv);
        const int64_t bo = c.ch * c.ch_mult[lv];
        for (int64_t ib = 0; ib <= c.num_res_blocks; ib++) {
            add_res(ts, p + ".block." + std::to_string(ib), bi, bo);
            bi = bo;
            if (attn_at(res)) add_attn(ts, p + ".attn." + std::to_string(ib), bi);
        }
        if (lv != 0) add_conv(ts, p + ".upsample.conv", bi, bi, 3), res *= 2;
    }
    add_norm(ts, "decoder.norm_out", bi);
    add_conv(ts, "decoder.conv_out", bi, c.out_ch, 3);
    ts.push_back({"quantize.embed.weight", {c.n_embed, c.embed_dim}});
    add_conv(ts, "post_quant_conv", c.embed_dim, c.z_channels, 1);
    return ts;
}

// The tensor's values, as make_vqgan_reference.py's synth().
inline std::vector<float> values(uint64_t seed, const Tensor &t) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    const Stream s(seed, t.name);
    std::vector<float> v((size_t)n);
    const std::string &nm = t.name;
    const bool norm_w = ends_with(nm, "norm.weight") || ends_with(nm, "norm1.weight") ||
                        ends_with(nm, "norm2.weight") || ends_with(nm, "norm_out.weight");
    const bool norm_b = ends_with(nm, "norm.bias") || ends_with(nm, "norm1.bias") || ends_with(nm, "norm2.bias") ||
                        ends_with(nm, "norm_out.bias");
    for (int64_t i = 0; i < n; i++) {
        const double r = s.r((uint64_t)i);
        if (norm_w) {
            const float t01 = (float)(r * 0.1);
            v[i] = (float)(1.0 + (double)t01);
        } else if (norm_b) {
            v[i] = (float)(r * 0.1);
        } else if (nm == "quantize.embed.weight") {
            v[i] = (float)r;
        } else {
            v[i] = (float)(r * t.conv_scale);
        }
    }
    return v;
}

// The model as a GGUF image: matrices (conv weights, codebook) in `type` (f32 or f16), 1-D
// tensors f32.
inline std::vector<uint8_t> gguf(const Config &c, uint64_t seed, int type, bool encoder) {
    using namespace gguftest;
    FileSpec fs;
    fs.kvs.push_back({"general.architecture", str_value("vqgan")});
    const std::pair<const char *, int64_t> ints[] = {{"vqgan.ch", c.ch},
                                                     {"vqgan.num_res_blocks", c.num_res_blocks},
                                                     {"vqgan.z_channels", c.z_channels},
                                                     {"vqgan.resolution", c.resolution},
                                                     {"vqgan.in_channels", c.in_channels},
                                                     {"vqgan.out_ch", c.out_ch},
                                                     {"vqgan.embed_dim", c.embed_dim},
                                                     {"vqgan.n_embed", c.n_embed}};
    for (auto &kv : ints) fs.kvs.push_back({kv.first, scalar<uint32_t>(HG_GGUF_UINT32, (uint32_t)kv.second)});
    auto i32s = [](const std::vector<int64_t> &v) { return std::vector<int32_t>(v.begin(), v.end()); };
    fs.kvs.push_back({"vqgan.ch_mult", array_of<int32_t>(HG_GGUF_INT32, i32s(c.ch_mult))});
    fs.kvs.push_back({"vqgan.attn_resolutions", array_of<int32_t>(HG_GGUF_INT32, i32s(c.attn_resolutions))});
    const std::vector<Tensor> ts = tensors(c, encoder);
    for (const Tensor &t : ts) {
        TensorSpec s;
        s.name = t.name;
        for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) s.dims.push_back((uint64_t)*it);
        s.type = t.shape.size() > 1 ? (uint32_t)type : (uint32_t)HG_TYPE_F32;
        fs.tensors.push_back(s);
    }
    Built b = build(fs);
    const uint64_t end = b.offsets.back() + b.sizes.back();
    b.bytes.resize((size_t)(b.data_offset + end));
    for (size_t i = 0; i < ts.size(); i++) {
        const std::vector<float> v = values(seed, ts[i]);
        uint8_t *dst = &b.bytes[(size_t)(b.data_offset + b.offsets[i])];
        if (fs.tensors[i].type == HG_TYPE_F32) {
            std::memcpy(dst, v.data(), v.size() * 4);
        } else {
            for (size_t j = 0; j < v.size(); j++) {
                const hg::fp16_t h = hg::f32_to_fp16(v[j]);
                std::memcpy(dst + 2 * j, &h, 2);
            }
        }
    }
    return b.bytes;
}

// The indices and encoder input make_vqgan_reference.py generates ("indices", "input").
inline std::vector<int32_t> indices(uint64_t seed, int64_t n, int64_t n_embed) {
    const Stream s(seed, "indices");
    std::vector<int32_t> v((size_t)n);
    for (int64_t i = 0; i < n; i++) v[i] = (int32_t)(s.raw((uint64_t)i) % (uint64_t)n_embed);
    return v;
}
inline std::vector<float> input_image(uint64_t seed, int64_t n) {
    const Stream s(seed, "input");
    std::vector<float> v((size_t)n);
    for (int64_t i = 0; i < n; i++) v[i] = s.r((uint64_t)i);
    return v;
}

} // namespace vqsynth
