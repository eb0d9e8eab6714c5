#!/usr/bin/env python3
"""Golden vectors for one H-LoRA linear layer (native/ops/hlora.cpp, read by
native/tests/test_hlora.cpp), from a torch module written from docs/model.md's formula:

    route = softmax(router(x)); a = lora_A(x) * alpha / r * n
    g = route.repeat_interleave(r // n) * a; y = W x + lora_B(g)

with random weights (lora_B non-zero), fixed seeds, in float64.

Outputs test/fixtures/hlora/<name>.bin, little-endian: "HGHL", u32 version 1, u32 in, out, r,
n_experts, tokens, f32 alpha, then f32 arrays W[out][in], router[n][in], lora_A[r][in],
lora_B[out][r], x[tokens][in], y[tokens][out].

Pinned: torch 2.15.0 (the +cu132 wheel; the math runs on the CPU in float64), numpy 2.4.6; the
venv of make_phi3_reference.py. The output is byte-for-byte reproducible. Regenerate (from the
repository root):
  python3 -m venv /opt/ref-venv && /opt/ref-venv/bin/pip install torch==2.15.0 numpy==2.4.6
  /opt/ref-venv/bin/python tools/reference/make_hlora_reference.py
"""
import os
import struct

import numpy as np
import torch

OUT = os.path.join("test", "fixtures", "hlora")

# (name, in, out, rank, experts, alpha): the ratios of HealthGPT-M3's plugins
CONFIGS = [
    ("comprehension", 96, 80, 64, 4, 128.0),  # r=64, alpha=128, 4 experts
    ("generation", 32, 40, 256, 4, 512.0),    # r=256, alpha=512, 4 experts
]
TOKENS = 5


class HLoraLinear(torch.nn.Module):
    def __init__(self, d_in, d_out, r, n, alpha):
        super().__init__()
        self.base = torch.nn.Linear(d_in, d_out, bias=False)
        self.router = torch.nn.Linear(d_in, n, bias=False)
        self.lora_A = torch.nn.Linear(d_in, r, bias=False)
        self.lora_B = torch.nn.Linear(r, d_out, bias=False)
        self.r, self.n, self.scale = r, n, alpha / r * n

    def forward(self, x):
        route = torch.softmax(self.router(x), dim=-1)
        a = self.lora_A(x) * self.scale
        g = route.repeat_interleave(self.r // self.n, dim=-1) * a
        return self.base(x) + self.lora_B(g)


def main():
    os.makedirs(OUT, exist_ok=True)
    for i, (name, d_in, d_out, r, n, alpha) in enumerate(CONFIGS):
        torch.manual_seed(100 + i)
        m = HLoraLinear(d_in, d_out, r, n, alpha).double()
        with torch.no_grad():
            for p in m.parameters():
                p.normal_(0.0, 1.0 / np.sqrt(p.shape[1]))
            m.router.weight.mul_(4.0)  # a router that prefers experts differently per token
            # float32-representable weights, so the engine reads exactly what torch used
            for p in m.parameters():
                p.copy_(p.float().double())
            x = torch.randn(TOKENS, d_in, dtype=torch.float64).float().double()
            y = m(x)
        path = os.path.join(OUT, f"{name}.bin")
        with open(path, "wb") as f:
            f.write(b"HGHL" + struct.pack("<6I", 1, d_in, d_out, r, n, TOKENS) + struct.pack("<f", alpha))
            for t in (m.base.weight, m.router.weight, m.lora_A.weight, m.lora_B.weight, x, y):
                f.write(t.detach().numpy().astype("<f4").tobytes())
        print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
