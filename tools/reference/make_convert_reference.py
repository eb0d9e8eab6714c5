#!/usr/bin/env python3
"""Fixtures for the checkpoint converter (lib/convert, `healthgpt convert --llm`), from the real
writers: transformers' save_pretrained (safetensors, single and sharded), torch.save (zip
pickles, float32 / bfloat16 / a PEFT-style partial state dict, a Lightning-style .ckpt with
views into shared storages), SentencePiece's trainer (tokenizer.model), plus files that must be
refused (legacy torch serialization, pickles naming os.system / builtins.eval, a zip entry
escaping its folder).

Outputs in test/fixtures/convert/ (CI has no Python):
  model/          config.json, model.safetensors, tokenizer.model, tokenizer_config.json
  tokenizer-json/ the same tokenizer as the fast tokenizer.json (no tokenizer.model)
  gpt2-tokenizer/ a byte-level BPE tokenizer saved as GPT2Tokenizer (Phi-4's kind)
  sharded/        the same weights as model-0000N-of-0000M.safetensors + model.safetensors.index.json
  torch/          pytorch_model.bin (float32), bf16.bin, peft.bin, lightning.ckpt, legacy.bin,
                  zip64.bin (peft.bin rewritten with zip64 records), proto4.bin (peft.bin, pickle protocol 4)
  evil/           system.bin, eval.bin, traversal.bin, recursive.bin
  manifest.json   per torch file: every tensor's dtype, shape and sha256 of its values as
                  contiguous little-endian float32; the reference logits' token ids; the slow
                  tokenizer's ids for a few strings (tokens.json)
  model.logits    Phi3ForCausalLM's logits (float64 run, stored f32) for manifest tokens, layout
                  "HGPL", u32 1, u32 n_tokens, u32 n_vocab, i32 tokens[], f32 logits[][]

Regenerate (from the repository root; deterministic on CPU except torch/legacy.bin, whose old
format records storage keys from object ids):
  /opt/ref-venv/bin/pip install torch==2.15.0 transformers==5.23.0 safetensors==0.8.0 numpy==2.4.6 \
      sentencepiece==0.2.1 protobuf==7.36.2
  python3 -m venv /opt/tf4-venv   # the Hugging Face *slow* tokenizer HealthGPT trained with
  /opt/tf4-venv/bin/pip install transformers==4.46.3 sentencepiece==0.2.1 protobuf==5.29.3
  /opt/ref-venv/bin/python tools/reference/make_convert_reference.py
(transformers 5 dropped the slow LlamaTokenizer, so its ids come from transformers 4.46.3, run
as a subprocess in /opt/tf4-venv.)
"""
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from collections import OrderedDict

import numpy as np
import sentencepiece as spm
import torch
from transformers import Phi3Config, Phi3ForCausalLM

OUT = os.path.join("test", "fixtures", "convert")
TF4_PYTHON = os.environ.get("TF4_PYTHON", "/opt/tf4-venv/bin/python")
MAX_TOTAL_BYTES = 1536 * 1024
SP_VOCAB = 400
# Phi-3's added tokens, ids after the SentencePiece pieces (docs/model.md), rstrip as Phi-3's config
ADDED = ["<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|placeholder2|>", "<|placeholder3|>",
         "<|placeholder4|>", "<|system|>", "<|end|>", "<|placeholder5|>", "<|placeholder6|>", "<|user|>"]
VOCAB = 416  # padded past the tokenizer as Phi-3's 32064 is past its 32011
N_TOKENS = 10
TEXTS = [
    "What is shown in this chest X-ray?",
    "The lesion measures 12 mm; no effusion.",
    "  two  spaces and a tab\there",
    "<|user|>\nIs there a fracture?<|end|>\n<|assistant|>\n",
    "Ünïcödé: 肺 結節 🫁",
    "hello<|end|>world",
]


def corpus() -> str:
    rng = np.random.default_rng(5)
    words = ("the chest x-ray shows a small nodule in the left lower lobe no pleural effusion "
             "heart size is normal ct mri scan of the brain pelvis lesion fracture patient "
             "image findings impression consistent with pneumonia opacity mass").split()
    lines = []
    for _ in range(600):
        n = int(rng.integers(4, 14))
        lines.append(" ".join(words[int(i)] for i in rng.integers(0, len(words), n)).capitalize() + ".")
    lines += ["The lesion measures 12 mm and 3.5 cm.", "What is shown in this image?"]
    return "\n".join(lines) + "\n"


