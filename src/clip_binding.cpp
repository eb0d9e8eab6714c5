// Clip: JS handles on loaded vision towers (weights mapped, thread pool; src/handle.h).
// Encoding, projecting and loading a plugin's projector run off the JS thread, one at a time
// per tower.
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "addon.h"
#include "handle.h"

namespace hgnode {

namespace {

struct clip_box {
    hg_clip *clip = nullptr;
    std::mutex busy;
    ~clip_box() { hg_clip_free(clip); }
};

Napi::Float32Array float_arg(const Napi::CallbackInfo &info, size_t i, const char *name) {
    if (info.Length() <= i || !info[i].IsTypedArray() ||
        info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        throw_error(info.Env(), "ERR_INVALID_ARG", std::string(name) + " must be a Float32Array");
    return info[i].As<Napi::Float32Array>();
}

int projector_arg(const Napi::CallbackInfo &info, size_t i) {
    const int which = arg_int32(info, i, "projector");
    if (which != HG_CLIP_PROJECTOR_COMPREHENSION && which != HG_CLIP_PROJECTOR_GENERATION)
        throw_error(info.Env(), "ERR_INVALID_ARG", "projector must be 0 (comprehension) or 1 (generation)");
    return which;
}

class Clip : public EngineObject<Clip, clip_box> {
  public:
    static constexpr const char *kName = "Clip";
    static constexpr const char *kWhat = "the vision tower";
    static Napi::FunctionReference &ctor(constructors &c) { return c.clip; }

    static Napi::Function Define(Napi::Env env) {
        return DefineClass(env, "Clip",
                           {
                               StaticMethod("load", &Clip::Load),
                               InstanceMethod("info", &Clip::Info),
                               InstanceMethod("encode", &Clip::Encode),
                               InstanceMethod("project", &Clip::Project),
                               InstanceMethod("encodeProject", &Clip::EncodeProject),
                               InstanceMethod("loadProjector", &Clip::LoadProjector),
                               InstanceMethod("dispose", &Clip::Dispose),
                           });
    }

    // Sizes fixed at load, read once here (no job runs yet); the projectors' widths change
    // only with loadProjector, whose settling updates them on the JS thread.
    explicit Clip(const Napi::CallbackInfo &info) : EngineObject(info) {
        const hg_clip *c = live(info.Env())->clip;
        image_size_ = hg_clip_image_size(c);
        n_embd_ = hg_clip_n_embd(c);
        n_patches_ = hg_clip_n_patches(c);
        for (int k = 0; k < 2; k++) proj_dim_[k] = hg_clip_projector_dim(c, k);
    }

  private:
    // 3 x image_size x image_size floats
    Napi::Float32Array pixels_arg(const Napi::CallbackInfo &info, size_t i) const {
        Napi::Float32Array pixels = float_arg(info, i, "pixels");
        const size_t want = (size_t)3 * image_size_ * image_size_;
        if (pixels.ElementLength() != want)
            throw_error(info.Env(), "ERR_INVALID_ARG",
                        "pixels has " + std::to_string(pixels.ElementLength()) + " values, expected 3 x " +
                            std::to_string(image_size_) + " x " + std::to_string(image_size_) + " = " +
                            std::to_string(want));
        return pixels;
    }

    // The projector's output width, which sizes the result; an error when there is none.
    int present_width(Napi::Env env, int which) const {
        if (proj_dim_[which] <= 0)
            throw_error(env, "ERR_INVALID_ARG",
                        std::string("the vision tower has no ") + (which == 0 ? "comprehension" : "generation") +
                            " projector");
        return proj_dim_[which];
    }

    // In the job: a loadProjector queued before it may have changed the width the result was
    // sized for; then it fails rather than write past the result.
    static void same_width(clip_box &b, int which, int dim) {
        const int now = hg_clip_projector_dim(b.clip, which);
        if (now != dim)
            throw native_failure("the projector's width changed from " + std::to_string(dim) + " to " +
                                     std::to_string(now) + " (loadProjector) while the call waited: call it again",
                                 HG_ERR_INVALID_ARG);
    }

    // load(path, {threads, gpu}): Promise<Clip>
    static Napi::Value Load(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        const std::string path = arg_string(info, 0, "path");
        hg_clip_params p = hg_clip_default_params();
        if (info.Length() > 1 && info[1].IsObject()) {
            Napi::Object o = info[1].As<Napi::Object>();
            opt_int(env, o, "threads", p.n_threads);
            opt_int(env, o, "gpu", p.gpu);
        }
        return load(env, "healthgpt.Clip.load", [path, p](clip_box &box) {
            box.clip = hg_clip_load(path.c_str(), &p);
            if (!box.clip) throw native_error();
        });
    }

    // info(): sizes fixed at load, read without the lock
    Napi::Value Info(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        const hg_clip *c = live(env)->clip;
        Napi::Object o = Napi::Object::New(env);
        o.Set("imageSize", image_size_);
        o.Set("patchSize", hg_clip_patch_size(c));
        o.Set("nEmbd", n_embd_);
        o.Set("nPatches", n_patches_);
        o.Set("nLayer", hg_clip_n_layer(c));
        o.Set("comprehensionLayer", hg_clip_tap_layer(c, HG_CLIP_TAP_COMPREHENSION));
        o.Set("generationLayer", hg_clip_tap_layer(c, HG_CLIP_TAP_GENERATION));
        o.Set("comprehensionProjectorDim", proj_dim_[0]);
        o.Set("generationProjectorDim", proj_dim_[1]);
        o.Set("backend", hg_clip_backend(c));
        float mean[3], std[3];
        if (hg_clip_image_norm(c, mean, std) == 0) {
            Napi::Array m = Napi::Array::New(env, 3), s = Napi::Array::New(env, 3);
            for (uint32_t k = 0; k < 3; k++) m.Set(k, mean[k]), s.Set(k, std[k]);
            o.Set("imageMean", m);
            o.Set("imageStd", s);
        }
        return o;
    }

    // encode(pixels: Float32Array (3 x S x S), tap: 0 | 1, hiddenState?: number):
    // Promise<Float32Array (n_patches x n_embd)>. hiddenState, when given, overrides the tap.
    Napi::Value Encode(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        live(env);
        Napi::Float32Array pixels = pixels_arg(info, 0);
        const int tap = arg_int32(info, 1, "tap");
        const bool by_index = info.Length() > 2 && !info[2].IsUndefined();
        const int hidden_state = by_index ? arg_int32(info, 2, "hiddenState") : -1;
        Napi::Float32Array out = Napi::Float32Array::New(env, (size_t)n_patches_ * n_embd_);
        const float *in = pixels.Data();
        float *o = out.Data();
        return job(
            env, "healthgpt.Clip.encode",
            [in, o, tap, by_index, hidden_state](clip_box &b) {
                const int rc = by_index ? hg_clip_encode_hidden_state(b.clip, in, hidden_state, o)
                                        : hg_clip_encode(b.clip, in, tap, o);
                if (rc < 0) throw native_error();
            },
            [](Napi::Env, Napi::Value kept) { return kept; }, out, {pixels});
    }

    // project(projector: 0 | 1, features: Float32Array (n x n_embd)): Promise<Float32Array>,
    // the mlp2x_gelu (Linear, exact GELU, Linear) in the engine.
    Napi::Value Project(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        live(env);
        const int which = projector_arg(info, 0);
        Napi::Float32Array features = float_arg(info, 1, "features");
        const int dim = present_width(env, which);
        const size_t len = features.ElementLength();
        if (len == 0 || len % (size_t)n_embd_ != 0 || len / (size_t)n_embd_ > (size_t)INT32_MAX)
            throw_error(env, "ERR_INVALID_ARG",
                        "features has " + std::to_string(len) + " values, not a whole number of rows of " +
                            std::to_string(n_embd_));
        const int n = (int)(len / (size_t)n_embd_);
        Napi::Float32Array out = Napi::Float32Array::New(env, (size_t)n * dim);
        const float *in = features.Data();
        float *o = out.Data();
        return job(
            env, "healthgpt.Clip.project",
            [which, in, n, o, dim](clip_box &b) {
                same_width(b, which, dim);
                if (hg_clip_project(b.clip, which, in, n, o) < 0) throw native_error();
            },
            [](Napi::Env, Napi::Value kept) { return kept; }, out, {features});
    }

    // encodeProject(pixels: Float32Array (3 x S x S), tap: 0 | 1, projector: 0 | 1):
    // Promise<Float32Array (n_patches x the projector's width)>: encode then project in one
    // job; on a device the features stay there.
    Napi::Value EncodeProject(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        live(env);
        Napi::Float32Array pixels = pixels_arg(info, 0);
        const int tap = arg_int32(info, 1, "tap");
        const int which = projector_arg(info, 2);
        const int dim = present_width(env, which);
        Napi::Float32Array out = Napi::Float32Array::New(env, (size_t)n_patches_ * dim);
        const float *in = pixels.Data();
        float *o = out.Data();
        return job(
            env, "healthgpt.Clip.encodeProject",
            [in, tap, which, o, dim](clip_box &b) {
                same_width(b, which, dim);
                if (hg_clip_encode_project(b.clip, in, tap, which, o) < 0) throw native_error();
            },
            [](Napi::Env, Napi::Value kept) { return kept; }, out, {pixels});
    }

    // loadProjector(projector: 0 | 1, path): Promise<{loaded, dim}>. Replaces the projector
    // with the one an H-LoRA plugin file carries; loaded is false (the tower unchanged) when
    // the file has none. dim: the projector's output width after.
    Napi::Value LoadProjector(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        live(env);
        const int which = projector_arg(info, 0);
        const std::string path = arg_string(info, 1, "path");
        auto answer = std::make_shared<std::pair<int, int>>(0, 0); // loaded, dim
        return job(
            env, "healthgpt.Clip.loadProjector",
            [which, path, answer](clip_box &b) {
                const int rc = hg_clip_load_projector(b.clip, which, path.c_str());
                if (rc < 0) throw native_error();
                answer->first = rc;
                answer->second = hg_clip_projector_dim(b.clip, which);
            },
            [this, which, answer](Napi::Env env, Napi::Value) -> Napi::Value {
                proj_dim_[which] = answer->second;
                Napi::Object o = Napi::Object::New(env);
                o.Set("loaded", Napi::Boolean::New(env, answer->first == 1));
                o.Set("dim", answer->second);
                return o;
            },
            Value());
    }

    int image_size_ = 0, n_embd_ = 0, n_patches_ = 0, proj_dim_[2] = {0, 0};
};

} // namespace

void init_clip(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = Clip::Define(env);
    ctors(env).clip = Napi::Persistent(ctor);
    exports.Set("Clip", ctor);
}

} // namespace hgnode
