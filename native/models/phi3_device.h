// The backend boundary of the Phi-3 decoder: a device that runs the forward pass with
// weights, KV cache and scratch memory of its own (the CUDA backend: cuda/phi3_cuda.h).
// Phi3Model keeps the file, the hyper-parameters, the plugins and n_past, checks every call,
// and hands each chunk of tokens to the device in place of its CPU forward pass.
#pragma once

#include <cstdint>
#include <string>

#include "models/hlora_plugin.h"

namespace hg {

// A greedy pick (Phi3Segment::greedy) made where the logits are: the chunk's last row's token
// in [lo, hi) as ops/greedy.h picks it, into *next; the row itself does not come back.
struct Phi3Pick {
    int32_t lo = 0, hi = 0;
    int32_t *next = nullptr;
};

class Phi3Device {
  public:
    virtual ~Phi3Device() = default;
    // e.g. "cuda: NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)"
    virtual std::string describe() const = 0;
    // Layers 0 .. n_layers() - 1 run here; when that is all of them, the output head too.
    virtual int64_t n_layers() const = 0;
    // Phi3Model::eval_chunk on the device: n tokens (already checked) at positions pos0..;
    // logits (host memory, may be null) as eval_chunk fills them. plugin: -1 or an id that
    // add_plugin returned. With some layers left to the CPU, hidden_out (host, n x n_embd
    // floats) receives the hidden state after the device's last layer instead of logits.
    // pick (all layers here, logits null): the last row's greedy pick instead of its logits.
    // Returns once the results are on the host and the work is done.
    virtual void eval_chunk(const int32_t *tokens, const float *embd, int64_t n, int64_t pos0, float *logits,
                            bool all_logits, int plugin, float *hidden_out, const Phi3Pick *pick = nullptr) = 0;
    // Uploads a plugin's adapters (they must be in plain layouts: HLoraPluginOptions::pack
    // off); ids count up from 0 in the order of the model's add_plugin.
    virtual void add_plugin(const HLoraPlugin &plugin) = 0;
};

} // namespace hg
