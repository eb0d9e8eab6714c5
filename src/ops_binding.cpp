// Types, CPU features, conversions and the matmul kernels, for tests, tools and benchmarks.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "addon.h"

namespace hgnode {

namespace {

int type_arg(const Napi::CallbackInfo &info, size_t i) {
    const int64_t t = arg_int(info, i, "type");
    if (!hg_type_name((int)t))
        throw_error(info.Env(), "ERR_INVALID_ARG", "unknown tensor type id " + std::to_string(t));
    return (int)t;
}

template <class T> T typed_array_arg(const Napi::CallbackInfo &info, size_t i, const char *name) {
    if (info.Length() <= i || !info[i].IsTypedArray())
        throw_error(info.Env(), "ERR_INVALID_ARG", std::string(name) + " must be a typed array");
    return info[i].As<T>();
}

Napi::Value Types(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    uint32_t j = 0;
    for (int t = 0; t < HG_TYPE_COUNT; t++) {
        const char *name = hg_type_name(t);
        if (!name) continue;
        Napi::Object o = Napi::Object::New(env);
        o.Set("id", t);
        o.Set("name", name);
        o.Set("blockSize", Napi::Number::New(env, (double)hg_type_block_size(t)));
        o.Set("blockBytes", Napi::Number::New(env, (double)hg_type_block_bytes(t)));
        o.Set("supported", Napi::Boolean::New(env, hg_type_supported(t) != 0));
        out.Set(j++, o);
    }
    return out;
}

Napi::Value Cpu(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    static const char *names[] = {"scalar", "avx2", "avx512"};
    Napi::Object o = Napi::Object::New(env);
    o.Set("features", hg_cpu_features());
    o.Set("best", names[hg_isa_best()]);
    o.Set("active", names[hg_isa_active()]);
    return o;
}

// setIsa("scalar" | "avx2" | "avx512" | "auto")
Napi::Value SetIsa(const Napi::CallbackInfo &info) {
    const std::string s = arg_string(info, 0, "isa");
    int isa = s == "scalar"   ? HG_ISA_SCALAR
              : s == "avx2"   ? HG_ISA_AVX2
              : s == "avx512" ? HG_ISA_AVX512
              : s == "auto"   ? -1
                              : -2;
    if (isa == -2) throw_error(info.Env(), "ERR_INVALID_ARG", "isa must be scalar, avx2, avx512 or auto, got " + s);
    check_status(info.Env(), hg_isa_force(isa));
    return info.Env().Undefined();
}

int64_t checked_row(const Napi::CallbackInfo &info, int type, int64_t n) {
    const int64_t bs = hg_type_block_size(type);
    if (n <= 0 || n % bs != 0)
        throw_error(info.Env(), "ERR_INVALID_ARG",
                    "length " + std::to_string(n) + " is not a positive multiple of the " + hg_type_name(type) +
                        " block (" + std::to_string(bs) + ")");
    return n / bs * (int64_t)hg_type_block_bytes(type);
}

// quantizeRow(type, Float32Array): Buffer (reference quantizer; small inputs, synchronous)
Napi::Value QuantizeRow(const Napi::CallbackInfo &info) {
    const int type = type_arg(info, 0);
    Napi::Float32Array src = typed_array_arg<Napi::Float32Array>(info, 1, "values");
    const int64_t bytes = checked_row(info, type, (int64_t)src.ElementLength());
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(info.Env(), (size_t)bytes);
    check_status(info.Env(), hg_quantize_row(type, src.Data(), out.Data(), (int64_t)src.ElementLength()));
    return out;
}

// dequantizeRow(type, Uint8Array, n): Float32Array
Napi::Value DequantizeRow(const Napi::CallbackInfo &info) {
    const int type = type_arg(info, 0);
    Napi::Uint8Array src = typed_array_arg<Napi::Uint8Array>(info, 1, "data");
    const int64_t n = arg_int32(info, 2, "n");
    const int64_t bytes = checked_row(info, type, n);
    if ((int64_t)src.ByteLength() < bytes)
        throw_error(info.Env(), "ERR_INVALID_ARG",
                    "data holds " + std::to_string(src.ByteLength()) + " bytes, " + std::to_string(bytes) + " needed");
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), (size_t)n);
    check_status(info.Env(), hg_dequantize_row(type, src.Data(), out.Data(), n));
    return out;
}

// matmul(type, w: Uint8Array, rows, k, x: Float32Array, n, threads): Promise<Float32Array>
Napi::Value Matmul(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    const int type = type_arg(info, 0);
    Napi::Uint8Array w = typed_array_arg<Napi::Uint8Array>(info, 1, "w");
    const int64_t rows = arg_int32(info, 2, "rows"), k = arg_int32(info, 3, "k");
    Napi::Float32Array x = typed_array_arg<Napi::Float32Array>(info, 4, "x");
    const int64_t n = arg_int32(info, 5, "n");
    const int threads = info.Length() > 6 ? arg_int32(info, 6, "threads") : 0;
    if (rows <= 0 || n <= 0) throw_error(env, "ERR_INVALID_ARG", "rows and n must be positive");
    const int64_t row = checked_row(info, type, k);
    if ((int64_t)w.ByteLength() < row * rows) throw_error(env, "ERR_INVALID_ARG", "w is too short for rows x k");
    if ((int64_t)x.ElementLength() < k * n) throw_error(env, "ERR_INVALID_ARG", "x is too short for k x n");
    Napi::Float32Array y = Napi::Float32Array::New(env, (size_t)(rows * n));
    const uint8_t *wp = w.Data();
    const float *xp = x.Data();
    float *yp = y.Data();
    return run_async(
        env, "healthgpt.matmul",
        [=] {
            pool_lease lease = lease_pool(threads);
            if (hg_matmul(lease.pool, type, wp, rows, k, xp, n, yp) < 0) throw native_error();
        },
        [](Napi::Env, Napi::Value kept) { return kept; }, y, {w, x});
}