def train_tokenizer(path_prefix: str) -> None:
    text = os.path.join(os.path.dirname(path_prefix), "corpus.txt")
    with open(text, "w") as f:
        f.write(corpus())
    # Llama-2's trainer settings (bpe, byte fallback, digits split, identity normalisation)
    spm.SentencePieceTrainer.train(
        input=text, model_prefix=path_prefix, model_type="bpe", vocab_size=SP_VOCAB,
        byte_fallback=True, split_digits=True, allow_whitespace_only_pieces=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
        character_coverage=0.9995, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1,
        minloglevel=2)
    os.remove(text)
    os.remove(path_prefix + ".vocab")


def tokenizer_config() -> dict:
    decoder = {}
    for i, t in enumerate(["<unk>", "<s>", "</s>"]):
        decoder[str(i)] = {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                           "single_word": False, "special": True}
    for k, t in enumerate(ADDED):
        decoder[str(SP_VOCAB + k)] = {"content": t, "lstrip": False, "normalized": False,
                                      "rstrip": t != "<|endoftext|>", "single_word": False,
                                      "special": True}
    return {"add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": decoder,
            "bos_token": "<s>", "clean_up_tokenization_spaces": False, "eos_token": "<|endoftext|>",
            "legacy": False, "model_max_length": 64, "pad_token": "<|endoftext|>",
            "padding_side": "left", "sp_model_kwargs": {}, "tokenizer_class": "LlamaTokenizer",
            "unk_token": "<unk>", "use_default_system_prompt": False}


def build_model() -> tuple[Phi3Config, Phi3ForCausalLM]:
    cfg = Phi3Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                     original_max_position_embeddings=64, sliding_window=6, rms_norm_eps=1e-5,
                     tie_word_embeddings=False, bos_token_id=1, eos_token_id=SP_VOCAB,
                     pad_token_id=SP_VOCAB, attn_implementation="eager",
                     rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                      "partial_rotary_factor": 1.0})
    torch.manual_seed(7)
    model = Phi3ForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                scale = 6.0 if name == "lm_head.weight" else 1.0
                p.copy_(torch.randn(p.shape, generator=g) * scale / p.shape[1] ** 0.5)
    return cfg, model


def f32_digest(t: torch.Tensor) -> str:
    a = t.detach().to(torch.float32).contiguous().numpy().astype("<f4")
    return hashlib.sha256(a.tobytes()).hexdigest()


def describe(sd: dict) -> dict:
    return {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape),
                "sha256_f32": f32_digest(v)} for k, v in sd.items()}


