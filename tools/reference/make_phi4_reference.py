#!/usr/bin/env python3
"""A tiny HealthGPT-L14 language-model folder in Phi-4's layout, and the ids the original gives.

Phi-4's real tokenizer (100k merges) cannot be downloaded here, so this builds a small byte-level
BPE tokenizer in Phi-4's STYLE and records, with the tokenizer classes HealthGPT runs
(transformers 4.41, its requirements.txt pin):

  test/fixtures/phi4/llm/   vocab.json + merges.txt (trained here), tokenizer.json (Phi-4's
                            pre-tokenizer: cl100k Split + ByteLevel without regex), tokenizer_config.json
                            (GPT2Tokenizer, Phi-4's bos/eos/pad/unk), config.json (Phi3ForCausalLM,
                            tiny), generation_config.json, model.safetensors (bf16, random)
  test/fixtures/phi4/golden.json
  test/fixtures/phi4/single-word/tokenizer_config.json  the same with single_word on two added
                            tokens (Phi-4 has none), for the slow tokenizer's single_word rule

Phi-4's vocabulary layout is kept with a shift: its 96 added tokens (ids 100256..100351, every
one lstrip + rstrip, normalized false) sit at B..B+95 for the B trained tokens, in Phi-4's order
(real id r -> B + r - 100256), so len(tokenizer) = B + 96 (Phi-4: 100352).

golden.json holds:
- corpus: for each text, the ids of the SLOW GPT2Tokenizer (use_fast=False, what HealthGPT's
  com_infer_phi4.py loads) and of the fast tokenizer (tokenizer.json: llama.cpp's behaviour);
- prompts: the phi4_instruct prompt with an image, built as HealthGPT builds it
  (llava/conversation.py conv_phi4_instruct, MPT separator style; llava/mm_utils.py
  tokenizer_image_token: split on <image>, tokenize each chunk, IMAGE_TOKEN_INDEX -200 between);
- resize: llava/demo/utils.py add_special_tokens_and_resize_model restated in numpy (torch was
  not installable here): <start_index>, 8192 <idx_k>, <end_index>, <pixel_newline> added as
  special tokens, resize_token_embeddings(len(tokenizer)) keeps rows [0, min(old, new)), then
  the last 8195 rows of embed_tokens and of lm_head are set to the mean (dim 0) of the rows
  before them. len(tokenizer) and the new ids are checked against the slow tokenizer itself.

Run with a transformers 4.41 venv: python3 -m venv V && V/bin/pip install transformers==4.41.2 'numpy<2'
then V/bin/python tools/reference/make_phi4_reference.py
"""
import json
import os
import shutil

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
from transformers import GPT2Tokenizer, GPT2TokenizerFast, __version__ as TF_VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "phi4")
LLM = os.path.join(OUT, "llm")

CL100K = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

# Phi-4's added tokens, ids 100256..100351 in order
def phi4_added() -> list[str]:
    named = {100257: "<|endoftext|>", 100258: "<|fim_prefix|>", 100259: "<|fim_middle|>", 100260: "<|fim_suffix|>",
             100264: "<|im_start|>", 100265: "<|im_end|>", 100266: "<|im_sep|>", 100276: "<|endofprompt|>"}
    out, dummy = [], 0
    for r in range(100256, 100352):
        if r in named:
            out.append(named[r])
        else:
            out.append(f"<|dummy_{dummy}|>")
            dummy += 1
    return out

TRAIN = """The chest X-ray shows a small nodule in the right upper lobe; no pleural effusion.
WE'LL follow up in 3 months. Don't worry: it's benign, I'M sure they've seen it and you'd agree.
MRI T2-weighted images: 12 lesions, 1,024 slices, 3.5 mm thick, 2024-01-15 follow-up x-ray.
Patient ID 0012345678, heart rate 72 bpm, BP 120/80 mmHg, SpO2 98%.
肺结节 胸部X光 正常 肺 結節   Привет мир, пациент здоров.  مرحبا بالعالم  हिन्दी में जाँच
한국어 검사 결과   emoji 🫁🩻 and the replacement char \ufffd \ufffd\ufffd twice.
  leading spaces, trailing spaces   \t tabs\t\tand\n\n\nnew lines\r\n windows.
What is shown in this image? Is there a fracture? Describe the findings.
You are a medieval knight and must provide explanations to modern people.
system user assistant knight medieval explanations modern people image shown
"""

