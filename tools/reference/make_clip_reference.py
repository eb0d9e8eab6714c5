#!/usr/bin/env python3
"""Golden vectors for the CLIP vision tower and its mlp2x_gelu projectors
(native/models/clip.cpp, read by native/tests/test_clip.cpp and test/clip.test.ts), from
transformers' own CLIPVisionModel on a tiny random tower, written as GGUF files in llama.cpp's
mmproj layout (keys clip.*, tensors v.*, mm.0 / mm.2) with gguf-py's GGUFWriter, plus
HealthGPT's generation projector (mm.gen.0 / mm.gen.2) and generation tap
(clip.vision.generation_feature_layer).

The tiny tower: image 56 px, patch 14 (4 x 4 = 16 patches + the class position), width 32,
2 heads of 16, MLP 64, quick_gelu, LayerNorm eps 1e-5; 4 layers originally, of which the
file keeps 3, as LLaVA's converter does (clip.vision.feature_layer = [3], block_count = 3):
hidden state -2 of the 4-layer tower is hidden state 3. Projectors: comprehension
32 -> 64 -> 64, generation 32 -> 32 -> 32.

Outputs in test/fixtures/clip/ (CI has no Python):
  tiny.<variant>.gguf  variant f32, f16 (every matrix and the patch conv in that type), bf16
                       (the matrices; the patch conv f16: llama.cpp's CPU conv has no bf16
                       kernel) or q8_0 (the attention, MLP and projector matrices; the patch
                       conv and the position table f16, as llama.cpp's quantizer leaves them);
                       norms, biases and the class embedding f32
  tiny.<variant>.ref   the reference outputs for that file's own weights: CLIPVisionModel and
                       the projectors run in float64 on the weights dequantized back from the
                       file, so a quantized variant measures only the engine's arithmetic

  vitl336.ref          the real geometry (image 336, patch 14, width 1024, 16 heads, MLP 4096;
                       3 layers originally, the file keeping 2: feature_layer [2]) with
                       weights and pixels drawn by a generator both sides implement (below),
                       so no weights are committed: native/tests/test_clip.cpp builds the same
                       GGUF in memory. Hidden states 1 (generation) and 2 (comprehension) on
                       every 23rd patch row, for the f32 weights and for the weights rounded
                       to f16 (matrices, conv and position table; norms and biases f32)

The generator: value i of a tensor is u(fnv1a64(name), i) * scale, with
u(seed, i) = ((splitmix64(seed + i) >> 40) - 2^23) / 2^23 (uniform on [-1, 1), 24 bits, exact
in f32; wrapping uint64 arithmetic) and scale a power of two per tensor (see SCALES); norm
weights add 1. Pixels: u(fnv1a64("pixels"), i) * 2, CHW. i runs over the tensor in torch's
row-major order, which is the GGUF's data order.

vitl336.ref layout, little-endian: "HGCR", u32 version (1), u32 n_rows, u32 rows[n_rows]
(patch indices), then f32 [f32 weights: hidden 1, hidden 2; f16 weights: hidden 1, hidden 2]
[n_rows][1024].

.ref layout, little-endian: "HGCL", u32 version (1), u32 image_size, n_embd, n_patches,
n_hidden (hidden states 0..n_hidden-1 recorded), proj_dim (comprehension), gen_proj_dim,
comprehension_layer, generation_layer; then f32 pixels[3][image_size][image_size] (CHW),
f32 hidden[n_hidden][n_patches][n_embd] (class position dropped), f32
projected[n_patches][proj_dim] (comprehension projector on hidden state comprehension_layer),
f32 gen_projected[n_patches][gen_proj_dim] (generation projector on hidden state
generation_layer).

Regenerate (from the repository root; pinned versions, the output is deterministic on CPU):
  python3 -m venv /opt/ref-venv
  /opt/ref-venv/bin/pip install torch==2.15.0 transformers==5.23.0 gguf==0.19.0 numpy==2.4.6
  /opt/ref-venv/bin/python tools/reference/make_clip_reference.py
"""
import os
import struct

import numpy as np
import torch

import gguf
from gguf import GGMLQuantizationType as QT
from gguf.quants import dequantize, quantize
from transformers import CLIPVisionConfig, CLIPVisionModel

OUT = os.path.join("test", "fixtures", "clip")

IMAGE, PATCH, WIDTH, HEADS, FF, LAYERS = 56, 14, 32, 2, 64, 4
KEPT = LAYERS - 1                  # LLaVA's converter drops the last layer
COMPREHENSION = LAYERS - 2 + 1     # hidden state -2 as a non-negative index: 3
GENERATION = 1
PROJ, GEN_PROJ = 64, 32
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
VARIANTS = ["f32", "f16", "bf16", "q8_0"]


