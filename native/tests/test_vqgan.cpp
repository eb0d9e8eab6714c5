// The VQGAN (native/models/vqgan.cpp) and its ops: conv2d, group_norm, upsample and
// spatial_attention against their scalar references over odd shapes; the tiny model and the
// real 256x256 geometry against torch's golden vectors (tools/reference/make_vqgan_reference.py)
// on the same synthetic weights (tests/vqgan_synth.h); bad files and inputs refused by name.
// The real_* tests run only with HG_VQGAN_REAL=1 (the test_vqgan_real ctest entry).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "core/threadpool.h"
#include "gguf/gguf.h"
#include "healthgpt.h"
#include "models/vqgan.h"
#include "ops/conv2d.h"
#include "ops/group_norm.h"
#include "ops/spatial_attention.h"
#include "ops/upsample.h"
#include "tests/check.h"
#include "tests/vqgan_synth.h"

namespace {

const std::string kDir = "test/fixtures/vqgan/";

std::vector<float> randu(size_t n, uint32_t seed, float lo, float hi) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (auto &x : v) x = d(rng);
    return v;
}

double max_abs_diff(const std::vector<float> &a, const std::vector<float> &b) {
    double m = 0;
    for (size_t i = 0; i < a.size(); i++) m = std::max(m, (double)std::fabs(a[i] - b[i]));
    return m;
}

// PSNR over [-1, 1] images (peak-to-peak 2), both clamped as the output is.
double psnr(const std::vector<float> &got, const std::vector<float> &ref) {
    double se = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        const double a = std::min(1.0f, std::max(-1.0f, got[i])), b = std::min(1.0f, std::max(-1.0f, ref[i]));
        se += (a - b) * (a - b);
    }
    const double mse = se / (double)ref.size();
    return mse == 0 ? 999.0 : 10.0 * std::log10(4.0 / mse);
}

template <class T> bool read_raw(const std::string &path, std::vector<T> &out, size_t n) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    out.resize(n);
    f.read(reinterpret_cast<char *>(out.data()), (std::streamsize)(n * sizeof(T)));
    return (size_t)f.gcount() == n * sizeof(T) && f.peek() == EOF;
}

std::string what(const std::function<void()> &fn) {
    try {
        fn();
    } catch (const hg::Error &e) {
        return e.what();
    }
    return "";
}

double secs_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---- conv2d ----

// Weights and activations in f32 or rounded to f16 (what the f16 matmul multiplies), so the
// reference sees the same inputs and only summation order differs.
double g_conv_worst[4] = {0, 0, 0, 0}; // f32, f16 through hg::matmul; f32, f16 through the SIMD kernel

void conv_case(hg::ThreadPool &pool, int type, int64_t h, int64_t w, int64_t ci, int64_t co, int64_t k,
               const hg::Conv2dGeom &g, int64_t col_bytes, uint32_t seed, bool simd) {
    std::vector<float> wt = randu((size_t)(co * ci * k * k), seed, -0.5f, 0.5f);
    std::vector<float> bias = randu((size_t)co, seed + 1, -0.5f, 0.5f);
    std::vector<float> x = randu((size_t)(h * w * ci), seed + 2, -1.0f, 1.0f);
    if (type == HG_TYPE_F16) {
        for (auto &v : wt) v = hg::fp16_to_f32(hg::f32_to_fp16(v));
        for (auto &v : x) v = hg::fp16_to_f32(hg::f32_to_fp16(v));
    }
    std::vector<uint8_t> stored(wt.size() * 4);
    if (type == HG_TYPE_F32) {
        std::memcpy(stored.data(), wt.data(), stored.size());
    } else {
        for (size_t i = 0; i < wt.size(); i++) {
            const hg::fp16_t v = hg::f32_to_fp16(wt[i]);
            std::memcpy(&stored[2 * i], &v, 2);
        }
    }
    std::vector<uint8_t> reordered(stored.size());
    hg::conv2d_weight_from_torch(stored.data(), type == HG_TYPE_F32 ? 4 : 2, co, ci, k, k, reordered.data());
    hg::Conv2dWeight cw;
    cw.type = type, cw.data = reordered.data(), cw.c_in = ci, cw.c_out = co, cw.kh = k, cw.kw = k;
    cw.bias = bias.data();
    const int64_t oh = hg::conv2d_out_size(h, k, g.stride, g.pad_top, g.pad_bottom);
    const int64_t ow = hg::conv2d_out_size(w, k, g.stride, g.pad_left, g.pad_right);
    std::vector<float> got((size_t)(oh * ow * co)), ref(got.size());
    hg::conv2d(pool, cw, g, x.data(), h, w, got.data(), col_bytes, simd);
    hg::conv2d_ref(wt.data(), bias.data(), ci, co, k, k, g, x.data(), h, w, ref.data());
    // Sums of up to 9 * 67 products of |.| <= 0.5 in float against double: measured 1.9e-6
    // through hg::matmul, 2.2e-6 through the AVX2 and 2.9e-6 through the AVX-512 kernel, 9.5e-6
    // with HEALTHGPT_ISA=scalar (one sequential float sum); f16 inputs alike (exact in
    // float). 2e-5 leaves twice the worst.
    const double d = max_abs_diff(got, ref);
    double &worst = g_conv_worst[(type == HG_TYPE_F32 ? 0 : 1) + (simd ? 2 : 0)];
    worst = std::max(worst, d);
    CHECK_MSG(d < 2e-5, "conv " + std::to_string(h) + "x" + std::to_string(w) + " k" + std::to_string(k) + " s" +
                            std::to_string(g.stride) + " type " + std::to_string(type) + ": max diff " +
                            std::to_string(d));
}

