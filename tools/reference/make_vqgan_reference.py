#!/usr/bin/env python3
"""Golden vectors for the VQGAN (taming-transformers GumbelVQ) decoder and encoder
(native/models/vqgan.cpp, read by native/tests/test_vqgan.cpp and test/vqgan.test.ts).

The torch modules below follow taming/modules/diffusionmodules/model.py (Encoder, Decoder,
ResnetBlock, AttnBlock, Upsample, Downsample, Normalize = GroupNorm(32, eps 1e-6)) and
taming/models/vqgan.py GumbelVQ (quant_conv, post_quant_conv, GumbelQuantize's proj and embed),
module for module, so the state_dict keys are those of the released Lightning checkpoint
(decoder.up.3.block.0.norm1.weight, decoder.mid.attn_1.q.weight, quantize.embed.weight, ...).
The math runs in float64.

Weights are not torch's random init but a counter-based generator that native/tests/vqgan_synth.h
implements identically, so the 256x256 geometry (~40M parameters, too big to commit) is made
on both sides from a seed and only its indices and output are committed:

  h    = mix(seed ^ fnv1a64(tensor name))
  x_i  = mix(h + (i + 1) * 0x9E3779B97F4A7C15)      (uint64, wrapping; i = flat index, C order)
  r_i  = (x_i >> 40) * 2^-24 * 2 - 1                 (uniform in [-1, 1), exact in float32)
  w_i  = float32(r_i * scale) (+ offset, in float64, then float32)
  mix  = splitmix64's finaliser (>>30 *0xBF58476D1CE4E5B9 >>27 *0x94D049BB133111EB >>31)

scale per tensor, like torch's default init so activations stay O(1): conv weight and bias
1/sqrt(fan_in); GroupNorm weight 1 + 0.1 r, bias 0.1 r; codebook (quantize.embed) r.

Outputs under test/fixtures/vqgan/ (little-endian raw arrays):
  tiny.gguf           the tiny model (TINY below) in the engine's layout (native/models/vqgan.h):
                      conv weights and codebook f16, biases and norms f32
  checkpoint/last.ckpt  the same weights as the release ships them (for the converter): a
                      Lightning-style torch.save of {'state_dict', 'epoch', 'global_step',
                      'pytorch-lightning_version'}, the state_dict in float32 with two of the
                      training loss's discriminator tensors (loss.*) that a converter must skip
  checkpoint/model.yaml  its config in the release's layout (model.params.ddconfig, embed_dim,
                      n_embed, target taming.models.vqgan.GumbelVQ)
  tiny_indices.i32    TINY latent^2 code indices (row-major), int32
  tiny_image.f32      decoder output, 3 x H x W (CHW), before the clamp, float32
  tiny_enc_input.f32  encoder input image 3 x H x W in [-1, 1] (generated: name "input")
  tiny_enc_indices.i32  argmax of quantize.proj's logits per latent position, int32
  tiny_enc_margin.f32   top-1 minus top-2 logit per position (ties would be ambiguous)
  real_indices.i32    1024 indices for the 256x256 geometry (REAL, seed REAL_SEED)
  real_image.f16      its decoder output 3 x 256 x 256, before the clamp, float16 (committed
                      size; float16 storage limits a PSNR measured against it to ~85 dB)
  real_enc_indices.i32, real_enc_margin.f32  the encoder on the generated 256x256 input

Pinned: torch 2.15.0, numpy 2.4.6, gguf 0.19.0 (the venv of make_phi3_reference.py). Output
is reproducible. Regenerate (from the repository root; the 256x256 part takes minutes):
  /opt/ref-venv/bin/pip install torch==2.15.0 numpy==2.4.6 gguf==0.19.0
  /opt/ref-venv/bin/python tools/reference/make_vqgan_reference.py [--tiny-only]
"""
import collections
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join("test", "fixtures", "vqgan")

# Hyper-parameters as in the released model.yaml (ddconfig + embed_dim, n_embed).
REAL = dict(ch=128, ch_mult=(1, 1, 2, 4), num_res_blocks=2, attn_resolutions=(32,), z_channels=256,
            resolution=256, in_channels=3, out_ch=3, embed_dim=256, n_embed=8192)
# Small enough to commit; attention, up/down sampling (width changes: the 256x256 geometry).
TINY = dict(ch=32, ch_mult=(1, 1), num_res_blocks=1, attn_resolutions=(8,), z_channels=16,
            resolution=16, in_channels=3, out_ch=3, embed_dim=16, n_embed=64)
