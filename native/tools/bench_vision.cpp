// bench_vision: CLIP encode and VQGAN decode times, on the CPU or the device, for machines
// without Node (tools/device-check.sh). Both models are built in memory with random weights
// at the real shapes: a ViT-L/14-336 tower (f16 matrices, the comprehension tap after
// --clip-layers layers, projector to 3072) and the VQGAN decoder at 256 x 256 (f16, 1024
// indices). Times are medians of -r runs after one warm-up; CLIP's is encode + projector with
// the projected rows back on the host, the VQGAN's indices in, RGB floats out. Prints a line
// per model and, last, one JSON object. --save-clip / --save-vqgan also write the files it
// times, for llama.cpp's CLIP (tools/llama-clip-bench.cpp) and bench_generate to load.
//
//   bench_vision [--gpu off|auto|cuda] [--clip-layers 23] [--proj-dim 3072] [--vqgan real|tiny] [-r 5]
//                [-t threads] [--save-clip PATH] [--save-vqgan PATH]
// (--vqgan tiny: the 16 x 16 test geometry, for checking the tool on a CPU quickly; --proj-dim:
// the projectors' output, the language model's width: 3072 for Phi-3-mini)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "core/threadpool.h"
#include "gguf/gguf.h"
#include "models/clip.h"
#include "models/vqgan.h"
#include "tests/gguf_builder.h"
#include "tests/vqgan_synth.h"
#include "tool_common.h"

namespace {

// uniform in [-1, 1) from a seed and an index
float uniform(uint64_t seed, uint64_t i) {
    return (float)((int64_t)(vqsynth::mix(seed * 0x9E3779B97F4A7C15ull + i) >> 40) - (1 << 23)) / (float)(1 << 23);
}

// A ViT-L/14-336 tower of n_layer layers (the tap after the last) with both projectors to
// proj_dim. Besides what our loader reads, the keys llama.cpp's clip.cpp requires
// (projection_dim: CLIP's own 768, unused by the llava projector; image_mean / image_std).
std::vector<uint8_t> clip_gguf(uint32_t n_layer, uint64_t proj_dim) {
    using namespace gguftest;
    const uint64_t E = 1024, F = 4096, P = 14, POS = 577, D = proj_dim;
    FileSpec s;
    s.kvs = {{"general.architecture", str_value("clip")},
             {"clip.has_vision_encoder", scalar<uint8_t>(HG_GGUF_BOOL, 1)},
             {"clip.projector_type", str_value("mlp")},
             {"clip.vision.image_size", scalar<uint32_t>(HG_GGUF_UINT32, 336)},
             {"clip.vision.patch_size", scalar<uint32_t>(HG_GGUF_UINT32, 14)},
             {"clip.vision.embedding_length", scalar<uint32_t>(HG_GGUF_UINT32, 1024)},
             {"clip.vision.feed_forward_length", scalar<uint32_t>(HG_GGUF_UINT32, 4096)},
             {"clip.vision.attention.head_count", scalar<uint32_t>(HG_GGUF_UINT32, 16)},
             {"clip.vision.attention.layer_norm_epsilon", scalar<float>(HG_GGUF_FLOAT32, 1e-5f)},
             {"clip.vision.block_count", scalar<uint32_t>(HG_GGUF_UINT32, n_layer)},
             {"clip.vision.projection_dim", scalar<uint32_t>(HG_GGUF_UINT32, 768)},
             {"clip.vision.image_mean", array_of<float>(HG_GGUF_FLOAT32, {0.48145466f, 0.4578275f, 0.40821073f})},
             {"clip.vision.image_std", array_of<float>(HG_GGUF_FLOAT32, {0.26862954f, 0.26130258f, 0.27577711f})},
             {"clip.vision.feature_layer", array_of<int32_t>(HG_GGUF_INT32, {(int32_t)n_layer})}};
    auto add = [&](const std::string &name, std::vector<uint64_t> dims) {
        s.tensors.push_back({name, dims, (uint32_t)(dims.size() >= 2 ? HG_TYPE_F16 : HG_TYPE_F32)});
    };
    add("v.patch_embd.weight", {P, P, 3, E});
    add("v.class_embd", {E});
    add("v.position_embd.weight", {E, POS});
    add("v.pre_ln.weight", {E});
    add("v.pre_ln.bias", {E});
    for (uint32_t il = 0; il < n_layer; il++) {
        const std::string p = "v.blk." + std::to_string(il) + ".";
        for (const char *m : {"attn_q", "attn_k", "attn_v", "attn_out"}) {
            add(p + m + ".weight", {E, E});
            add(p + m + ".bias", {E});
        }
        add(p + "ffn_up.weight", {E, F});
        add(p + "ffn_up.bias", {F});
        add(p + "ffn_down.weight", {F, E});
        add(p + "ffn_down.bias", {E});
        for (const char *m : {"ln1", "ln2"}) {
            add(p + m + ".weight", {E});
            add(p + m + ".bias", {E});
        }
    }
    for (const std::string pre : {"mm.", "mm.gen."}) {
        add(pre + "0.weight", {E, D});
        add(pre + "0.bias", {D});
        add(pre + "2.weight", {D, D});
        add(pre + "2.bias", {D});
    }
    Built b = build(s); // the header; the data (past build's small-file limit) filled here
    uint64_t end = 0;
    for (size_t t = 0; t < s.tensors.size(); t++) end = std::max(end, b.offsets[t] + b.sizes[t]);
    b.bytes.resize(b.data_offset + end);
    for (size_t t = 0; t < s.tensors.size(); t++) {
        const TensorSpec &ts = s.tensors[t];
        uint64_t n = 1;
        for (uint64_t d : ts.dims) n *= d;
        const bool norm_w = ts.name.find("ln") != std::string::npos && ts.name.find(".weight") != std::string::npos;
        // small weights keep the activations in range through the layers; norms near 1
        const float scale = ts.dims.size() >= 2 ? 1.0f / 32 : 1.0f / 8, shift = norm_w ? 1.0f : 0.0f;
        uint8_t *dst = b.bytes.data() + b.data_offset + b.offsets[t];
        for (uint64_t i = 0; i < n; i++) {
            const float v = uniform(t + 1, i) * scale + shift;
            if (ts.type == HG_TYPE_F16) {
                const hg::fp16_t h = hg::f32_to_fp16(v);
                std::memcpy(dst + 2 * i, &h, 2);
            } else {
                std::memcpy(dst + 4 * i, &v, 4);
            }
        }
    }
    return b.bytes;
}

bool save(const std::string &path, const std::vector<uint8_t> &bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char *>(bytes.data()), (std::streamsize)bytes.size());
    f.close();
    if (!f) std::fprintf(stderr, "bench_vision: cannot write %s\n", path.c_str());
    return (bool)f;
}