TEST(op_conv2d_matches_reference) {
    hg::ThreadPool pool(3);
    hg::Conv2dGeom same3;
    same3.pad_top = same3.pad_left = same3.pad_bottom = same3.pad_right = 1;
    hg::Conv2dGeom down; // taming's Downsample
    down.stride = 2, down.pad_bottom = down.pad_right = 1;
    hg::Conv2dGeom none;
    for (bool simd : {false, true})
        for (int type : {HG_TYPE_F32, HG_TYPE_F16}) {
            conv_case(pool, type, 7, 9, 5, 11, 3, same3, 0, 10, simd);
            conv_case(pool, type, 7, 9, 67, 13, 3, same3, 0, 11, simd);
            conv_case(pool, type, 13, 6, 8, 9, 3, same3, 1, 12, simd);      // one output row per chunk
            conv_case(pool, type, 11, 10, 16, 7, 3, same3, 4096, 13, simd); // a few rows per chunk
            conv_case(pool, type, 8, 8, 6, 5, 3, down, 0, 14, simd);        // 8x8 -> 4x4
            conv_case(pool, type, 9, 7, 6, 5, 3, down, 300, 15, simd);      // odd sizes, chunked
            conv_case(pool, type, 5, 6, 33, 17, 1, none, 0, 16, simd);      // 1x1: a plain product
            conv_case(pool, type, 4, 4, 3, 2, 3, none, 0, 17, simd);        // valid, no padding
            conv_case(pool, type, 4, 3, 3, 6, 1, none, 0, 18, simd);        // k = 3: all tail
        }
    std::printf("  conv2d max |diff| vs reference: matmul f32 %.2e, f16 %.2e; simd f32 %.2e, f16 %.2e\n",
                g_conv_worst[0], g_conv_worst[1], g_conv_worst[2], g_conv_worst[3]);
}

TEST(op_conv2d_refuses_bad_shapes) {
    hg::ThreadPool pool(1);
    CHECK(what([] { hg::conv2d_out_size(2, 3, 1, 0, 0); }).find("does not fit") != std::string::npos);
    hg::Conv2dWeight cw;
    cw.type = HG_TYPE_Q8_0, cw.c_in = 1, cw.c_out = 1, cw.kh = 1, cw.kw = 1;
    float x = 0, y = 0;
    CHECK(what([&] { hg::conv2d(pool, cw, hg::Conv2dGeom(), &x, 1, 1, &y); }).find("not f32 or f16") !=
          std::string::npos);
}

// ---- group_norm, upsample, spatial_attention ----

