#!/usr/bin/env python3
"""Golden vectors for the Phi-3 / Phi-4 decoder (native/models/phi3.cpp), from transformers'
own Phi3ForCausalLM on tiny random models, written as GGUF files in llama.cpp's `phi3` layout
with gguf-py's GGUFWriter.

Two models (vocab 256, hidden 64, 4 heads of 16, ffn 96, 2 layers):
  gqa  Phi-4 style: 2 kv heads for 4 heads, rope theta 250000, partial rotary (12 of 16 dims)
  swa  Phi-3-mini style: 4 kv heads, rope theta 10000, sliding window 5 over 12 tokens

Outputs in test/fixtures/phi3/ (read by native/tests/test_phi3.cpp; CI has no Python):
  <model>.<variant>.gguf     variant f32, f16 or q8_0 (every matrix in that type, norms f32);
                             gqa in all three, swa in f32 and q8_0 (size budget)
  <model>.<variant>.logits   the reference logits for that file's own weights: Phi3ForCausalLM
                             run in float64 on the weights dequantized back from the file, so
                             a quantized variant measures only the engine's arithmetic, not
                             the quantization of the weights (transformers forms the RoPE
                             angles in float32 even then, as the engine does)
  manifest.json              configs, versions, and each sequence's smallest top-1/top-2 gap

.logits layout, little-endian: "HGPL", u32 version (1), u32 n_tokens, u32 n_vocab,
i32 tokens[n_tokens], f32 logits[n_tokens][n_vocab] (row t: after tokens 0..t).

Regenerate (from the repository root; pinned versions, the output is deterministic on CPU):
  python3 -m venv /opt/ref-venv
  /opt/ref-venv/bin/pip install torch==2.15.0 transformers==5.23.0 safetensors==0.8.0 gguf==0.19.0 numpy==2.4.6
  /opt/ref-venv/bin/python tools/reference/make_phi3_reference.py
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
from transformers import Phi3Config, Phi3ForCausalLM

OUT_DIR = os.path.join("test", "fixtures", "phi3")
MAX_TOTAL_BYTES = 1536 * 1024
N_TOKENS = 12
# The smallest top-1/top-2 logit gap a sequence must have at every position, so that the
# argmax check is about the engine and not about a near tie the Q8_0 path could flip.
MIN_MARGIN = 0.3

MODELS = {
    "gqa": dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                rope_theta=250000.0, partial_rotary_factor=0.75, sliding_window=None, seed=11),
    "swa": dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                rope_theta=10000.0, partial_rotary_factor=1.0, sliding_window=5, seed=23),
}
VARIANTS = {"gqa": ["f32", "f16", "q8_0"], "swa": ["f32", "q8_0"]}
QTYPES = {"f32": QT.F32, "f16": QT.F16, "q8_0": QT.Q8_0}
FILE_TYPES = {"f32": 0, "f16": 1, "q8_0": 7}  # llama_ftype ids


def build(name: str) -> tuple[Phi3Config, Phi3ForCausalLM]:
    m = dict(MODELS[name])
    seed = m.pop("seed")
    partial = m.pop("partial_rotary_factor")
    cfg = Phi3Config(**m, rms_norm_eps=1e-5, tie_word_embeddings=False, pad_token_id=0,
                     bos_token_id=1, eos_token_id=2, attn_implementation="eager",
                     rope_parameters={"rope_type": "default", "rope_theta": m["rope_theta"],
                                      "partial_rotary_factor": partial})
    torch.manual_seed(seed)
    model = Phi3ForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.dim() == 1:  # norms near 1
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in pname:
                p.copy_(torch.randn(p.shape, generator=g))
            else:  # unit-variance outputs; lm_head scaled up so the logits are peaky
                scale = 6.0 if pname == "lm_head.weight" else 1.0
                p.copy_(torch.randn(p.shape, generator=g) * scale / p.shape[1] ** 0.5)
    return cfg, model


def gguf_tensors(model: Phi3ForCausalLM) -> list[tuple[str, str, np.ndarray]]:
    """(llama.cpp phi3 name, transformers name, weight). numpy shapes are HF's [out, in],
    which GGUF stores reversed: ne[0] = in, the row length."""
    names = [("token_embd.weight", "model.embed_tokens.weight")]
    for i in range(model.config.num_hidden_layers):
        p = f"model.layers.{i}."
        names += [
            (f"blk.{i}.attn_norm.weight", p + "input_layernorm.weight"),
            (f"blk.{i}.attn_qkv.weight", p + "self_attn.qkv_proj.weight"),  # rows q, k, v
            (f"blk.{i}.attn_output.weight", p + "self_attn.o_proj.weight"),
            (f"blk.{i}.ffn_norm.weight", p + "post_attention_layernorm.weight"),
            (f"blk.{i}.ffn_up.weight", p + "mlp.gate_up_proj.weight"),  # rows gate, up
            (f"blk.{i}.ffn_down.weight", p + "mlp.down_proj.weight"),
        ]
    names += [("output_norm.weight", "model.norm.weight"), ("output.weight", "lm_head.weight")]
    sd = model.state_dict()
    return [(g, h, sd[h].detach().to(torch.float32).numpy()) for g, h in names]


def write_gguf(path: str, cfg: Phi3Config, tensors, variant: str) -> dict[str, np.ndarray]:
    """Writes the file; returns each weight as the file holds it, dequantized to float32,
    under its transformers name."""
    qtype = QTYPES[variant]
    w = gguf.GGUFWriter(path, arch="phi3")
    w.add_name(f"healthgpt phi3 reference ({os.path.basename(path)}, random weights)")
    w.add_file_type(FILE_TYPES[variant])
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    w.add_rope_dimension_count(int(head_dim * cfg.rope_parameters["partial_rotary_factor"]))
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    if cfg.sliding_window is not None:
        w.add_sliding_window(cfg.sliding_window)
    held = {}
    for name, hf_name, a in tensors:
        if a.ndim == 1 or qtype == QT.F32:  # norms stay f32, as llama.cpp writes them
            w.add_tensor(name, a.astype(np.float32))
            held[hf_name] = a.astype(np.float32)
        elif qtype == QT.F16:
            h = a.astype(np.float16)
            w.add_tensor(name, h)
            held[hf_name] = h.astype(np.float32)
        else:
            q = quantize(a, qtype)
            w.add_tensor(name, q, raw_dtype=qtype)
            held[hf_name] = dequantize(q, qtype).reshape(a.shape).astype(np.float32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return held


def logits_of(model: Phi3ForCausalLM, tokens: list[int]) -> np.ndarray:
    with torch.no_grad():
        out = model(torch.tensor([tokens]), use_cache=False).logits[0]
    return out.to(torch.float64).numpy()


def margins(logits: np.ndarray) -> np.ndarray:
    top2 = np.sort(logits, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def main() -> None:
    os.makedirs(OUT_DIR, exist_ok=True)
    manifest = {"generator": "tools/reference/make_phi3_reference.py",
                "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                             "numpy": np.__version__},
                "models": {}}
    total = 0
    for name, spec in MODELS.items():
        cfg, model = build(name)
        model64 = Phi3ForCausalLM(cfg).eval().to(torch.float64)
        # A token sequence whose every position has a clear winner (see MIN_MARGIN).
        model64.load_state_dict({k: v.to(torch.float64) for k, v in model.state_dict().items()})
        rng = np.random.default_rng(spec["seed"])
        for _ in range(1000):
            tokens = [int(t) for t in rng.integers(3, cfg.vocab_size, N_TOKENS)]
            ref = logits_of(model64, tokens)
            if margins(ref).min() >= MIN_MARGIN:
                break
        else:
            sys.exit(f"{name}: no token sequence with margins >= {MIN_MARGIN}")

        # float32 transformers agrees with float64 to rounding: the fixture is the math, not
        # one precision's accidents.
        ref32 = logits_of(model, tokens)
        rel32 = np.abs(ref32 - ref).max() / np.abs(ref).max()
        assert rel32 < 1e-5, rel32
        if cfg.sliding_window is not None:  # the window must matter for this sequence
            cfg_full = Phi3Config(**{**cfg.to_dict(), "sliding_window": None}, attn_implementation="eager")
            full = Phi3ForCausalLM(cfg_full).eval().to(torch.float64)
            full.load_state_dict(model64.state_dict())
            d = np.abs(logits_of(full, tokens) - ref).max(axis=1)
            assert d[: cfg.sliding_window].max() < 1e-9 and d[cfg.sliding_window:].min() > 1e-3, d

        entry = {"config": {k: v for k, v in spec.items() if k != "seed"}, "tokens": tokens,
                 "variants": {}}
        for variant in VARIANTS[name]:
            base = os.path.join(OUT_DIR, f"{name}.{variant}")
            held = write_gguf(base + ".gguf", cfg, gguf_tensors(model), variant)
            model64.load_state_dict({k: torch.from_numpy(v).to(torch.float64) for k, v in held.items()})
            logits = logits_of(model64, tokens)
            m = margins(logits)
            assert m.min() >= MIN_MARGIN / 2, (name, variant, m.min())
            with open(base + ".logits", "wb") as f:
                f.write(b"HGPL")
                f.write(struct.pack("<III", 1, N_TOKENS, cfg.vocab_size))
                f.write(np.asarray(tokens, dtype="<i4").tobytes())
                f.write(logits.astype("<f4").tobytes())
            sizes = os.path.getsize(base + ".gguf") + os.path.getsize(base + ".logits")
            total += sizes
            entry["variants"][variant] = {"min_margin": float(m.min()), "max_abs_logit": float(np.abs(logits).max()),
                                          "bytes": sizes}
            print(f"{name}.{variant}: {sizes} bytes, min top-2 margin {m.min():.3f}, "
                  f"max |logit| {np.abs(logits).max():.2f}")
        manifest["models"][name] = entry
    manifest["gguf_py"] = "0.19.0"
    with open(os.path.join(OUT_DIR, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"total {total} bytes")
    assert total < MAX_TOTAL_BYTES, total


if __name__ == "__main__":
    main()
