// An H-LoRA plugin (docs/model.md "H-LoRA"): one task's adapters for every linear of the language
// model, read from its own GGUF file and applied over the base model's weights, which are
// never copied. A model may hold several plugins; the caller picks one per request (hard
// routing). The file format is described at the top of hlora_plugin.cpp and in README.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "ops/hlora.h"

namespace hg {

// The base model's sizes a plugin must match.
struct HLoraBaseShape {
    int64_t n_layer = 0, n_embd = 0, n_ff = 0, n_qkv = 0, n_vocab = 0;
};

struct HLoraPluginOptions {
    int adapter_type = -1; // -1: as the file holds them; else HLoraAdapter::convert's types
    bool fused = true;     // false: router and lora_A in passes of their own (benchmarks)
    bool pack = true;      // false: adapters stay in plain layouts (for a device to upload)
};

// Rows first_row .. first_row + n_rows - 1 of token_embd or output that the plugin trained;
// they replace the base model's rows while the plugin runs. t is null when absent.
struct HLoraRows {
    const GGUFTensor *t = nullptr;
    int64_t first_row = 0, n_rows = 0;
    bool covers(int64_t row) const { return t && row >= first_row && row < first_row + n_rows; }
};

class HLoraPlugin {
  public:
    // Reads and validates the whole file against the base (every key, every tensor's presence,
    // shape, type and values); throws hg::Error naming the file and the key or tensor at fault.
    static std::unique_ptr<HLoraPlugin> load(std::unique_ptr<GGUFFile> file, const HLoraBaseShape &base,
                                             const HLoraPluginOptions &opt);

    struct Layer {
        HLoraAdapter attn_qkv, attn_output, ffn_up, ffn_down;
    };

    const std::string &name() const { return name_; } // hlora.plugin
    int64_t rank() const { return rank_; }
    int64_t n_experts() const { return n_experts_; }
    float alpha() const { return alpha_; }
    bool fused() const { return fused_; }
    const Layer &layer(int64_t il) const { return layers_[(size_t)il]; }
    const HLoraRows &token_embd() const { return token_embd_; }
    const HLoraRows &output() const { return output_; }
    // The plugin's own projector (mlp2x_gelu), null when the file has none: for the vision path.
    const GGUFTensor *mm_0_weight() const { return mm_[0]; }
    const GGUFTensor *mm_0_bias() const { return mm_[1]; }
    const GGUFTensor *mm_2_weight() const { return mm_[2]; }
    const GGUFTensor *mm_2_bias() const { return mm_[3]; }

  private:
    HLoraPlugin() = default;

    std::unique_ptr<GGUFFile> file_;
    std::string name_;
    int64_t rank_ = 0, n_experts_ = 0;
    float alpha_ = 0;
    bool fused_ = true;
    std::vector<Layer> layers_;
    HLoraRows token_embd_, output_;
    const GGUFTensor *mm_[4] = {nullptr, nullptr, nullptr, nullptr};
};

} // namespace hg