TEST(op_group_norm_matches_reference) {
    hg::ThreadPool pool(3);
    double worst = 0;
    for (int64_t c : {32, 64, 96}) {
        for (int64_t n_pos : {1, 7, 300}) {
            // an offset of 3 against a spread of 1: the centred second pass matters
            std::vector<float> x = randu((size_t)(n_pos * c), (uint32_t)(c + n_pos), 2.0f, 4.0f);
            std::vector<float> gamma = randu((size_t)c, 5, 0.5f, 1.5f), beta = randu((size_t)c, 6, -0.5f, 0.5f);
            for (bool swish : {false, true}) {
                std::vector<float> got(x.size()), ref(x.size());
                hg::group_norm(pool, x.data(), got.data(), n_pos, c, 32, gamma.data(), beta.data(), 1e-6f, swish);
                hg::group_norm_ref(x.data(), ref.data(), n_pos, c, 32, gamma.data(), beta.data(), 1e-6f, swish);
                // float application of a double mean and scale to outputs of |y| < ~4 (2 ulp):
                // measured 9.5e-7; 1e-5 for other compilers' exp and SIMD orders.
                worst = std::max(worst, max_abs_diff(got, ref));
                CHECK_NEAR(max_abs_diff(got, ref), 0.0, 1e-5);
                // in place, as the model runs it
                std::vector<float> inplace = x;
                hg::group_norm(pool, inplace.data(), inplace.data(), n_pos, c, 32, gamma.data(), beta.data(), 1e-6f,
                               swish);
                CHECK(inplace == got);
            }
        }
    }
    std::printf("  group_norm max |diff| vs reference: %.2e\n", worst);
    CHECK(what([&] {
              float v = 0;
              hg::group_norm(pool, &v, &v, 1, 48, 32, &v, &v, 1e-6f, false);
          }).find("48 channels") != std::string::npos);
}

TEST(op_upsample_copies_nearest) {
    hg::ThreadPool pool(2);
    const int64_t h = 3, w = 5, c = 7;
    std::vector<float> x = randu((size_t)(h * w * c), 7, -1, 1), y((size_t)(4 * h * w * c), NAN);
    hg::upsample_nearest2x(pool, x.data(), h, w, c, y.data());
    bool ok = true;
    for (int64_t oy = 0; oy < 2 * h; oy++)
        for (int64_t ox = 0; ox < 2 * w; ox++)
            for (int64_t ch = 0; ch < c; ch++)
                ok = ok && y[(size_t)((oy * 2 * w + ox) * c + ch)] == x[(size_t)(((oy / 2) * w + ox / 2) * c + ch)];
    CHECK(ok);
}

TEST(op_spatial_attention_matches_reference) {
    hg::ThreadPool pool(3);
    for (auto [n, c] : {std::pair<int64_t, int64_t>{1, 4}, {70, 33}, {1100, 8}}) { // 1100: two query blocks
        std::vector<float> q = randu((size_t)(n * c), 1, -2, 2), k = randu((size_t)(n * c), 2, -2, 2),
                           v = randu((size_t)(n * c), 3, -1, 1);
        std::vector<float> got((size_t)(n * c)), ref((size_t)(n * c));
        hg::spatial_attention(pool, q.data(), k.data(), v.data(), n, c, got.data());
        hg::spatial_attention_ref(q.data(), k.data(), v.data(), n, c, ref.data());
        // weighted means of |v| < 1 with float scores and exp: measured 1.8e-7; bound 5e-6
        std::printf("  spatial_attention n=%lld c=%lld max |diff| vs reference: %.2e\n", (long long)n, (long long)c,
                    max_abs_diff(got, ref));
        CHECK_NEAR(max_abs_diff(got, ref), 0.0, 5e-6);
    }
}

// ---- the model ----

std::unique_ptr<hg::VqganModel> load_bytes(const std::vector<uint8_t> &bytes, const std::string &name) {
    return hg::VqganModel::load(hg::GGUFFile::parse(bytes.data(), bytes.size(), name));
}

