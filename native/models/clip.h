// The CLIP ViT vision tower (HealthGPT's visual encoder) and its mlp2x_gelu projectors on the
// CPU, from a GGUF in llama.cpp's mmproj layout (docs/model.md "Vision tower").
//
//   embeddings   = [class_embd, patch_embd(pixels)] + position_embd     (n_pos x n_embd)
//   hidden_state 0 = pre_ln(embeddings)
//   per layer i:  h = hidden_state + attn_out(attention(q, k, v of ln1(hidden_state)))
//                 hidden_state i+1 = h + ffn_down(quick_gelu(ffn_up(ln2(h))))
//   features     = hidden_state tap, class position dropped              (n_patches x n_embd)
//   projector    = mm.2(gelu_erf(mm.0(features)))   (mm.gen.0 / mm.gen.2 for generation)
//
// Which hidden state each tap takes (the rule, after llama.cpp's clip.cpp and its
// converter): hidden-state indices count from the ORIGINAL tower (0 = the embeddings, i =
// the output of the i-th layer), and a file may hold only the layers up to the deepest tap.
//  - comprehension: the largest entry of clip.vision.feature_layer when the key is present
//    (llava converters store -2 as 24 - 2 + 1 = 23, keeping 23 of 24 layers); without it, a
//    file with clip.has_llava_projector = true had its last layer dropped by the converter,
//    so the original depth is block_count + 1 and hidden state -2 is block_count; a plain
//    vision tower keeps every layer and -2 is block_count - 1.
//  - generation: clip.vision.generation_feature_layer (HealthGPT's own key), else 1.
// Either tap must lie within the layers the file holds. Layers past the tap are not run.
// llama.cpp's clip.cpp (build_llava) agrees when feature_layer is present: it runs layers
// 0 .. max(feature_layer) - 1 and takes that output. Without the key it runs block_count - 1
// layers, one fewer than a llava converter's file was cut for (hidden state 22 of a
// 23-layer file); we follow the converter's intent, hidden state -2 of the original tower.
// (The llama.cpp bundled with node-llama-cpp 3.22.1 also appends the class token after the
// patches in that graph, ggml-org/llama.cpp#25814, so its image tokens differ from LLaVA's;
// test/mmproj-llama-cpp.test.ts compares the arithmetic on files where that cannot matter.)
//
// Files from llama.cpp's legacy converter (convert_image_encoder_to_gguf.py, the released
// LLaVA-1.5 mmproj files) name fc1 ffn_down and fc2 ffn_up; the loader takes them swapped when
// the shapes say so, as clip.cpp does.
//
// Weights stay in the file's mapping, as the decoder's do.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/threadpool.h"
#include "gguf/gguf.h"
#include "healthgpt.h"
#include "models/clip_device.h"
#include "models/packed_weights.h"
#include "quant/quant.h"

namespace hg {

struct ClipHParams {
    int64_t image_size = 0;                                    // clip.vision.image_size (square)
    int64_t patch_size = 0;                                    // clip.vision.patch_size
    int64_t n_embd = 0;                                        // clip.vision.embedding_length
    int64_t n_ff = 0;                                          // clip.vision.feed_forward_length
    int64_t n_layer = 0;                                       // clip.vision.block_count: the layers the file holds
    int64_t n_head = 0;                                        // clip.vision.attention.head_count
    int64_t head_dim = 0;                                      // n_embd / n_head
    float eps = 1e-5f;                                         // clip.vision.attention.layer_norm_epsilon
    int64_t comprehension_layer = 0;                           // hidden-state index of the comprehension tap
    int64_t generation_layer = 1;                              // hidden-state index of the generation tap
    float image_mean[3] = {0, 0, 0}, image_std[3] = {1, 1, 1}; // clip.vision.image_mean/std