// benchMatmul(type, rows, k, n, threads, iters): Promise<number[]> (milliseconds per run)
// Weights are random normal values quantized to `type`, made and timed natively, read from
// memory as in a model (see below), so matrix-vector figures meet the bandwidth roofline.
Napi::Value BenchMatmul(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    const int type = type_arg(info, 0);
    const int64_t rows = arg_int32(info, 1, "rows"), k = arg_int32(info, 2, "k"), n = arg_int32(info, 3, "n");
    const int threads = arg_int32(info, 4, "threads");
    const int iters = arg_int32(info, 5, "iters");
    if (rows <= 0 || n <= 0 || iters <= 0) throw_error(env, "ERR_INVALID_ARG", "rows, n and iters must be positive");
    checked_row(info, type, k);
    auto times = std::make_shared<std::vector<double>>();
    return run_async(
        env, "healthgpt.benchMatmul",
        [=] {
            pool_lease lease = lease_pool(threads);
            std::mt19937 rng(42);
            std::normal_distribution<float> nd(0.0f, 1.0f);
            std::vector<float> wf((size_t)(rows * k)), x((size_t)(k * n)), y((size_t)(rows * n));
            for (auto &v : wf) v = nd(rng);
            for (auto &v : x) v = nd(rng);
            const size_t w_bytes = (size_t)(rows * k / hg_type_block_size(type) * hg_type_block_bytes(type));
            // In a model every weight is read once per token, from memory, not from cache: the
            // runs cycle through copies of the matrix that together exceed any L3.
            const size_t copies = std::max<size_t>(1, ((size_t)512 << 20) / w_bytes + 1);
            std::vector<uint8_t> w(w_bytes * copies);
            if (hg_convert_rows(lease.pool, HG_TYPE_F32, wf.data(), type, w.data(), rows, k) < 0) throw native_error();
            std::vector<float>().swap(wf);
            for (size_t c = 1; c < copies; c++) std::memcpy(&w[c * w_bytes], w.data(), w_bytes);
            for (int i = -1; i < iters; i++) { // one untimed warm-up run
                const uint8_t *wi = &w[(size_t)(i + 1) % copies * w_bytes];
                const auto t0 = std::chrono::steady_clock::now();
                if (hg_matmul(lease.pool, type, wi, rows, k, x.data(), n, y.data()) < 0) throw native_error();
                const auto t1 = std::chrono::steady_clock::now();
                if (i >= 0) times->push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            }
        },
        [times](Napi::Env env, Napi::Value) -> Napi::Value {
            Napi::Array a = Napi::Array::New(env, times->size());
            for (size_t i = 0; i < times->size(); i++) a.Set((uint32_t)i, (*times)[i]);
            return a;
        },
        env.Undefined());
}

// readBandwidth(megabytes, reps, threads): Promise<number> GB/s
Napi::Value ReadBandwidth(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    const int64_t mb = arg_int(info, 0, "megabytes");
    const int reps = arg_int32(info, 1, "reps");
    const int threads = arg_int32(info, 2, "threads");
    if (mb < 1 || mb > 65536) throw_error(env, "ERR_INVALID_ARG", "megabytes must be in 1..65536");
    auto gbs = std::make_shared<double>(0);
    return run_async(
        env, "healthgpt.readBandwidth",
        [=] {
            pool_lease lease = lease_pool(threads);
            *gbs = hg_read_bandwidth(lease.pool, (size_t)mb << 20, reps);
            if (*gbs < 0) throw native_error();
        },
        [gbs](Napi::Env env, Napi::Value) -> Napi::Value { return Napi::Number::New(env, *gbs); }, env.Undefined());
}

} // namespace

void init_ops(Napi::Env env, Napi::Object exports) {
    exports.Set("types", Napi::Function::New(env, Types));
    exports.Set("cpu", Napi::Function::New(env, Cpu));
    exports.Set("setIsa", Napi::Function::New(env, SetIsa));
    exports.Set("quantizeRow", Napi::Function::New(env, QuantizeRow));
    exports.Set("dequantizeRow", Napi::Function::New(env, DequantizeRow));
    exports.Set("matmul", Napi::Function::New(env, Matmul));
    exports.Set("benchMatmul", Napi::Function::New(env, BenchMatmul));
    exports.Set("readBandwidth", Napi::Function::New(env, ReadBandwidth));
}

} // namespace hgnode