TEST(tiny_decode_matches_torch) {
    const vqsynth::Config cfg = vqsynth::tiny();
    const int64_t n_idx = cfg.latent() * cfg.latent(), n_img = 3 * cfg.resolution * cfg.resolution;
    std::vector<int32_t> idx;
    std::vector<float> ref;
    CHECK(read_raw(kDir + "tiny_indices.i32", idx, (size_t)n_idx));
    CHECK(read_raw(kDir + "tiny_image.f32", ref, (size_t)n_img));
    if (idx.size() != (size_t)n_idx || ref.size() != (size_t)n_img) return;
    // the generator agrees with the script's
    CHECK(idx == vqsynth::indices(1, n_idx, cfg.n_embed));
    hg::ThreadPool pool(2);
    for (int type : {HG_TYPE_F32, HG_TYPE_F16}) {
        const std::vector<uint8_t> bytes = vqsynth::gguf(cfg, 1, type, true);
        auto m = load_bytes(bytes, "tiny");
        CHECK(m->n_indices() == 64 && m->has_encoder());
        std::vector<float> img((size_t)n_img);
        m->decode(pool, idx.data(), img.data());
        const double p = psnr(img, ref);
        std::printf("  tiny decode %s: PSNR %.1f dB, max |diff| %.2e\n", type == HG_TYPE_F32 ? "f32" : "f16", p,
                    max_abs_diff(img, ref));
        // f32: measured 140 dB (float vs torch float64). f16 weights: 75.5 dB with the SIMD
        // kernels (f32 activations), 72.8 dB through hg::matmul (activations rounded to f16).
        CHECK(p >= (type == HG_TYPE_F32 ? 100.0 : 50.0));
    }
}

TEST(tiny_committed_gguf_decodes_like_synth) {
    // tiny.gguf was written by gguf-py (f16 matrices): its layout must read as the engine's.
    auto m = hg::VqganModel::load(hg::GGUFFile::open(kDir + "tiny.gguf"));
    const vqsynth::Config cfg = vqsynth::tiny();
    const std::vector<uint8_t> bytes = vqsynth::gguf(cfg, 1, HG_TYPE_F16, true);
    auto s = load_bytes(bytes, "tiny-f16");
    hg::ThreadPool pool(2);
    const std::vector<int32_t> idx = vqsynth::indices(1, 64, cfg.n_embed);
    std::vector<float> a(3 * 16 * 16), b(a.size());
    m->decode(pool, idx.data(), a.data());
    s->decode(pool, idx.data(), b.data());
    CHECK(a == b);
    CHECK(m->hparams().ch == 32 && m->hparams().ch_mult.size() == 2 && m->hparams().attn_resolutions[0] == 8);
}

TEST(tiny_encode_argmax_matches_torch) {
    const vqsynth::Config cfg = vqsynth::tiny();
    const int64_t n_idx = cfg.latent() * cfg.latent(), n_img = 3 * cfg.resolution * cfg.resolution;
    std::vector<float> input, margin;
    std::vector<int32_t> ref;
    CHECK(read_raw(kDir + "tiny_enc_input.f32", input, (size_t)n_img));
    CHECK(read_raw(kDir + "tiny_enc_indices.i32", ref, (size_t)n_idx));
    CHECK(read_raw(kDir + "tiny_enc_margin.f32", margin, (size_t)n_idx));
    if (ref.size() != (size_t)n_idx || input.size() != (size_t)n_img) return;
    CHECK(input == vqsynth::input_image(1, n_img));
    hg::ThreadPool pool(2);
    const std::vector<uint8_t> bytes = vqsynth::gguf(cfg, 1, HG_TYPE_F32, true);
    auto m = load_bytes(bytes, "tiny");
    std::vector<int32_t> got((size_t)n_idx);
    std::vector<float> logits((size_t)(n_idx * cfg.n_embed));
    m->encode(pool, input.data(), got.data(), logits.data());
    // the smallest top-2 margin is 4e-3 (the script prints it), far above float's error here
    CHECK(got == ref);
    int agree = 0;
    for (int64_t i = 0; i < n_idx; i++) agree += got[i] == ref[i];
    std::printf("  tiny encode: %d of %lld indices agree (min reference margin %.1e)\n", agree, (long long)n_idx,
                (double)*std::min_element(margin.begin(), margin.end()));
    // the logits behind the argmax: the winner's is the row maximum
    CHECK(logits[(size_t)got[0]] == *std::max_element(logits.begin(), logits.begin() + cfg.n_embed));
}

