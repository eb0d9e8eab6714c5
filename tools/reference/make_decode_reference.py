#!/usr/bin/env python3
"""How HealthGPT turns generated ids into the answer text (test/answer-text.test.ts).

HealthGPT's com_infer.py prints `tokenizer.decode(output_ids[0], skip_special_tokens=True)[:-8]`
with the slow LlamaTokenizer (use_fast=False) after `add_special_tokens_and_resize_model`
(llava/demo/utils.py), which makes <start_index>, <idx_k>, <end_index>, <pixel_newline> the
tokenizer's additional special tokens. This records, for the tiny Phi-3 tokenizer of
test/fixtures/convert/model (400 SentencePiece pieces + Phi-3's 11 chat tokens) with K = 2
image tokens appended (411 + 5 = 416 = vocab_size), what that decode gives:

  cases       ids as a generation would produce them (text, byte tokens, newlines, HealthGPT's
              image tokens, <s> and <|endoftext|> inside), and decode(ids, skip_special_tokens=True)
  end_cases   ids followed by <|end|> (the stop), and what com_infer.py prints: the decode
              with its last 8 characters cut (the ' <|end|>' that skip_special_tokens keeps,
              since Phi-3's chat tokens are not in the replaced additional_special_tokens)
  kept        what the decode does with Phi-3's other chat tokens mid-answer (kept as text,
              between spaces): recorded, not reproduced (the engine never prints them)

Output: test/fixtures/tokenizer/hf-decode.json.

Regenerate (from the repository root; HealthGPT's requirements.txt pins transformers 4.41):
  python3 -m venv /tmp/ref && /tmp/ref/bin/pip install transformers==4.41.0 sentencepiece==0.1.99 protobuf
  /tmp/ref/bin/python tools/reference/make_decode_reference.py
"""
import json
import os

import transformers
from transformers import AutoTokenizer

MODEL = os.path.join("test", "fixtures", "convert", "model")
OUT = os.path.join("test", "fixtures", "tokenizer", "hf-decode.json")
K = 2


def main():
    tok = AutoTokenizer.from_pretrained(MODEL, use_fast=False)
    # llava/demo/utils.py add_special_tokens_and_resize_model, the tokenizer half
    index_tokens = [f"<idx_{i}>" for i in range(K)]
    tok.add_special_tokens({"additional_special_tokens": ["<start_index>"] + index_tokens + ["<end_index>", "<pixel_newline>"]})
    assert len(tok) == 416, len(tok)
    ids = lambda s: tok.encode(s, add_special_tokens=False)
    sid = tok.convert_tokens_to_ids
    end = sid("<|end|>")
    texts = ["The lungs are clear.", "yes", "No.", ", then 42", "a\nb  c", "caf\u00e9 \u2014 ok", "  two spaces"]
    cases = []
    for t in texts:
        cases.append(ids(t))
    cases.append([sid("<start_index>"), sid("<idx_0>"), sid("<idx_1>"), sid("<end_index>")] + ids("The lungs"))
    cases.append(ids("left") + [sid("<pixel_newline>"), sid("<s>")] + ids(" lobe") + [sid("<|endoftext|>")])
    cases.append([sid("<s>")] + ids("Normal"))
    out = {
        "transformers": transformers.__version__,
        "codebook_size": K,
        "cases": [{"ids": c, "text": tok.decode(c, skip_special_tokens=True)} for c in cases],
        "end_cases": [{"ids": c, "printed": tok.decode(c + [end], skip_special_tokens=True)[:-8]} for c in cases[:4]],
        "kept": [{"ids": c, "text": tok.decode(c, skip_special_tokens=True)} for c in [ids("left") + [sid("<|user|>")] + ids("right")]],
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for c in out["cases"] + out["end_cases"] + out["kept"]:
        print(c)


if __name__ == "__main__":
    main()
