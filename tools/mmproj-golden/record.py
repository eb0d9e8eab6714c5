#!/usr/bin/env python3
"""Golden data for the mmproj layout, both directions, recorded from llama.cpp itself
(see README.md here for the llama.cpp build and the exact commands).

1. Our files in llama.cpp: test/fixtures/clip/tiny.<variant>.gguf (written by
   tools/reference/make_clip_reference.py) go through llama.cpp's clip.cpp (the harness,
   harness.cpp) on the pixels of tiny.f32.ref; its features (the projector's input) and
   projected embeddings are stored as tiny.<variant>.llama-cpp.f32, and whether it loaded
   them, how many layers it ran and the widths in manifest.json.
   This llama.cpp revision puts the class token after the patches in the llava graph
   (ggml-org/llama.cpp issue 25814): every patch gets its neighbour's position embedding, so
   its numbers differ from transformers' by O(1) on any real file. To compare the arithmetic
   anyway, tiny-constpos.<variant>.gguf is the same tower written by the same writer with one
   position embedding row for every position: there the order changes nothing but the rows
   (llama.cpp's row r is patch r + 1, its last row the class token). Stored with
   transformers' float64 outputs (tiny-constpos.<variant>.hf.f32) and llama.cpp's.
2. llama.cpp's files here (position embedding one row, as in 1.): a tiny HF CLIPVisionModel
   plus a LLaVA-1.5 style projector
   (model.mm_projector.0 / .2, as LLaVA saves mm_projector.bin) are converted with llama.cpp's
   legacy converter tools/mtmd/legacy-models/convert_image_encoder_to_gguf.py (the script
   that wrote the released LLaVA-1.5 mmproj files), twice: with mm_vision_select_layer = -2
   in config.json (the file then holds clip.vision.feature_layer) and without it (as the
   released LLaVA-1.5 files were made: no feature_layer, the last layer dropped). The files
   are committed as legacy-select.gguf and legacy-noselect.gguf, with transformers' float64
   outputs (hidden state -2, the projector on it) and the harness's outputs on them.

3. Our converter: the tower and projector of 2. are saved as a HF folder (hf-tiny/: config.json,
   model.safetensors with vision_model.* keys, mm_projector.safetensors), converted by
   lib/convert/clip.ts (convert-ours.ts) to each --type, and run through the harness
   (hf-tiny.<type>.llama-cpp.f32; the file's sha256 in manifest.json, so the test, which
   converts again, knows it ran on the very file llama.cpp saw).

Weights are rounded to what each file stores (the converter keeps the patch conv and the
projector matrices f16 even with --use-f32), so transformers' numbers are those of the
file's own weights.

Outputs in test/fixtures/clip/llama-cpp/: manifest.json, *.llama-cpp.f32, *.hf.f32, the two
converted .gguf files, the constpos .gguf files. Layout of *.f32: raw little-endian f32,
n_patches x n_embd features then n_patches x n_mmproj_embd projected.

  /opt/ref-venv/bin/python tools/mmproj-golden/record.py --harness /tmp/mmproj-harness \
      --llama-cpp /tmp/llama.cpp --converter-pythonpath /tmp/tf4
"""
import argparse
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModel

OUT = os.path.join("test", "fixtures", "clip", "llama-cpp")
FIX = os.path.join("test", "fixtures", "clip")
IMAGE, PATCH, WIDTH, HEADS, FF, LAYERS, PROJ = 56, 14, 32, 2, 64, 4, 64


def ref_pixels():
    """The pixels of tiny.f32.ref (3 x 56 x 56 f32, after the 40-byte header)."""
    with open(os.path.join(FIX, "tiny.f32.ref"), "rb") as f:
        head = f.read(40)
        assert head[:4] == b"HGCL"
        image = struct.unpack("<I", head[8:12])[0]
        return np.frombuffer(f.read(3 * image * image * 4), dtype="<f4").reshape(3, image, image).copy()


