// Reading model hyper-parameters from GGUF metadata, shared by the model loaders: integer
// and float keys with range checks, and the shape / type names their messages use.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

namespace hg {

// Upper bound for every size read from a file: keeps products of sizes far from overflowing
// int64 and refuses absurd files before any allocation.
constexpr int64_t kMaxDim = int64_t(1) << 24;

inline std::string shape_str(const int64_t *ne, int n) {
    std::string s = "[";
    for (int i = 0; i < n; i++) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
}

inline std::string type_name(int type) {
    const type_info *ti = type_traits(type);
    return ti ? ti->name : "type " + std::to_string(type);
}

// An integer key in [0, max] (llama.cpp writes UINT32; any integer kind is accepted).
inline int64_t meta_int(const GGUFFile &f, const char *key, int64_t fallback, bool required, int64_t max = kMaxDim) {
    const int64_t i = f.find_key(key);
    if (i < 0) {
        if (required) fail(f.name() + ": metadata key " + key + " is missing");
        return fallback;
    }
    const hg_gguf_value_type type = f.kv(i).type;
    int64_t v;
    if (type == HG_GGUF_UINT8 || type == HG_GGUF_UINT16 || type == HG_GGUF_UINT32 || type == HG_GGUF_UINT64) {
        const uint64_t u = f.kv_u64(i);
        v = u > (uint64_t)max ? max + 1 : (int64_t)u;
    } else if (type == HG_GGUF_INT8 || type == HG_GGUF_INT16 || type == HG_GGUF_INT32 || type == HG_GGUF_INT64) {
        v = f.kv_i64(i);
    } else {
        fail(f.name() + ": metadata key " + key + " is a " + gguf_type_name(type) + ", expected an integer");
    }
    if (v < 0 || v > max) fail(f.name() + ": metadata key " + key + " = " + std::to_string(v) + " is out of range");
    return v;
}

inline double meta_float(const GGUFFile &f, const char *key, double fallback, bool required) {
    const int64_t i = f.find_key(key);
    if (i < 0) {
        if (required) fail(f.name() + ": metadata key " + key + " is missing");
        return fallback;
    }
    const double v = f.kv_f64(i);
    if (!std::isfinite(v)) fail(f.name() + ": metadata key " + key + " is not finite");
    return v;
}

inline std::string meta_str(const GGUFFile &f, const char *key) {
    const int64_t i = f.find_key(key);
    if (i < 0) fail(f.name() + ": metadata key " + key + " is missing");
    if (f.kv(i).type != HG_GGUF_STRING)
        fail(f.name() + ": metadata key " + key + " is a " + gguf_type_name(f.kv(i).type) + ", expected a string");
    return std::string(f.kv_str(i));
}

// Looks a weight up and checks it is exactly what the forward pass will read. ne1 == 0: a
// vector (the norms, kept F32 by every converter); otherwise a ne0 x ne1 matrix of any type
// the matmul supports, with rows that are whole blocks.
inline const GGUFTensor &checked_tensor(const GGUFFile &f, const std::string &name, int64_t ne0, int64_t ne1) {
    const int64_t i = f.find_tensor(name);
    if (i < 0) fail(f.name() + ": tensor " + name + " is missing");
    const GGUFTensor &t = f.tensor(i);
    const int n_dims = ne1 == 0 ? 1 : 2;
    const int64_t want[4] = {ne0, ne1 == 0 ? 1 : ne1, 1, 1};
    if (t.n_dims > n_dims || t.ne[0] != want[0] || t.ne[1] != want[1] || t.ne[2] != 1 || t.ne[3] != 1)
        fail(f.name() + ": tensor " + name + " has shape " + shape_str(t.ne, t.n_dims) + ", expected " +
             shape_str(want, n_dims));
    const type_info *ti = type_traits(t.type);
    if (ne1 == 0) {
        if (t.type != HG_TYPE_F32)
            fail(f.name() + ": tensor " + name + " has type " + type_name(t.type) + ", expected f32");
    } else {
        if (!ti || !ti->supported)
            fail(HG_ERR_UNSUPPORTED, f.name() + ": tensor " + name + " has type " + type_name(t.type) +
                                         ", which this engine cannot multiply");
        const int64_t act_block = type_traits(ti->vec_dot_type)->block_size;
        if (ne0 % ti->block_size != 0 || ne0 % act_block != 0)
            fail(f.name() + ": tensor " + name + " has rows of " + std::to_string(ne0) +
                 " values, not a whole number of " + ti->name + " blocks");
    }
    return t;
}

} // namespace hg
