// Vqgan: a JS handle on a loaded VQGAN (mapped weights, thread pool; src/handle.h).
// decode/encode run off the JS thread, one at a time per VQGAN.
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "addon.h"
#include "handle.h"

namespace hgnode {

namespace {

struct vqgan_box {
    hg_vqgan *vq = nullptr;
    hg_vqgan_info info{};
    std::mutex busy;
    ~vqgan_box() { hg_vqgan_free(vq); }
};
using vqgan_ptr = std::shared_ptr<vqgan_box>;

class Vqgan : public EngineObject<Vqgan, vqgan_box> {
  public:
    static constexpr const char *kName = "Vqgan";
    static constexpr const char *kWhat = "the VQGAN";
    static Napi::FunctionReference &ctor(constructors &c) { return c.vqgan; }

    static Napi::Function Define(Napi::Env env) {
        return DefineClass(env, "Vqgan",
                           {
                               StaticMethod("load", &Vqgan::Load),
                               InstanceMethod("info", &Vqgan::Info),
                               InstanceMethod("decode", &Vqgan::Decode),
                               InstanceMethod("encode", &Vqgan::Encode),
                               InstanceMethod("dispose", &Vqgan::Dispose),
                           });
    }

    using EngineObject::EngineObject;

  private:
    // load(path, {threads, gpu}): Promise<Vqgan>
    static Napi::Value Load(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        const std::string path = arg_string(info, 0, "path");
        hg_vqgan_params p = hg_vqgan_default_params();
        if (info.Length() > 1 && info[1].IsObject()) {
            Napi::Object o = info[1].As<Napi::Object>();
            opt_int(env, o, "threads", p.n_threads);
            opt_int(env, o, "gpu", p.gpu);
        }
        return load(env, "healthgpt.Vqgan.load", [path, p](vqgan_box &box) {
            box.vq = hg_vqgan_load(path.c_str(), &p);
            if (!box.vq || hg_vqgan_get_info(box.vq, &box.info) < 0) throw native_error();
        });
    }

    Napi::Value Info(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        const hg_vqgan_info &i = live(env)->info;
        Napi::Object o = Napi::Object::New(env);
        o.Set("resolution", i.resolution);
        o.Set("latent", i.latent);
        o.Set("nEmbed", i.n_embed);
        o.Set("outChannels", i.out_ch);
        o.Set("inChannels", i.in_channels);
        o.Set("hasEncoder", Napi::Boolean::New(env, i.has_encoder != 0));
        o.Set("backend", hg_vqgan_backend(live(env)->vq));
        return o;
    }

    // decode(indices: Int32Array): Promise<{ rgb: Uint8Array (HWC), chw: Float32Array }>
    Napi::Value Decode(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        vqgan_ptr b = live(env);
        if (info.Length() < 1 || !info[0].IsTypedArray() ||
            info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
            throw_error(env, "ERR_INVALID_ARG", "indices must be an Int32Array");
        Napi::Int32Array idx = info[0].As<Napi::Int32Array>();
        const int64_t n = (int64_t)idx.ElementLength();
        if (n != (int64_t)b->info.latent * b->info.latent)
            throw_error(env, "ERR_INVALID_ARG",
                        "indices has " + std::to_string(n) + " values, expected " +
                            std::to_string((int64_t)b->info.latent * b->info.latent));
        const size_t pixels = (size_t)b->info.resolution * b->info.resolution;
        Napi::Object out = Napi::Object::New(env);
        Napi::Uint8Array rgb = Napi::Uint8Array::New(env, pixels * b->info.out_ch);
        Napi::Float32Array chw = Napi::Float32Array::New(env, pixels * b->info.out_ch);
        out.Set("rgb", rgb);
        out.Set("chw", chw);
        const int32_t *in = idx.Data();
        uint8_t *rgb_p = rgb.Data();
        float *chw_p = chw.Data();
        return job(
            env, "healthgpt.Vqgan.decode",
            [in, n, chw_p, rgb_p](vqgan_box &b) {
                if (hg_vqgan_decode(b.vq, in, n, chw_p, rgb_p) < 0) throw native_error();
            },
            [](Napi::Env, Napi::Value kept) { return kept; }, out, {idx});
    }

    // encode(chw: Float32Array): Promise<Int32Array>
    Napi::Value Encode(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        vqgan_ptr b = live(env);
        if (info.Length() < 1 || !info[0].IsTypedArray() ||
            info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
            throw_error(env, "ERR_INVALID_ARG", "image must be a Float32Array");
        if (!b->info.has_encoder) throw_error(env, "ERR_NO_ENCODER", "this VQGAN file has no encoder");
        Napi::Float32Array img = info[0].As<Napi::Float32Array>();
        const int64_t n = (int64_t)img.ElementLength();
        const int64_t want = (int64_t)b->info.in_channels * b->info.resolution * b->info.resolution;
        if (n != want)
            throw_error(env, "ERR_INVALID_ARG",
                        "image has " + std::to_string(n) + " values, expected " + std::to_string(want));
        const int64_t n_idx = (int64_t)b->info.latent * b->info.latent;
        Napi::Int32Array out = Napi::Int32Array::New(env, (size_t)n_idx);
        const float *in = img.Data();
        int32_t *out_p = out.Data();
        return job(
            env, "healthgpt.Vqgan.encode",
            [in, n, out_p, n_idx](vqgan_box &b) {
                if (hg_vqgan_encode(b.vq, in, n, out_p, n_idx) < 0) throw native_error();
            },
            [](Napi::Env, Napi::Value kept) { return kept; }, out, {img});
    }
};

} // namespace

void init_vqgan(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = Vqgan::Define(env);
    ctors(env).vqgan = Napi::Persistent(ctor);
    exports.Set("Vqgan", ctor);
}

} // namespace hgnode