def f16(t):
    return t.to(torch.float16).to(torch.float64)


def make_hf(seed):
    torch.manual_seed(seed)
    cfg = CLIPVisionConfig(hidden_size=WIDTH, intermediate_size=FF, num_hidden_layers=LAYERS,
                           num_attention_heads=HEADS, num_channels=3, image_size=IMAGE,
                           patch_size=PATCH, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                           projection_dim=PROJ)
    tower = CLIPVisionModel(cfg).double().eval()
    with torch.no_grad():
        for name, p in tower.named_parameters():
            if "layer_norm" in name or "layrnorm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p) if name.endswith("weight") else 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.normal_(0.0, 0.2)
            elif "embedding" in name and "patch" not in name:
                p.normal_(0.0, 0.5)
            else:
                p.normal_(0.0, 1.0 / np.sqrt(int(np.prod(p.shape[1:]))))
            if "position_embedding" in name:
                p.copy_(p[0:1].expand_as(p).clone())  # one row for all: see "constpos" above
            if "patch_embedding" in name:
                p.copy_(f16(p))  # the converter always stores the conv f16
            else:
                p.copy_(p.to(torch.float32).to(torch.float64))  # --use-f32 stores the rest f32
    mlp = torch.nn.Sequential(torch.nn.Linear(WIDTH, PROJ), torch.nn.GELU(), torch.nn.Linear(PROJ, PROJ)).double()
    with torch.no_grad():
        for p in mlp.parameters():
            p.normal_(0.0, 0.2 if p.ndim == 1 else 1.0 / np.sqrt(p.shape[1]))
            p.copy_(f16(p) if p.ndim == 2 else p.to(torch.float32).to(torch.float64))
    return tower, mlp


args_llama_cpp = []  # the checkout's path, cut from the error lines recorded