CORPUS = [
    "What is shown in this chest X-ray?",
    "digits 1 12 123 1234 12345 1234567 and 3.14159, 1,000,000 and 2024-01-15",
    "x-ray follow-up T2-weighted non-contrast CT-guided",
    "WE'LL don't it's I'M they've you'd She'S we'Re",
    "a   b\t\tc\n\n\nd  \n  e   ",
    "   leading and trailing   ",
    "\n\n",
    " ",
    "肺结节 胸部X光 Привет мир مرحبا हिन्दी में जाँच 한국어 🫁🩻",
    "unknown \ufffd char and mojibake ï¿½",
    "<|im_start|>user<|im_sep|>\n  hi  <|im_end|>\n\n<|im_start|>assistant<|im_sep|>",
    "abc<|im_end|>def <|dummy_3|> x <|endoftext|>y",
    "<|im_sep|>\n\nWhat?\n\n",
    "tabs\t<|im_end|>\t\ttabs and nbsp\u00a0<|im_start|>\u3000ideographic",
]

SYSTEM = "<|im_start|>system<|im_sep|>\nYou are a medieval knight and must provide explanations to modern people."
ROLES = ("\n<|im_start|>user<|im_sep|>\n", "\n<|im_start|>assistant<|im_sep|>\n")
SEP = "<|im_end|>"
IMAGE_TOKEN_INDEX = -200
QUESTIONS = ["What is shown?", "Is there a fracture in the 2nd rib?  Answer yes or no.", "Describe\n\nthe   findings (x-ray)."]


def phi4_pre_tokenizer():
    return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(CL100K), behavior="removed", invert=True),
                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


def mpt_prompt(messages: list[tuple[str, str | None]]) -> str:
    """conversation.py get_prompt, SeparatorStyle.MPT."""
    ret = SYSTEM + SEP
    for role, message in messages:
        ret += role + message + SEP if message else role
    return ret


