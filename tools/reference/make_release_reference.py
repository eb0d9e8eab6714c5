#!/usr/bin/env python3
"""A tiny HealthGPT in the file formats of the release, for the converter (`healthgpt convert --llm
--vision --plugins --vqgan -o DIR`, lib/convert/*, test/convert-release.test.ts), and the
reference outputs each converted part must reproduce.

Parts reused, not copied:
  language model  test/fixtures/convert/model/ (transformers' save_pretrained of a tiny
                  Phi3ForCausalLM: config.json, model.safetensors, tokenizer.model, made by
                  make_convert_reference.py); vocab 416, hidden 32, ffn 64, 2 layers
  VQGAN           test/fixtures/vqgan/checkpoint/ (last.ckpt + model.yaml as the release ships
                  them, with loss.* tensors) and its reference decode tiny_indices.i32 ->
                  tiny_image.f32 (make_vqgan_reference.py)
  CLIP tower      make_clip_reference.make_models(): the same seeded tiny tower (image 56,
                  patch 14, width 32, 4 layers) saved here as a full CLIPModel checkpoint would be

Outputs in test/fixtures/release/ (CI has no Python):
  clip/           config.json (CLIPConfig with vision_config), preprocessor_config.json,
                  model.safetensors: vision_model.* (post_layernorm and position_ids included),
                  plus text_model / visual_projection / text_projection / logit_scale tensors
                  the converter must skip
  com_hlora_weights.bin     comprehension plugin (r 8, alpha 16, 4 experts), STACKED form:
                  base_model.model.model.layers.N.<linear>.lora_route.weight,
                  ...lora_A.default.weight (r x in), ...lora_B.default.weight (out x r)
  gen_hlora_weights.bin     generation plugin (r 16, alpha 32, 4 experts), PER-EXPERT form:
                  ...lora_route.default.weight, ...lora_A{j}.default.weight (r/4 x in),
                  ...lora_B{j}.default.weight (out x r/4); its own projector
                  base_model.model.model.mm_projector.{0,2}; the resized (full, 416-row)
                  base_model.model.model.embed_tokens.weight and base_model.model.lm_head.weight,
                  trained rows 400..415
  fusion_layer_weights.bin  model.mm_projector.{0,2} (the comprehension projector)
  These keys are the converter's OTHER accepted forms (a .default adapter level, per-expert
  lora_A{j} / lora_B{j}, a projector without the PEFT prefix in a shared file, a plugin's own
  rows). The release's own layout (docs/model.md, "The released files": stacked, no .default,
  each plugin's projector in its file, the rows in fusion only) is what lib/synthetic/release.ts
  writes; test/convert-release.test.ts re-keys these same tensors into it and checks that the
  converted files are the same.
  callbacks.ckpt  a Lightning-style checkpoint whose extras carry classes the unpickler must
                  accept as inert (PL 1.x callbacks keyed by ModelCheckpoint, an argparse
                  Namespace of hyper-parameters) around a 2-tensor state_dict
  evil-callbacks.ckpt  the same with a subprocess.Popen instance in 'callbacks' (refused by name)
  release.ref     reference outputs, little-endian: "HGRL", u32 version 1, u32 n_tokens,
                  n_vocab, n_patches, clip_width, proj_dim; i32 tokens[n_tokens];
                  f32 logits_comprehension[n_tokens][n_vocab], logits_generation[...];
                  f32 pixels[3][56][56]; f32 hidden_comprehension[n_patches][clip_width]
                  (hidden state 3 = -2 of 4), hidden_generation (hidden state 1);
                  f32 projected_comprehension[n_patches][proj_dim] (fusion's projector on the
                  comprehension hidden state), projected_generation (gen's projector on the
                  generation one). Logits: float64 torch on the f32 weights, Phi3ForCausalLM
                  with every qkv/o/gate_up/down linear H-LoRA-wrapped
                  (make_phi3_hlora_reference.HLoraLinear).

Regenerate (from the repository root; deterministic on CPU):
  /opt/ref-venv/bin/pip install torch==2.15.0 transformers==5.23.0 safetensors==0.8.0 gguf==0.19.0 numpy==2.4.6
  /opt/ref-venv/bin/python tools/reference/make_release_reference.py
"""
import argparse
import json
import os
import struct
import sys
import types
from collections import OrderedDict

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import Phi3ForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_clip_reference as clipref  # noqa: E402
import make_phi3_hlora_reference as hloraref  # noqa: E402

OUT = os.path.join("test", "fixtures", "release")
LLM = os.path.join("test", "fixtures", "convert", "model")
MAX_TOTAL_BYTES = 1024 * 1024
N_TOKENS = 10
ROWS = (400, 416)
PLUGINS = {
    "comprehension": dict(rank=8, alpha=16.0, experts=4, rows=None, seed=51),
    "generation": dict(rank=16, alpha=32.0, experts=4, rows=ROWS, seed=53),
}
PEFT = "base_model.model."
HF_LINEAR = dict(hloraref.LINEARS)  # gguf name -> hf name


def f32(t):
    return t.detach().to(torch.float32).contiguous().clone()


