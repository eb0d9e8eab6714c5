#!/usr/bin/env python3
"""HealthGPT's loader and H-LoRA forward on the tiny release lib/synthetic/release.ts writes
(test/synthetic-release.test.ts): proof that its files are laid out as the real release is, and
the numbers the converted files must reproduce.

What HealthGPT does, restated (not imported: the release's code needs CUDA and its whole LLaVA
tree): llava/demo/utils.py load_weights runs model.load_state_dict(torch.load(file),
strict=False) on the PEFT-wrapped LlavaPhiForCausalLM, for the plugin file and then the fusion
file; llava/peft/tuners/lora.py replaces every linear of the language model by an nn.Linear
that owns lora_route (n x in), lora_A (r x in), lora_B (out x r) and computes
W x + B (repeat_interleave(softmax(R x), r / n) * (A x) * alpha / r * n). So here:
  - the module tree has PEFT's names: base_model.model = a Phi3ForCausalLM whose .model also
    holds mm_projector (Linear, GELU, Linear), as LlavaPhiModel does; every qkv_proj, o_proj,
    gate_up_proj, down_proj is such an H-LoRA linear (written from lora.py's description);
  - each of com_hlora_weights.bin, gen_hlora_weights.bin, fusion_layer_weights.bin is loaded
    with strict=False and must leave NO unexpected key, and every lora_* / mm_projector
    parameter must be set by the plugin file, the embeddings and head by the fusion file;
  - then, in float64: logits of a token sequence with each plugin, and each plugin's projector
    applied to fixed features.

Output: test/fixtures/release/synthetic-release.ref, little-endian: "HGSR", u32 version 1,
u32 n_tokens, n_vocab, n_patches, clip_width, n_embd; 32 bytes sha256 of each of the three .bin
files (com, gen, fusion); i32 tokens[n_tokens]; f32 logits_comprehension[n_tokens][n_vocab],
logits_generation[...]; f32 features[n_patches][clip_width];
f32 projected_comprehension[n_patches][n_embd], projected_generation[...].

Regenerate (from the repository root, after npx tsc; deterministic on CPU):
  python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch==2.15.0 transformers==4.41.0 safetensors numpy
  /tmp/ref/bin/python tools/reference/make_synthetic_release_reference.py
"""
import hashlib
import json
import math
import os
import struct
import subprocess
import tempfile

import numpy as np
import torch
from transformers import Phi3Config, Phi3ForCausalLM

OUT = os.path.join("test", "fixtures", "release", "synthetic-release.ref")
TARGETS = ("self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj")


