// The VQGAN of HealthGPT's image generation (taming-transformers GumbelVQ, f8, 8192 codes) on
// the CPU: code indices -> image (decode), and image -> code indices (encode, the argmax of
// GumbelQuantize's logits: no Gumbel noise, deterministic).
//
//   decode: z = quantize.embed[index] (latent x latent x embed_dim) -> post_quant_conv ->
//           decoder: conv_in, mid (ResBlock, AttnBlock, ResBlock), up levels L-1..0 (each
//           num_res_blocks + 1 ResBlocks, an AttnBlock after each where the resolution is in
//           attn_resolutions, then nearest x2 + 3x3 conv except on level 0),
//           GroupNorm -> swish -> conv_out
//   encode: encoder (conv_in, down levels 0..L-1 with Downsample = pad (0,1,0,1) + 3x3
//           stride 2 except on the last, mid, GroupNorm -> swish -> conv_out) -> quant_conv
//           -> quantize.proj (1x1 to n_embed logits) -> argmax per position
//   ResBlock: x' + conv2(swish(norm2(conv1(swish(norm1(x)))))), x' = nin_shortcut(x) (1x1)
//             when the width changes.  AttnBlock: x + proj_out(attn(q, k, v of norm(x))).
//   GroupNorm: 32 groups, eps 1e-6.
//
// GGUF layout (what the converter writes; tools/reference/make_vqgan_reference.py writes the
// same for its fixtures):
//   general.architecture = "vqgan"
//   vqgan.ch, vqgan.num_res_blocks, vqgan.z_channels, vqgan.resolution, vqgan.in_channels,
//   vqgan.out_ch, vqgan.embed_dim, vqgan.n_embed        integers (model.yaml's ddconfig and
//                                                       embed_dim / n_embed)
//   vqgan.ch_mult, vqgan.attn_resolutions               integer arrays
//   tensors: the Lightning state_dict's keys verbatim ("decoder.up.3.block.0.norm1.weight",
//   "decoder.mid.attn_1.q.weight", "post_quant_conv.weight", "quantize.embed.weight", ...;
//   the longest real name, encoder.down.2.block.0.nin_shortcut.weight, 42 bytes, fits GGUF's 64).
//   Conv weights 4-D in ggml order [kw, kh, c_in, c_out] (torch's [c_out][c_in][kh][kw] bytes unchanged), f32 or f16;
//   quantize.embed.weight [embed_dim, n_embed] f32 or f16; biases and GroupNorm weights 1-D,
//   f32 or f16. The encoder.*, quant_conv.* and quantize.proj.* tensors are optional: without
//   them the file decodes only. Other tensors (the checkpoint's loss.*) are ignored.
//
// Activations are channels-last (position-major); 3x3 conv weights are reordered at load to
// (ky, kx, c_in) rows (one owned copy), 1x1 weights and the codebook stay in the mapping.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/threadpool.h"
#include "gguf/gguf.h"
#include "healthgpt.h"
#include "models/vqgan_device.h"
#include "ops/conv2d.h"

namespace hg {

struct VqganHParams {
    int64_t ch = 0, num_res_blocks = 0, z_channels = 0, resolution = 0, in_channels = 0;
    int64_t out_ch = 0, embed_dim = 0, n_embed = 0;
    std::vector<int64_t> ch_mult, attn_resolutions;
    int64_t latent() const { return resolution >> (ch_mult.size() - 1); } // 32 for 256, f8
};

struct VqganConv {
    Conv2dWeight w;
    std::vector<uint8_t> reordered; // 3x3 weights in conv2d's order
    std::vector<float> bias;
};

struct VqganNorm {
    std::vector<float> gamma, beta;
};

struct VqganResBlock {
    int64_t c_in = 0, c_out = 0;
    VqganNorm norm1, norm2;
    VqganConv conv1, conv2, nin_shortcut; // nin_shortcut only when c_in != c_out
};

struct VqganAttnBlock {
    int64_t c = 0;
    VqganNorm norm;
    VqganConv q, k, v, proj_out;
};

struct VqganLevel {
    std::vector<VqganResBlock> block;
    std::vector<VqganAttnBlock> attn; // empty, or one after each block
    bool resample = false;            // upsample (decoder) / downsample (encoder) conv
    VqganConv resample_conv;
};

// A channels-last activation.
struct VqganAct {
    int64_t h = 0, w = 0, c = 0;
    std::vector<float> d;
};

class VqganModel {
  public:
    // Reads and validates the hyper-parameters and every tensor; throws hg::Error naming the
    // file and the key or tensor at fault. gpu (hg_gpu): HG_GPU_OFF decodes on the CPU;
    // HG_GPU_CUDA on the CUDA backend or an error saying why not; HG_GPU_AUTO CUDA when it
    // can, else the CPU (backend() says why). encode follows decode.
    static std::unique_ptr<VqganModel> load(std::unique_ptr<GGUFFile> file, int gpu = HG_GPU_OFF);

    const VqganHParams &hparams() const { return hp_; }
    bool has_encoder() const { return has_encoder_; }
    int64_t n_indices() const { return hp_.latent() * hp_.latent(); }

    // latent^2 indices (row-major) -> out_ch x resolution x resolution floats (CHW), before
    // the clamp. An index outside [0, n_embed) is refused naming its position.
    void decode(ThreadPool &pool, const int32_t *indices, float *image_chw) const;

    // in_channels x resolution x resolution floats in [-1, 1] (CHW) -> latent^2 indices.
    // logits (optional): latent^2 x n_embed floats, position-major.
    void encode(ThreadPool &pool, const float *image_chw, int32_t *indices, float *logits) const;

    // Where decode and encode run: "cpu", "cuda: <device>", or "cpu (<why not cuda>)".
    const std::string &backend() const { return backend_; }

  private:
    friend class CudaVqgan;
    VqganModel() = default;
    void use_device(int gpu);
    VqganAct resblock(ThreadPool &pool, const VqganResBlock &b, const VqganAct &x) const;
    void attnblock(ThreadPool &pool, const VqganAttnBlock &a, VqganAct &x) const;

    std::unique_ptr<GGUFFile> file_;
    VqganHParams hp_;
    bool has_encoder_ = false;
    const GGUFTensor *embed_ = nullptr;
    VqganConv post_quant_conv_, quant_conv_, proj_;
    VqganConv dec_conv_in_, dec_conv_out_, enc_conv_in_, enc_conv_out_;
    VqganResBlock dec_mid1_, dec_mid2_, enc_mid1_, enc_mid2_;
    VqganAttnBlock dec_mid_attn_, enc_mid_attn_;
    VqganNorm dec_norm_out_, enc_norm_out_;
    std::vector<VqganLevel> up_;          // index = level (decoder runs them from the last down)
    std::vector<VqganLevel> down_;        // encoder
    std::unique_ptr<VqganDevice> device_; // null: the CPU
    std::string backend_ = "cpu";
};

// The decoder's output as taming's custom_to_pil makes it: clamp to [-1, 1], (x + 1) / 2 *
// 255, truncated; CHW floats in, HWC uint8 out.
void vqgan_to_rgb8(const float *image_chw, int64_t channels, int64_t h, int64_t w, uint8_t *hwc);

} // namespace hg