def zip_with(path: str, entries: list[tuple[str, bytes]]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            z.writestr(zipfile.ZipInfo(name), data)


def zip64_copy(src: str, dst: str) -> None:
    """Rewrites a torch.save zip with every zip64 record Python's zipfile can write (its limits
    lowered so a small file needs them): what torch writes past 4 GiB, in a few KB."""
    with zipfile.ZipFile(src) as z:
        entries = [(n, z.read(n)) for n in z.namelist()]
    saved = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 64, 2
    try:
        zip_with(dst, entries)
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = saved
    with zipfile.ZipFile(dst) as z:  # still a zip torch can read
        assert sorted(z.namelist()) == sorted(n for n, _ in entries)
    with open(dst, "rb") as f:
        assert b"PK\x06\x06" in f.read(), "no zip64 end record"


def evil_files(d: str) -> None:
    os.makedirs(d, exist_ok=True)
    def unicode4(t: str) -> bytes:  # BINUNICODE
        b = t.encode()
        return b"X" + struct.pack("<I", len(b)) + b

    def unicode1(t: str) -> bytes:  # SHORT_BINUNICODE (protocol 4)
        b = t.encode()
        return b"\x8c" + bytes([len(b)]) + b

    # protocol 2: GLOBAL 'os system', a one-string tuple, REDUCE
    system = b"\x80\x02cos\nsystem\n" + unicode4("touch /tmp/healthgpt-pwned-1") + b"\x85R."
    # protocol 4: STACK_GLOBAL builtins.eval
    ev = (b"\x80\x04" + unicode1("builtins") + unicode1("eval") + b"\x93"
          + unicode1("open('/tmp/healthgpt-pwned-2', 'w')") + b"\x85R.")
    ok_version = b"3\n"
    zip_with(os.path.join(d, "system.bin"), [("system/data.pkl", system), ("system/version", ok_version)])
    zip_with(os.path.join(d, "eval.bin"), [("eval/data.pkl", ev), ("eval/version", ok_version)])
    # a well-formed pickle whose storage entry's name climbs out of the archive folder
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        entries = [(n, z.read(n)) for n in z.namelist()]
    entries = [(("archive/../../escape" if n.endswith("/data/0") else n), b) for n, b in entries]
    zip_with(os.path.join(d, "traversal.bin"), entries)
    # a dict that holds itself: a well-formed pickle a naive walker recurses on forever
    loop = {"w": torch.ones(2)}
    loop["self"] = loop
    torch.save(loop, os.path.join(d, "recursive.bin"))


def slow_tokenizer_ids(model_dir: str) -> list[dict]:
    code = (
        "import json,sys\n"
        "from transformers import AutoTokenizer\n"
        "tok = AutoTokenizer.from_pretrained(sys.argv[1], use_fast=False)\n"
        "assert type(tok).__name__ == 'LlamaTokenizer', type(tok)\n"
        "texts = json.loads(sys.stdin.read())\n"
        "print(json.dumps([{'text': t, 'ids': tok.encode(t)} for t in texts]))\n")
    r = subprocess.run([TF4_PYTHON, "-c", code, model_dir], input=json.dumps(TEXTS), capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout)


PHI4_TEXTS = [
    "What is shown in this chest X-ray?",
    "  two  spaces, digits 12345 and a tab\there",
    "<|im_start|>user<|im_sep|>\nIs there a fracture?<|im_end|>",
    "Ünïcödé: 肺 結節 🫁",
]


def tokenizer_json_dirs(model_dir: str, spm_json_dir: str, bpe_dir: str) -> dict:
    """In transformers 4 (tf4 venv): the fast tokenizer.json of the SentencePiece model (no
    tokenizer.model beside it), and a tiny byte-level BPE tokenizer saved as a GPT2Tokenizer
    (Phi-4's kind: vocab.json, merges.txt, tokenizer.json, tokenizer_config.json) with the slow
    GPT2Tokenizer's ids for PHI4_TEXTS."""
    code = (
        "import json,os,sys\n"
        "from transformers import LlamaTokenizerFast, GPT2Tokenizer, GPT2TokenizerFast\n"
        "from tokenizers import ByteLevelBPETokenizer\n"
        "model_dir, spm_json_dir, bpe_dir = sys.argv[1:4]\n"
        "args = json.loads(sys.stdin.read())\n"
        "LlamaTokenizerFast.from_pretrained(model_dir, from_slow=True).save_pretrained(spm_json_dir)\n"
        "bpe = ByteLevelBPETokenizer()\n"
        "bpe.train_from_iterator(args['corpus'].splitlines(), vocab_size=360, min_frequency=2, special_tokens=['<|endoftext|>'], show_progress=False)\n"
        "os.makedirs(bpe_dir, exist_ok=True)\n"
        "bpe.save_model(bpe_dir)\n"
        "slow = GPT2Tokenizer(os.path.join(bpe_dir, 'vocab.json'), os.path.join(bpe_dir, 'merges.txt'), bos_token='<|endoftext|>', eos_token='<|im_end|>', unk_token='<|endoftext|>', pad_token='<|endoftext|>')\n"
        "slow.add_special_tokens({'additional_special_tokens': ['<|im_start|>', '<|im_sep|>', '<|im_end|>']})\n"
        "slow.save_pretrained(bpe_dir)\n"
        "GPT2TokenizerFast.from_pretrained(bpe_dir).save_pretrained(bpe_dir)\n"
        "slow = GPT2Tokenizer.from_pretrained(bpe_dir)\n"
        "print(json.dumps({'ids': [{'text': t, 'ids': slow.encode(t)} for t in args['texts']], 'size': len(slow)}))\n")
    r = subprocess.run([TF4_PYTHON, "-c", code, model_dir, spm_json_dir, bpe_dir],
                       input=json.dumps({"corpus": corpus(), "texts": PHI4_TEXTS}), capture_output=True,
                       text=True, check=True)
    for d in (spm_json_dir, bpe_dir):  # only what a model folder ships
        for f in ("tokenizer.model", "special_tokens_map.json"):
            if os.path.exists(os.path.join(d, f)):
                os.remove(os.path.join(d, f))
    return json.loads(r.stdout)


def main() -> None:
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    model_dir, shard_dir, torch_dir = (os.path.join(OUT, d) for d in ("model", "sharded", "torch"))
    for d in (model_dir, shard_dir, torch_dir):
        os.makedirs(d)

    cfg, model = build_model()
    model.save_pretrained(model_dir)  # config.json + model.safetensors
    model.save_pretrained(shard_dir, max_shard_size="60KB")
    for d in (model_dir, shard_dir):
        gc = os.path.join(d, "generation_config.json")
        if os.path.exists(gc):
            os.remove(gc)
    assert os.path.exists(os.path.join(shard_dir, "model.safetensors.index.json"))
    train_tokenizer(os.path.join(model_dir, "tokenizer"))
    with open(os.path.join(model_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config(), f, indent=2)
        f.write("\n")

    sd = model.state_dict()
    torch.save(sd, os.path.join(torch_dir, "pytorch_model.bin"))
    sd16 = OrderedDict((k, v.to(torch.bfloat16)) for k, v in sd.items())
    torch.save(sd16, os.path.join(torch_dir, "bf16.bin"))
    # PEFT-style partial state dict: LoRA tensors under the wrapped names, an f16 one among them
    g = torch.Generator().manual_seed(3)
    peft = OrderedDict()
    peft["base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.default.weight"] = torch.randn(4, 32, generator=g)
    peft["base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.default.weight"] = torch.randn(64, 4, generator=g).half()
    peft["base_model.model.model.embed_tokens.weight"] = sd["model.embed_tokens.weight"][:8].clone()
    torch.save(peft, os.path.join(torch_dir, "peft.bin"))
    # the same through pickle protocol 4 (STACK_GLOBAL, MEMOIZE, FRAME)
    torch.save(peft, os.path.join(torch_dir, "proto4.bin"), pickle_protocol=4)
    # Lightning-style checkpoint: state_dict beside plain values; views into one shared storage
    # (a transpose, a slice with an offset, a scalar) test strides and storage offsets
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8
    ckpt_sd = OrderedDict()
    ckpt_sd["decoder.conv_in.weight"] = base
    ckpt_sd["decoder.conv_in.weight_t"] = base.t()
    ckpt_sd["decoder.row2"] = base[2, 1:5]
    ckpt_sd["decoder.col3"] = base[:, 3]
    ckpt_sd["quantize.embed.weight"] = torch.randn(3, 5, generator=g).half()
    ckpt_sd["step_scale"] = torch.tensor(0.25, dtype=torch.float64)
    ckpt_sd["counts"] = torch.tensor([1, -2, 3], dtype=torch.int64)
    ckpt = {"epoch": 7, "global_step": 1234, "pytorch-lightning_version": "1.0.8",
            "state_dict": ckpt_sd, "optimizer_states": [], "lr_schedulers": [],
            "hparams": {"lr": 4.5e-6, "name": "vqgan", "flags": (True, False, None)}}
    torch.save(ckpt, os.path.join(torch_dir, "lightning.ckpt"))
    zip64_copy(os.path.join(torch_dir, "peft.bin"), os.path.join(torch_dir, "zip64.bin"))
    assert all(torch.equal(a, b) for a, b in zip(torch.load(os.path.join(torch_dir, "zip64.bin")).values(), peft.values()))
    torch.save({"w": torch.ones(3)}, os.path.join(torch_dir, "legacy.bin"), _use_new_zipfile_serialization=False)
    evil_files(os.path.join(OUT, "evil"))
    phi4 = tokenizer_json_dirs(model_dir, os.path.join(OUT, "tokenizer-json"), os.path.join(OUT, "gpt2-tokenizer"))

    # reference logits in float64 on a sequence with clear winners
    model64 = Phi3ForCausalLM(cfg).eval().to(torch.float64)
    model64.load_state_dict({k: v.to(torch.float64) for k, v in sd.items()})
    rng = np.random.default_rng(9)
    for _ in range(1000):
        tokens = [int(t) for t in rng.integers(3, SP_VOCAB, N_TOKENS)]
        with torch.no_grad():
            ref = model64(torch.tensor([tokens]), use_cache=False).logits[0].numpy()
        top2 = np.sort(ref, axis=1)[:, -2:]
        if (top2[:, 1] - top2[:, 0]).min() > 0.3:
            break
    else:
        sys.exit("no token sequence with clear winners")
    with open(os.path.join(OUT, "model.logits"), "wb") as f:
        f.write(b"HGPL")
        f.write(struct.pack("<III", 1, N_TOKENS, VOCAB))
        f.write(np.asarray(tokens, dtype="<i4").tobytes())
        f.write(ref.astype("<f4").tobytes())

    manifest = {
        "generator": "tools/reference/make_convert_reference.py",
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                     "sentencepiece": spm.__version__, "numpy": np.__version__},
        "vocab": VOCAB, "sp_vocab": SP_VOCAB, "added": ADDED,
        "tensors": {
            "pytorch_model.bin": describe(sd),
            "bf16.bin": describe(sd16),
            "peft.bin": describe(peft),
            "lightning.ckpt": describe(ckpt_sd),
        },
        "lightning_extra": {"epoch": 7, "global_step": 1234},
        "slow_tokenizer": slow_tokenizer_ids(model_dir),
        "logits_tokens": tokens,
        "gpt2_slow_tokenizer": phi4["ids"],
        "gpt2_tokenizer_size": phi4["size"],
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(r, n)) for r, _, fs in os.walk(OUT) for n in fs)
    print(f"total {total} bytes")
    assert total < MAX_TOTAL_BYTES, total


if __name__ == "__main__":
    main()
