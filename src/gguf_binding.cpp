// GGUFFile: a JS handle on an mmap'ed, validated GGUF file. info() describes it; tensor data
// is copied out (tensorData) or converted (convertTensor) off the JS thread. No external
// buffers point into the mapping: Electron's V8 sandbox forbids them.
#include <cstring>
#include <memory>
#include <stdexcept>

#include "addon.h"

namespace hgnode {

namespace {

using gguf_ptr = std::shared_ptr<hg_gguf>;

const char *value_type_name(int t) {
    static const char *names[] = {"u8",   "i8",  "u16",   "i16", "u32", "i32", "f32",
                                  "bool", "str", "array", "u64", "i64", "f64"};
    return t >= 0 && t <= 12 ? names[t] : "unknown";
}

// 64-bit integers stay exact: a Number when it is safe, else a BigInt.
Napi::Value u64_value(Napi::Env env, uint64_t v) {
    if (v <= (1ull << 53)) return Napi::Number::New(env, (double)v);
    return Napi::BigInt::New(env, v);
}
Napi::Value i64_value(Napi::Env env, int64_t v) {
    if (v <= (1ll << 53) && v >= -(1ll << 53)) return Napi::Number::New(env, (double)v);
    return Napi::BigInt::New(env, v);
}

Napi::Value scalar(Napi::Env env, const hg_gguf *f, int64_t i, int type) {
    switch (type) {
    case HG_GGUF_UINT8:
    case HG_GGUF_UINT16:
    case HG_GGUF_UINT32:
    case HG_GGUF_UINT64: return u64_value(env, hg_gguf_kv_u64(f, i));
    case HG_GGUF_INT8:
    case HG_GGUF_INT16:
    case HG_GGUF_INT32:
    case HG_GGUF_INT64: return i64_value(env, hg_gguf_kv_i64(f, i));
    case HG_GGUF_FLOAT32:
    case HG_GGUF_FLOAT64: return Napi::Number::New(env, hg_gguf_kv_f64(f, i));
    case HG_GGUF_BOOL: return Napi::Boolean::New(env, hg_gguf_kv_u64(f, i) != 0);
    case HG_GGUF_STRING: {
        uint64_t len = 0;
        const char *s = hg_gguf_kv_str(f, i, &len);
        return Napi::String::New(env, s ? s : "", (size_t)len);
    }
    }
    return env.Undefined();
}

Napi::Value array_item(Napi::Env env, const hg_gguf *f, int64_t i, uint64_t j, int type) {
    switch (type) {
    case HG_GGUF_UINT8:
    case HG_GGUF_UINT16:
    case HG_GGUF_UINT32:
    case HG_GGUF_UINT64: return u64_value(env, hg_gguf_kv_arr_u64(f, i, j));
    case HG_GGUF_INT8:
    case HG_GGUF_INT16:
    case HG_GGUF_INT32:
    case HG_GGUF_INT64: return i64_value(env, hg_gguf_kv_arr_i64(f, i, j));
    case HG_GGUF_FLOAT32:
    case HG_GGUF_FLOAT64: return Napi::Number::New(env, hg_gguf_kv_arr_f64(f, i, j));
    case HG_GGUF_BOOL: return Napi::Boolean::New(env, hg_gguf_kv_arr_u64(f, i, j) != 0);
    case HG_GGUF_STRING: {
        uint64_t len = 0;
        const char *s = hg_gguf_kv_arr_str(f, i, j, &len);
        return Napi::String::New(env, s ? s : "", (size_t)len);
    }
    }
    return env.Undefined();
}

class GGUFFile : public Napi::ObjectWrap<GGUFFile> {
  public:
    static Napi::Function Define(Napi::Env env) {
        return DefineClass(env, "GGUFFile",
                           {
                               InstanceMethod("info", &GGUFFile::Info),
                               InstanceMethod("tensorData", &GGUFFile::TensorData),
                               InstanceMethod("convertTensor", &GGUFFile::ConvertTensor),
                               InstanceMethod("close", &GGUFFile::Close),
                           });
    }

    // new GGUFFile(path): opens and validates; throws with the reader's message.
    explicit GGUFFile(const Napi::CallbackInfo &info) : Napi::ObjectWrap<GGUFFile>(info) {
        const std::string path = arg_string(info, 0, "path");
        hg_gguf *f = hg_gguf_open(path.c_str());
        if (!f) check_status(info.Env(), -1);
        file_ = gguf_ptr(f, hg_gguf_close);
    }

  private:
    const hg_gguf *open_file(Napi::Env env) {
        if (!file_) throw_error(env, "ERR_DISPOSED", "GGUF file is closed");
        return file_.get();
    }

    int64_t tensor_index(const Napi::CallbackInfo &info) {
        const hg_gguf *f = open_file(info.Env());
        int64_t t = arg_int(info, 0, "tensor index");
        if (t < 0 || t >= hg_gguf_n_tensors(f))
            throw_error(info.Env(), "ERR_INVALID_ARG", "tensor index " + std::to_string(t) + " out of range");
        return t;
    }