def projector(seed, d_in, d):
    g = torch.Generator().manual_seed(seed)
    return dict(w0=torch.randn(d, d_in, generator=g) / d_in ** 0.5, b0=torch.randn(d, generator=g) * 0.2,
                w2=torch.randn(d, d, generator=g) / d ** 0.5, b2=torch.randn(d, generator=g) * 0.2)


def projector_sd(p, prefix):
    return OrderedDict([(f"{prefix}model.mm_projector.0.weight", f32(p["w0"])), (f"{prefix}model.mm_projector.0.bias", f32(p["b0"])),
                        (f"{prefix}model.mm_projector.2.weight", f32(p["w2"])), (f"{prefix}model.mm_projector.2.bias", f32(p["b2"]))])


def project(p, x):
    d = lambda t: f32(t).double()
    h = torch.nn.functional.gelu(x @ d(p["w0"]).T + d(p["b0"]))
    return h @ d(p["w2"]).T + d(p["b2"])


def plugin_sd(plugin, per_expert, base_sd):
    sd = OrderedDict()
    r, n = plugin["spec"]["rank"], plugin["spec"]["experts"]
    for i, ad in enumerate(plugin["layers"]):
        for lin, m in ad.items():
            base = f"{PEFT}model.layers.{i}.{HF_LINEAR[lin]}"
            if per_expert:
                sd[f"{base}.lora_route.default.weight"] = f32(m["router"])
                rj = r // n
                for j in range(n):
                    sd[f"{base}.lora_A{j}.default.weight"] = f32(m["lora_A"][j * rj:(j + 1) * rj])
                    sd[f"{base}.lora_B{j}.default.weight"] = f32(m["lora_B"][:, j * rj:(j + 1) * rj])
            else:
                sd[f"{base}.lora_route.weight"] = f32(m["router"])
                sd[f"{base}.lora_A.default.weight"] = f32(m["lora_A"])
                sd[f"{base}.lora_B.default.weight"] = f32(m["lora_B"])
    if plugin["rows"]:
        lo = plugin["rows"]["first"]
        emb = base_sd["model.embed_tokens.weight"].clone()
        head = base_sd["lm_head.weight"].clone()
        emb[lo:] = plugin["rows"]["token_embd"]
        head[lo:] = plugin["rows"]["output"]
        sd[f"{PEFT}model.embed_tokens.weight"] = f32(emb)
        sd[f"{PEFT}lm_head.weight"] = f32(head)
    return sd


def as_f32_plugin(plugin):
    """The plugin with its values rounded to float32 (what the .bin files hold)."""
    out = dict(plugin)
    out["layers"] = [{lin: {k: f32(v) for k, v in m.items()} for lin, m in ad.items()} for ad in plugin["layers"]]
    if plugin["rows"]:
        out["rows"] = dict(first=plugin["rows"]["first"], token_embd=f32(plugin["rows"]["token_embd"]),
                           output=f32(plugin["rows"]["output"]))
    return out


def fake_class(module, name):
    """A class whose pickle names module.name, without that package installed."""
    parts = module.split(".")
    for k in range(1, len(parts) + 1):
        sys.modules.setdefault(".".join(parts[:k]), types.ModuleType(".".join(parts[:k])))
    mod = sys.modules[module]
    cls = type(name, (), {"__module__": module})
    setattr(mod, name, cls)
    return cls


def callbacks_ckpts():
    MC = fake_class("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")
    sd = OrderedDict([("decoder.conv_out.bias", torch.arange(3, dtype=torch.float32)),
                      ("loss.logvar", torch.zeros(()))])
    good = {"epoch": 3, "global_step": 120, "pytorch-lightning_version": "1.0.8", "state_dict": sd,
            "callbacks": {MC: {"monitor": "val/rec_loss", "best_model_score": torch.tensor(0.25),
                               "best_model_path": "logs/last.ckpt"}},
            "hyper_parameters": argparse.Namespace(embed_dim=16, n_embed=64),
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 4.5e-6, "params": [0, 1]}]}],
            "lr_schedulers": []}
    torch.save(good, os.path.join(OUT, "callbacks.ckpt"))
    import subprocess
    evil = dict(good)
    evil["callbacks"] = {MC: subprocess.Popen.__new__(subprocess.Popen)}
    try:
        torch.save(evil, os.path.join(OUT, "evil-callbacks.ckpt"))
    except Exception:  # Popen's state may not pickle: store the class itself then
        evil["callbacks"] = {MC: subprocess.Popen}
        torch.save(evil, os.path.join(OUT, "evil-callbacks.ckpt"))