TINY_SEED = 1
REAL_SEED = 2

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix(z):
    """splitmix64's finaliser on a numpy uint64 array (wrapping arithmetic)."""
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def stream(seed, name, n):
    """n raw uint64 values of the named stream."""
    with np.errstate(over="ignore"):
        h = mix(np.array([(seed ^ fnv1a64(name)) & M64], dtype=np.uint64))[0]
        i = np.arange(1, n + 1, dtype=np.uint64)
        return mix(h + i * np.uint64(GOLDEN))


def uniform(seed, name, n):
    """r in [-1, 1), float32, exact."""
    u = (stream(seed, name, n) >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)
    return u * np.float32(2) - np.float32(1)


def synth(seed, name, shape):
    n = int(np.prod(shape))
    r = uniform(seed, name, n).astype(np.float64)
    if name.endswith("norm.weight") or name.endswith("norm1.weight") or name.endswith("norm2.weight") \
            or name.endswith("norm_out.weight"):
        w = (1.0 + (r * 0.1).astype(np.float32).astype(np.float64)).astype(np.float32)
    elif name.endswith("norm.bias") or name.endswith("norm1.bias") or name.endswith("norm2.bias") \
            or name.endswith("norm_out.bias"):
        w = (r * 0.1).astype(np.float32)
    elif name == "quantize.embed.weight":
        w = r.astype(np.float32)
    else:  # a conv weight [o, i, kh, kw] or its bias [o]: 1/sqrt(fan_in)
        w = (r * fan_in[name]).astype(np.float32)
    return w.reshape(shape)


fan_in = {}  # name -> 1/sqrt(fan_in), filled from the module before synth()


# ---- taming's modules ----

def Normalize(c):
    return torch.nn.GroupNorm(num_groups=32, num_channels=c, eps=1e-6, affine=True)


def swish(x):
    return x * torch.sigmoid(x)


class Upsample(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = torch.nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Downsample(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = torch.nn.Conv2d(c, c, 3, 2, 0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0))


class ResnetBlock(torch.nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.norm1 = Normalize(c_in)
        self.conv1 = torch.nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.norm2 = Normalize(c_out)
        self.conv2 = torch.nn.Conv2d(c_out, c_out, 3, 1, 1)
        if c_in != c_out:
            self.nin_shortcut = torch.nn.Conv2d(c_in, c_out, 1, 1, 0)
        self.c_in, self.c_out = c_in, c_out

    def forward(self, x):
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))  # dropout 0
        if self.c_in != self.c_out:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = Normalize(c)
        self.q = torch.nn.Conv2d(c, c, 1)
        self.k = torch.nn.Conv2d(c, c, 1)
        self.v = torch.nn.Conv2d(c, c, 1)
        self.proj_out = torch.nn.Conv2d(c, c, 1)

    def forward(self, x):
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        b, c, hh, ww = q.shape
        q = q.reshape(b, c, hh * ww).permute(0, 2, 1)
        k = k.reshape(b, c, hh * ww)
        w = torch.softmax(torch.bmm(q, k) * (int(c) ** -0.5), dim=2)  # [b, query, key]
        v = v.reshape(b, c, hh * ww)
        h = torch.bmm(v, w.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(h)


class Encoder(torch.nn.Module):
    def __init__(self, ch, ch_mult, num_res_blocks, attn_resolutions, z_channels, resolution,
                 in_channels, **_):
        super().__init__()
        self.num_resolutions, self.num_res_blocks = len(ch_mult), num_res_blocks
        self.conv_in = torch.nn.Conv2d(in_channels, ch, 3, 1, 1)
        curr_res, in_ch_mult = resolution, (1,) + tuple(ch_mult)
        self.down = torch.nn.ModuleList()
        for i_level in range(self.num_resolutions):
            block, attn = torch.nn.ModuleList(), torch.nn.ModuleList()
            block_in, block_out = ch * in_ch_mult[i_level], ch * ch_mult[i_level]
            for _ in range(num_res_blocks):
                block.append(ResnetBlock(block_in, block_out))
                block_in = block_out
                if curr_res in attn_resolutions:
                    attn.append(AttnBlock(block_in))
            down = torch.nn.Module()
            down.block, down.attn = block, attn
            if i_level != self.num_resolutions - 1:
                down.downsample = Downsample(block_in)
                curr_res //= 2
            self.down.append(down)
        self.mid = torch.nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(block_in, block_in)
        self.norm_out = Normalize(block_in)
        self.conv_out = torch.nn.Conv2d(block_in, z_channels, 3, 1, 1)  # double_z False

    def forward(self, x):
        h = self.conv_in(x)
        for i_level in range(self.num_resolutions):
            for i_block in range(self.num_res_blocks):
                h = self.down[i_level].block[i_block](h)
                if len(self.down[i_level].attn) > 0:
                    h = self.down[i_level].attn[i_block](h)
            if i_level != self.num_resolutions - 1:
                h = self.down[i_level].downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(swish(self.norm_out(h)))


class Decoder(torch.nn.Module):
    def __init__(self, ch, ch_mult, num_res_blocks, attn_resolutions, z_channels, resolution,
                 out_ch, **_):
        super().__init__()
        self.num_resolutions, self.num_res_blocks = len(ch_mult), num_res_blocks
        block_in = ch * ch_mult[-1]
        curr_res = resolution // 2 ** (self.num_resolutions - 1)
        self.conv_in = torch.nn.Conv2d(z_channels, block_in, 3, 1, 1)
        self.mid = torch.nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(block_in, block_in)
        self.up = torch.nn.ModuleList()
        for i_level in reversed(range(self.num_resolutions)):
            block, attn = torch.nn.ModuleList(), torch.nn.ModuleList()
            block_out = ch * ch_mult[i_level]
            for _ in range(num_res_blocks + 1):
                block.append(ResnetBlock(block_in, block_out))
                block_in = block_out
                if curr_res in attn_resolutions:
                    attn.append(AttnBlock(block_in))
            up = torch.nn.Module()
            up.block, up.attn = block, attn
            if i_level != 0:
                up.upsample = Upsample(block_in)
                curr_res *= 2
            self.up.insert(0, up)
        self.norm_out = Normalize(block_in)
        self.conv_out = torch.nn.Conv2d(block_in, out_ch, 3, 1, 1)

    def forward(self, z):
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(self.conv_in(z))))
        for i_level in reversed(range(self.num_resolutions)):
            for i_block in range(self.num_res_blocks + 1):
                h = self.up[i_level].block[i_block](h)
                if len(self.up[i_level].attn) > 0:
                    h = self.up[i_level].attn[i_block](h)
            if i_level != 0:
                h = self.up[i_level].upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


