// The hg_gguf_* C functions over hg::GGUFFile. Every call is guarded: a bad handle, an index
// out of range or a getter of the wrong type sets hg_last_error() and returns the documented
// fallback (0 / NULL, or -1 where 0 is a valid answer: types, counts, dims).
#include <memory>

#include "core/error.h"
#include "gguf/gguf.h"
#include "healthgpt.h"

struct hg_gguf {
    std::unique_ptr<hg::GGUFFile> file;
};

namespace {

const hg::GGUFFile &get(const hg_gguf *f) {
    if (!f || !f->file) hg::fail("null GGUF handle");
    return *f->file;
}

} // namespace

extern "C" {

hg_gguf *hg_gguf_open(const char *path) {
    return hg::guarded_load<hg_gguf *>(nullptr, [&]() -> hg_gguf * {
        if (!path) hg::fail(HG_ERR_INVALID_ARG, "hg_gguf_open: null path");
        auto h = std::make_unique<hg_gguf>();
        h->file = hg::GGUFFile::open(path);
        return h.release();
    });
}

void hg_gguf_close(hg_gguf *f) { delete f; }

uint32_t hg_gguf_version(const hg_gguf *f) {
    return hg::guarded<uint32_t>(0, [&] { return get(f).version(); });
}

uint64_t hg_gguf_alignment(const hg_gguf *f) {
    return hg::guarded<uint64_t>(0, [&] { return get(f).alignment(); });
}

uint64_t hg_gguf_data_offset(const hg_gguf *f) {
    return hg::guarded<uint64_t>(0, [&] { return get(f).data_offset(); });
}

uint64_t hg_gguf_file_size(const hg_gguf *f) {
    return hg::guarded<uint64_t>(0, [&] { return get(f).file_size(); });
}

// ---- metadata ----

int64_t hg_gguf_n_kv(const hg_gguf *f) {
    return hg::guarded<int64_t>(-1, [&] { return get(f).n_kv(); });
}

int64_t hg_gguf_find_key(const hg_gguf *f, const char *key) {
    return hg::guarded<int64_t>(-1, [&]() -> int64_t {
        if (!key) hg::fail("hg_gguf_find_key: null key");
        return get(f).find_key(key);
    });
}

const char *hg_gguf_kv_key(const hg_gguf *f, int64_t i) {
    return hg::guarded<const char *>(nullptr, [&] { return get(f).kv(i).key.c_str(); });
}

int hg_gguf_kv_type(const hg_gguf *f, int64_t i) {
    return hg::guarded<int>(-1, [&] { return (int)get(f).kv(i).type; });
}

uint64_t hg_gguf_kv_u64(const hg_gguf *f, int64_t i) {
    return hg::guarded<uint64_t>(0, [&] { return get(f).kv_u64(i); });
}

int64_t hg_gguf_kv_i64(const hg_gguf *f, int64_t i) {
    return hg::guarded<int64_t>(0, [&] { return get(f).kv_i64(i); });
}

double hg_gguf_kv_f64(const hg_gguf *f, int64_t i) {
    return hg::guarded<double>(0.0, [&] { return get(f).kv_f64(i); });
}

const char *hg_gguf_kv_str(const hg_gguf *f, int64_t i, uint64_t *len) {
    if (len) *len = 0;
    return hg::guarded<const char *>(nullptr, [&] {
        std::string_view s = get(f).kv_str(i);
        if (len) *len = s.size();
        return s.data();
    });
}

int hg_gguf_kv_arr_type(const hg_gguf *f, int64_t i) {
    return hg::guarded<int>(-1, [&] { return (int)get(f).kv_array(i).arr_type; });
}

uint64_t hg_gguf_kv_arr_n(const hg_gguf *f, int64_t i) {
    return hg::guarded<uint64_t>(0, [&] { return get(f).kv_array(i).arr_n; });
}

uint64_t hg_gguf_kv_arr_u64(const hg_gguf *f, int64_t i, uint64_t j) {
    return hg::guarded<uint64_t>(0, [&] { return get(f).arr_u64(i, j); });
}

int64_t hg_gguf_kv_arr_i64(const hg_gguf *f, int64_t i, uint64_t j) {
    return hg::guarded<int64_t>(0, [&] { return get(f).arr_i64(i, j); });
}

double hg_gguf_kv_arr_f64(const hg_gguf *f, int64_t i, uint64_t j) {
    return hg::guarded<double>(0.0, [&] { return get(f).arr_f64(i, j); });
}

const char *hg_gguf_kv_arr_str(const hg_gguf *f, int64_t i, uint64_t j, uint64_t *len) {
    if (len) *len = 0;
    return hg::guarded<const char *>(nullptr, [&] {
        std::string_view s = get(f).arr_str(i, j);
        if (len) *len = s.size();
        return s.data();
    });
}

const void *hg_gguf_kv_arr_data(const hg_gguf *f, int64_t i) {
    return hg::guarded<const void *>(nullptr, [&] { return get(f).arr_data(i); });
}

// ---- tensors ----

int64_t hg_gguf_n_tensors(const hg_gguf *f) {
    return hg::guarded<int64_t>(-1, [&] { return get(f).n_tensors(); });
}

int64_t hg_gguf_find_tensor(const hg_gguf *f, const char *name) {
    return hg::guarded<int64_t>(-1, [&]() -> int64_t {
        if (!name) hg::fail("hg_gguf_find_tensor: null name");
        return get(f).find_tensor(name);
    });
}

const char *hg_gguf_tensor_name(const hg_gguf *f, int64_t t) {
    return hg::guarded<const char *>(nullptr, [&] { return get(f).tensor(t).name.c_str(); });
}

int hg_gguf_tensor_n_dims(const hg_gguf *f, int64_t t) {
    return hg::guarded<int>(-1, [&] { return get(f).tensor(t).n_dims; });
}

// Dimensions past n_dims read as 1, as in ggml's ne[].
int64_t hg_gguf_tensor_dim(const hg_gguf *f, int64_t t, int d) {
    return hg::guarded<int64_t>(-1, [&]() -> int64_t {
        const hg::GGUFTensor &ti = get(f).tensor(t);
        if (d < 0 || d >= 4)
            hg::fail(get(f).name() + ": tensor '" + ti.name + "': dimension " + std::to_string(d) +
                     " out of range [0, 4)");
        return ti.ne[d];
    });
}

int hg_gguf_tensor_type(const hg_gguf *f, int64_t t) {
    return hg::guarded<int>(-1, [&] { return get(f).tensor(t).type; });
}

uint64_t hg_gguf_tensor_offset(const hg_gguf *f, int64_t t) {
    return hg::guarded<uint64_t>(0, [&] { return get(f).tensor(t).offset; });
}

uint64_t hg_gguf_tensor_bytes(const hg_gguf *f, int64_t t) {
    return hg::guarded<uint64_t>(0, [&] { return get(f).tensor(t).bytes; });
}

const void *hg_gguf_tensor_data(const hg_gguf *f, int64_t t) {
    return hg::guarded<const void *>(nullptr, [&] { return (const void *)get(f).tensor(t).data; });
}

} // extern "C"