int usage() {
    std::fprintf(stderr, "usage: bench_vision [--gpu off|auto|cuda] [--clip-layers 23] [--proj-dim 3072] [--vqgan "
                         "real|tiny] [-r 5] [-t threads] [--save-clip PATH] [--save-vqgan PATH]\n");
    return 2;
}

} // namespace

int main(int argc, char **argv) {
    int gpu = HG_GPU_AUTO, reps = 5, threads = 0, layers = 23, proj_dim = 3072;
    std::string vqgan = "real", save_clip, save_vqgan;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        if (i + 1 >= argc) return usage();
        const std::string v = argv[++i];
        if (a == "--gpu")
            gpu = tool::gpu_choice(v);
        else if (a == "--clip-layers")
            layers = std::atoi(v.c_str());
        else if (a == "--proj-dim")
            proj_dim = std::atoi(v.c_str());
        else if (a == "--vqgan")
            vqgan = v;
        else if (a == "--save-clip")
            save_clip = v;
        else if (a == "--save-vqgan")
            save_vqgan = v;
        else if (a == "-r")
            reps = std::atoi(v.c_str());
        else if (a == "-t")
            threads = std::atoi(v.c_str());
        else
            return usage();
    }
    if (gpu < 0 || reps < 1 || layers < 1 || layers > 64 || proj_dim < 1 || proj_dim > 65536 ||
        (vqgan != "real" && vqgan != "tiny"))
        return usage();
    try {
        hg::ThreadPool pool(threads);

        const std::vector<uint8_t> cb = clip_gguf((uint32_t)layers, (uint64_t)proj_dim);
        if (!save_clip.empty() && !save(save_clip, cb)) return 1;
        auto clip =
            hg::ClipModel::load(hg::GGUFFile::parse(cb.data(), cb.size(), "vitl336-random.gguf"), &pool, true, gpu);
        const hg::ClipHParams &hp = clip->hparams();
        std::vector<float> px((size_t)(3 * hp.image_size * hp.image_size));
        for (size_t i = 0; i < px.size(); i++) px[i] = uniform(99, i) * 2.0f;
        const int64_t tap = clip->tap_layer(hg::CLIP_TAP_COMPREHENSION);
        std::vector<float> proj((size_t)(hp.n_patches() * clip->projector(0).n_out));
        std::vector<double> tc;
        for (int r = 0; r <= reps; r++) {
            const double t0 = tool::now_s();
            clip->encode_project(pool, px.data(), tap, hg::CLIP_PROJECTOR_COMPREHENSION, proj.data());
            if (r > 0) tc.push_back(tool::now_s() - t0); // run 0 warms up
        }
        std::printf("clip: ViT-L/14-336 f16, %lld layers + projector: %.2f ms (median of %d) on %s\n", (long long)tap,
                    1e3 * tool::median(tc), reps, clip->backend().c_str());

        const vqsynth::Config cfg = vqgan == "real" ? vqsynth::real() : vqsynth::tiny();
        const std::vector<uint8_t> vb = vqsynth::gguf(cfg, 2, HG_TYPE_F16, false);
        if (!save_vqgan.empty() && !save(save_vqgan, vb)) return 1;
        auto vq = hg::VqganModel::load(hg::GGUFFile::parse(vb.data(), vb.size(), "vqgan-random.gguf"), gpu);
        const std::vector<int32_t> idx = vqsynth::indices(2, vq->n_indices(), cfg.n_embed);
        std::vector<float> img((size_t)(3 * cfg.resolution * cfg.resolution));
        std::vector<double> tv;
        for (int r = 0; r <= reps; r++) {
            const double t0 = tool::now_s();
            vq->decode(pool, idx.data(), img.data());
            if (r > 0) tv.push_back(tool::now_s() - t0);
        }
        std::printf("vqgan: %lldx%lld f16 decode: %.2f ms (median of %d) on %s\n", (long long)cfg.resolution,
                    (long long)cfg.resolution, 1e3 * tool::median(tv), reps, vq->backend().c_str());
        std::printf("{\"clip_ms\": %.3f, \"vqgan_ms\": %.3f, \"clip_layers\": %lld, \"clip_backend\": \"%s\", "
                    "\"vqgan_backend\": \"%s\"}\n",
                    1e3 * tool::median(tc), 1e3 * tool::median(tv), (long long)tap, clip->backend().c_str(),
                    vq->backend().c_str());
    } catch (const std::exception &e) {
        std::fprintf(stderr, "bench_vision: %s\n", e.what());
        return 1;
    }
    return 0;
}
