// Clip: JS handles on loaded vision towers (weights mapped, thread pool). Encoding and
// projecting run off the JS thread; calls on one tower are serialised here.
//
// The handle is an External rather than an ObjectWrap class: the addon's one instance-data
// slot holds the Model constructor (src/model_binding.cpp), and a plain handle needs no
// constructor to be found again when load() settles. lib/vision/clip.ts wraps it in a class.
#include <memory>
#include <mutex>
#include <stdexcept>

#include "addon.h"

namespace hgnode {

namespace {

// The native tower plus the lock that keeps two jobs off it. Shared with pending jobs, so
// dispose() while a job runs frees the tower only when that job is done.
struct clip_box {
    hg_clip *clip = nullptr;
    int image_size = 0, n_embd = 0, n_patches = 0, proj_dim[2] = {0, 0};
    std::mutex busy;
    ~clip_box() { hg_clip_free(clip); }
};
using clip_ptr = std::shared_ptr<clip_box>;

// The External's payload: a slot dispose() empties.
struct clip_handle {
    clip_ptr box;
};

clip_ptr live(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsExternal())
        throw_error(env, "ERR_INVALID_ARG", "handle must be a vision tower handle from Clip.load");
    clip_handle *h = info[0].As<Napi::External<clip_handle>>().Data();
    if (!h->box) throw_error(env, "ERR_DISPOSED", "the vision tower has been disposed");
    return h->box;
}

Napi::Float32Array float_arg(const Napi::CallbackInfo &info, size_t i, const char *name) {
    if (info.Length() <= i || !info[i].IsTypedArray() ||
        info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        throw_error(info.Env(), "ERR_INVALID_ARG", std::string(name) + " must be a Float32Array");
    return info[i].As<Napi::Float32Array>();
}

// load(path, {threads}): Promise<handle>
Napi::Value Load(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    const std::string path = arg_string(info, 0, "path");
    hg_clip_params p = hg_clip_default_params();
    if (info.Length() > 1 && info[1].IsObject()) {
        Napi::Object o = info[1].As<Napi::Object>();
        if (o.Has("threads") && !o.Get("threads").IsUndefined()) {
            Napi::Value v = o.Get("threads");
            if (!v.IsNumber()) throw_error(env, "ERR_INVALID_ARG", "threads must be a number");
            p.n_threads = v.As<Napi::Number>().Int32Value();
        }
    }
    auto box = std::make_shared<clip_box>();
    return run_async(
        env, "healthgpt.Clip.load",
        [box, path, p] {
            box->clip = hg_clip_load(path.c_str(), &p);
            if (!box->clip) throw native_error();
            box->image_size = hg_clip_image_size(box->clip);
            box->n_embd = hg_clip_n_embd(box->clip);
            box->n_patches = hg_clip_n_patches(box->clip);
            for (int k = 0; k < 2; k++) box->proj_dim[k] = hg_clip_projector_dim(box->clip, k);
        },
        [box](Napi::Env env, Napi::Value) -> Napi::Value {
            return Napi::External<clip_handle>::New(env, new clip_handle{box},
                                                    [](Napi::Env, clip_handle *h) { delete h; });
        },
        env.Undefined());
}

// info(handle): sizes fixed at load, read without the lock
Napi::Value Info(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    clip_ptr b = live(info);
    Napi::Object o = Napi::Object::New(env);
    o.Set("imageSize", b->image_size);
    o.Set("patchSize", hg_clip_patch_size(b->clip));
    o.Set("nEmbd", b->n_embd);
    o.Set("nPatches", b->n_patches);
    o.Set("nLayer", hg_clip_n_layer(b->clip));
    o.Set("comprehensionLayer", hg_clip_tap_layer(b->clip, HG_CLIP_TAP_COMPREHENSION));
    o.Set("generationLayer", hg_clip_tap_layer(b->clip, HG_CLIP_TAP_GENERATION));
    o.Set("comprehensionProjectorDim", b->proj_dim[0]);
    o.Set("generationProjectorDim", b->proj_dim[1]);
    float mean[3], std[3];
    if (hg_clip_image_norm(b->clip, mean, std) == 0) {
        Napi::Array m = Napi::Array::New(env, 3), s = Napi::Array::New(env, 3);
        for (uint32_t c = 0; c < 3; c++) m.Set(c, mean[c]), s.Set(c, std[c]);
        o.Set("imageMean", m);
        o.Set("imageStd", s);
    }
    return o;
}

// encode(handle, pixels: Float32Array (3 x S x S), tap: 0 | 1, hiddenState?: number):
// Promise<Float32Array (n_patches x n_embd)>. hiddenState, when given, overrides the tap.
Napi::Value Encode(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    clip_ptr b = live(info);
    Napi::Float32Array pixels = float_arg(info, 1, "pixels");
    const int tap = arg_int32(info, 2, "tap");
    const bool by_index = info.Length() > 3 && !info[3].IsUndefined();
    const int hidden_state = by_index ? arg_int32(info, 3, "hiddenState") : -1;
    const size_t want = (size_t)3 * b->image_size * b->image_size;
    if (pixels.ElementLength() != want)
        throw_error(env, "ERR_INVALID_ARG",
                    "pixels has " + std::to_string(pixels.ElementLength()) + " values, expected 3 x " +
                        std::to_string(b->image_size) + " x " + std::to_string(b->image_size) + " = " +
                        std::to_string(want));
    Napi::Float32Array out = Napi::Float32Array::New(env, (size_t)b->n_patches * b->n_embd);
    const float *in = pixels.Data();
    float *o = out.Data();
    return run_async(
        env, "healthgpt.Clip.encode",
        [b, in, o, tap, by_index, hidden_state] {
            std::lock_guard<std::mutex> lk(b->busy);
            const int rc = by_index ? hg_clip_encode_hidden_state(b->clip, in, hidden_state, o)
                                    : hg_clip_encode(b->clip, in, tap, o);
            if (rc < 0) throw native_error();
        },
        [](Napi::Env, Napi::Value kept) { return kept; }, out, {pixels});
}

// project(handle, projector: 0 | 1, features: Float32Array (n x n_embd)): Promise<Float32Array>
Napi::Value Project(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    clip_ptr b = live(info);
    const int which = arg_int32(info, 1, "projector");
    if (which != 0 && which != 1)
        throw_error(env, "ERR_INVALID_ARG", "projector must be 0 (comprehension) or 1 (generation)");
    Napi::Float32Array features = float_arg(info, 2, "features");
    const int dim = b->proj_dim[which];
    if (dim <= 0)
        throw_error(env, "ERR_INVALID_ARG",
                    std::string("the vision tower file has no ") + (which == 0 ? "comprehension" : "generation") +
                        " projector");
    const size_t len = features.ElementLength();
    if (len == 0 || len % (size_t)b->n_embd != 0 || len / (size_t)b->n_embd > (size_t)INT32_MAX)
        throw_error(env, "ERR_INVALID_ARG",
                    "features has " + std::to_string(len) + " values, not a whole number of rows of " +
                        std::to_string(b->n_embd));
    const int n = (int)(len / (size_t)b->n_embd);
    Napi::Float32Array out = Napi::Float32Array::New(env, (size_t)n * dim);
    const float *in = features.Data();
    float *o = out.Data();
    return run_async(
        env, "healthgpt.Clip.project",
        [b, which, in, n, o] {
            std::lock_guard<std::mutex> lk(b->busy);
            if (hg_clip_project(b->clip, which, in, n, o) < 0) throw native_error();
        },
        [](Napi::Env, Napi::Value kept) { return kept; }, out, {features});
}

Napi::Value Dispose(const Napi::CallbackInfo &info) {
    if (info.Length() >= 1 && info[0].IsExternal())
        info[0].As<Napi::External<clip_handle>>().Data()->box.reset(); // freed now or after the last job
    return info.Env().Undefined();
}

} // namespace

void init_clip(Napi::Env env, Napi::Object exports) {
    Napi::Object clip = Napi::Object::New(env);
    clip.Set("load", Napi::Function::New(env, Load, "load"));
    clip.Set("info", Napi::Function::New(env, Info, "info"));
    clip.Set("encode", Napi::Function::New(env, Encode, "encode"));
    clip.Set("project", Napi::Function::New(env, Project, "project"));
    clip.Set("dispose", Napi::Function::New(env, Dispose, "dispose"));
    exports.Set("Clip", clip);
}

} // namespace hgnode