    int64_t grid() const { return image_size / patch_size; }
    int64_t n_patches() const { return grid() * grid(); }
    int64_t n_pos() const { return n_patches() + 1; }
};

// A weight as the forward pass reads it: type, shape (ggml order) and bytes in the mapping,
// or in packed groups (models/packed_weights.h; type() is then the packed type).
struct ClipWeight {
    const GGUFTensor *t = nullptr;
    const void *packed = nullptr;
    int type() const { return packed ? packed_type(t->type) : t->type; }
    const void *data() const { return packed ? packed : t->data; }
    const float *f32() const { return reinterpret_cast<const float *>(t->data); }
};

struct ClipLayer {
    ClipWeight ln1_w, ln1_b, attn_q_w, attn_q_b, attn_k_w, attn_k_b, attn_v_w, attn_v_b, attn_out_w, attn_out_b, ln2_w,
        ln2_b, ffn_up_w, ffn_up_b, ffn_down_w, ffn_down_b;
};

// mlp2x_gelu: Linear(n_embd -> n_mid, bias), GELU (erf), Linear(n_mid -> n_out, bias). A
// vision file's projectors are square (n_mid = n_out); a plugin file's need not be.
struct ClipProjector {
    bool present = false;
    int64_t n_mid = 0, n_out = 0;
    ClipWeight w0, b0, w2, b2;
};

enum ClipTap { CLIP_TAP_COMPREHENSION = 0, CLIP_TAP_GENERATION = 1 };
enum ClipProjectorKind { CLIP_PROJECTOR_COMPREHENSION = 0, CLIP_PROJECTOR_GENERATION = 1 };

class ClipModel {
  public:
    // Reads and validates the hyper-parameters and every tensor (presence, shape, type);
    // throws hg::Error naming the file and the key or tensor at fault. The linears are
    // packed (models/packed_weights.h) with the pool's threads unless repack is false or the
    // tower runs on a device. gpu (hg_gpu): HG_GPU_OFF the CPU; HG_GPU_CUDA the CUDA backend
    // or an error saying why not; HG_GPU_AUTO CUDA when it can, else the CPU (backend() says why).
    static std::unique_ptr<ClipModel> load(std::unique_ptr<GGUFFile> file, ThreadPool *pool = nullptr,
                                           bool repack = true, int gpu = HG_GPU_OFF);

    const ClipHParams &hparams() const { return hp_; }
    const ClipProjector &projector(int kind) const;

    // Hidden-state index of a tap (CLIP_TAP_*); throws on an unknown tap.
    int64_t tap_layer(int tap) const;

    // pixels: 3 x image_size x image_size floats (CHW, already normalised). out: n_patches x
    // n_embd floats, hidden state `hidden_state` (0..n_layer) with the class position dropped.
    void encode(ThreadPool &pool, const float *pixels, int64_t hidden_state, float *out) const;

    // n rows of n_embd floats -> n rows of the projector's n_out floats.
    void project(ThreadPool &pool, int kind, const float *in, int64_t n, float *out) const;

    // Replaces projector `kind` with the one an H-LoRA plugin file carries (mm.0 / mm.2:
    // HealthGPT's plugins bring the projector they were trained with). Returns false,
    // changing nothing, when the file has none; throws naming the file when its projector is
    // incomplete or does not take n_embd values. On a device the projector goes there too.
    bool use_projector(int kind, std::unique_ptr<GGUFFile> file, ThreadPool *pool);

    // encode, then project its n_patches rows (out: n_patches x n_out floats); on a device the
    // features never leave it.
    void encode_project(ThreadPool &pool, const float *pixels, int64_t hidden_state, int kind, float *out) const;

    // Where encode and project run: "cpu", "cuda: <device>", or "cpu (<why not cuda>)".
    const std::string &backend() const { return backend_; }

  private:
    friend std::unique_ptr<ClipDevice> make_clip_cuda(const ClipModel &m);
    ClipModel() = default;
    void use_device(int gpu);
    void check_encode(const float *pixels, int64_t hidden_state, const float *out) const;
    const ClipProjector &present_projector(int kind) const; // or an error naming the missing one

    std::unique_ptr<GGUFFile> file_;
    PackedWeights packed_;
    ClipHParams hp_;
    ClipWeight patch_embd_, class_embd_, position_embd_, pre_ln_w_, pre_ln_b_;
    std::vector<ClipLayer> layers_;
    ClipProjector proj_[2];
    bool repack_ = true;
    // a plugin's projector in place of the file's: its mapping and packed weights
    std::unique_ptr<GGUFFile> proj_file_[2];
    std::unique_ptr<PackedWeights> proj_packed_[2];
    std::unique_ptr<ClipDevice> device_; // null: the CPU; not const: its scratch is its own
    std::string backend_ = "cpu";
};

} // namespace hg