    Napi::Value Info(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        const hg_gguf *f = open_file(env);
        Napi::Object out = Napi::Object::New(env);
        out.Set("version", Napi::Number::New(env, hg_gguf_version(f)));
        out.Set("alignment", u64_value(env, hg_gguf_alignment(f)));
        out.Set("dataOffset", u64_value(env, hg_gguf_data_offset(f)));
        out.Set("fileSize", u64_value(env, hg_gguf_file_size(f)));

        const int64_t n_kv = hg_gguf_n_kv(f);
        Napi::Array kvs = Napi::Array::New(env, (size_t)n_kv);
        for (int64_t i = 0; i < n_kv; i++) {
            Napi::Object kv = Napi::Object::New(env);
            const int type = hg_gguf_kv_type(f, i);
            kv.Set("key", Napi::String::New(env, hg_gguf_kv_key(f, i)));
            kv.Set("type", Napi::String::New(env, value_type_name(type)));
            if (type == HG_GGUF_ARRAY) {
                const int item = hg_gguf_kv_arr_type(f, i);
                const uint64_t n = hg_gguf_kv_arr_n(f, i);
                kv.Set("itemType", Napi::String::New(env, value_type_name(item)));
                Napi::Array values = Napi::Array::New(env, (size_t)n);
                for (uint64_t j = 0; j < n; j++) values.Set((uint32_t)j, array_item(env, f, i, j, item));
                kv.Set("value", values);
            } else {
                kv.Set("value", scalar(env, f, i, type));
            }
            kvs.Set((uint32_t)i, kv);
        }
        out.Set("metadata", kvs);

        const int64_t n_t = hg_gguf_n_tensors(f);
        Napi::Array tensors = Napi::Array::New(env, (size_t)n_t);
        for (int64_t t = 0; t < n_t; t++) {
            Napi::Object ti = Napi::Object::New(env);
            ti.Set("name", Napi::String::New(env, hg_gguf_tensor_name(f, t)));
            const int nd = hg_gguf_tensor_n_dims(f, t);
            Napi::Array shape = Napi::Array::New(env, nd);
            for (int d = 0; d < nd; d++) shape.Set(d, i64_value(env, hg_gguf_tensor_dim(f, t, d)));
            ti.Set("shape", shape);
            const int type = hg_gguf_tensor_type(f, t);
            ti.Set("typeId", Napi::Number::New(env, type));
            const char *tn = hg_type_name(type);
            ti.Set("type", Napi::String::New(env, tn ? tn : "unknown"));
            ti.Set("offset", u64_value(env, hg_gguf_tensor_offset(f, t)));
            ti.Set("bytes", u64_value(env, hg_gguf_tensor_bytes(f, t)));
            tensors.Set((uint32_t)t, ti);
        }
        out.Set("tensors", tensors);
        return out;
    }

    // tensorData(t): Promise<Buffer> with a copy of the tensor's bytes.
    Napi::Value TensorData(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        const int64_t t = tensor_index(info);
        gguf_ptr f = file_;
        const size_t bytes = (size_t)hg_gguf_tensor_bytes(f.get(), t);
        // the result is allocated here, on the JS thread, and filled by the worker
        Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, bytes);
        uint8_t *dst = out.Data();
        return run_async(
            env, "healthgpt.tensorData",
            [f, t, dst, bytes] { std::memcpy(dst, hg_gguf_tensor_data(f.get(), t), bytes); },
            [](Napi::Env, Napi::Value kept) { return kept; }, out);
    }

    // convertTensor(t, dstType, threads): Promise<Buffer> of the tensor in dstType.
    Napi::Value ConvertTensor(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        const int64_t t = tensor_index(info);
        const int dst = arg_int32(info, 1, "dstType");
        const int threads = info.Length() > 2 ? arg_int32(info, 2, "threads") : 0;
        const hg_gguf *f0 = file_.get();
        const int src = hg_gguf_tensor_type(f0, t);
        const int64_t row_len = hg_gguf_tensor_dim(f0, t, 0);
        const int64_t n = hg_gguf_tensor_bytes(f0, t) / hg_type_block_bytes(src) * hg_type_block_size(src);
        const int64_t dbs = hg_type_block_size(dst);
        if (!hg_type_supported(dst) || dbs == 0)
            throw_error(env, "ERR_INVALID_ARG", "cannot convert to type id " + std::to_string(dst));
        if (row_len % dbs != 0)
            throw_error(env, "ERR_INVALID_ARG",
                        std::string("tensor ") + hg_gguf_tensor_name(f0, t) + ": row length " +
                            std::to_string(row_len) + " is not a multiple of the " + hg_type_name(dst) + " block (" +
                            std::to_string(dbs) + ")");
        const int64_t n_rows = n / row_len;
        gguf_ptr f = file_;
        Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, (size_t)(n / dbs) * hg_type_block_bytes(dst));
        uint8_t *data = out.Data();
        return run_async(
            env, "healthgpt.convertTensor",
            [f, t, src, dst, row_len, n_rows, threads, data] {
                pool_lease lease = lease_pool(threads);
                if (hg_convert_rows(lease.pool, src, hg_gguf_tensor_data(f.get(), t), dst, data, n_rows, row_len) < 0)
                    throw native_error();
            },
            [](Napi::Env, Napi::Value kept) { return kept; }, out);
    }

    Napi::Value Close(const Napi::CallbackInfo &info) {
        file_.reset(); // the mapping goes when the last pending job lets go of it
        return info.Env().Undefined();
    }

    gguf_ptr file_;
};

} // namespace

void init_gguf(Napi::Env env, Napi::Object exports) { exports.Set("GGUFFile", GGUFFile::Define(env)); }

} // namespace hgnode
