#!/usr/bin/env python3
"""Golden logits for the Phi-3 decoder with H-LoRA plugins (native/models/hlora_plugin.cpp,
read by native/tests/test_phi3_hlora.cpp and test/plugins.test.ts): transformers' own
Phi3ForCausalLM on a tiny random model, with every targeted linear (qkv_proj, o_proj,
gate_up_proj, down_proj; never lm_head) wrapped in an H-LoRA layer written from docs/model.md's
formula:

    route = softmax(R x);  a = (A x) * alpha / r * n
    g = repeat_each(route, r / n) * a;  y = W x + B g

for two plugins with random, non-zero R, A and B:
  comprehension  r=8,  alpha=16, 4 experts
  generation     r=16, alpha=32, 4 experts, plus its own trained rows 224..255 of token_embd
                 and of output (lm_head), as HealthGPT's plugins carry their resized rows

Model: vocab 256, hidden 64, 4 heads of 16 (2 kv heads), ffn 96, 2 layers, rope theta 10000.

Outputs in test/fixtures/phi3-hlora/ (CI has no Python):
  base.f32.gguf, base.q8_0.gguf     the base model in llama.cpp's phi3 layout (q8_0: every
                                    matrix in q8_0, norms f32)
  comprehension.f32.gguf, generation.f32.gguf    the plugins in the adapter format
                                    (README.md "H-LoRA plugin files"), F32
  comprehension.bf16.gguf, generation.f16.gguf   the same plugins in BF16 / F16
  <base>.<plugin>.logits            reference logits for that pair (plugin "none": the base
                                    alone), computed in float64 on the weights exactly as the
                                    files hold them (dequantized, bf16/f16-rounded), so each
                                    file measures the engine's arithmetic only
  manifest.json                     configs, versions, tokens, per-pair margins and how far
                                    each plugin moves the logits from the base

.logits layout (the one of make_phi3_reference.py), little-endian: "HGPL", u32 version (1),
u32 n_tokens, u32 n_vocab, i32 tokens[n_tokens], f32 logits[n_tokens][n_vocab].

Regenerate (from the repository root; pinned versions, deterministic on CPU):
  python3 -m venv /opt/ref-venv
  /opt/ref-venv/bin/pip install torch==2.15.0 transformers==5.23.0 safetensors==0.8.0 gguf==0.19.0 numpy==2.4.6
  /opt/ref-venv/bin/python tools/reference/make_phi3_hlora_reference.py
"""
import json
import os
import struct
import sys

import numpy as np
import torch

import gguf
from gguf import GGMLQuantizationType as QT
from gguf.quants import dequantize, quantize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_phi3_reference as phi3ref  # noqa: E402  (the base model's builder and writer)

OUT_DIR = os.path.join("test", "fixtures", "phi3-hlora")
MAX_TOTAL_BYTES = 1536 * 1024
N_TOKENS = 12
MIN_MARGIN = 0.3
BASE = dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
            rope_theta=10000.0, partial_rotary_factor=1.0, sliding_window=None, seed=31)
PLUGINS = {
    "comprehension": dict(rank=8, alpha=16.0, experts=4, rows=None, seed=41),
    "generation": dict(rank=16, alpha=32.0, experts=4, rows=(224, 256), seed=43),
}
# (plugin, adapter type) files besides the F32 ones
EXTRA_ADAPTERS = [("comprehension", "bf16"), ("generation", "f16")]
LINEARS = [("attn_qkv", "self_attn.qkv_proj"), ("attn_output", "self_attn.o_proj"),
           ("ffn_up", "mlp.gate_up_proj"), ("ffn_down", "mlp.down_proj")]


