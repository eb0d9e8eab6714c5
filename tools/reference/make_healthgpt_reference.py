#!/usr/bin/env python3
"""Golden vectors for the whole HealthGPT pipeline (lib/session/healthgpt.ts, read by
test/healthgpt.test.ts): a tiny HealthGPT with random weights, every part written as the GGUF
file the engine loads, and what the released inference code computes on it.

Parts (reusing the other reference scripts' builders by import):
  clip.gguf   the tiny CLIP tower of make_clip_reference.py (image 56, patch 14: 16 patches,
              width 32, 4 layers of which the file keeps 3; comprehension tap hidden state -2,
              generation tap hidden state 1) with two mlp2x_gelu projectors 32 -> 64 -> 64
              (mm.0/mm.2 comprehension, mm.gen.0/mm.gen.2 generation), F32
  lm.gguf     a tiny Phi3ForCausalLM (hidden 64, 4 heads of 16, 2 kv heads, ffn 96, 2 layers,
              context 2048), F32, whose vocabulary is a SentencePiece one: <unk> <s> </s>, the
              256 byte tokens, '▁' and the printable ASCII characters as single-character
              pieces (no merges: text tokenizes character by character, so the ids below
              follow from the rule alone), Phi-3's chat control tokens, then HealthGPT's image
              tokens <start_index>, <idx_0> .. <idx_{K-1}> (K = 32, the tiny VQGAN's codebook),
              <end_index>, <pixel_newline>. general.name contains "phi3" (RSTRIP on the
              control tokens, as Phi-3's tokenizer_config has them)
  com.gguf, gen.gguf   H-LoRA plugins (make_phi3_hlora_reference.py's formula and writer):
              comprehension r=8, alpha=16, 4 experts; generation r=16, alpha=32, 4 experts,
              with its own trained rows of token_embd and output for the image tokens
  vqgan.gguf  taming's GumbelVQ decoder (make_vqgan_reference.py's modules and counter-based
              weights) in the f8 geometry: ch 32, ch_mult (1, 1, 1, 1), 1 res block,
              attention at resolution 32 (as the release: the 32 x 32 level), z_channels 8,
              embed_dim 8, n_embed 32: 256 x 256 images, a 32 x 32 latent = 1024 tokens;
              decoder only, conv weights and codebook f16
  input.png   a 40 x 28 RGB test image (padded to a square, as HealthGPT does)

Recorded (manifest.json and raw little-endian arrays):
  pixels.f32          (a) CLIPImageProcessor(expand2square(input.png)): 3 x 56 x 56 floats
  ask.ids.json        the comprehension prompt: renderChat(phi3_instruct, "<image>\\n" + question),
                      split on <image> and tokenized as LLaVA's tokenizer_image_token does with
                      Phi-3's slow tokenizer (BOS; '▁' before the text only; RSTRIP after the
                      control tokens), the image slot as null
  ask.logits.f32      (b) the next-token logits after that prompt (comprehension tap, projector
                      and plugin), float64 math on the weights as the files hold them
  gen.ids.json        the reconstruct prompt: "<image>\\nReconstruct the image." + <start_index>
                      after the open assistant role
  gen.indices.i32     (c) the 1024 greedy codebook indices with the generation tap, projector
                      and plugin, every step's logits restricted to the <idx_k> tokens
                      (manual loop over transformers' KV cache); the smallest top-1/top-2 gap
                      of any step is in manifest.json
  gen.png             (d) the VQGAN decode of those indices (taming's custom_to_pil: clamp to
                      [-1, 1], (x + 1) / 2 * 255, truncated), 256 x 256 RGB

Regenerate (from the repository root; pinned versions, deterministic on CPU, about a minute):
  /opt/ref-venv/bin/pip install torch==2.15.0 transformers==5.23.0 gguf==0.19.0 numpy==2.4.6 pillow==12.0.0
  /opt/ref-venv/bin/python tools/reference/make_healthgpt_reference.py
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

import gguf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_clip_reference as clipref  # noqa: E402
import make_image_reference as imgref  # noqa: E402
import make_phi3_hlora_reference as hloraref  # noqa: E402
import make_phi3_reference as phi3ref  # noqa: E402
import make_vqgan_reference as vqref  # noqa: E402

OUT = os.path.join("test", "fixtures", "healthgpt")
MAX_TOTAL_BYTES = 1536 * 1024
K = 32  # codebook size = number of <idx_k> tokens
LATENT = 32
N_IMAGE_TOKENS = LATENT * LATENT
QUESTION = "What is shown?"
GEN_INSTRUCTION = "Reconstruct the image."
SYSTEM = "<|system|>\nYou are a helpful AI assistant."
VQGAN = dict(ch=32, ch_mult=(1, 1, 1, 1), num_res_blocks=1, attn_resolutions=(32,), z_channels=8,
             resolution=256, in_channels=3, out_ch=3, embed_dim=8, n_embed=K)
VQGAN_SEED = 7

# ---- the vocabulary ----
UNK, BOS, EOS = 0, 1, 2
CHARS = [chr(c) for c in range(0x21, 0x7F)]
CHAT = ["<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>"]
IMAGE_TOKENS = ["<start_index>"] + [f"<idx_{k}>" for k in range(K)] + ["<end_index>", "<pixel_newline>"]
T_NORMAL, T_UNKNOWN, T_CONTROL, T_USER, T_BYTE = 1, 2, 3, 4, 6


def vocabulary():
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["\u2581"] + CHARS + CHAT + IMAGE_TOKENS
    types = [T_UNKNOWN, T_CONTROL, T_CONTROL] + [T_BYTE] * 256 + [T_NORMAL] * (1 + len(CHARS)) + \
        [T_CONTROL] * len(CHAT) + [T_USER] * len(IMAGE_TOKENS)
    scores = [0.0 if t != T_NORMAL else -float(i) for i, t in enumerate(types)]
    return pieces, types, scores


PIECES, TYPES, SCORES = vocabulary()
ID = {p: i for i, p in enumerate(PIECES)}
SPECIAL = CHAT + IMAGE_TOKENS


def encode_text(text):
    """One run of text without special tokens: a piece per character, bytes for the rest."""
    out = []
    for ch in text.replace(" ", "\u2581"):
        if ch in ID and TYPES[ID[ch]] == T_NORMAL:
            out.append(ID[ch])
        else:
            out += [ID[f"<0x{b:02X}>"] for b in ch.encode()]
    return out


def encode_chunk(text):
    """Phi-3's slow LlamaTokenizer (legacy=false) on one chunk: BOS; the special tokens split out
    (RSTRIP: whitespace after a control token dropped); '▁' prepended to the whole text (a lone
    '▁' piece when the text starts with a special token: none of these is in
    all_special_tokens), no dummy prefix after a special token."""
    ids = [BOS]
    rest = "\u2581" + text
    # split on special tokens
    pos = 0
    while pos < len(rest):
        hits = [(rest.find(s, pos), s) for s in SPECIAL if rest.find(s, pos) >= 0]
        if not hits:
            ids += encode_text(rest[pos:])
            break
        at, tok = min(hits)
        ids += encode_text(rest[pos:at])
        ids.append(ID[tok])
        pos = at + len(tok)
        if TYPES[ID[tok]] == T_CONTROL:
            while pos < len(rest) and rest[pos].isspace():
                pos += 1
    return ids


def render_chat(user):
    return SYSTEM + "<|end|>" + "\n<|user|>\n" + user + "<|end|>" + "\n<|assistant|>\n"


def image_prompt_ids(prompt):
    """LLaVA's tokenizer_image_token: chunks around <image>, each tokenized on its own; the
    first keeps its BOS, later ones lose theirs; None marks the image slot."""
    chunks = [encode_chunk(c) for c in prompt.split("<image>")]
    out = list(chunks[0])
    for c in chunks[1:]:
        out.append(None)
        out += c[1:] if c and c[0] == BOS else c
    return out


# ---- the parts ----

def write_lm(path, cfg, model):
    tensors = phi3ref.gguf_tensors(model)
    w = gguf.GGUFWriter(path, arch="phi3")
    w.add_name("healthgpt phi3 tiny reference (random weights)")
    w.add_file_type(0)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(PIECES)
    w.add_token_scores(SCORES)
    w.add_token_types(TYPES)
    w.add_bos_token_id(BOS)
    w.add_eos_token_id(ID["<|endoftext|>"])
    w.add_unk_token_id(UNK)
    w.add_eot_token_id(ID["<|end|>"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    for name, _, a in tensors:
        w.add_tensor(name, a.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {hf: a.astype(np.float32) for _, hf, a in tensors}


def write_vqgan(path, cfg, sd):
    w = gguf.GGUFWriter(path, "vqgan")
    w.add_name("taming GumbelVQ f8, tiny (synthetic weights)")
    for k in ("ch", "num_res_blocks", "z_channels", "resolution", "in_channels", "out_ch", "embed_dim", "n_embed"):
        w.add_uint32("vqgan." + k, cfg[k])
    w.add_array("vqgan.ch_mult", [int(v) for v in cfg["ch_mult"]])
    w.add_array("vqgan.attn_resolutions", [int(v) for v in cfg["attn_resolutions"]])
    held = {}
    for name, t in sd.items():
        if not (name.startswith("decoder.") or name.startswith("post_quant_conv.") or name == "quantize.embed.weight"):
            continue  # decoder only
        a = t.numpy().astype(np.float32)
        if a.ndim > 1:
            a = a.astype(np.float16)
        w.add_tensor(name, a)
        held[name] = a.astype(np.float64)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return held


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(2)
    V = len(PIECES)

    # (a) the input image and its pixel tensor
    img = Image.fromarray(imgref.pattern(40, 28, 77))
    img.save(os.path.join(OUT, "input.png"))
    img = Image.open(os.path.join(OUT, "input.png"))
    sq = imgref.expand2square(img.convert("RGB"), imgref.BACKGROUND)
    pixels = imgref.processor(clipref.IMAGE).preprocess(sq, return_tensors="np")["pixel_values"][0]
    assert pixels.shape == (3, clipref.IMAGE, clipref.IMAGE) and pixels.dtype == np.float32
    pixels.tofile(os.path.join(OUT, "pixels.f32"))

    # the vision tower and both projectors (32 -> 64 -> 64)
    tower, _ = clipref.make_models()
    projectors = []
    g = torch.Generator().manual_seed(91)
    for _ in range(2):
        mlp = torch.nn.Sequential(torch.nn.Linear(clipref.WIDTH, 64), torch.nn.GELU(), torch.nn.Linear(64, 64)).double()
        with torch.no_grad():
            for p in mlp.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * (0.2 if p.ndim == 1 else 1.0 / np.sqrt(p.shape[1])))
        projectors.append(mlp)
    clipref.write_gguf(os.path.join(OUT, "clip.gguf"), clipref.gguf_tensors(tower, projectors), "f32")

    def image_embeds(tap):
        with torch.no_grad():
            hs = tower(pixel_values=torch.from_numpy(pixels.astype(np.float64))[None], output_hidden_states=True).hidden_states
            feats = hs[-2 if tap == "comprehension" else 1][0, 1:]
            return projectors[0 if tap == "comprehension" else 1](feats)

    # the language model and the plugins
    phi3ref.MODELS["hg"] = dict(vocab_size=V, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                                rope_theta=10000.0, partial_rotary_factor=1.0, sliding_window=None, seed=61)
    cfg, model = phi3ref.build("hg")
    held = write_lm(os.path.join(OUT, "lm.gguf"), cfg, model)
    base_sd = {k: torch.from_numpy(v).to(torch.float64) for k, v in held.items()}
    first_image = ID["<start_index>"]
    specs = {"comprehension": dict(rank=8, alpha=16.0, experts=4, rows=None, seed=71),
             "generation": dict(rank=16, alpha=32.0, experts=4, rows=(first_image, V), seed=73)}
    adapters = {}
    for name, spec in specs.items():
        plugin = hloraref.make_plugin(name, spec, cfg)
        short = "com" if name == "comprehension" else "gen"
        adapters[name] = hloraref.write_adapter(os.path.join(OUT, f"{short}.gguf"), plugin, cfg, "f32")

    model64 = phi3ref.Phi3ForCausalLM(cfg).eval().to(torch.float64)
    wrapped = hloraref.wrap(model64)

    def use(plugin):
        model64.load_state_dict({(k.replace(".weight", ".base.weight") if any(f"{h}.weight" in k for _, h in hloraref.LINEARS)
                                  else k): v for k, v in base_sd.items()})
        hloraref.install(model64, wrapped, adapters[plugin], base_sd)

    def embeds(ids, feats):
        emb = model64.model.embed_tokens.weight
        rows = [feats if t is None else emb[t][None] for t in ids]
        return torch.cat(rows, 0)[None]

    manifest = {"generator": "tools/reference/make_healthgpt_reference.py",
                "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                             "numpy": np.__version__, "gguf_py": "0.19.0"},
                "vocab_size": V, "codebook": K, "question": QUESTION, "instruction": GEN_INSTRUCTION,
                "n_patches": (clipref.IMAGE // clipref.PATCH) ** 2}

    # (b) first-token logits of an image question, comprehension plugin
    ask_ids = image_prompt_ids(render_chat("<image>\n" + QUESTION))
    use("comprehension")
    with torch.no_grad():
        logits = model64(inputs_embeds=embeds(ask_ids, image_embeds("comprehension")), use_cache=False).logits[0, -1].numpy()
    logits.astype("<f4").tofile(os.path.join(OUT, "ask.logits.f32"))
    top2 = np.sort(logits)[-2:]
    manifest["ask"] = {"ids": ask_ids, "argmax": int(logits.argmax()), "margin": float(top2[1] - top2[0]),
                       "max_abs_logit": float(np.abs(logits).max())}

    # (c) greedy image tokens for reconstruct, generation plugin
    gen_ids = image_prompt_ids(render_chat("<image>\n" + GEN_INSTRUCTION) + "<start_index>")
    use("generation")
    lo, hi = ID["<idx_0>"], ID["<idx_0>"] + K
    idx, gaps = [], []
    with torch.no_grad():
        out = model64(inputs_embeds=embeds(gen_ids, image_embeds("generation")), use_cache=True)
        for step in range(N_IMAGE_TOKENS):
            l = out.logits[0, -1, lo:hi].numpy()
            s = np.sort(l)
            gaps.append(float(s[-1] - s[-2]))
            k = int(l.argmax())
            idx.append(k)
            if step + 1 < N_IMAGE_TOKENS:
                out = model64(input_ids=torch.tensor([[lo + k]]), past_key_values=out.past_key_values, use_cache=True)
    idx = np.asarray(idx, dtype="<i4")
    idx.tofile(os.path.join(OUT, "gen.indices.i32"))
    manifest["generate"] = {"ids": gen_ids, "min_gap": min(gaps), "steps_below_0.01": int(sum(x < 0.01 for x in gaps)),
                            "distinct_indices": int(len(set(idx.tolist())))}
    print(f"generate: min top-2 gap {min(gaps):.4f}, {len(set(idx.tolist()))} distinct codes")

    # (d) the decoded image
    m, sd = vqref.build(VQGAN, VQGAN_SEED)
    vheld = write_vqgan(os.path.join(OUT, "vqgan.gguf"), VQGAN, sd)
    with torch.no_grad():
        for name, p in m.state_dict().items():
            if name in vheld:
                p.copy_(torch.from_numpy(vheld[name]))
        chw = m.decode_indices(torch.from_numpy(idx.astype(np.int64)), LATENT)[0].numpy()
    rgb = ((np.clip(chw, -1, 1) + 1) / 2 * 255).astype(np.uint8).transpose(1, 2, 0)
    Image.fromarray(rgb).save(os.path.join(OUT, "gen.png"))
    manifest["image"] = {"min": float(chw.min()), "max": float(chw.max()), "std": float(chw.std())}

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"ask: argmax {manifest['ask']['argmax']}, margin {manifest['ask']['margin']:.3f}; image std {chw.std():.3f}")
    print(f"total {total} bytes")
    assert total < MAX_TOTAL_BYTES, total


if __name__ == "__main__":
    main()