class GumbelQuantize(torch.nn.Module):
    def __init__(self, num_hiddens, embedding_dim, n_embed):
        super().__init__()
        self.proj = torch.nn.Conv2d(num_hiddens, n_embed, 1)
        self.embed = torch.nn.Embedding(n_embed, embedding_dim)


class GumbelVQ(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.encoder = Encoder(**cfg)
        self.decoder = Decoder(**cfg)
        self.quantize = GumbelQuantize(cfg["z_channels"], cfg["embed_dim"], cfg["n_embed"])
        self.quant_conv = torch.nn.Conv2d(cfg["z_channels"], cfg["embed_dim"], 1)
        self.post_quant_conv = torch.nn.Conv2d(cfg["embed_dim"], cfg["z_channels"], 1)

    def decode_indices(self, idx, latent):
        z = self.quantize.embed.weight[idx.reshape(-1)]  # the one-hot einsum, hard
        z = z.reshape(1, latent, latent, -1).permute(0, 3, 1, 2)
        return self.decoder(self.post_quant_conv(z))

    def encode_logits(self, x):
        return self.quantize.proj(self.quant_conv(self.encoder(x)))  # [1, n_embed, h, w]


def build(cfg, seed):
    m = GumbelVQ(cfg).double()
    for name, mod in m.named_modules():
        if isinstance(mod, torch.nn.Conv2d):
            s = 1.0 / np.sqrt(mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1])
            fan_in[name + ".weight"] = fan_in[name + ".bias"] = s
    sd = {}
    with torch.no_grad():
        for name, p in m.state_dict().items():
            w = synth(seed, name, tuple(p.shape))
            p.copy_(torch.from_numpy(w.astype(np.float64)))
            sd[name] = torch.from_numpy(w.copy())
    return m, sd


def indices(seed, name, n, n_embed):
    return (stream(seed, name, n) % np.uint64(n_embed)).astype(np.int32)


def encode(m, cfg, seed):
    res = cfg["resolution"]
    x = uniform(seed, "input", 3 * res * res).reshape(1, 3, res, res)
    with torch.no_grad():
        logits = m.encode_logits(torch.from_numpy(x.astype(np.float64)))[0]  # [n, h, w]
    top2 = torch.topk(logits.reshape(logits.shape[0], -1), 2, dim=0).values
    idx = logits.reshape(logits.shape[0], -1).argmax(dim=0).numpy().astype(np.int32)
    margin = (top2[0] - top2[1]).numpy().astype(np.float32)
    return x, idx, margin