// The C API: params with the backend, as the model and CLIP take them; a decode through it
// equals the model's own.
TEST(c_api_params_and_backend) {
    hg_vqgan_params p = hg_vqgan_default_params();
    CHECK(p.n_threads == 0 && p.gpu == HG_GPU_OFF);
    p.n_threads = 2;
    hg_vqgan *vq = hg_vqgan_load((kDir + "tiny.gguf").c_str(), &p);
    CHECK(vq != nullptr);
    if (!vq) return;
    CHECK(std::string(hg_vqgan_backend(vq)) == "cpu");
    hg_vqgan_info info;
    CHECK(hg_vqgan_get_info(vq, &info) == 0 && info.latent == 8 && info.resolution == 16);
    const std::vector<int32_t> idx = vqsynth::indices(1, 64, 64);
    std::vector<float> a(3 * 16 * 16), b(a.size());
    CHECK(hg_vqgan_decode(vq, idx.data(), 64, a.data(), nullptr) == 0);
    hg_vqgan_free(vq);
    auto m = hg::VqganModel::load(hg::GGUFFile::open(kDir + "tiny.gguf"));
    hg::ThreadPool pool(2);
    m->decode(pool, idx.data(), b.data());
    CHECK(a == b);

    p.gpu = HG_GPU_AUTO; // CUDA when there is one, else the CPU saying why
    vq = hg_vqgan_load((kDir + "tiny.gguf").c_str(), &p);
    CHECK(vq != nullptr);
    const std::string backend = vq ? hg_vqgan_backend(vq) : "";
    hg_vqgan_free(vq);
    CHECK(backend.rfind("cuda: ", 0) == 0 || backend == "cpu (this engine was built without the CUDA backend)" ||
          backend.rfind("cpu (no CUDA device", 0) == 0);
    if (backend.rfind("cpu (", 0) == 0) { // then 'cuda' is a load error giving the same reason
        p.gpu = HG_GPU_CUDA;
        CHECK(hg_vqgan_load((kDir + "tiny.gguf").c_str(), &p) == nullptr);
        CHECK(hg_last_status() == HG_ERR_UNSUPPORTED);
        CHECK(std::string(hg_last_error()).find("gpu 'cuda': " + backend.substr(5, backend.size() - 6)) !=
              std::string::npos);
    }
    p.gpu = 7;
    CHECK(hg_vqgan_load((kDir + "tiny.gguf").c_str(), &p) == nullptr && hg_last_status() == HG_ERR_INVALID_ARG);
    CHECK(hg_vqgan_backend(nullptr) == nullptr);
    vq = hg_vqgan_load((kDir + "tiny.gguf").c_str(), nullptr); // NULL: the defaults
    CHECK(vq != nullptr && std::string(hg_vqgan_backend(vq)) == "cpu");
    hg_vqgan_free(vq);
}

TEST(tiny_decode_only_file) {
    const vqsynth::Config cfg = vqsynth::tiny();
    const std::vector<uint8_t> bytes = vqsynth::gguf(cfg, 1, HG_TYPE_F32, false);
    auto m = load_bytes(bytes, "decoder-only");
    CHECK(!m->has_encoder());
    hg::ThreadPool pool(1);
    std::vector<float> img(3 * 16 * 16);
    std::vector<int32_t> idx(64);
    CHECK(what([&] { m->encode(pool, img.data(), idx.data(), nullptr); }).find("no encoder") != std::string::npos);
}

TEST(tiny_bad_input_is_named) {
    const vqsynth::Config cfg = vqsynth::tiny();
    const std::vector<uint8_t> bytes = vqsynth::gguf(cfg, 1, HG_TYPE_F32, true);
    auto m = load_bytes(bytes, "tiny");
    hg::ThreadPool pool(1);
    std::vector<int32_t> idx(64, 3);
    idx[17] = 64;
    std::vector<float> img(3 * 16 * 16);
    const std::string e = what([&] { m->decode(pool, idx.data(), img.data()); });
    CHECK_MSG(e.find("index 64 at position 17") != std::string::npos, e);
    img[5] = NAN;
    CHECK(what([&] { m->encode(pool, img.data(), idx.data(), nullptr); }).find("pixel 5") != std::string::npos);
}