class HLoraLinear(torch.nn.Module):
    """A frozen linear with any number of plugins; `active` names the one that runs."""

    def __init__(self, base: torch.nn.Linear):
        super().__init__()
        self.base = base
        self.plugins = {}  # name -> (R, A, B, r, n, scale) as tensors
        self.active = None

    def forward(self, x):
        y = self.base(x)
        if self.active is None:
            return y
        R, A, B, r, n, s = self.plugins[self.active]
        route = torch.softmax(x @ R.T, dim=-1)
        a = (x @ A.T) * s
        g = route.repeat_interleave(r // n, dim=-1) * a
        return y + g @ B.T


def wrap(model):
    layers = []
    for layer in model.model.layers:
        mods = {}
        for gname, hname in LINEARS:
            parent_name, attr = hname.split(".")
            parent = getattr(layer, parent_name)
            m = HLoraLinear(getattr(parent, attr))
            setattr(parent, attr, m)
            mods[gname] = m
        layers.append(mods)
    return layers


def make_plugin(name, spec, cfg):
    """Random adapters: route ~1/4, s = 8, A x ~ 1, B ~ 0.15 / sqrt(r), so B g is about 0.3
    of W x: the plugins still move the logits by more than the largest logit (manifest.json
    "moved_from_base"), while B g as large as W x made this tiny random network so sensitive
    that a q8_0 base's 8-bit activations flipped an argmax. Trained rows like the base's."""
    g = torch.Generator().manual_seed(spec["seed"])
    r, n, E, F = spec["rank"], spec["experts"], cfg.hidden_size, cfg.intermediate_size
    head_dim = E // cfg.num_attention_heads
    qkv = (cfg.num_attention_heads + 2 * cfg.num_key_value_heads) * head_dim
    shapes = {"attn_qkv": (E, qkv), "attn_output": (E, E), "ffn_up": (E, 2 * F), "ffn_down": (F, E)}
    layers = []
    for _ in range(cfg.num_hidden_layers):
        ad = {}
        for lin, (d_in, d_out) in shapes.items():
            ad[lin] = dict(router=torch.randn(n, d_in, generator=g) * 2 / d_in ** 0.5,
                           lora_A=torch.randn(r, d_in, generator=g) / d_in ** 0.5,
                           lora_B=torch.randn(d_out, r, generator=g) * 0.15 / r ** 0.5)
        layers.append(ad)
    rows = None
    if spec["rows"]:
        lo, hi = spec["rows"]
        rows = dict(first=lo, token_embd=torch.randn(hi - lo, E, generator=g),
                    output=torch.randn(hi - lo, E, generator=g) * 6.0 / E ** 0.5)
    return dict(name=name, spec=spec, layers=layers, rows=rows)


def rounded(t, kind):
    """The values a file of this type holds, as float32."""
    a = t.to(torch.float32).numpy()
    if kind == "f32":
        return a
    if kind == "f16":
        return a.astype(np.float16).astype(np.float32)
    return dequantize(quantize(a, QT.BF16), QT.BF16).reshape(a.shape).astype(np.float32)


def write_adapter(path, plugin, cfg, kind):
    """Writes the plugin file; returns the plugin with its values as the file holds them."""
    spec = plugin["spec"]
    w = gguf.GGUFWriter(path, arch="hlora")
    w.add_name(f"healthgpt H-LoRA reference ({os.path.basename(path)}, random weights)")
    w.add_string("hlora.plugin", plugin["name"])
    w.add_uint32("hlora.rank", spec["rank"])
    w.add_float32("hlora.alpha", spec["alpha"])
    w.add_uint32("hlora.expert_count", spec["experts"])
    w.add_uint32("hlora.base.block_count", cfg.num_hidden_layers)
    w.add_uint32("hlora.base.embedding_length", cfg.hidden_size)
    w.add_uint32("hlora.base.feed_forward_length", cfg.intermediate_size)

    def put(name, t):
        a = t.to(torch.float32).numpy()
        if kind == "f32":
            w.add_tensor(name, a)
        elif kind == "f16":
            w.add_tensor(name, a.astype(np.float16))
        else:
            w.add_tensor(name, quantize(a, QT.BF16), raw_dtype=QT.BF16)
        return torch.from_numpy(rounded(t, kind))

    held = dict(name=plugin["name"], spec=spec, layers=[], rows=None)
    for i, ad in enumerate(plugin["layers"]):
        held["layers"].append({lin: {k: put(f"blk.{i}.{lin}.{k}", v) for k, v in m.items()} for lin, m in ad.items()})
    if plugin["rows"]:
        rows = plugin["rows"]
        w.add_uint32("hlora.token_embd.first_row", rows["first"])
        w.add_uint32("hlora.output.first_row", rows["first"])
        held["rows"] = dict(first=rows["first"], token_embd=put("token_embd.weight", rows["token_embd"]),
                            output=put("output.weight", rows["output"]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return held


def install(model, wrapped, plugin, base_sd):
    """Makes `plugin` (None: the base alone) the one that runs, in float64."""
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(base_sd["model.embed_tokens.weight"])
        model.lm_head.weight.copy_(base_sd["lm_head.weight"])
        for i, mods in enumerate(wrapped):
            for lin, m in mods.items():
                if plugin is None:
                    m.active = None
                    continue
                ad = plugin["layers"][i][lin]
                spec = plugin["spec"]
                r, n = spec["rank"], spec["experts"]
                m.plugins["p"] = (ad["router"].double(), ad["lora_A"].double(), ad["lora_B"].double(), r, n,
                                  spec["alpha"] / r * n)
                m.active = "p"
        if plugin is not None and plugin["rows"]:
            rows = plugin["rows"]
            lo = rows["first"]
            hi = lo + rows["token_embd"].shape[0]
            model.model.embed_tokens.weight[lo:hi] = rows["token_embd"].double()
            model.lm_head.weight[lo:hi] = rows["output"].double()


def logits_of(model, tokens):
    with torch.no_grad():
        return model(torch.tensor([tokens]), use_cache=False).logits[0].to(torch.float64).numpy()


def write_logits(path, tokens, logits):
    with open(path, "wb") as f:
        f.write(b"HGPL")
        f.write(struct.pack("<III", 1, len(tokens), logits.shape[1]))
        f.write(np.asarray(tokens, dtype="<i4").tobytes())
        f.write(logits.astype("<f4").tobytes())


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    phi3ref.MODELS["hlora"] = BASE
    cfg, model = phi3ref.build("hlora")
    model64 = phi3ref.Phi3ForCausalLM(cfg).eval().to(torch.float64)
    model64.load_state_dict({k: v.to(torch.float64) for k, v in model.state_dict().items()})
    wrapped = wrap(model64)
    plugins = {name: make_plugin(name, spec, cfg) for name, spec in PLUGINS.items()}

    # the files: bases and adapters, and what each holds
    bases = {}
    for variant in ["f32", "q8_0"]:
        held = phi3ref.write_gguf(os.path.join(OUT_DIR, f"base.{variant}.gguf"), cfg,
                                  phi3ref.gguf_tensors(model), variant)
        bases[variant] = {k: torch.from_numpy(v).to(torch.float64) for k, v in held.items()}
    adapters = {}
    for name, plugin in plugins.items():
        adapters[(name, "f32")] = write_adapter(os.path.join(OUT_DIR, f"{name}.f32.gguf"), plugin, cfg, "f32")
    for name, kind in EXTRA_ADAPTERS:
        adapters[(name, kind)] = write_adapter(os.path.join(OUT_DIR, f"{name}.{kind}.gguf"), plugins[name], cfg, kind)

    def run(base_variant, adapter_key, tokens):
        sd = bases[base_variant]
        model64.load_state_dict({(k.replace(".weight", ".base.weight") if any(
            f"{h}.weight" in k for _, h in LINEARS) else k): v for k, v in sd.items()})
        install(model64, wrapped, adapters[adapter_key] if adapter_key else None, sd)
        return logits_of(model64, tokens)

    # a token sequence with clear winners for the base and both plugins, with trained-row
    # tokens (224..255) in it
    rng = np.random.default_rng(BASE["seed"])
    for _ in range(2000):
        tokens = [int(t) for t in rng.integers(3, cfg.vocab_size, N_TOKENS)]
        tokens[3], tokens[8] = int(rng.integers(224, 256)), int(rng.integers(224, 256))
        ok = all(phi3ref.margins(run("f32", k, tokens)).min() >= MIN_MARGIN
                 for k in [None, ("comprehension", "f32"), ("generation", "f32")])
        if ok:
            break
    else:
        sys.exit(f"no token sequence with margins >= {MIN_MARGIN}")

    # the wrapper with no plugin active is transformers' model itself
    plain = phi3ref.Phi3ForCausalLM(cfg).eval().to(torch.float64)
    plain.load_state_dict({k: v for k, v in bases["f32"].items()})
    assert np.abs(logits_of(plain, tokens) - run("f32", None, tokens)).max() < 1e-12

    manifest = {"generator": "tools/reference/make_phi3_hlora_reference.py",
                "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                             "numpy": np.__version__, "gguf_py": "0.19.0"},
                "base": {k: v for k, v in BASE.items() if k != "seed"},
                "plugins": {k: {kk: vv for kk, vv in v.items() if kk != "seed"} for k, v in PLUGINS.items()},
                "tokens": tokens, "pairs": {}}
    pairs = [("f32", None), ("f32", ("comprehension", "f32")), ("f32", ("generation", "f32")),
             ("f32", ("comprehension", "bf16")), ("f32", ("generation", "f16")),
             ("q8_0", None), ("q8_0", ("comprehension", "f32")), ("q8_0", ("generation", "f32"))]
    total = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in os.listdir(OUT_DIR) if f.endswith(".gguf"))
    for base_variant, key in pairs:
        logits = run(base_variant, key, tokens)
        none = run(base_variant, None, tokens)
        label = f"base.{base_variant}." + (f"{key[0]}.{key[1]}" if key else "none")
        path = os.path.join(OUT_DIR, label + ".logits")
        write_logits(path, tokens, logits)
        total += os.path.getsize(path)
        moved = float(np.abs(logits - none).max() / np.abs(none).max())
        m = phi3ref.margins(logits)
        manifest["pairs"][label] = {"min_margin": float(m.min()), "max_abs_logit": float(np.abs(logits).max()),
                                    "moved_from_base": moved}
        print(f"{label}: min top-2 margin {m.min():.3f}, max |logit| {np.abs(logits).max():.2f}, "
              f"max |plugin - base| / max |base| {moved:.3f}")
        if key:
            assert moved > 0.1, (label, moved)  # the plugin changes the answer
    with open(os.path.join(OUT_DIR, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"total {total} bytes")
    assert total < MAX_TOTAL_BYTES, total


if __name__ == "__main__":
    main()