def write_gguf(path, cfg, sd):
    import gguf
    w = gguf.GGUFWriter(path, "vqgan")
    w.add_name("taming GumbelVQ (synthetic weights)")
    for k in ("ch", "num_res_blocks", "z_channels", "resolution", "in_channels", "out_ch",
              "embed_dim", "n_embed"):
        w.add_uint32("vqgan." + k, cfg[k])
    w.add_array("vqgan.ch_mult", [int(v) for v in cfg["ch_mult"]])
    w.add_array("vqgan.attn_resolutions", [int(v) for v in cfg["attn_resolutions"]])
    for name, t in sd.items():
        assert len(name) < 64, name
        a = t.numpy().astype(np.float32)
        # conv weights and the codebook in f16 (half the committed size; the f32 path is
        # tested on weights the native test makes itself), 1-D tensors f32 as converters do
        w.add_tensor(name, a.astype(np.float16) if a.ndim > 1 else a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_checkpoint(dirname, cfg, sd, seed):
    os.makedirs(dirname, exist_ok=True)
    full = collections.OrderedDict(sd)  # Lightning saves the module's OrderedDict
    fan_in["loss.d"] = fan_in["loss.d.bias"] = 1.0 / np.sqrt(3 * 4 * 4)
    # the released checkpoint also holds the training loss (LPIPS, discriminator): not model
    full["loss.discriminator.main.0.weight"] = torch.from_numpy(synth(seed, "loss.d", (8, 3, 4, 4)))
    full["loss.discriminator.main.0.bias"] = torch.from_numpy(synth(seed, "loss.d.bias", (8,)))
    torch.save({"epoch": 0, "global_step": 0, "pytorch-lightning_version": "1.0.8", "state_dict": full},
               os.path.join(dirname, "last.ckpt"))
    lst = lambda v: "[" + ", ".join(str(int(x)) for x in v) + "]"
    with open(os.path.join(dirname, "model.yaml"), "w") as f:
        f.write(f"""model:
  base_learning_rate: 4.5e-06
  target: taming.models.vqgan.GumbelVQ
  params:
    kl_weight: 1.0e-08
    embed_dim: {cfg["embed_dim"]}
    n_embed: {cfg["n_embed"]}
    monitor: val/rec_loss
    ddconfig:
      double_z: false
      z_channels: {cfg["z_channels"]}
      resolution: {cfg["resolution"]}
      in_channels: {cfg["in_channels"]}
      out_ch: {cfg["out_ch"]}
      ch: {cfg["ch"]}
      ch_mult: {lst(cfg["ch_mult"])}
      num_res_blocks: {cfg["num_res_blocks"]}
      attn_resolutions: {lst(cfg["attn_resolutions"])}
      dropout: 0.0
    lossconfig:
      target: taming.modules.losses.vqperceptual.DummyLoss
""")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(2)

    cfg, seed = TINY, TINY_SEED
    m, sd = build(cfg, seed)
    latent = cfg["resolution"] // 2 ** (len(cfg["ch_mult"]) - 1)
    idx = indices(seed, "indices", latent * latent, cfg["n_embed"])
    with torch.no_grad():
        img = m.decode_indices(torch.from_numpy(idx.astype(np.int64)), latent)[0].numpy()
    idx.tofile(os.path.join(OUT, "tiny_indices.i32"))
    img.astype(np.float32).tofile(os.path.join(OUT, "tiny_image.f32"))
    x, eidx, margin = encode(m, cfg, seed)
    x.astype(np.float32).tofile(os.path.join(OUT, "tiny_enc_input.f32"))
    eidx.tofile(os.path.join(OUT, "tiny_enc_indices.i32"))
    margin.tofile(os.path.join(OUT, "tiny_enc_margin.f32"))
    write_checkpoint(os.path.join(OUT, "checkpoint"), cfg, sd, seed)
    write_gguf(os.path.join(OUT, "tiny.gguf"), cfg, sd)
    n_params = sum(int(t.numel()) for t in sd.values())
    print(f"tiny: {n_params} parameters, image range [{img.min():.3f}, {img.max():.3f}], "
          f"std {img.std():.3f}, min encoder margin {margin.min():.2e}")
    if "--tiny-only" in sys.argv:
        return

    cfg, seed = REAL, REAL_SEED
    m, sd = build(cfg, seed)
    idx = indices(seed, "indices", 1024, cfg["n_embed"])
    with torch.no_grad():
        img = m.decode_indices(torch.from_numpy(idx.astype(np.int64)), 32)[0].numpy()
    idx.tofile(os.path.join(OUT, "real_indices.i32"))
    img.astype(np.float16).tofile(os.path.join(OUT, "real_image.f16"))
    print(f"real: {sum(int(t.numel()) for t in sd.values())} parameters, image range "
          f"[{img.min():.3f}, {img.max():.3f}], std {img.std():.3f}")
    _, eidx, margin = encode(m, cfg, seed)
    eidx.tofile(os.path.join(OUT, "real_enc_indices.i32"))
    margin.tofile(os.path.join(OUT, "real_enc_margin.f32"))
    print(f"real encoder: min margin {margin.min():.2e}, "
          f"{int((margin < 1e-3).sum())} of 1024 below 1e-3")


if __name__ == "__main__":
    main()