// A GGUF of the tiny config with one thing changed.
std::string load_error(const std::function<void(gguftest::FileSpec &)> &edit) {
    const vqsynth::Config cfg = vqsynth::tiny();
    gguftest::FileSpec fs;
    fs.kvs.push_back({"general.architecture", gguftest::str_value("vqgan")});
    const std::pair<const char *, int64_t> ints[] = {{"vqgan.ch", cfg.ch},
                                                     {"vqgan.num_res_blocks", cfg.num_res_blocks},
                                                     {"vqgan.z_channels", cfg.z_channels},
                                                     {"vqgan.resolution", cfg.resolution},
                                                     {"vqgan.in_channels", 3},
                                                     {"vqgan.out_ch", 3},
                                                     {"vqgan.embed_dim", cfg.embed_dim},
                                                     {"vqgan.n_embed", cfg.n_embed}};
    for (auto &kv : ints) fs.kvs.push_back({kv.first, gguftest::scalar<uint32_t>(HG_GGUF_UINT32, (uint32_t)kv.second)});
    fs.kvs.push_back({"vqgan.ch_mult", gguftest::array_of<int32_t>(HG_GGUF_INT32, {1, 1})});
    fs.kvs.push_back({"vqgan.attn_resolutions", gguftest::array_of<int32_t>(HG_GGUF_INT32, {8})});
    for (const vqsynth::Tensor &t : vqsynth::tensors(cfg, false)) {
        gguftest::TensorSpec s;
        s.name = t.name;
        for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) s.dims.push_back((uint64_t)*it);
        s.type = HG_TYPE_F32;
        fs.tensors.push_back(s);
    }
    edit(fs);
    const gguftest::Built b = gguftest::build(fs);
    return what([&] { load_bytes(b.bytes, "bad.gguf"); });
}

TEST(tiny_bad_files_are_named) {
    auto find = [](const std::string &e, const std::string &s) {
        CHECK_MSG(e.find(s) != std::string::npos, "'" + e + "' lacks '" + s + "'");
    };
    CHECK(load_error([](gguftest::FileSpec &) {}).empty()); // the unedited file loads
    find(load_error([](gguftest::FileSpec &fs) { fs.kvs[0].second = gguftest::str_value("phi3"); }),
         "architecture is 'phi3'");
    find(load_error([](gguftest::FileSpec &fs) { fs.kvs.erase(fs.kvs.begin() + 1); }), "vqgan.ch is missing");
    find(load_error([](gguftest::FileSpec &fs) {
             for (auto &t : fs.tensors)
                 if (t.name == "decoder.up.1.attn.0.q.weight") t.name = "decoder.up.1.attn.0.query.weight";
         }),
         "bad.gguf: tensor decoder.up.1.attn.0.q.weight is missing");
    find(load_error([](gguftest::FileSpec &fs) {
             for (auto &t : fs.tensors)
                 if (t.name == "decoder.conv_in.weight") t.dims = {3, 3, 16, 31};
         }),
         "tensor decoder.conv_in.weight has shape [3, 3, 16, 31], expected [3, 3, 16, 32]");
    find(load_error([](gguftest::FileSpec &fs) {
             for (auto &t : fs.tensors)
                 if (t.name == "quantize.embed.weight") t.type = HG_TYPE_Q8_0, t.dims = {32, 64};
         }),
         "quantize.embed.weight has shape [32, 64]");
    find(load_error([](gguftest::FileSpec &fs) {
             for (auto &t : fs.tensors)
                 if (t.name == "post_quant_conv.weight") t.type = HG_TYPE_BF16;
         }),
         "post_quant_conv.weight has type bf16");
    find(load_error(
             [](gguftest::FileSpec &fs) { fs.kvs[9].second = gguftest::array_of<int32_t>(HG_GGUF_INT32, {1, 0}); }),
         "vqgan.ch_mult[1] = 0 is out of range");
}

// ---- the real geometry ----

void need_real() {
    const char *e = std::getenv("HG_VQGAN_REAL");
    if (!e || std::strcmp(e, "1") != 0)
        SKIP("the 256x256 geometry runs in the test_vqgan_real entry (HG_VQGAN_REAL=1)");
}

