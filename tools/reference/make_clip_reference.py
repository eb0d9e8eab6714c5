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
  tiny.<variant>.gguf  variant f32, f16, bf16 (every matrix and the patch conv in that type)
                       or q8_0 (the attention, MLP and projector matrices; the patch conv and
                       the position table f16, as llama.cpp's quantizer leaves them);
                       norms, biases and the class embedding f32
  tiny.<variant>.ref   the reference outputs for that file's own weights: CLIPVisionModel and
                       the projectors run in float64 on the weights dequantized back from the
                       file, so a quantized variant measures only the engine's arithmetic

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


def gguf_tensors(tower, projectors):
    """(gguf name, the torch parameter) in llama.cpp's mmproj naming, the kept layers only."""
    vm = getattr(tower, "vision_model", tower)  # transformers 5 has no wrapper module
    out = [("v.patch_embd.weight", vm.embeddings.patch_embedding.weight),
           ("v.class_embd", vm.embeddings.class_embedding),
           ("v.position_embd.weight", vm.embeddings.position_embedding.weight),
           ("v.pre_ln.weight", vm.pre_layrnorm.weight), ("v.pre_ln.bias", vm.pre_layrnorm.bias)]
    for i in range(KEPT):
        l = vm.encoder.layers[i]
        for g, m in (("attn_q", l.self_attn.q_proj), ("attn_k", l.self_attn.k_proj), ("attn_v", l.self_attn.v_proj),
                     ("attn_out", l.self_attn.out_proj), ("ln1", l.layer_norm1), ("ln2", l.layer_norm2),
                     ("ffn_up", l.mlp.fc1), ("ffn_down", l.mlp.fc2)):
            out += [(f"v.blk.{i}.{g}.weight", m.weight), (f"v.blk.{i}.{g}.bias", m.bias)]
    for prefix, mlp in (("mm", projectors[0]), ("mm.gen", projectors[1])):
        out += [(f"{prefix}.0.weight", mlp[0].weight), (f"{prefix}.0.bias", mlp[0].bias),
                (f"{prefix}.2.weight", mlp[2].weight), (f"{prefix}.2.bias", mlp[2].bias)]
    return out


def stored_type(name: str, a: np.ndarray, variant: str):
    if a.ndim == 1 or variant == "f32":
        return QT.F32
    if variant == "q8_0":
        return QT.F16 if name in ("v.patch_embd.weight", "v.position_embd.weight") else QT.Q8_0
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


if __name__ == "__main__":
    main()