def make_models():
    torch.manual_seed(5)
    cfg = CLIPVisionConfig(hidden_size=WIDTH, intermediate_size=FF, num_hidden_layers=LAYERS,
                           num_attention_heads=HEADS, num_channels=3, image_size=IMAGE,
                           patch_size=PATCH, hidden_act="quick_gelu", layer_norm_eps=1e-5)
    tower = CLIPVisionModel(cfg).double().eval()
    # Weights large enough that every op moves the result (the default init, std 0.02, would
    # leave the residual stream nearly the embeddings): linears std 1/sqrt(fan_in), norms
    # around 1, biases and embeddings clearly non-zero.
    with torch.no_grad():
        for name, p in tower.named_parameters():
            if "layer_norm" in name or "layrnorm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p) if name.endswith("weight") else 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.normal_(0.0, 0.2)
            elif "embedding" in name and "patch" not in name:
                p.normal_(0.0, 0.5)
            else:
                fan_in = int(np.prod(p.shape[1:]))
                p.normal_(0.0, 1.0 / np.sqrt(fan_in))
    projectors = []
    for d in (PROJ, GEN_PROJ):
        mlp = torch.nn.Sequential(torch.nn.Linear(WIDTH, d), torch.nn.GELU(), torch.nn.Linear(d, d)).double()
        with torch.no_grad():
            for p in mlp.parameters():
                p.normal_(0.0, 0.2 if p.ndim == 1 else 1.0 / np.sqrt(p.shape[1]))
        projectors.append(mlp)
    return tower, projectors


def gguf_tensors(tower, projectors, kept=KEPT):
    """(gguf name, the torch parameter) in llama.cpp's mmproj naming, the kept layers only
    (projectors None: the tower alone)."""
    vm = getattr(tower, "vision_model", tower)  # transformers 5 has no wrapper module
    out = [("v.patch_embd.weight", vm.embeddings.patch_embedding.weight),
           ("v.class_embd", vm.embeddings.class_embedding),
           ("v.position_embd.weight", vm.embeddings.position_embedding.weight),
           ("v.pre_ln.weight", vm.pre_layrnorm.weight), ("v.pre_ln.bias", vm.pre_layrnorm.bias)]
    for i in range(kept):
        l = vm.encoder.layers[i]
        for g, m in (("attn_q", l.self_attn.q_proj), ("attn_k", l.self_attn.k_proj), ("attn_v", l.self_attn.v_proj),
                     ("attn_out", l.self_attn.out_proj), ("ln1", l.layer_norm1), ("ln2", l.layer_norm2),
                     ("ffn_up", l.mlp.fc1), ("ffn_down", l.mlp.fc2)):
            out += [(f"v.blk.{i}.{g}.weight", m.weight), (f"v.blk.{i}.{g}.bias", m.bias)]
    for prefix, mlp in (("mm", projectors[0]), ("mm.gen", projectors[1])) if projectors else ():
        out += [(f"{prefix}.0.weight", mlp[0].weight), (f"{prefix}.0.bias", mlp[0].bias),
                (f"{prefix}.2.weight", mlp[2].weight), (f"{prefix}.2.bias", mlp[2].bias)]
    return out


def stored_type(name: str, a: np.ndarray, variant: str):
    if a.ndim == 1 or variant == "f32":
        return QT.F32
    if variant == "q8_0":
        return QT.F16 if name in ("v.patch_embd.weight", "v.position_embd.weight") else QT.Q8_0
    if variant == "bf16" and name == "v.patch_embd.weight":
        return QT.F16  # llama.cpp's CPU conv (im2col) has no bf16 kernel: it aborts on one
    return {"f16": QT.F16, "bf16": QT.BF16}[variant]


