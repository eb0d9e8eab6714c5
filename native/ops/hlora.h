// H-LoRA (heterogeneous low-rank adaptation, docs/model.md "H-LoRA"): one plugin's adapter for one
// linear layer. For a frozen weight W (out x in), router R (n x in), lora_A (r x in) and
// lora_B (out x r):
//
//   route = softmax(R x)                    n experts, per token
//   a     = (A x) * s                       s = alpha / r * n
//   g     = repeat_each(route, r / n) * a   expert j owns rank slots j*r/n .. (j+1)*r/n - 1
//   y     = W x + B g
//
// The fused path stacks the router over lora_A once, at adapter load, so one matmul yields
// the router logits and A x together; softmax, expansion and scale are one epilogue before B.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/threadpool.h"

namespace hg {

// A borrowed row-major tensor as the adapter file holds it: HG_TYPE_F32, HG_TYPE_F16 or
// HG_TYPE_BF16 (the released HealthGPT pickles may be bf16).
struct HLoraTensor {
    int type = 0;
    const void *data = nullptr;
    int64_t rows = 0, cols = 0;
};

struct HLoraAdapter {
    std::string name; // e.g. "blk.3.attn_qkv": prefixes every message about this adapter
    int64_t in = 0, out = 0, rank = 0, n_experts = 0;
    float alpha = 0;
    // (a_row + rank) x in: the router's rows, then lora_A's from row a_row. In their common
    // type when both came in the same one, else F32 (an F16/BF16 half is widened exactly).
    int router_lora_a_type = 0;
    std::vector<uint8_t> router_lora_a;
    int64_t a_row = 0;   // n_experts; once packed, n_experts rounded up to whole row groups
    int lora_b_type = 0; // out x rank, kept in its own type
    std::vector<uint8_t> lora_b;
    int64_t ra_rows() const { return a_row + rank; }

    float scale() const { return alpha / (float)rank * (float)n_experts; }

    // Copies, stacks and validates: types F32/F16, rank a multiple of the experts, every
    // shape against (in, out, rank, n_experts), finite values. Fails (hg::Error) naming the
    // tensor, e.g. "blk.3.attn_qkv.lora_A: non-finite value at row 2, column 17".
    static HLoraAdapter make(const std::string &name, int64_t in, int64_t out, int64_t rank, int64_t n_experts,
                             float alpha, const HLoraTensor &router, const HLoraTensor &lora_a,
                             const HLoraTensor &lora_b);

    // Re-encodes both matrices in `type` (F32, F16, BF16 or Q8_0) for speed: at one token a
    // linear costs the bytes it reads, and Q8_0 reads about half of F16. A matrix whose rows
    // are not whole blocks of `type` (lora_B with a rank that is not a multiple of 32 for Q8_0)
    // keeps its type. Fails naming the adapter on any other type.
    void convert(int type);
    // Regroups both matrices for the row-block kernels where that pays on this processor
    // (quant/repack.h: Q8_0 and F16 under AVX-512): a decode step then reads each as one
    // stream, and lora_B's short rows (rank values) cost no call per row. The router gets
    // zero rows up to a whole group, so that it and lora_A start groups of their own (the
    // unfused path multiplies them apart). Call after convert; the reference refuses packed
    // adapters.
    void pack();
};

// y (n_tokens columns of out floats) = W x + B g, fused and threaded on the pool. W: out x in
// of any type hg::matmul supports; x: n_tokens columns of in floats.
void hlora_linear(ThreadPool &pool, const HLoraAdapter &ad, int w_type, const void *w, const float *x, int64_t n_tokens,
                  float *y);

// The same product unfused: W x, R x and A x as three passes over x (the router and lora_A
// rows of the stacked matrix multiplied on their own), then the epilogue and B g, as a plugin
// loaded unfused runs (bench-hlora's comparison). Same arithmetic as the fused path, so the
// same result to the last bit: the tests hold the fused paths to it.
void hlora_linear_unfused(ThreadPool &pool, const HLoraAdapter &ad, int w_type, const void *w, const float *x,
                          int64_t n_tokens, float *y);

// y += B g alone (the router, A x, the expert mix and B g; fused or not), for rows whose W x
// was computed together with other rows (a batch of sequences under different plugins).
// hlora_linear is W x then this, except that a decode step's few tokens (up to kRowBlockCols)
// run as one pool job (hlora_linear_parts).
void hlora_add(ThreadPool &pool, const HLoraAdapter &ad, bool fused, const float *x, int64_t n_tokens, float *y);

// A decode step's tokens under several plugins (a batch of sequences: up to kRowBlockCols
// tokens) in one pool job: y = W x for every token, plus B g of its plugin's fused adapter for
// the tokens of each part (columns [c0, c1) of x and y; tokens in no part get W x alone).
// Each token's result is what hlora_linear gives it alone, bit for bit.
struct HLoraPart {
    const HLoraAdapter *ad;
    int64_t c0, c1;
};
void hlora_linear_parts(ThreadPool &pool, int w_type, const void *w, int64_t in, int64_t out, const float *x,
                        int64_t n_tokens, const HLoraPart *parts, size_t n_parts, float *y);

// Every product here runs with matmul's exact_columns: a token's result does not depend on
// the tokens beside it.

// The formula as written, unfused, on the calling thread: W dequantized row by row, every
// dot product and the softmax in double. The reference the fused path is tested against.
void hlora_linear_ref(const HLoraAdapter &ad, int w_type, const void *w, const float *x, int64_t n_tokens, float *y);

} // namespace hg
