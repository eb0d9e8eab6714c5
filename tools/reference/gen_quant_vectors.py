#!/usr/bin/env python3
"""Golden vectors for the engine's reference quantizers, from gguf-py (llama.cpp's Python port).

Writes test/fixtures/quant/*.bin, read by native/tests/test_quant.cpp, which compares the
engine's bytes and floats with these exactly. CI has no Python: the fixtures are committed,
and this script is only run to change them.

Regenerate (from the repo root; pinned versions, other ones may round differently):

    python3 -m pip install gguf==0.19.0 numpy==2.4.6
    python3 tools/reference/gen_quant_vectors.py

Files, one per (type, direction):
  <type>_quantize.bin    input floats -> gguf.quants.quantize() bytes
                         (f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0)
  <type>_dequantize.bin  block bytes -> gguf.quants.dequantize() floats
                         (q4_0 .. q8_0 on the blocks above; q4_K, q5_K, q6_K on blocks of
                         random bytes, which reach every bit of the layout)

Layout, little-endian: "HGQF", u32 version (1), u32 ggml type id, u32 kind (0 quantize,
1 dequantize), u32 n (elements), u32 src_bytes, u32 dst_bytes, src bytes, dst bytes.
"""

import os
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "quant"))
SEED = 20240611


def write(name: str, qtype: T, kind: int, n: int, src: bytes, dst: bytes) -> None:
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(b"HGQF")
        f.write(struct.pack("<6I", 1, int(qtype), kind, n, len(src), len(dst)))
        f.write(src)
        f.write(dst)
    print(f"{path}: {os.path.getsize(path)} bytes")


def blocks_32(rng: np.random.Generator) -> np.ndarray:
    """Blocks of 32 that reach the corners of the q4/q5/q8 formulas."""
    b = []
    for scale in (1.0, 0.02, 100.0, 1e-3):
        for _ in range(6):
            b.append(rng.standard_normal(32) * scale)
    # exact halves after scaling: q4_0 (d = 1), q5_0 (d = 0.5), q4_1 (d = 1), q8_0 (d = 1)
    b.append(np.concatenate([[-8.0], np.arange(-7.5, 8.0, 0.5)[:31]]))
    b.append(np.concatenate([[15.0, 0.0], np.arange(0.5, 15.5, 0.5)]))
    b.append(np.concatenate([[-127.0], np.arange(-15.5, 15.5, 1.0)[:31]]))
    b.append(np.concatenate([[127.0], rng.integers(-126, 127, 31) + 0.5]))
    b.append(np.zeros(32))                                  # d = 0, id = 0
    b.append(np.where(np.arange(32) == 5, 3.0, 0.0))        # one spike
    b.append(np.full(32, 1.5))                              # max == min: q4_1 d = 0
    b.append(np.tile([-2.0, 2.0], 16))                      # |max| tie: the first one wins
    b.append(np.tile([2.0, -2.0], 16))
    b.append(np.where(rng.random(32) < 0.5, 1e4, -1e4))     # large
    b.append(rng.standard_normal(32) * 1e-5)                # d an fp16 subnormal
    b.append(np.abs(rng.standard_normal(32)) + 0.25)        # positive only: min > 0
    b.append(-np.abs(rng.standard_normal(32)) - 0.25)       # negative only
    # q8_0's d near the fp16 top; q4_*/q5_*'s d (and m) overflow to inf
    b.append(rng.uniform(-1, 1, 32) * 7.5e6)
    return np.concatenate(b).astype(np.float32)


def plain_inputs(rng: np.random.Generator) -> np.ndarray:
    """f16 / bf16 edge values: ties, overflow, subnormals (no NaN for f16: numpy does not
    quiet signalling NaNs the way F16C and ggml do)."""
    bits = [
        0x3F801000, 0x3F803000, 0x3F800FFF, 0x3F801001,  # f16 ties around 1.0
        0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001,  # bf16 ties around 1.0
        0x477FE000, 0x477FEFFF, 0x477FF000, 0x7F7FFFFF,  # f16 top: 65504, below/at 65520, FLT_MAX
        0x33000000, 0x33000001, 0x33C00000, 0x38800000, 0x387FC000,  # f16 subnormal edges
        0x00000001, 0x80000001, 0x007FFFFF, 0x00000000, 0x80000000,  # f32 subnormals, zeros
        0x7F800000, 0xFF800000,                          # inf
    ]
    x = np.array(bits, dtype=np.uint32).view(np.float32)
    r = rng.standard_normal(256).astype(np.float32) * np.float32(1000.0)
    u = rng.integers(0x30000000, 0x48000000, 256, dtype=np.uint32).view(np.float32)  # f16 range
    return np.concatenate([x, r, u]).astype(np.float32)


def main() -> int:
    # the overflow block and the f16 edge values overflow on purpose
    np.seterr(over="ignore", invalid="ignore")
    assert GGML_QUANT_SIZES[T.Q8_0] == (32, 34)
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)

    plain = plain_inputs(rng)
    write("f16_quantize.bin", T.F16, 0, plain.size, plain.tobytes(), quantize(plain, T.F16).tobytes())
    nan_bits = np.array([0x7FC00000, 0x7F800001, 0xFFFFFFFF, 0x7FA00000], dtype=np.uint32).view(np.float32)
    plain_bf = np.concatenate([plain, nan_bits])
    write("bf16_quantize.bin", T.BF16, 0, plain_bf.size, plain_bf.tobytes(), quantize(plain_bf, T.BF16).tobytes())

    x32 = blocks_32(rng)
    for qtype, name in ((T.Q4_0, "q4_0"), (T.Q4_1, "q4_1"), (T.Q5_0, "q5_0"), (T.Q5_1, "q5_1"), (T.Q8_0, "q8_0")):
        q = quantize(x32, qtype)
        write(f"{name}_quantize.bin", qtype, 0, x32.size, x32.tobytes(), q.tobytes())
        y = dequantize(q, qtype).astype(np.float32)
        write(f"{name}_dequantize.bin", qtype, 1, x32.size, q.tobytes(), y.tobytes())

    # k-quants: gguf-py only decodes them; random blocks with finite, moderate fp16 scales
    # (plus one with d = dmin = 0, one with the extreme sub-block scales) check every field.
    nblk = 12
    for qtype, name in ((T.Q4_K, "q4_K"), (T.Q5_K, "q5_K"), (T.Q6_K, "q6_K")):
        _, size = GGML_QUANT_SIZES[qtype]
        raw = rng.integers(0, 256, (nblk, size), dtype=np.uint8)
        scale = (rng.uniform(1e-4, 0.05, (nblk, 2)) * rng.choice([-1.0, 1.0], (nblk, 2))).astype(np.float16)
        if qtype == T.Q6_K:
            raw[:, size - 2:] = scale[:, :1].view(np.uint8)  # d is the last field
            raw[0, size - 2:] = 0
            raw[1, 128 + 64:size - 2] = 0x80                  # scales -128
        else:
            raw[:, 0:4] = scale.view(np.uint8)                # d, dmin lead
            raw[0, 0:4] = 0
            raw[1, 4:16] = 0xFF                               # every 6-bit scale and min 63
        q = np.ascontiguousarray(raw)
        y = dequantize(q, qtype).astype(np.float32)
        assert np.all(np.isfinite(y))
        write(f"{name}_dequantize.bin", qtype, 1, nblk * 256, q.tobytes(), y.tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