class HLoraLinear(torch.nn.Linear):
    """A frozen linear plus one H-LoRA plugin, parameters named as HealthGPT's lora.py names them."""

    def __init__(self, base, r, alpha, n):
        super().__init__(base.in_features, base.out_features, bias=False)
        self.weight = base.weight
        self.lora_route = torch.nn.Linear(base.in_features, n, bias=False)
        self.lora_A = torch.nn.Linear(base.in_features, r, bias=False)
        self.lora_B = torch.nn.Linear(r, base.out_features, bias=False)
        self.r, self.n, self.scale = r, n, alpha / r * n

    def forward(self, x):
        route = torch.softmax(self.lora_route(x), dim=-1)
        g = route.repeat_interleave(self.r // self.n, dim=-1) * (self.lora_A(x) * self.scale)
        return torch.nn.functional.linear(x, self.weight) + self.lora_B(g)


class Peft(torch.nn.Module):
    """base_model.model.<the causal LM>: the names PEFT gives the wrapped model's parameters."""

    def __init__(self, lm):
        super().__init__()
        self.base_model = torch.nn.Module()
        self.base_model.model = lm


def main():
    sizes = json.loads(subprocess.check_output(["node", "--input-type=module", "-e", (
        "import { SYNTHETIC_RELEASE as S, SYNTHETIC_RELEASE_ROWS as R } from './dist/synthetic/release.js';"
        "console.log(JSON.stringify({ s: S, rows: R }));")]))
    s, rows = sizes["s"], sizes["rows"]
    d = tempfile.mkdtemp(prefix="healthgpt-synthetic-")
    subprocess.check_call(["node", "--input-type=module", "-e", (
        "import { writeSyntheticRelease } from './dist/synthetic/release.js';"
        f"await writeSyntheticRelease({json.dumps(d)});")])
    files = [os.path.join(d, f) for f in ("com_hlora_weights.bin", "gen_hlora_weights.bin", "fusion_layer_weights.bin")]
    sd = {os.path.basename(f): torch.load(f, weights_only=True) for f in files}
    for name, t in sd.items():
        assert all(v.dtype == torch.bfloat16 for v in t.values()), name

    cfg = Phi3Config.from_pretrained(os.path.join(d, "llm"))
    cfg._attn_implementation = "eager"
    cfg.pad_token_id = None  # Phi3Config's default (32000) is past this tiny vocabulary; padding plays no part here
    lm = Phi3ForCausalLM.from_pretrained(os.path.join(d, "llm"), config=cfg, torch_dtype=torch.float32).eval()
    lm.resize_token_embeddings(rows)
    width, hidden = s["clip"]["width"], s["llm"]["hidden"]
    lm.model.mm_projector = torch.nn.Sequential(torch.nn.Linear(width, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, hidden))
    model = Peft(lm).to(torch.float64).eval()

    def install(plugin):
        spec = s["plugins"][plugin]
        for layer in lm.model.layers:
            for t in TARGETS:
                parent, attr = t.split(".")
                p = getattr(layer, parent)
                base = getattr(p, attr)
                base = torch.nn.Linear(base.in_features, base.out_features, bias=False, dtype=torch.float64) if isinstance(base, HLoraLinear) else base
                if isinstance(getattr(p, attr), HLoraLinear):
                    base.weight = getattr(p, attr).weight
                setattr(p, attr, HLoraLinear(base, spec["rank"], spec["alpha"], spec["experts"]).to(torch.float64))

    def load(file, must_set):
        before = {k: v.clone() for k, v in model.state_dict().items()}
        missing, unexpected = model.load_state_dict({k: v.to(torch.float64) for k, v in sd[file].items()}, strict=False)
        assert not unexpected, (file, unexpected)
        set_keys = set(sd[file])
        for k in model.state_dict():
            if must_set(k):
                assert k in set_keys, (file, "not set", k)
        assert set_keys <= set(before), file
        return sorted(set_keys)

    tokens = [5, 17, 250, 999, s["firstRow"], s["firstRow"] + 7, s["firstRow"] + 1 + s["vqgan"]["n_embed"], 42]
    g = torch.Generator().manual_seed(7)
    features = torch.randn(16, width, generator=g).to(torch.float64)  # f32 values, as the file stores them
    out = {}
    for plugin, file in (("comprehension", "com_hlora_weights.bin"), ("generation", "gen_hlora_weights.bin")):
        install(plugin)
        keys = load(file, lambda k: "lora_" in k or "mm_projector" in k)
        assert not any("default" in k for k in keys)
        load("fusion_layer_weights.bin", lambda k: k.endswith("embed_tokens.weight") or k.endswith("lm_head.weight"))
        with torch.no_grad():
            # transformers 4.41 builds its causal mask with torch.full and the default dtype
            torch.set_default_dtype(torch.float64)
            logits = lm(torch.tensor([tokens]), use_cache=False).logits[0].to(torch.float64)
            projected = lm.model.mm_projector(features)
            torch.set_default_dtype(torch.float32)
        out[plugin] = (logits.numpy(), projected.numpy())
        print(plugin, "logits", logits.shape, "max", float(logits.abs().max()))

    digest = b"".join(hashlib.sha256(open(f, "rb").read()).digest() for f in files)
    with open(OUT, "wb") as f:
        f.write(b"HGSR")
        f.write(struct.pack("<6I", 1, len(tokens), rows, 16, width, hidden))
        f.write(digest)
        f.write(struct.pack(f"<{len(tokens)}i", *tokens))
        for p in ("comprehension", "generation"):
            f.write(out[p][0].astype("<f4").tobytes())
        f.write(features.numpy().astype("<f4").tobytes())
        for p in ("comprehension", "generation"):
            f.write(out[p][1].astype("<f4").tobytes())
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