def run_harness(harness, gguf_path, pixels_path, out_path):
    r = subprocess.run([harness, gguf_path, pixels_path, out_path, "1"], capture_output=True, text=True)
    if r.returncode != 0:
        lines = r.stderr.strip().splitlines()
        why = [l for l in lines if "GGML_ASSERT" in l or "error" in l.lower() or "failed" in l]
        return {"ok": False, "error": (why or lines or ["(no stderr)"])[0].replace(args_llama_cpp[0] + "/", "")}
    info = json.loads(r.stdout.strip().splitlines()[-1])
    info["ok"] = True
    return info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--harness", required=True)
    ap.add_argument("--llama-cpp", required=True)
    ap.add_argument("--converter-pythonpath", default="")
    args = ap.parse_args()
    args_llama_cpp.append(os.path.abspath(args.llama_cpp))
    rev = subprocess.run(["git", "-C", args.llama_cpp, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="mmproj-golden-")
    pixels = ref_pixels()
    pix_path = os.path.join(tmp, "pixels.f32")
    pixels.astype("<f4").tofile(pix_path)
    manifest = {"llama_cpp_revision": rev, "pixels": "tiny.f32.ref", "ours": {}, "constpos": {}, "legacy": {}}

    # 1. our files through llama.cpp
    for variant in ["f32", "f16", "bf16", "q8_0"]:
        out = os.path.join(OUT, f"tiny.{variant}.llama-cpp.f32")
        info = run_harness(args.harness, os.path.join(FIX, f"tiny.{variant}.gguf"), pix_path, out)
        manifest["ours"][variant] = info
        print(f"tiny.{variant}: {info}")

    # 1b. the same tower with one position embedding for every position, so that llama.cpp's
    # token order (this revision puts the class token after the patches: ggml-org/llama.cpp
    # issue 25814) cannot change the patch rows: its rows 0..14 are patches 1..15, which our
    # engine must reproduce (its rows 1..15); its row 15 is the class token.
    sys.path.insert(0, os.path.join("tools", "reference"))
    import make_clip_reference as mcr
    for variant in ["f32", "f16", "bf16", "q8_0"]:
        tower, projectors = mcr.make_models()
        with torch.no_grad():
            vm = getattr(tower, "vision_model", tower)
            pe = vm.embeddings.position_embedding.weight
            pe.copy_(pe[0:1].expand_as(pe).clone())
        const_path = os.path.join(OUT, f"tiny-constpos.{variant}.gguf")
        mcr.write_gguf(const_path, mcr.gguf_tensors(tower, projectors), variant)  # sets the held weights
        with torch.no_grad():
            x = torch.from_numpy(pixels.astype(np.float64))[None]
            feat = tower(pixel_values=x, output_hidden_states=True).hidden_states[mcr.COMPREHENSION][0, 1:]
            projected = projectors[0](feat)
        with open(os.path.join(OUT, f"tiny-constpos.{variant}.hf.f32"), "wb") as f:
            f.write(np.ascontiguousarray(feat.numpy(), dtype="<f4").tobytes())
            f.write(np.ascontiguousarray(projected.numpy(), dtype="<f4").tobytes())
        out = os.path.join(OUT, f"tiny-constpos.{variant}.llama-cpp.f32")
        info = run_harness(args.harness, const_path, pix_path, out)
        manifest["constpos"][variant] = info
        got = np.fromfile(out, dtype="<f4")
        n = feat.numel()
        gf, gp = got[:n].reshape(feat.shape), got[n:].reshape(projected.shape)
        print(f"constpos {variant}: llama.cpp rows 0..14 vs transformers patches 1..15: features max abs "
              f"{np.abs(gf[:-1] - feat.numpy()[1:]).max():.3e}, projected max abs {np.abs(gp[:-1] - projected.numpy()[1:]).max():.3e}")

    # 2. llama.cpp's legacy converter on a tiny HF tower + LLaVA projector
    conv = os.path.join(args.llama_cpp, "tools", "mtmd", "legacy-models", "convert_image_encoder_to_gguf.py")
    # The legacy converter needs transformers 4 (CLIPVisionModel.vision_model is gone in 5):
    # --converter-pythonpath puts transformers==4.57.6 (llama.cpp's pin) in front of the venv.
    env = dict(os.environ, PYTHONPATH=args.converter_pythonpath)
    for name, select in (("legacy-select", True), ("legacy-noselect", False)):
        tower, mlp = make_hf(7)
        d = os.path.join(tmp, name)
        # Saved as the released checkpoints hold it (vision_model.* keys; transformers 5's
        # save_pretrained drops the prefix, which transformers 4 then fails to load).
        os.makedirs(d)
        save_file({"vision_model." + k: v.detach().to(torch.float32).contiguous() for k, v in tower.state_dict().items()
                   if not k.endswith("position_ids")}, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        cfg = tower.config.to_dict()
        cfg["architectures"] = ["CLIPVisionModel"]
        if select:
            cfg["mm_vision_select_layer"] = -2
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        proj = {"model.mm_projector.0.weight": mlp[0].weight, "model.mm_projector.0.bias": mlp[0].bias,
                "model.mm_projector.2.weight": mlp[2].weight, "model.mm_projector.2.bias": mlp[2].bias}
        torch.save({k: v.detach().to(torch.float32).clone() for k, v in proj.items()}, os.path.join(d, "llava.projector"))
        cmd = [sys.executable, conv, "-m", d, "--llava-projector", os.path.join(d, "llava.projector"),
               "--output-dir", os.path.join(d, "out"), "--clip-model-is-vision", "--use-f32"]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            print(r.stdout[-3000:], r.stderr[-3000:])
            raise SystemExit(f"converter failed for {name}")
        gguf_path = os.path.join(OUT, f"{name}.gguf")
        shutil.copyfile(os.path.join(d, "out", "mmproj-model-f32.gguf"), gguf_path)
        with torch.no_grad():
            x = torch.from_numpy(pixels.astype(np.float64))[None]
            hs = tower(pixel_values=x, output_hidden_states=True).hidden_states
            feat = hs[-2][0, 1:]
            projected = mlp(feat)
        hf_path = os.path.join(OUT, f"{name}.hf.f32")
        with open(hf_path, "wb") as f:
            f.write(np.ascontiguousarray(feat.numpy(), dtype="<f4").tobytes())
            f.write(np.ascontiguousarray(projected.numpy(), dtype="<f4").tobytes())
        info = run_harness(args.harness, gguf_path, pix_path, os.path.join(OUT, f"{name}.llama-cpp.f32"))
        info["converter"] = " ".join(["python", "convert_image_encoder_to_gguf.py"] + cmd[3:]).replace(tmp + "/", "")
        info["hf_hidden_state"] = LAYERS - 2 + 1
        manifest["legacy"][name] = info
        if info["ok"]:
            got = np.fromfile(os.path.join(OUT, f"{name}.llama-cpp.f32"), dtype="<f4")
            n = feat.numel()
            gf, gp = got[:n].reshape(feat.shape), got[n:].reshape(projected.shape)
            print(f"{name}: llama.cpp rows 0..14 vs transformers patches 1..15: features max abs "
                  f"{np.abs(gf[:-1] - feat.numpy()[1:]).max():.3e}, projected max abs {np.abs(gp[:-1] - projected.numpy()[1:]).max():.3e}")
        print(f"{name}: {info}")
    # 3. our converter (lib/convert/clip.ts) on the same HF tower + projector (committed as
    # hf-tiny/, so the test converts it again), each type through llama.cpp
    tower, mlp = make_hf(7)
    hf_dir = os.path.join(OUT, "hf-tiny")
    os.makedirs(hf_dir, exist_ok=True)
    save_file({"vision_model." + k: v.detach().to(torch.float32).contiguous() for k, v in tower.state_dict().items()
               if not k.endswith("position_ids")}, os.path.join(hf_dir, "model.safetensors"), metadata={"format": "pt"})
    cfg = tower.config.to_dict()
    cfg["architectures"] = ["CLIPVisionModel"]
    with open(os.path.join(hf_dir, "config.json"), "w") as f:
        json.dump({k: cfg[k] for k in sorted(cfg) if not k.startswith("_") and k != "transformers_version"}, f, indent=2)
    save_file({"model.mm_projector.0.weight": mlp[0].weight.detach().float().contiguous(),
               "model.mm_projector.0.bias": mlp[0].bias.detach().float().contiguous(),
               "model.mm_projector.2.weight": mlp[2].weight.detach().float().contiguous(),
               "model.mm_projector.2.bias": mlp[2].bias.detach().float().contiguous()},
              os.path.join(hf_dir, "mm_projector.safetensors"), metadata={"format": "pt"})
    manifest["converted"] = {}
    for t in ["f32", "f16", "bf16", "q8_0"]:
        g = os.path.join(tmp, f"ours.{t}.gguf")
        r = subprocess.run(["npx", "vite-node", os.path.join("tools", "mmproj-golden", "convert-ours.ts"), "--", hf_dir,
                            os.path.join(hf_dir, "mm_projector.safetensors"), g, t], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"convert-ours failed: {r.stderr[-2000:]}")
        info = run_harness(args.harness, g, pix_path, os.path.join(OUT, f"hf-tiny.{t}.llama-cpp.f32"))
        with open(g, "rb") as f:
            info["sha256"] = hashlib.sha256(f.read()).hexdigest()
        manifest["converted"][t] = info
        print(f"converted {t}: {info}")

    manifest["shapes"] = {"n_patches": (IMAGE // PATCH) ** 2, "n_embd": WIDTH, "n_mmproj_embd": PROJ}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    if not os.environ.get("KEEP_TMP"):
        shutil.rmtree(tmp)
    else:
        print("kept", tmp)


if __name__ == "__main__":
    main()