def write_gguf(path: str, tensors, variant: str):
    """Writes the file; sets each torch parameter to the value the file holds (dequantized)."""
    w = gguf.GGUFWriter(path, arch="clip")
    w.add_name(f"healthgpt clip reference ({os.path.basename(path)}, random weights)")
    w.add_description("image encoder for LLaVA-style HealthGPT (tiny, random)")
    w.add_bool("clip.has_text_encoder", False)
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.has_llava_projector", True)
    w.add_string("clip.projector_type", "mlp")
    w.add_bool("clip.use_gelu", False)
    w.add_uint32("clip.vision.image_size", IMAGE)
    w.add_uint32("clip.vision.patch_size", PATCH)
    w.add_uint32("clip.vision.embedding_length", WIDTH)
    w.add_uint32("clip.vision.feed_forward_length", FF)
    w.add_uint32("clip.vision.projection_dim", PROJ)
    w.add_uint32("clip.vision.attention.head_count", HEADS)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    w.add_uint32("clip.vision.block_count", KEPT)
    w.add_array("clip.vision.feature_layer", [COMPREHENSION])
    w.add_uint32("clip.vision.generation_feature_layer", GENERATION)
    w.add_array("clip.vision.image_mean", MEAN)
    w.add_array("clip.vision.image_std", STD)
    for name, p in tensors:
        a = p.detach().to(torch.float32).numpy()
        qt = stored_type(name, a, variant)
        if qt == QT.F32:
            held = a
            w.add_tensor(name, a)
        elif qt == QT.F16:
            h = a.astype(np.float16)
            held = h.astype(np.float32)
            w.add_tensor(name, h)
        else:
            q = quantize(a, qt)
            held = dequantize(q, qt).reshape(a.shape).astype(np.float32)
            w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qt)
        with torch.no_grad():
            p.copy_(torch.from_numpy(held.astype(np.float64)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    pixels = np.random.default_rng(55).standard_normal((3, IMAGE, IMAGE)).astype(np.float32)
    for variant in VARIANTS:
        tower, projectors = make_models()  # the same seed: the same weights before storing
        write_gguf(os.path.join(OUT, f"tiny.{variant}.gguf"), gguf_tensors(tower, projectors), variant)
        with torch.no_grad():
            x = torch.from_numpy(pixels.astype(np.float64))[None]
            hs = tower(pixel_values=x, output_hidden_states=True).hidden_states
            assert len(hs) == LAYERS + 1
            hidden = [h[0, 1:].numpy() for h in hs[:KEPT + 1]]  # class position dropped
            assert np.array_equal(hs[-2][0, 1:].numpy(), hidden[COMPREHENSION])
            proj = projectors[0](torch.from_numpy(hidden[COMPREHENSION])).numpy()
            gen = projectors[1](torch.from_numpy(hidden[GENERATION])).numpy()
        n_patches = (IMAGE // PATCH) ** 2
        with open(os.path.join(OUT, f"tiny.{variant}.ref"), "wb") as f:
            f.write(b"HGCL" + struct.pack("<9I", 1, IMAGE, WIDTH, n_patches, len(hidden), PROJ, GEN_PROJ,
                                          COMPREHENSION, GENERATION))
            for a in [pixels, *hidden, proj, gen]:
                f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())
        print(f"tiny.{variant}: |hidden {COMPREHENSION}| max {np.abs(hidden[COMPREHENSION]).max():.3f}, "
              f"|proj| max {np.abs(proj).max():.3f}")


# ---- the real geometry, weights from a generator both sides implement ----

M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def fnv1a64(name: str) -> int:
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def uniform(seed: int, n: int) -> np.ndarray:
    """u(seed, i) for i < n, as float64 (exact f32 values)."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.arange(n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(40)).astype(np.int64) - (1 << 23)).astype(np.float64) / float(1 << 23)


def scale_of(name: str) -> float:
    """SCALES: matrices about 1/sqrt(fan_in) (std of u is 0.577), vectors 1/8, tables 1/2."""
    if name.endswith("ffn_down.weight"):
        return 1 / 32  # fan_in 4096
    if name.endswith(".weight") and ("attn_" in name or "ffn_up" in name or "patch_embd" in name):
        return 1 / 16  # fan_in 1024 (the conv: 588)
    if name in ("v.class_embd", "v.position_embd.weight"):
        return 1 / 2
    return 1 / 8  # norms (plus 1) and biases


def is_norm(name: str) -> bool:
    return name.endswith(".weight") and ("ln" in name.split(".")[-2])


R_IMAGE, R_WIDTH, R_HEADS, R_FF, R_LAYERS, R_KEPT = 336, 1024, 16, 4096, 3, 2
R_ROWS = list(range(0, (R_IMAGE // PATCH) ** 2, 23))


def make_vitl336():
    cfg = CLIPVisionConfig(hidden_size=R_WIDTH, intermediate_size=R_FF, num_hidden_layers=R_LAYERS,
                           num_attention_heads=R_HEADS, num_channels=3, image_size=R_IMAGE,
                           patch_size=PATCH, hidden_act="quick_gelu", layer_norm_eps=1e-5)
    n = 3 * R_IMAGE * R_IMAGE
    pixels = torch.from_numpy(uniform(fnv1a64("pixels"), n) * 2).reshape(1, 3, R_IMAGE, R_IMAGE)
    outputs = []
    for variant in ("f32", "f16"):
        tower = CLIPVisionModel(cfg).double().eval()
        names = gguf_tensors(tower, None, R_KEPT)
        with torch.no_grad():
            for g, p in names:
                a = uniform(fnv1a64(g), p.numel()) * scale_of(g) + (1.0 if is_norm(g) else 0.0)
                if variant == "f16" and (p.ndim >= 2):
                    a = a.astype(np.float16).astype(np.float64)
                p.copy_(torch.from_numpy(a).reshape(p.shape))
            hs = tower(pixel_values=pixels, output_hidden_states=True).hidden_states
        for h in (1, 2):
            outputs.append(hs[h][0, 1:][R_ROWS].numpy())
        print(f"vitl336.{variant}: |hidden 2| max {np.abs(outputs[-1]).max():.3f}")
    with open(os.path.join(OUT, "vitl336.ref"), "wb") as f:
        f.write(b"HGCR" + struct.pack("<2I", 1, len(R_ROWS)) + struct.pack(f"<{len(R_ROWS)}I", *R_ROWS))
        for a in outputs:
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())


if __name__ == "__main__":
    main()
    make_vitl336()
