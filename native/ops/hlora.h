// H-LoRA (heterogeneous low-rank adaptation, MODEL.md "H-LoRA") for one linear layer of one
// plugin. For a frozen weight W (out x in), router R (n x in), A (r x in), B (out x r):
//
//   route = softmax(R x)                    n experts, per token
//   a     = (A x) * s                       s = alpha / r * n
//   g     = repeat_each(route, r / n) * a   expert j owns rank slots j*r/n .. (j+1)*r/n - 1
//   y     = W x + B g
//
// The fused path stacks R over A once at load, so one matmul gives the router logits and
// the A product together; softmax, expansion and scale are one epilogue before B.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/threadpool.h"

namespace hg {

struct HLoraAdapter {
    int64_t in = 0, out = 0, rank = 0, n_experts = 0;
    float alpha = 0;
    std::vector<float> router_lora_a; // (n_experts + rank) x in: R's rows, then A's
    std::vector<float> lora_b;        // out x rank

    float scale() const { return alpha / (float)rank * (float)n_experts; }

    // Builds and validates (hg::Error naming the tensor): rank a multiple of n_experts,
    // sizes that match, finite values. `name` prefixes messages (e.g. "blk.3.attn_qkv").
    static HLoraAdapter make(const std::string &name, int64_t in, int64_t out, int64_t rank,
                             int64_t n_experts, float alpha, const std::vector<float> &router,
                             const std::vector<float> &lora_a, const std::vector<float> &lora_b);
};

// y (n_tokens columns of out) = W x + B g, fused. W: out x in of any supported type.
void hlora_linear(ThreadPool &pool, const HLoraAdapter &ad, int w_type, const void *w,
                  const float *x, int64_t n_tokens, float *y);

// The same formula, unfused, in double precision from the dequantized W: the reference.
void hlora_linear_ref(const HLoraAdapter &ad, int w_type, const void *w, const float *x,
                      int64_t n_tokens, float *y);

} // namespace hg
