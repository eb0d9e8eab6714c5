// An in-memory GGUF writer shared by test_gguf (exact files, and files broken on purpose)
// and fuzz_gguf (valid seed files to mutate), plus the temp files both open them through.
// Header-only: each of those is a single-source executable.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "healthgpt.h"

namespace gguftest {

// ---- bytes ----

// Little-endian bytes. Every 4- and 8-byte field's position is remembered, so the fuzzer can
// aim mutations at counts, lengths, types and offsets.
struct Bytes {
    std::vector<uint8_t> b;
    std::vector<size_t> u64_at, u32_at;
    template <class T> void put(T v) {
        if (sizeof(T) == 8) u64_at.push_back(b.size());
        if (sizeof(T) == 4) u32_at.push_back(b.size());
        uint8_t tmp[sizeof(T)];
        std::memcpy(tmp, &v, sizeof(T));
        b.insert(b.end(), tmp, tmp + sizeof(T));
    }
    void str(const std::string &s) {
        put<uint64_t>(s.size());
        b.insert(b.end(), s.begin(), s.end());
    }
    // Appends o, its field positions moved along with it.
    void append(const Bytes &o) {
        for (size_t at : o.u64_at) u64_at.push_back(b.size() + at);
        for (size_t at : o.u32_at) u32_at.push_back(b.size() + at);
        b.insert(b.end(), o.b.begin(), o.b.end());
    }
};

// ---- metadata values ----

// A metadata value: its type id and encoding (what follows the type id in the file).
struct Value {
    uint32_t type;
    Bytes enc;
};

template <class T> Value scalar(uint32_t type, T v) {
    Bytes o;
    o.put(v);
    return {type, o};
}
inline Value str_value(const std::string &s) {
    Bytes o;
    o.str(s);
    return {HG_GGUF_STRING, o};
}
template <class T> Value array_of(uint32_t et, const std::vector<T> &xs) {
    Bytes o;
    o.put<uint32_t>(et);
    o.put<uint64_t>(xs.size());
    for (T x : xs) o.put(x);
    return {HG_GGUF_ARRAY, o};
}
inline Value str_array(const std::vector<std::string> &xs) {
    Bytes o;
    o.put<uint32_t>(HG_GGUF_STRING);
    o.put<uint64_t>(xs.size());
    for (auto &x : xs) o.str(x);
    return {HG_GGUF_ARRAY, o};
}

// ---- files ----

constexpr uint64_t kAuto = ~0ull;

struct TensorSpec {
    std::string name;
    std::vector<uint64_t> dims; // ggml order
    uint32_t type;
    uint64_t offset = kAuto; // kAuto: the next aligned position
    int64_t bytes = -1;      // -1: from the type's block size
};

// Fields beyond the plain layout exist so tests can write files that lie about themselves.
struct FileSpec {
    uint32_t version = 3;
    uint64_t alignment = 32; // layout only: add the general.alignment key separately
    std::vector<std::pair<std::string, Value>> kvs;
    std::vector<TensorSpec> tensors;
    int64_t n_tensors = -1, n_kv = -1; // -1: the real counts
    bool pad_end = true;               // pad the header to the alignment even with no tensors
};

struct Built {
    std::vector<uint8_t> bytes;
    uint64_t data_offset = 0;
    std::vector<uint64_t> offsets, sizes; // per tensor, relative to data_offset
    std::vector<size_t> u64_at, u32_at;   // header fields, as in Bytes
};

inline uint64_t tensor_bytes(const TensorSpec &t) {
    if (t.bytes >= 0) return (uint64_t)t.bytes;
    uint64_t n = 1;
    for (uint64_t d : t.dims) n *= d;
    return n / (uint64_t)hg_type_block_size((int)t.type) * hg_type_block_bytes((int)t.type);
}

// Byte i of tensor t's data: differs between tensors, so a wrong offset shows.
inline uint8_t pattern(size_t t, uint64_t i) { return (uint8_t)(t * 31 + i * 7 + 1); }

inline Built build(const FileSpec &s) {
    Built r;
    Bytes o;
    o.put<uint32_t>(0x46554747);
    o.put<uint32_t>(s.version);
    o.put<uint64_t>(s.n_tensors >= 0 ? (uint64_t)s.n_tensors : s.tensors.size());
    o.put<uint64_t>(s.n_kv >= 0 ? (uint64_t)s.n_kv : s.kvs.size());
    for (auto &kv : s.kvs) {
        o.str(kv.first);
        o.put<uint32_t>(kv.second.type);
        o.append(kv.second.enc);
    }
    uint64_t next = 0, end = 0;
    for (auto &t : s.tensors) {
        uint64_t bytes = tensor_bytes(t);
        uint64_t off = t.offset != kAuto ? t.offset : (next + s.alignment - 1) / s.alignment * s.alignment;
        r.offsets.push_back(off);
        r.sizes.push_back(bytes);
        next = off + bytes;
        end = std::max(end, next);
        o.str(t.name);
        o.put<uint32_t>((uint32_t)t.dims.size());
        for (uint64_t d : t.dims) o.put<uint64_t>(d);
        o.put<uint32_t>(t.type);
        o.put<uint64_t>(off);
    }
    if (!s.tensors.empty() || s.pad_end)
        while (o.b.size() % s.alignment) o.b.push_back(0);
    r.data_offset = (o.b.size() + s.alignment - 1) / s.alignment * s.alignment;
    // Data only for sane layouts: fault tests with huge offsets keep the file small.
    if (end < (1u << 20)) {
        o.b.resize(o.b.size() + end, 0);
        for (size_t t = 0; t < s.tensors.size(); t++)
            for (uint64_t i = 0; i < r.sizes[t] && r.offsets[t] + i < end; i++)
                o.b[r.data_offset + r.offsets[t] + i] = pattern(t, i);
    }
    r.bytes = o.b;
    r.u64_at = o.u64_at;
    r.u32_at = o.u32_at;
    return r;
}

// ---- temp files ----

// tmpfs when there is one: thousands of files a second should not touch a disk.
inline std::string temp_dir() {
    struct stat st;
    return stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
}

// Whole file or false.
inline bool write_file(const std::string &path, const uint8_t *data, size_t n) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    size_t done = 0;
    while (done < n) {
        ssize_t w = ::write(fd, data + done, n - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
    ::close(fd);
    return done == n;
}

// Bytes in a file of their own for one scope; the name is unique within the process.
struct TempFile {
    std::string path;
    explicit TempFile(const std::vector<uint8_t> &bytes) : path(next_path()) {
        write_file(path, bytes.data(), bytes.size());
    }
    ~TempFile() { std::remove(path.c_str()); }

  private:
    static std::string next_path() {
        static int counter = 0;
        return temp_dir() + "/hg_test_gguf_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + ".gguf";
    }
};

} // namespace gguftest