def tokenizer_image_token(prompt: str, tok) -> list[int]:
    """llava/mm_utils.py tokenizer_image_token."""
    chunks = [tok(c).input_ids for c in prompt.split("<image>")]
    out, offset = [], 0
    if chunks and chunks[0] and chunks[0][0] == tok.bos_token_id:
        offset = 1
        out.append(chunks[0][0])
    sep = [IMAGE_TOKEN_INDEX] * (offset + 1)
    joined = [e for sub in zip(chunks, [sep] * len(chunks)) for e in sub][:-1]
    for x in joined:
        out.extend(x[offset:])
    return out


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(LLM)
    # trained as Phi-4's was, on cl100k pre-tokens: merges such as "-ray", "'LL", "123" exist,
    # so the slow tokenizer's GPT-2 split gives other ids than the fast one
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = phi4_pre_tokenizer()
    trainer = trainers.BpeTrainer(vocab_size=700, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([TRAIN] * 3, trainer=trainer)
    bpe.model.save(LLM)
    vocab = json.load(open(os.path.join(LLM, "vocab.json"), encoding="utf-8"))
    merges = [l for l in open(os.path.join(LLM, "merges.txt"), encoding="utf-8").read().split("\n")[1:] if l]
    B = len(vocab)
    added = []
    for i, t in enumerate(phi4_added()):
        added.append(dict(id=B + i, content=t, single_word=False, lstrip=True, rstrip=True, normalized=False, special=True))
    ids = {a["content"]: a["id"] for a in added}

    config = {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(a["id"]): {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")} for a in added},
        "bos_token": "<|endoftext|>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "model_max_length": 16384,
        "pad_token": "<|dummy_85|>",
        "padding_side": "left",
        "tokenizer_class": "GPT2Tokenizer",
        "unk_token": "<|endoftext|>",
    }
    json.dump(config, open(os.path.join(LLM, "tokenizer_config.json"), "w", encoding="utf-8"), indent=2, ensure_ascii=False)
    tj = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": CL100K}, "behavior": "Removed", "invert": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    json.dump(tj, open(os.path.join(LLM, "tokenizer.json"), "w", encoding="utf-8"), indent=1, ensure_ascii=False)
    Tokenizer.from_file(os.path.join(LLM, "tokenizer.json"))  # loads

    slow = GPT2Tokenizer.from_pretrained(LLM)
    fast = GPT2TokenizerFast.from_pretrained(LLM)
    assert type(slow).__name__ == "GPT2Tokenizer" and not slow.is_fast
    n_tok = len(slow)
    assert n_tok == B + 96, (n_tok, B)
    for t, i in ids.items():
        assert slow.convert_tokens_to_ids(t) == i and fast.convert_tokens_to_ids(t) == i, t

    corpus = [{"text": s, "slow": slow(s).input_ids, "fast": fast(s).input_ids} for s in CORPUS]
    prompts = []
    for q in QUESTIONS:
        text = mpt_prompt([(ROLES[0], "<image>\n" + q), (ROLES[1], None)])
        prompts.append({"question": q, "text": text, "ids": tokenizer_image_token(text, slow), "fast": tokenizer_image_token(text, fast)})

    # the slow tokenizer's single_word rule (tokenization_utils.py tokenize): on <|dummy_3|>
    # (no strips) and <|dummy_4|> (lstrip + rstrip, as Phi-4's)
    sw_dir = os.path.join(OUT, "single-word")
    os.makedirs(sw_dir)
    sw = json.loads(json.dumps(config))
    sw["added_tokens_decoder"][str(ids["<|dummy_3|>"])].update(single_word=True, lstrip=False, rstrip=False)
    sw["added_tokens_decoder"][str(ids["<|dummy_4|>"])].update(single_word=True)
    json.dump(sw, open(os.path.join(sw_dir, "tokenizer_config.json"), "w", encoding="utf-8"), indent=2, ensure_ascii=False)
    for f in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(LLM, f), os.path.join(sw_dir, f))
    sw_tok = GPT2Tokenizer.from_pretrained(sw_dir)
    for f in ("vocab.json", "merges.txt", "special_tokens_map.json"):
        if os.path.exists(os.path.join(sw_dir, f)):
            os.remove(os.path.join(sw_dir, f))
    SW_TEXTS = ["abc<|dummy_3|>def", "abc <|dummy_3|> def", "<|dummy_3|>x-ray", "a <|dummy_3|>b", "a<|dummy_3|> b",
                "x<|dummy_4|>  y", "x  <|dummy_4|>y", "<|dummy_4|><|dummy_3|>z", "t <|dummy_4|> <|dummy_3|> u",
                "<|im_end|><|dummy_3|>\n<|dummy_4|>", "12<|dummy_3|>34 <|dummy_4|>"]
    single_word = [{"text": t, "slow": sw_tok(t).input_ids} for t in SW_TEXTS]

    # utils.py add_special_tokens_and_resize_model, on the slow tokenizer
    assert len(slow.additional_special_tokens) == 0
    new = ["<start_index>"] + [f"<idx_{i}>" for i in range(8192)] + ["<end_index>", "<pixel_newline>"]
    n_new = slow.add_special_tokens({"additional_special_tokens": new})
    assert n_new == 8195 and len(slow) == n_tok + 8195
    new_ids = [slow.convert_tokens_to_ids(t) for t in ("<start_index>", "<idx_0>", "<idx_8191>", "<end_index>", "<pixel_newline>")]
    prompt_after = tokenizer_image_token(prompts[0]["text"], slow)
    assert prompt_after == prompts[0]["ids"]

    # the model: Phi3ForCausalLM, tiny, bf16 weights like Phi-4's, vocab_size = len(tokenizer)
    hidden, ffn, layers, heads, kv = 16, 32, 1, 2, 1
    head_dim = hidden // heads
    rng = np.random.default_rng(19)
    def bf16(a: np.ndarray) -> np.ndarray:  # round to nearest even, kept as float32 values
        u = a.astype(np.float32).view(np.uint32)
        u = ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
        return u.view(np.float32)
    w = {
        "model.embed_tokens.weight": bf16(rng.normal(0, 1, (n_tok, hidden))),
        "lm_head.weight": bf16(rng.normal(0, 0.25, (n_tok, hidden))),
        "model.norm.weight": bf16(1 + rng.normal(0, 0.1, (hidden,))),
    }
    for l in range(layers):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = bf16(1 + rng.normal(0, 0.1, (hidden,)))
        w[p + "post_attention_layernorm.weight"] = bf16(1 + rng.normal(0, 0.1, (hidden,)))
        w[p + "self_attn.qkv_proj.weight"] = bf16(rng.normal(0, 0.25, (hidden + 2 * kv * head_dim, hidden)))
        w[p + "self_attn.o_proj.weight"] = bf16(rng.normal(0, 0.25, (hidden, hidden)))
        w[p + "mlp.gate_up_proj.weight"] = bf16(rng.normal(0, 0.25, (2 * ffn, hidden)))
        w[p + "mlp.down_proj.weight"] = bf16(rng.normal(0, 0.18, (hidden, ffn)))
    # stored as bf16: the upper halves of the float32 words
    st = {}
    import struct
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, a in w.items():
        raw = (np.ascontiguousarray(a, dtype=np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hj = json.dumps(header).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(os.path.join(LLM, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))

    # transformers' resize_token_embeddings(len(tokenizer)): rows [0, min(old, new)) kept; then
    # utils.py: the last n_new rows of both matrices = mean over dim 0 of the rows before them
    def resized(old: np.ndarray) -> np.ndarray:
        rows = n_tok + n_new
        m = np.zeros((rows, old.shape[1]), dtype=np.float32)
        keep = min(old.shape[0], rows)
        m[:keep] = old[:keep]
        m[-n_new:] = m[:-n_new].mean(axis=0, dtype=np.float64).astype(np.float32)
        return m
    emb, head = resized(w["model.embed_tokens.weight"]), resized(w["lm_head.weight"])

    cfg = {
        "architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "attention_dropout": 0.0,
        "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|endoftext|>"], "pad_token_id": ids["<|dummy_85|>"],
        "hidden_act": "silu", "hidden_size": hidden, "intermediate_size": ffn, "max_position_embeddings": 64,
        "num_attention_heads": heads, "num_hidden_layers": layers, "num_key_value_heads": kv,
        "rms_norm_eps": 1e-5, "rope_theta": 250000.0, "rope_scaling": None, "sliding_window": None,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "vocab_size": n_tok,
    }
    json.dump(cfg, open(os.path.join(LLM, "config.json"), "w"), indent=2)
    # Phi-4's generation_config lists <|im_end|> as end of sequence (config.json says <|endoftext|>)
    gen = {"bos_token_id": ids["<|endoftext|>"], "eos_token_id": [ids["<|im_end|>"]], "pad_token_id": ids["<|dummy_85|>"]}
    json.dump(gen, open(os.path.join(LLM, "generation_config.json"), "w"), indent=2)

    golden = {
        "versions": {"transformers": TF_VERSION, "tokenizers": __import__("tokenizers").__version__, "numpy": np.__version__},
        "trained_tokens": B, "tokenizer_size": n_tok, "added": ids,
        "corpus": corpus, "prompts": prompts, "single_word": single_word,
        "healthgpt_ids": dict(zip(("start_index", "idx_0", "idx_8191", "end_index", "pixel_newline"), new_ids)),
        "resize": {
            "rows": int(emb.shape[0]),
            "embed_mean": [float(x) for x in emb[-1]],
            "head_mean": [float(x) for x in head[-1]],
            "embed_sum": float(emb.astype(np.float64).sum()), "head_sum": float(head.astype(np.float64).sum()),
        },
        "eos_token_ids": gen["eos_token_id"],
    }
    json.dump(golden, open(os.path.join(OUT, "golden.json"), "w", encoding="utf-8"), indent=1, ensure_ascii=False)
    for s in corpus:
        if s["slow"] != s["fast"]:
            print("slow != fast:", repr(s["text"]))
    print(f"B={B} tokenizer={n_tok} resized={emb.shape[0]} prompt ids={len(prompts[0]['ids'])}")


if __name__ == "__main__":
    main()