def main():
    os.makedirs(os.path.join(OUT, "clip"), exist_ok=True)
    torch.set_num_threads(2)

    # ---- language model + H-LoRA plugins ----
    model = Phi3ForCausalLM.from_pretrained(LLM, dtype=torch.float64).eval()
    cfg = model.config
    base_sd = {k: v.clone() for k, v in model.state_dict().items()}
    wrapped = hloraref.wrap(model)
    plugins = {name: as_f32_plugin(hloraref.make_plugin(name, spec, cfg)) for name, spec in PLUGINS.items()}
    fixed = {(k.replace(".weight", ".base.weight") if any(f"{h}.weight" in k for _, h in hloraref.LINEARS) else k): v
             for k, v in base_sd.items()}

    def logits(name, tokens):
        model.load_state_dict(fixed)
        hloraref.install(model, wrapped, plugins[name], base_sd)
        return hloraref.logits_of(model, tokens)

    rng = np.random.default_rng(61)
    tokens = [int(t) for t in rng.integers(3, 400, N_TOKENS)]
    tokens[2], tokens[6] = 403, 411  # trained rows of the generation plugin
    lc, lg = logits("comprehension", tokens), logits("generation", tokens)
    model.load_state_dict(fixed)
    hloraref.install(model, wrapped, None, base_sd)
    none = hloraref.logits_of(model, tokens)
    for name, l in (("comprehension", lc), ("generation", lg)):
        print(f"{name}: max |plugin - base| / max |base| {np.abs(l - none).max() / np.abs(none).max():.3f}, "
              f"min top-2 margin {np.diff(np.sort(l, axis=1)[:, -2:], axis=1).min():.3f}")

    torch.save(plugin_sd(plugins["comprehension"], False, base_sd), os.path.join(OUT, "com_hlora_weights.bin"))
    # ---- vision: CLIP checkpoint + projectors ----
    tower, _ = clipref.make_models()
    width, n_layers = clipref.WIDTH, clipref.LAYERS
    with torch.no_grad():
        for p in tower.parameters():
            p.copy_(p.to(torch.float32).double())
    vm = getattr(tower, "vision_model", tower)
    csd = OrderedDict((f"vision_model.{k}", f32(v)) for k, v in vm.state_dict().items())
    n_pos = (clipref.IMAGE // clipref.PATCH) ** 2 + 1
    csd["vision_model.embeddings.position_ids"] = torch.arange(n_pos, dtype=torch.int64)[None]
    g = torch.Generator().manual_seed(71)
    csd["text_model.embeddings.token_embedding.weight"] = torch.randn(8, 16, generator=g)
    csd["text_model.final_layer_norm.weight"] = torch.ones(16)
    csd["visual_projection.weight"] = torch.randn(16, width, generator=g)
    csd["text_projection.weight"] = torch.randn(16, 16, generator=g)
    csd["logit_scale"] = torch.tensor(2.6592)
    save_file(csd, os.path.join(OUT, "clip", "model.safetensors"), metadata={"format": "pt"})
    vcfg = dict(hidden_size=width, intermediate_size=clipref.FF, num_hidden_layers=n_layers,
                num_attention_heads=clipref.HEADS, num_channels=3, image_size=clipref.IMAGE,
                patch_size=clipref.PATCH, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=16,
                model_type="clip_vision_model")
    with open(os.path.join(OUT, "clip", "config.json"), "w") as f:
        json.dump({"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 16,
                   "text_config": {"hidden_size": 16, "model_type": "clip_text_model"}, "vision_config": vcfg}, f, indent=1)
    with open(os.path.join(OUT, "clip", "preprocessor_config.json"), "w") as f:
        json.dump({"crop_size": {"height": clipref.IMAGE, "width": clipref.IMAGE}, "do_center_crop": True,
                   "do_normalize": True, "do_resize": True, "image_mean": clipref.MEAN, "image_std": clipref.STD,
                   "resample": 3, "size": {"shortest_edge": clipref.IMAGE}, "image_processor_type": "CLIPImageProcessor"}, f, indent=1)
    proj_dim = cfg.hidden_size
    com_proj, gen_proj = projector(81, width, proj_dim), projector(83, width, proj_dim)
    gen_sd = plugin_sd(plugins["generation"], True, base_sd)
    gen_sd.update(projector_sd(gen_proj, PEFT))
    torch.save(gen_sd, os.path.join(OUT, "gen_hlora_weights.bin"))
    torch.save(projector_sd(com_proj, ""), os.path.join(OUT, "fusion_layer_weights.bin"))

    pixels = np.random.default_rng(73).standard_normal((3, clipref.IMAGE, clipref.IMAGE)).astype(np.float32)
    with torch.no_grad():
        hs = tower(pixel_values=torch.from_numpy(pixels.astype(np.float64))[None], output_hidden_states=True).hidden_states
        h_com, h_gen = hs[-2][0, 1:], hs[1][0, 1:]
        p_com, p_gen = project(com_proj, h_com), project(gen_proj, h_gen)

    callbacks_ckpts()

    with open(os.path.join(OUT, "release.ref"), "wb") as f:
        f.write(b"HGRL" + struct.pack("<6I", 1, N_TOKENS, lc.shape[1], h_com.shape[0], width, proj_dim))
        f.write(np.asarray(tokens, dtype="<i4").tobytes())
        for a in (lc, lg, pixels, h_com.numpy(), h_gen.numpy(), p_com.numpy(), p_gen.numpy()):
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())
    total = 0
    for root, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(root, x)) for x in files)
    print(f"tokens {tokens}; |proj com| max {p_com.abs().max():.3f}; total {total} bytes")
    assert total < MAX_TOTAL_BYTES, total


if __name__ == "__main__":
    main()