TEST(real_decode_matches_torch) {
    need_real();
    std::vector<int32_t> idx;
    std::vector<uint16_t> ref16;
    CHECK(read_raw(kDir + "real_indices.i32", idx, 1024));
    CHECK(read_raw(kDir + "real_image.f16", ref16, 3 * 256 * 256));
    if (idx.size() != 1024 || ref16.size() != 3 * 256 * 256) return;
    std::vector<float> ref(ref16.size());
    for (size_t i = 0; i < ref.size(); i++) ref[i] = hg::fp16_to_f32(ref16[i]);
    const vqsynth::Config cfg = vqsynth::real();
    CHECK(idx == vqsynth::indices(2, 1024, cfg.n_embed));
    hg::ThreadPool pool(0);
    for (int type : {HG_TYPE_F32, HG_TYPE_F16}) {
        auto t0 = std::chrono::steady_clock::now();
        std::unique_ptr<hg::VqganModel> m;
        {
            const std::vector<uint8_t> bytes = vqsynth::gguf(cfg, 2, type, false);
            m = load_bytes(bytes, "real");
            // the model keeps pointers into the file for 1x1 weights and the codebook:
            // decode while the bytes live
            const double t_load = secs_since(t0);
            std::vector<float> img(3 * 256 * 256);
            t0 = std::chrono::steady_clock::now();
            m->decode(pool, idx.data(), img.data());
            const double t_dec = secs_since(t0);
            const double p = psnr(img, ref);
            std::printf(
                "  real decode %s: PSNR %.1f dB, max |diff| %.2e, make+load %.1f s, decode %.2f s (%d threads)\n",
                type == HG_TYPE_F32 ? "f32" : "f16", p, max_abs_diff(img, ref), t_load, t_dec, pool.size());
            // f32 must reach 60 dB (the bar; measured 89.8, where the f16-stored
            // reference caps it). f16 rounds weights and activations: measured 68.0 dB; the
            // floor of 55 still catches a broken layer.
            CHECK(p >= (type == HG_TYPE_F32 ? 60.0 : 55.0));
            std::vector<uint8_t> rgb(256 * 256 * 3);
            hg::vqgan_to_rgb8(img.data(), 3, 256, 256, rgb.data());
            std::vector<uint8_t> rgb_ref(rgb.size());
            hg::vqgan_to_rgb8(ref.data(), 3, 256, 256, rgb_ref.data());
            int64_t off = 0, worst = 0;
            for (size_t i = 0; i < rgb.size(); i++) {
                const int d = std::abs((int)rgb[i] - (int)rgb_ref[i]);
                off += d != 0;
                worst = std::max<int64_t>(worst, d);
            }
            std::printf("  real decode %s: uint8 pixels differing %lld of %zu, by at most %lld\n",
                        type == HG_TYPE_F32 ? "f32" : "f16", (long long)off, rgb.size(), (long long)worst);
        }
    }
}

TEST(real_encode_argmax_matches_torch) {
    need_real();
    std::vector<int32_t> ref;
    std::vector<float> margin;
    CHECK(read_raw(kDir + "real_enc_indices.i32", ref, 1024));
    CHECK(read_raw(kDir + "real_enc_margin.f32", margin, 1024));
    if (ref.size() != 1024 || margin.size() != 1024) return;
    const vqsynth::Config cfg = vqsynth::real();
    hg::ThreadPool pool(0);
    const std::vector<uint8_t> bytes = vqsynth::gguf(cfg, 2, HG_TYPE_F32, true);
    auto m = load_bytes(bytes, "real");
    const std::vector<float> input = vqsynth::input_image(2, 3 * 256 * 256);
    std::vector<int32_t> got(1024);
    auto t0 = std::chrono::steady_clock::now();
    m->encode(pool, input.data(), got.data(), nullptr);
    const double t_enc = secs_since(t0);
    // Where torch's top two logits are within 1e-3 the order is float noise (logits are
    // O(1); float vs float64 through ~30 layers differs by ~1e-5): only clear winners count.
    int clear = 0, clear_agree = 0, all_agree = 0;
    for (int i = 0; i < 1024; i++) {
        all_agree += got[i] == ref[i];
        if (margin[i] > 1e-3f) clear++, clear_agree += got[i] == ref[i];
    }
    std::printf("  real encode f32: %d of %d clear-margin indices agree, %d of 1024 overall, %.2f s\n", clear_agree,
                clear, all_agree, t_enc);
    CHECK(clear_agree == clear);
    CHECK(clear > 900);
}

} // namespace

HG_TEST_MAIN()
