#!/usr/bin/env python3
"""Writes a tiny GGUF file with llama.cpp's own Python package (gguf-py) and records what
gguf-py's reader reads back, so our reader can be checked against the reference.

Outputs (both committed, a few KB):
  test/fixtures/gguf/pygguf.gguf           arch "phi3", metadata of every value type
                                           (string, int and float arrays too), F32 / F16 /
                                           Q8_0 tensors (Q8_0 from gguf.quants)
  test/fixtures/gguf/pygguf.expected.json  {"metadata": {key: value},
                                            "tensors": [{"name", "shape" (ggml order: row
                                            length first), "type" ("q8_0"), "offset" (in the
                                            data section), "bytes"}]}

Regenerate (from the repository root, with the pinned versions; the output is deterministic):
  python3 -m venv .venv && .venv/bin/pip install gguf==0.19.0 numpy==2.4.6
  .venv/bin/python tools/reference/make_pygguf_fixture.py
"""
import json
import os
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter

GGUF_PY_VERSION = "0.19.0"
OUT_DIR = os.path.join("test", "fixtures", "gguf")
GGUF_PATH = os.path.join(OUT_DIR, "pygguf.gguf")
JSON_PATH = os.path.join(OUT_DIR, "pygguf.expected.json")
MAX_BYTES = 50 * 1024


def values(n: int, seed: float) -> np.ndarray:
    """Deterministic, varied floats (no RNG, so any numpy gives the same bytes)."""
    return np.sin(np.arange(n, dtype=np.float64) * 0.37 + seed).astype(np.float32)


def write() -> None:
    w = GGUFWriter(GGUF_PATH, arch="phi3")  # adds general.architecture
    # Model-like keys, with the types llama.cpp uses for them.
    w.add_name("pygguf fixture")
    w.add_uint32("general.file_type", 7)
    w.add_uint32("general.quantization_version", 2)
    w.add_uint32("phi3.context_length", 4096)
    w.add_uint32("phi3.embedding_length", 64)
    w.add_uint32("phi3.block_count", 1)
    w.add_uint32("phi3.attention.head_count", 4)
    w.add_float32("phi3.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_string("tokenizer.ggml.model", "llama")
    tokens = ["<unk>", "<s>", "</s>", "\u2581the", "\u2581h\u00e9llo", "\U0001fa7a", "<0x0A>", "a"]
    w.add_array("tokenizer.ggml.tokens", tokens)
    w.add_array("tokenizer.ggml.scores", [0.0, 0.0, 0.0, -1.5, -2.25, -3.0, -4.0, -5.5])
    w.add_array("tokenizer.ggml.token_type", [2, 3, 3, 1, 1, 1, 6, 1])  # python ints: INT32
    w.add_uint32("tokenizer.ggml.bos_token_id", 1)
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_bool("tokenizer.ggml.add_eos_token", False)
    # Every other scalar type, with edge values.
    w.add_uint8("test.u8", 255)
    w.add_int8("test.i8", -128)
    w.add_uint16("test.u16", 65535)
    w.add_int16("test.i16", -32768)
    w.add_int32("test.i32", -2147483648)
    w.add_uint64("test.u64", 18446744073709551615)
    w.add_int64("test.i64", -9223372036854775808)
    w.add_float64("test.f64", 2.718281828459045)
    w.add_float32("test.f32", 0.1)
    # Arrays of the other element types.
    w.add_key_value("test.arr_u8", [0, 1, 255], GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT8)
    w.add_key_value("test.arr_i16", [-32768, 0, 32767], GGUFValueType.ARRAY, sub_type=GGUFValueType.INT16)
    w.add_key_value("test.arr_u32", [4294967295, 7], GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT32)
    w.add_key_value("test.arr_u64", [18446744073709551615, 0], GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT64)
    w.add_key_value("test.arr_i64", [-9223372036854775808, 5], GGUFValueType.ARRAY, sub_type=GGUFValueType.INT64)
    w.add_key_value("test.arr_f64", [0.5, -1e300], GGUFValueType.ARRAY, sub_type=GGUFValueType.FLOAT64)
    w.add_key_value("test.arr_bool", [True, False, True], GGUFValueType.ARRAY, sub_type=GGUFValueType.BOOL)

    # Tensors: numpy shape is (rows, row length); the file stores it reversed (ggml order).
    w.add_tensor("token_embd.weight", values(8 * 64, 0.0).reshape(8, 64).astype(np.float16))
    w.add_tensor("blk.0.attn_norm.weight", values(64, 1.0))
    q = gguf.quants.quantize(values(3 * 64, 2.0).reshape(3, 64), GGMLQuantizationType.Q8_0)
    w.add_tensor("blk.0.attn_q.weight", q, raw_dtype=GGMLQuantizationType.Q8_0)
    w.add_tensor("output_norm.weight", values(64, 3.0))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def plain(v):
    """numpy scalars and lists of them as JSON values."""
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def expected() -> dict:
    r = GGUFReader(GGUF_PATH)
    metadata = {}
    for name, field in r.fields.items():
        if name.startswith("GGUF."):  # the reader's pseudo-fields for the header
            continue
        metadata[name] = plain(field.contents())
    tensors = [
        {
            "name": t.name,
            "shape": [int(d) for d in t.shape],
            "type": t.tensor_type.name.lower(),
            "offset": int(t.data_offset - r.data_offset),
            "bytes": int(t.n_bytes),
        }
        for t in r.tensors
    ]
    return {"metadata": metadata, "tensors": tensors}


def main() -> int:
    from importlib.metadata import version

    if version("gguf") != GGUF_PY_VERSION:
        print(f"warning: gguf {version('gguf')} installed, the fixture is pinned to {GGUF_PY_VERSION}", file=sys.stderr)
    os.makedirs(OUT_DIR, exist_ok=True)
    write()
    with open(JSON_PATH, "w", encoding="utf-8") as f:
        json.dump(expected(), f, indent=1, ensure_ascii=False)
        f.write("\n")
    for path in (GGUF_PATH, JSON_PATH):
        size = os.path.getsize(path)
        if size > MAX_BYTES:
            print(f"{path}: {size} bytes, over the {MAX_BYTES} limit", file=sys.stderr)
            return 1
        print(f"wrote {path} ({size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
