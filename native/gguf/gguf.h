// GGUF reader. The file is mapped read-only and every count, length, offset and extent is
// checked at open, so the accessors below never read outside the mapping and need no
// further checks. Strings stay views into the mapping; only keys and tensor names are
// copied (they must be NUL-terminated for the C API and are few and short).
//
// Limits on purpose: little-endian files of version 2 or 3 only, no nested arrays, at most
// 4 dimensions, every tensor type id known to type_traits().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "healthgpt.h"

namespace hg {

// A whole file mapped read-only; unmapped when destroyed.
class MappedFile {
  public:
    explicit MappedFile(const std::string &path);
    ~MappedFile();
    MappedFile(const MappedFile &) = delete;
    MappedFile &operator=(const MappedFile &) = delete;

    const uint8_t *data() const { return data_; }
    uint64_t size() const { return size_; }
    // Gives back the whole pages of [p, p + bytes) that this process has read: they leave
    // its resident memory and are read from the file again if touched (for bytes that were
    // copied elsewhere and will not be read here again).
    void release(const void *p, uint64_t bytes) const;

  private:
    const uint8_t *data_ = nullptr; // null for an empty file
    uint64_t size_ = 0;
};

struct GGUFKV {
    std::string key;
    hg_gguf_value_type type = HG_GGUF_UINT8;
    // Scalars, widened by kind: unsigned and bool in u, signed in i, floats in f.
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0;
    std::string_view str; // STRING: bytes in the mapping (may hold NULs)
    // ARRAY
    hg_gguf_value_type arr_type = HG_GGUF_UINT8;
    uint64_t arr_n = 0;
    const uint8_t *arr_data = nullptr; // first element in the mapping (unaligned)
    std::vector<uint64_t> arr_str_at;  // string arrays: each element's offset from arr_data
};

struct GGUFTensor {
    std::string name;
    int n_dims = 0;
    int64_t ne[4] = {1, 1, 1, 1}; // ggml order: ne[0] is the row length; unused dims are 1
    int type = 0;
    uint64_t offset = 0; // relative to the data section
    uint64_t bytes = 0;
    const uint8_t *data = nullptr;
};

class GGUFFile {
  public:
    // Maps and validates; throws hg::Error naming the file and the fault.
    static std::unique_ptr<GGUFFile> open(const std::string &path);
    // Validates a buffer the caller keeps alive for the life of the result; `name` stands
    // for the file in messages.
    static std::unique_ptr<GGUFFile> parse(const void *data, uint64_t size, const std::string &name);

    const std::string &name() const { return name_; }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    uint64_t file_size() const { return size_; }

    int64_t n_kv() const { return (int64_t)kvs_.size(); }
    int64_t find_key(std::string_view key) const; // -1 when absent
    // Accessors throw hg::Error on an index out of range or a value of the wrong type.
    const GGUFKV &kv(int64_t i) const;
    uint64_t kv_u64(int64_t i) const;
    int64_t kv_i64(int64_t i) const;
    double kv_f64(int64_t i) const;
    std::string_view kv_str(int64_t i) const;
    const GGUFKV &kv_array(int64_t i) const;
    uint64_t arr_u64(int64_t i, uint64_t j) const;
    int64_t arr_i64(int64_t i, uint64_t j) const;
    double arr_f64(int64_t i, uint64_t j) const;
    std::string_view arr_str(int64_t i, uint64_t j) const;
    const void *arr_data(int64_t i) const; // fixed-size element arrays only

    int64_t n_tensors() const { return (int64_t)tensors_.size(); }
    int64_t find_tensor(std::string_view name) const; // -1 when absent
    const GGUFTensor &tensor(int64_t t) const;
    // MappedFile::release for a tensor the caller copied; nothing for a caller's buffer.
    void release(const GGUFTensor &t) const;
    // release for every tensor (a device holds the whole model).
    void release_tensors() const;

  private:
    GGUFFile() = default;
    friend class GGUFParser;

    enum class ElemKind { Unsigned, Signed, Float, String };
    const GGUFKV &array_elem(int64_t i, uint64_t j, ElemKind kind) const;

    std::unique_ptr<MappedFile> map_; // null when parsing a caller's buffer
    std::string name_;
    const uint8_t *base_ = nullptr;
    uint64_t size_ = 0;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<GGUFKV> kvs_;
    std::vector<GGUFTensor> tensors_;
    // Built once the vectors above are final, so the views stay valid.
    std::unordered_map<std::string_view, int64_t> key_index_;
    std::unordered_map<std::string_view, int64_t> tensor_index_;
};

// Name of a metadata value type ("UINT32"), "?" for an unknown id.
const char *gguf_type_name(uint32_t type);

} // namespace hg
