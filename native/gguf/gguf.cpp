// GGUF reader: mapping, validation at open, and checked accessors (see gguf.h).
//
// Layout (all little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv, n_kv key/values,
// n_tensors tensor infos, padding to the alignment, tensor data. A string is a u64 length and
// that many bytes; an array a u32 element type, a u64 count and the elements.
#include "gguf/gguf.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <new>
#include <system_error>

#include "core/error.h"
#include "quant/quant.h"

#ifndef _WIN32
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

// Values and the raw array pointers handed out are read in host order.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

namespace hg {

// ---- the mapping ----

#ifdef _WIN32
MappedFile::MappedFile(const std::string &path) {
    fail(path + ": cannot open GGUF files on Windows yet (no CreateFileMapping support)");
}
MappedFile::~MappedFile() = default;
void MappedFile::release(const void *, uint64_t) const {}
#else
MappedFile::MappedFile(const std::string &path) {
    // O_NONBLOCK: opening a FIFO with no writer would block forever (it is refused below, as
    // not a regular file); on a regular file the flag changes nothing for mmap
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) fail(path + ": cannot open: " + std::generic_category().message(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        fail(path + ": cannot stat: " + std::generic_category().message(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(path + ": not a regular file");
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        ::close(fd);
        fail(path + ": file too large to map on this platform");
    }
    size_ = (uint64_t)st.st_size;
    // mmap refuses length 0; the parser reports the empty file.
    if (size_ > 0) {
        void *m = mmap(nullptr, (size_t)size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            ::close(fd);
            fail(path + ": cannot map: " + std::generic_category().message(e));
        }
        data_ = static_cast<const uint8_t *>(m);
    }
    ::close(fd); // the mapping keeps the file referenced
}
MappedFile::~MappedFile() {
    if (data_) munmap(const_cast<uint8_t *>(data_), (size_t)size_);
}
void MappedFile::release(const void *p, uint64_t bytes) const {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t begin = ((uintptr_t)p + page - 1) / page * page, end = ((uintptr_t)p + bytes) / page * page;
    const uintptr_t lo = (uintptr_t)data_, hi = lo + size_;
    if (!data_ || begin < lo || end > hi || begin >= end) return;
    // advice only: a failure leaves the pages resident, which is still correct
    madvise(reinterpret_cast<void *>(begin), end - begin, MADV_DONTNEED);
}
#endif

// ---- helpers ----

const char *gguf_type_name(uint32_t type) {
    static const char *const names[] = {"UINT8", "INT8",   "UINT16", "INT16",  "UINT32", "INT32",  "FLOAT32",
                                        "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64",  "FLOAT64"};
    return type < sizeof names / sizeof names[0] ? names[type] : "?";
}

namespace {

constexpr uint32_t kMagic = 0x46554747; // "GGUF" read as a little-endian u32
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;
// The smallest encodings of a key/value and of a tensor info: counts are bounded by the bytes
// left divided by these before anything is allocated.
constexpr uint64_t kMinKVBytes = 8 + 1 + 4 + 1;             // key length, key, type, u8
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 4 + 8; // name length, name, n_dims, type, offset
// Reserve no more than this up front: a lying count must not cost memory before the bytes
// behind it have been read.
constexpr uint64_t kMaxReserve = 1u << 16;
constexpr uint64_t kMaxStringIndexReserve = 1u << 20;

uint64_t scalar_size(uint32_t t) {
    switch (t) {
    case HG_GGUF_UINT8:
    case HG_GGUF_INT8:
    case HG_GGUF_BOOL: return 1;
    case HG_GGUF_UINT16:
    case HG_GGUF_INT16: return 2;
    case HG_GGUF_UINT32:
    case HG_GGUF_INT32:
    case HG_GGUF_FLOAT32: return 4;
    case HG_GGUF_UINT64:
    case HG_GGUF_INT64:
    case HG_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

bool is_unsigned(uint32_t t) {
    return t == HG_GGUF_UINT8 || t == HG_GGUF_UINT16 || t == HG_GGUF_UINT32 || t == HG_GGUF_UINT64 || t == HG_GGUF_BOOL;
}
bool is_signed(uint32_t t) {
    return t == HG_GGUF_INT8 || t == HG_GGUF_INT16 || t == HG_GGUF_INT32 || t == HG_GGUF_INT64;
}
bool is_float(uint32_t t) { return t == HG_GGUF_FLOAT32 || t == HG_GGUF_FLOAT64; }

// Index of the first byte that breaks UTF-8 (overlongs, surrogates and code points past
// U+10FFFF included), or n when the bytes are valid.
size_t utf8_error_at(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        // Vocabularies are mostly ASCII: skip 8 bytes at a time.
        while (i + 8 <= n) {
            uint64_t w;
            std::memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint8_t lo = 0x80, hi = 0xBF; // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0; // overlong
            if (c == 0xED) hi = 0x9F; // UTF-16 surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90; // overlong
            if (c == 0xF4) hi = 0x8F; // past U+10FFFF
        } else {
            return i;
        }
        if (n - i < len) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        i += len;
    }
    return n;
}

// A name for messages: at most 80 bytes (cut on a character boundary), control bytes, quotes
// and backslashes escaped. Names reach here only once they are known to be valid UTF-8.
std::string printable(std::string_view s) {
    size_t n = s.size();
    if (n > 80) {
        n = 80;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    std::string out;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F || c == '\'' || c == '\\') {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += (char)c;
        }
    }
    if (n < s.size()) out += "...";
    return out;
}

std::string hex2(uint8_t c) {
    char b[4];
    std::snprintf(b, sizeof b, "%02x", c);
    return b;
}

uint32_t bswap32(uint32_t v) { return (v >> 24) | ((v >> 8) & 0xFF00) | ((v << 8) & 0xFF0000) | (v << 24); }

std::string num(uint64_t v) { return std::to_string(v); }

} // namespace

// ---- the parser ----

class GGUFParser {
  public:
    explicit GGUFParser(GGUFFile &f) : f_(f), p_(f.base_), n_(f.size_) {}

    void run() {
        header();
        std::vector<uint64_t> ti_at, ti_offset_at;
        for (uint64_t k = 0; k < n_kv_; k++) {
            kv_at_.push_back(pos_);
            key_value(k);
        }
        alignment();
        for (uint64_t t = 0; t < n_tensors_; t++) {
            ti_at.push_back(pos_);
            tensor_info(t, ti_offset_at);
        }
        data_section(ti_offset_at);
        indexes(ti_at);
    }

  private:
    GGUFFile &f_;
    const uint8_t *p_;
    uint64_t n_;
    uint64_t pos_ = 0;
    uint64_t n_tensors_ = 0, n_kv_ = 0;
    std::vector<uint64_t> kv_at_; // file offset of each key/value
    // What is being read, for messages; set cheaply as parsing goes.
    const char *ctx_kind_ = "header";
    int64_t ctx_index_ = -1;
    std::string_view ctx_name_;
    int64_t ctx_elem_ = -1;

    [[noreturn]] void fault(const std::string &what, uint64_t at) const {
        std::string m = f_.name_ + ": " + ctx_kind_;
        if (ctx_index_ >= 0) m += " #" + num((uint64_t)ctx_index_);
        if (!ctx_name_.empty()) m += " '" + printable(ctx_name_) + "'";
        if (ctx_elem_ >= 0) m += " element " + num((uint64_t)ctx_elem_);
        fail(m + ": " + what + " (at offset " + num(at) + ")");
    }
    void context(const char *kind, int64_t index) {
        ctx_kind_ = kind;
        ctx_index_ = index;
        ctx_name_ = {};
        ctx_elem_ = -1;
    }

    uint64_t left() const { return n_ - pos_; }

    template <class T> T read(const char *what) {
        if (left() < sizeof(T))
            fault(std::string("truncated: ") + what + " needs " + num(sizeof(T)) + " bytes, " + num(left()) + " left",
                  pos_);
        T v;
        std::memcpy(&v, p_ + pos_, sizeof v);
        pos_ += sizeof v;
        return v;
    }

    // A length-prefixed string, checked for UTF-8; names must also be non-empty and free of
    // NULs, since the C API hands them out NUL-terminated.
    std::string_view string(const char *what, bool is_name) {
        uint64_t at = pos_;
        uint64_t len = read<uint64_t>(what);
        if (len > left())
            fault(std::string("truncated: ") + what + " length " + num(len) + " runs past the end of the file (" +
                      num(left()) + " bytes left)",
                  at);
        const uint8_t *s = p_ + pos_;
        size_t bad = utf8_error_at(s, (size_t)len);
        if (bad != len)
            fault(std::string(what) + " is not valid UTF-8 (bad byte 0x" + hex2(s[bad]) + " at index " + num(bad) + ")",
                  pos_ + bad);
        if (is_name && len == 0) fault(std::string(what) + " is empty", at);
        if (is_name && std::memchr(s, 0, (size_t)len)) fault(std::string(what) + " contains a NUL byte", at);
        pos_ += len;
        return std::string_view(reinterpret_cast<const char *>(s), (size_t)len);
    }

    void header() {
        if (n_ == 0) fault("file is empty", 0);
        uint32_t magic = read<uint32_t>("magic");
        if (magic != kMagic) {
            fault("not a GGUF file: bad magic (bytes " + hex2(p_[0]) + " " + hex2(p_[1]) + " " + hex2(p_[2]) + " " +
                      hex2(p_[3]) + ", expected 47 47 55 46 \"GGUF\")",
                  0);
        }
        uint32_t version = read<uint32_t>("version");
        // A byte-swapped small number: a file written for a big-endian host.
        if (version != 0 && (version & 0xFFFF) == 0)
            fault("big-endian GGUF (version " + num(bswap32(version)) + ") is not supported", 4);
        if (version == 1) fault("GGUF version 1 is not supported (32-bit counts; re-convert the model)", 4);
        if (version != 2 && version != 3) fault("unknown GGUF version " + num(version) + " (supported: 2, 3)", 4);
        f_.version_ = version;
        n_tensors_ = read<uint64_t>("tensor count");
        n_kv_ = read<uint64_t>("metadata key/value count");
        if (n_kv_ > left() / kMinKVBytes)
            fault("truncated or absurd metadata key/value count " + num(n_kv_) + ": the " + num(left()) +
                      " bytes left hold at most " + num(left() / kMinKVBytes),
                  16);
        uint64_t rest = left() - n_kv_ * kMinKVBytes;
        if (n_tensors_ > rest / kMinTensorInfoBytes)
            fault("truncated or absurd tensor count " + num(n_tensors_) + ": the " + num(left()) +
                      " bytes left hold at most " + num(rest / kMinTensorInfoBytes),
                  8);
        f_.kvs_.reserve((size_t)std::min(n_kv_, kMaxReserve));
        kv_at_.reserve((size_t)std::min(n_kv_, kMaxReserve));
        f_.tensors_.reserve((size_t)std::min(n_tensors_, kMaxReserve));
    }

    void key_value(uint64_t k) {
        context("key", (int64_t)k);
        GGUFKV kv;
        std::string_view key = string("key", true);
        ctx_name_ = key;
        kv.key.assign(key.data(), key.size());
        uint64_t type_at = pos_;
        uint32_t type = read<uint32_t>("value type");
        if (type == HG_GGUF_ARRAY) {
            array(kv);
        } else if (type == HG_GGUF_STRING) {
            kv.str = string("string value", false);
        } else {
            if (!scalar_size(type)) fault("unknown value type " + num(type), type_at);
            scalar(type, kv);
        }
        kv.type = (hg_gguf_value_type)type;
        f_.kvs_.push_back(std::move(kv));
    }

    void scalar(uint32_t type, GGUFKV &kv) {
        switch (type) {
        case HG_GGUF_UINT8: kv.u = read<uint8_t>("UINT8 value"); break;
        case HG_GGUF_INT8: kv.i = read<int8_t>("INT8 value"); break;
        case HG_GGUF_UINT16: kv.u = read<uint16_t>("UINT16 value"); break;
        case HG_GGUF_INT16: kv.i = read<int16_t>("INT16 value"); break;
        case HG_GGUF_UINT32: kv.u = read<uint32_t>("UINT32 value"); break;
        case HG_GGUF_INT32: kv.i = read<int32_t>("INT32 value"); break;
        case HG_GGUF_FLOAT32: kv.f = read<float>("FLOAT32 value"); break;
        case HG_GGUF_BOOL: kv.u = read<uint8_t>("BOOL value") != 0; break;
        case HG_GGUF_UINT64: kv.u = read<uint64_t>("UINT64 value"); break;
        case HG_GGUF_INT64: kv.i = read<int64_t>("INT64 value"); break;
        case HG_GGUF_FLOAT64: kv.f = read<double>("FLOAT64 value"); break;
        }
    }

    void array(GGUFKV &kv) {
        uint64_t type_at = pos_;
        uint32_t et = read<uint32_t>("array element type");
        if (et == HG_GGUF_ARRAY) fault("nested arrays are not supported", type_at);
        uint64_t count_at = pos_;
        uint64_t count = read<uint64_t>("array length");
        kv.arr_type = (hg_gguf_value_type)et;
        kv.arr_n = count;
        kv.arr_data = p_ + pos_;
        if (et == HG_GGUF_STRING) {
            if (count > left() / 8)
                fault("truncated: array of " + num(count) + " strings needs at least " + "8 bytes each, " +
                          num(left()) + " bytes left",
                      count_at);
            // One allocation for any real vocabulary; a lying count grows the index only as far
            // as the strings behind it really go.
            kv.arr_str_at.reserve((size_t)std::min<uint64_t>(count, kMaxStringIndexReserve));
            uint64_t start = pos_;
            for (uint64_t j = 0; j < count; j++) {
                ctx_elem_ = (int64_t)j;
                kv.arr_str_at.push_back(pos_ - start);
                string("string element", false);
            }
            ctx_elem_ = -1;
            return;
        }
        uint64_t es = scalar_size(et);
        if (!es) fault("unknown array element type " + num(et), type_at);
        if (count > left() / es)
            fault("truncated: array of " + num(count) + " " + gguf_type_name(et) + " needs " +
                      (count > UINT64_MAX / es ? std::string("more than 2^64") : num(count * es)) + " bytes, " +
                      num(left()) + " left",
                  count_at);
        pos_ += count * es;
    }

    void alignment() {
        context("key", -1);
        int64_t i = -1;
        for (size_t k = 0; k < f_.kvs_.size(); k++)
            if (f_.kvs_[k].key == "general.alignment") i = (int64_t)k;
        f_.alignment_ = kDefaultAlignment;
        if (i < 0) return;
        const GGUFKV &kv = f_.kvs_[(size_t)i];
        ctx_index_ = i;
        ctx_name_ = kv.key;
        if (kv.type != HG_GGUF_UINT32)
            fault(std::string("general.alignment must be UINT32, not ") + gguf_type_name(kv.type), kv_at_[(size_t)i]);
        if (kv.u == 0 || (kv.u & (kv.u - 1)) != 0)
            fault("general.alignment " + num(kv.u) + " is not a non-zero power of two", kv_at_[(size_t)i]);
        f_.alignment_ = kv.u;
    }

    void tensor_info(uint64_t t, std::vector<uint64_t> &offset_at) {
        context("tensor", (int64_t)t);
        GGUFTensor ti;
        std::string_view name = string("tensor name", true);
        ctx_name_ = name;
        ti.name.assign(name.data(), name.size());
        uint64_t dims_at = pos_;
        uint32_t n_dims = read<uint32_t>("dimension count");
        if (n_dims > kMaxDims) fault(num(n_dims) + " dimensions (at most " + num(kMaxDims) + " supported)", dims_at);
        ti.n_dims = (int)n_dims;
        int64_t n_elements = 1;
        for (uint32_t d = 0; d < n_dims; d++) {
            uint64_t at = pos_;
            uint64_t v = read<uint64_t>("dimension");
            if (v == 0 || v > (uint64_t)INT64_MAX)
                fault("dimension " + num(d) + " is " + std::to_string((int64_t)v) + " (must be > 0)", at);
            if ((int64_t)v > INT64_MAX / n_elements)
                fault("element count overflows: dimension " + num(d) + " (" + num(v) +
                          ") times the dimensions before it exceeds 2^63-1",
                      at);
            ti.ne[d] = (int64_t)v;
            n_elements *= (int64_t)v;
        }
        uint64_t type_at = pos_;
        uint32_t type = read<uint32_t>("tensor type");
        const type_info *tr = type <= (uint32_t)INT_MAX ? type_traits((int)type) : nullptr;
        if (!tr || tr->block_size <= 0 || tr->block_bytes == 0) fault("unknown tensor type id " + num(type), type_at);
        ti.type = (int)type;
        if (ti.ne[0] % tr->block_size != 0)
            fault("row length " + num((uint64_t)ti.ne[0]) + " is not a multiple of the " + tr->name + " block size " +
                      num((uint64_t)tr->block_size),
                  dims_at);
        uint64_t blocks = (uint64_t)(n_elements / tr->block_size);
        if (blocks > UINT64_MAX / tr->block_bytes)
            fault("byte size overflows: " + num(blocks) + " blocks of " + num(tr->block_bytes) + " bytes", dims_at);
        ti.bytes = blocks * tr->block_bytes;
        offset_at.push_back(pos_);
        ti.offset = read<uint64_t>("tensor data offset");
        f_.tensors_.push_back(std::move(ti));
    }

    void data_section(const std::vector<uint64_t> &offset_at) {
        context("header", -1);
        uint64_t a = f_.alignment_;
        // pos_ <= file size and a <= 2^31: no overflow.
        uint64_t start = (pos_ + a - 1) / a * a;
        f_.data_offset_ = start;
        if (f_.tensors_.empty()) return; // a metadata-only file may end without padding
        if (start > n_)
            fault("truncated: tensor data section would start at " + num(start) + ", past the end of the file (" +
                      num(n_) + " bytes)",
                  pos_);
        uint64_t size = n_ - start;
        std::vector<size_t> order(f_.tensors_.size());
        for (size_t t = 0; t < order.size(); t++) {
            GGUFTensor &ti = f_.tensors_[t];
            context("tensor", (int64_t)t);
            ctx_name_ = ti.name;
            if (ti.offset % a != 0)
                fault("data offset " + num(ti.offset) + " is not aligned to " + num(a), offset_at[t]);
            if (ti.offset > size || ti.bytes > size - ti.offset)
                fault("truncated: data at offset " + num(ti.offset) + " + " + num(ti.bytes) +
                          " bytes runs past the end of the file (data section holds " + num(size) + " bytes)",
                      offset_at[t]);
            ti.data = p_ + start + ti.offset;
            order[t] = t;
        }
        std::sort(order.begin(), order.end(),
                  [&](size_t x, size_t y) { return f_.tensors_[x].offset < f_.tensors_[y].offset; });
        for (size_t k = 1; k < order.size(); k++) {
            const GGUFTensor &prev = f_.tensors_[order[k - 1]], &cur = f_.tensors_[order[k]];
            if (prev.offset + prev.bytes > cur.offset) {
                context("tensor", (int64_t)order[k]);
                ctx_name_ = cur.name;
                fault("data [" + num(cur.offset) + ", " + num(cur.offset + cur.bytes) + ") overlaps tensor '" +
                          printable(prev.name) + "' [" + num(prev.offset) + ", " + num(prev.offset + prev.bytes) + ")",
                      offset_at[order[k]]);
            }
        }
    }

    void indexes(const std::vector<uint64_t> &ti_at) {
        f_.key_index_.reserve(f_.kvs_.size());
        for (size_t k = 0; k < f_.kvs_.size(); k++) {
            auto r = f_.key_index_.emplace(std::string_view(f_.kvs_[k].key), (int64_t)k);
            if (!r.second) {
                context("key", (int64_t)k);
                ctx_name_ = f_.kvs_[k].key;
                fault("duplicate key (first at offset " + num(kv_at_[(size_t)r.first->second]) + ")", kv_at_[k]);
            }
        }
        f_.tensor_index_.reserve(f_.tensors_.size());
        for (size_t t = 0; t < f_.tensors_.size(); t++) {
            auto r = f_.tensor_index_.emplace(std::string_view(f_.tensors_[t].name), (int64_t)t);
            if (!r.second) {
                context("tensor", (int64_t)t);
                ctx_name_ = f_.tensors_[t].name;
                fault("duplicate tensor name (first at offset " + num(ti_at[(size_t)r.first->second]) + ")", ti_at[t]);
            }
        }
    }
};

// ---- GGUFFile ----

std::unique_ptr<GGUFFile> GGUFFile::open(const std::string &path) {
    auto map = std::make_unique<MappedFile>(path);
    auto f = parse(map->data(), map->size(), path);
    f->map_ = std::move(map);
    return f;
}

void GGUFFile::release(const GGUFTensor &t) const {
    if (map_) map_->release(t.data, t.bytes);
}

void GGUFFile::release_tensors() const {
    for (const GGUFTensor &t : tensors_) release(t);
}

std::unique_ptr<GGUFFile> GGUFFile::parse(const void *data, uint64_t size, const std::string &name) {
    if (!data && size) fail(name + ": null buffer");
    std::unique_ptr<GGUFFile> f(new GGUFFile());
    f->name_ = name;
    f->base_ = static_cast<const uint8_t *>(data);
    f->size_ = size;
    try {
        GGUFParser(*f).run();
    } catch (const std::bad_alloc &) {
        fail(HG_ERR_NO_MEMORY, name + ": out of memory while reading the metadata");
    }
    return f;
}

int64_t GGUFFile::find_key(std::string_view key) const {
    auto it = key_index_.find(key);
    return it == key_index_.end() ? -1 : it->second;
}

int64_t GGUFFile::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? -1 : it->second;
}

const GGUFKV &GGUFFile::kv(int64_t i) const {
    if (i < 0 || i >= n_kv())
        fail(name_ + ": metadata index " + std::to_string(i) + " out of range [0, " + std::to_string(n_kv()) + ")");
    return kvs_[(size_t)i];
}

static std::string wrong_type(const std::string &file, const GGUFKV &kv, const char *wanted) {
    return file + ": key '" + printable(kv.key) + "' is " + gguf_type_name(kv.type) + ", not " + wanted;
}

uint64_t GGUFFile::kv_u64(int64_t i) const {
    const GGUFKV &v = kv(i);
    if (!is_unsigned(v.type)) fail(wrong_type(name_, v, "an unsigned integer or bool"));
    return v.u;
}

int64_t GGUFFile::kv_i64(int64_t i) const {
    const GGUFKV &v = kv(i);
    if (!is_signed(v.type)) fail(wrong_type(name_, v, "a signed integer"));
    return v.i;
}

double GGUFFile::kv_f64(int64_t i) const {
    const GGUFKV &v = kv(i);
    if (!is_float(v.type)) fail(wrong_type(name_, v, "a float"));
    return v.f;
}

std::string_view GGUFFile::kv_str(int64_t i) const {
    const GGUFKV &v = kv(i);
    if (v.type != HG_GGUF_STRING) fail(wrong_type(name_, v, "a string"));
    return v.str;
}

const GGUFKV &GGUFFile::kv_array(int64_t i) const {
    const GGUFKV &v = kv(i);
    if (v.type != HG_GGUF_ARRAY) fail(wrong_type(name_, v, "an array"));
    return v;
}

const GGUFKV &GGUFFile::array_elem(int64_t i, uint64_t j, ElemKind kind) const {
    const GGUFKV &v = kv_array(i);
    if (j >= v.arr_n)
        fail(name_ + ": key '" + printable(v.key) + "': element " + num(j) + " out of range [0, " + num(v.arr_n) + ")");
    bool ok = kind == ElemKind::Unsigned ? is_unsigned(v.arr_type)
              : kind == ElemKind::Signed ? is_signed(v.arr_type)
              : kind == ElemKind::Float  ? is_float(v.arr_type)
                                         : v.arr_type == HG_GGUF_STRING;
    static const char *const wanted[] = {"unsigned integers or bools", "signed integers", "floats", "strings"};
    if (!ok)
        fail(name_ + ": key '" + printable(v.key) + "' is an array of " + gguf_type_name(v.arr_type) + ", not of " +
             wanted[(int)kind]);
    return v;
}

uint64_t GGUFFile::arr_u64(int64_t i, uint64_t j) const {
    const GGUFKV &v = array_elem(i, j, ElemKind::Unsigned);
    const uint8_t *p = v.arr_data + j * scalar_size(v.arr_type);
    switch (v.arr_type) {
    case HG_GGUF_UINT8: return *p;
    case HG_GGUF_BOOL: return *p != 0;
    case HG_GGUF_UINT16: {
        uint16_t x;
        std::memcpy(&x, p, 2);
        return x;
    }
    case HG_GGUF_UINT32: {
        uint32_t x;
        std::memcpy(&x, p, 4);
        return x;
    }
    default: {
        uint64_t x;
        std::memcpy(&x, p, 8);
        return x;
    }
    }
}

int64_t GGUFFile::arr_i64(int64_t i, uint64_t j) const {
    const GGUFKV &v = array_elem(i, j, ElemKind::Signed);
    const uint8_t *p = v.arr_data + j * scalar_size(v.arr_type);
    switch (v.arr_type) {
    case HG_GGUF_INT8: return (int8_t)*p;
    case HG_GGUF_INT16: {
        int16_t x;
        std::memcpy(&x, p, 2);
        return x;
    }
    case HG_GGUF_INT32: {
        int32_t x;
        std::memcpy(&x, p, 4);
        return x;
    }
    default: {
        int64_t x;
        std::memcpy(&x, p, 8);
        return x;
    }
    }
}

double GGUFFile::arr_f64(int64_t i, uint64_t j) const {
    const GGUFKV &v = array_elem(i, j, ElemKind::Float);
    const uint8_t *p = v.arr_data + j * scalar_size(v.arr_type);
    if (v.arr_type == HG_GGUF_FLOAT32) {
        float x;
        std::memcpy(&x, p, 4);
        return x;
    }
    double x;
    std::memcpy(&x, p, 8);
    return x;
}

std::string_view GGUFFile::arr_str(int64_t i, uint64_t j) const {
    const GGUFKV &v = array_elem(i, j, ElemKind::String);
    const uint8_t *p = v.arr_data + v.arr_str_at[(size_t)j];
    uint64_t len;
    std::memcpy(&len, p, 8);
    return std::string_view(reinterpret_cast<const char *>(p + 8), (size_t)len);
}

const void *GGUFFile::arr_data(int64_t i) const {
    const GGUFKV &v = kv_array(i);
    if (v.arr_type == HG_GGUF_STRING)
        fail(name_ + ": key '" + printable(v.key) + "' is an array of strings: no raw data pointer");
    return v.arr_data;
}

const GGUFTensor &GGUFFile::tensor(int64_t t) const {
    if (t < 0 || t >= n_tensors())
        fail(name_ + ": tensor index " + std::to_string(t) + " out of range [0, " + std::to_string(n_tensors()) + ")");
    return tensors_[(size_t)t];
}

} // namespace hg
