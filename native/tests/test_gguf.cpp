// GGUF reader tests: files are built in memory by tests/gguf_builder.h, written to a temp file
// (tmpfs when there is one) and opened through the C API. Valid files must read back exactly;
// every malformed one must be refused with a message naming the file and the fault.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "healthgpt.h"
#include "tests/check.h"
#include "tests/gguf_builder.h"

using namespace gguftest;

namespace {

// Opens bytes that must be refused; returns the message ("" and a failure if accepted).
std::string reject(const std::vector<uint8_t> &bytes, const char *file, int line) {
    TempFile tf(bytes);
    hg_gguf *g = hg_gguf_open(tf.path.c_str());
    if (g) {
        hg_gguf_close(g);
        hgtest::report(file, line, "malformed file was accepted");
        return "";
    }
    std::string msg = hg_last_error();
    if (msg.find(tf.path) == std::string::npos) hgtest::report(file, line, "message does not name the file: " + msg);
    return msg;
}

#define CHECK_REJECT(bytes, needle)                                                                                    \
    do {                                                                                                               \
        std::string _m = reject((bytes), __FILE__, __LINE__);                                                          \
        if (!_m.empty() && _m.find(needle) == std::string::npos)                                                       \
            hgtest::report(__FILE__, __LINE__, std::string("message lacks '") + (needle) + "': " + _m);                \
    } while (0)

// String getters as std::string ("<null>" on failure); a function so the length is read
// after the call that sets it.
std::string kv_string(const hg_gguf *g, int64_t i) {
    uint64_t n = 0;
    const char *p = hg_gguf_kv_str(g, i, &n);
    return p ? std::string(p, (size_t)n) : std::string("<null>");
}
std::string arr_string(const hg_gguf *g, int64_t i, uint64_t j) {
    uint64_t n = 0;
    const char *p = hg_gguf_kv_arr_str(g, i, j, &n);
    return p ? std::string(p, (size_t)n) : std::string("<null>");
}

// ---- the reference file: every value type, arrays of each, several tensor types ----

const std::string kUnicode = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac \xf0\x9f\xa9\xba"; // é ö € 🩺

FileSpec all_types_spec(uint32_t version) {
    FileSpec s;
    s.version = version;
    s.kvs = {
        {"general.architecture", str_value("phi3")},
        {"t.u8", scalar<uint8_t>(HG_GGUF_UINT8, 200)},
        {"t.i8", scalar<int8_t>(HG_GGUF_INT8, -100)},
        {"t.u16", scalar<uint16_t>(HG_GGUF_UINT16, 60000)},
        {"t.i16", scalar<int16_t>(HG_GGUF_INT16, -30000)},
        {"t.u32", scalar<uint32_t>(HG_GGUF_UINT32, 4000000000u)},
        {"t.i32", scalar<int32_t>(HG_GGUF_INT32, -2000000000)},
        {"t.f32", scalar<float>(HG_GGUF_FLOAT32, 1.5f)},
        {"t.bool_true", scalar<uint8_t>(HG_GGUF_BOOL, 1)},
        {"t.bool_false", scalar<uint8_t>(HG_GGUF_BOOL, 0)},
        {"t.str", str_value(kUnicode)},
        {"t.str_empty", str_value("")},
        {"t.u64", scalar<uint64_t>(HG_GGUF_UINT64, (1ull << 63) + 5)},
        {"t.i64", scalar<int64_t>(HG_GGUF_INT64, -(1ll << 62))},
        {"t.f64", scalar<double>(HG_GGUF_FLOAT64, 3.141592653589793)},
        {"a.u8", array_of<uint8_t>(HG_GGUF_UINT8, {0, 1, 255})},
        {"a.i8", array_of<int8_t>(HG_GGUF_INT8, {-128, 0, 127})},
        {"a.u16", array_of<uint16_t>(HG_GGUF_UINT16, {0, 65535})},
        {"a.i16", array_of<int16_t>(HG_GGUF_INT16, {-32768, 32767})},
        {"a.u32", array_of<uint32_t>(HG_GGUF_UINT32, {1, 2, 3, 4294967295u})},
        {"a.i32", array_of<int32_t>(HG_GGUF_INT32, {-5, 5})},
        {"a.f32", array_of<float>(HG_GGUF_FLOAT32, {0.25f, -2.0f})},
        {"a.bool", array_of<uint8_t>(HG_GGUF_BOOL, {1, 0, 1})},
        {"a.u64", array_of<uint64_t>(HG_GGUF_UINT64, {~0ull, 7})},
        {"a.i64", array_of<int64_t>(HG_GGUF_INT64, {INT64_MIN, INT64_MAX})},
        {"a.f64", array_of<double>(HG_GGUF_FLOAT64, {1e300, -0.5})},
        {"a.str", str_array({"<s>", "", kUnicode, "\xe2\x96\x81the"})},
        {"a.empty", array_of<uint32_t>(HG_GGUF_UINT32, {})},
        {"t\xc3\xa9.unicode_key", scalar<uint32_t>(HG_GGUF_UINT32, 7)},
    };
    s.tensors = {
        {"token_embd.weight", {4, 3}, HG_TYPE_F32},
        {"blk.0.attn_norm.weight", {8}, HG_TYPE_F16},
        {"blk.0.ffn_up.weight", {64, 2}, HG_TYPE_Q8_0},
        {"output.weight", {256, 1, 1, 1}, HG_TYPE_Q4_K},
        {"t\xc3\xa9nsor", {3}, HG_TYPE_I8},
    };
    return s;
}

void check_all_types(const hg_gguf *g, const Built &b, uint32_t version) {
    CHECK(hg_gguf_version(g) == version);
    CHECK(hg_gguf_alignment(g) == 32);
    CHECK(hg_gguf_file_size(g) == b.bytes.size());
    CHECK(hg_gguf_data_offset(g) == b.data_offset);
    CHECK(hg_gguf_n_kv(g) == 29);
    auto key = [&](const char *k) {
        int64_t i = hg_gguf_find_key(g, k);
        CHECK_MSG(i >= 0, k);
        return i;
    };
    uint64_t len = 0;
    CHECK(kv_string(g, key("general.architecture")) == "phi3");
    CHECK(std::string(hg_gguf_kv_key(g, 0)) == "general.architecture");
    CHECK(hg_gguf_kv_type(g, key("t.u8")) == HG_GGUF_UINT8);
    CHECK(hg_gguf_kv_u64(g, key("t.u8")) == 200);
    CHECK(hg_gguf_kv_i64(g, key("t.i8")) == -100);
    CHECK(hg_gguf_kv_u64(g, key("t.u16")) == 60000);
    CHECK(hg_gguf_kv_i64(g, key("t.i16")) == -30000);
    CHECK(hg_gguf_kv_u64(g, key("t.u32")) == 4000000000u);
    CHECK(hg_gguf_kv_i64(g, key("t.i32")) == -2000000000);
    CHECK(hg_gguf_kv_f64(g, key("t.f32")) == 1.5);
    CHECK(hg_gguf_kv_type(g, key("t.bool_true")) == HG_GGUF_BOOL);
    CHECK(hg_gguf_kv_u64(g, key("t.bool_true")) == 1);
    CHECK(hg_gguf_kv_u64(g, key("t.bool_false")) == 0);
    CHECK(kv_string(g, key("t.str")) == kUnicode);
    CHECK(hg_gguf_kv_str(g, key("t.str_empty"), &len) != nullptr && len == 0);
    CHECK(hg_gguf_kv_u64(g, key("t.u64")) == (1ull << 63) + 5);
    CHECK(hg_gguf_kv_i64(g, key("t.i64")) == -(1ll << 62));
    CHECK(hg_gguf_kv_f64(g, key("t.f64")) == 3.141592653589793);
    CHECK(hg_gguf_kv_u64(g, key("t\xc3\xa9.unicode_key")) == 7);

    int64_t i = key("a.u8");
    CHECK(hg_gguf_kv_type(g, i) == HG_GGUF_ARRAY);
    CHECK(hg_gguf_kv_arr_type(g, i) == HG_GGUF_UINT8);
    CHECK(hg_gguf_kv_arr_n(g, i) == 3);
    CHECK(hg_gguf_kv_arr_u64(g, i, 2) == 255);
    const uint8_t *raw = (const uint8_t *)hg_gguf_kv_arr_data(g, i);
    CHECK(raw && raw[0] == 0 && raw[1] == 1 && raw[2] == 255);
    i = key("a.i8");
    CHECK(hg_gguf_kv_arr_i64(g, i, 0) == -128 && hg_gguf_kv_arr_i64(g, i, 2) == 127);
    i = key("a.u16");
    CHECK(hg_gguf_kv_arr_u64(g, i, 1) == 65535);
    i = key("a.i16");
    CHECK(hg_gguf_kv_arr_i64(g, i, 0) == -32768 && hg_gguf_kv_arr_i64(g, i, 1) == 32767);
    i = key("a.u32");
    CHECK(hg_gguf_kv_arr_n(g, i) == 4 && hg_gguf_kv_arr_u64(g, i, 3) == 4294967295u);
    i = key("a.i32");
    CHECK(hg_gguf_kv_arr_i64(g, i, 0) == -5 && hg_gguf_kv_arr_i64(g, i, 1) == 5);
    i = key("a.f32");
    CHECK(hg_gguf_kv_arr_f64(g, i, 0) == 0.25 && hg_gguf_kv_arr_f64(g, i, 1) == -2.0);
    i = key("a.bool");
    CHECK(hg_gguf_kv_arr_type(g, i) == HG_GGUF_BOOL);
    CHECK(hg_gguf_kv_arr_u64(g, i, 0) == 1 && hg_gguf_kv_arr_u64(g, i, 1) == 0);
    i = key("a.u64");
    CHECK(hg_gguf_kv_arr_u64(g, i, 0) == ~0ull && hg_gguf_kv_arr_u64(g, i, 1) == 7);
    i = key("a.i64");
    CHECK(hg_gguf_kv_arr_i64(g, i, 0) == INT64_MIN && hg_gguf_kv_arr_i64(g, i, 1) == INT64_MAX);
    i = key("a.f64");
    CHECK(hg_gguf_kv_arr_f64(g, i, 0) == 1e300 && hg_gguf_kv_arr_f64(g, i, 1) == -0.5);
    i = key("a.str");
    CHECK(hg_gguf_kv_arr_type(g, i) == HG_GGUF_STRING && hg_gguf_kv_arr_n(g, i) == 4);
    CHECK(arr_string(g, i, 0) == "<s>");
    CHECK(hg_gguf_kv_arr_str(g, i, 1, &len) != nullptr && len == 0);
    CHECK(arr_string(g, i, 2) == kUnicode);
    CHECK(arr_string(g, i, 3) == "\xe2\x96\x81the");
    // Views into the mapping, not copies.
    const char *first = hg_gguf_kv_arr_str(g, i, 0, &len);
    CHECK(first && first > (const char *)hg_gguf_tensor_data(g, 0) - b.data_offset);
    i = key("a.empty");
    CHECK(hg_gguf_kv_arr_n(g, i) == 0 && hg_gguf_kv_arr_type(g, i) == HG_GGUF_UINT32);

    CHECK(hg_gguf_n_tensors(g) == 5);
    const int64_t dims[5][4] = {{4, 3, 1, 1}, {8, 1, 1, 1}, {64, 2, 1, 1}, {256, 1, 1, 1}, {3, 1, 1, 1}};
    const int n_dims[5] = {2, 1, 2, 4, 1};
    const int types[5] = {HG_TYPE_F32, HG_TYPE_F16, HG_TYPE_Q8_0, HG_TYPE_Q4_K, HG_TYPE_I8};
    const uint64_t bytes[5] = {48, 16, 136, 144, 3};
    const char *names[5] = {"token_embd.weight", "blk.0.attn_norm.weight", "blk.0.ffn_up.weight", "output.weight",
                            "t\xc3\xa9nsor"};
    for (int t = 0; t < 5; t++) {
        CHECK(hg_gguf_find_tensor(g, names[t]) == t);
        CHECK(std::string(hg_gguf_tensor_name(g, t)) == names[t]);
        CHECK(hg_gguf_tensor_n_dims(g, t) == n_dims[t]);
        for (int d = 0; d < 4; d++) CHECK(hg_gguf_tensor_dim(g, t, d) == dims[t][d]);
        CHECK(hg_gguf_tensor_type(g, t) == types[t]);
        CHECK(hg_gguf_tensor_bytes(g, t) == bytes[t]);
        CHECK(hg_gguf_tensor_offset(g, t) == b.offsets[t]);
        CHECK(hg_gguf_tensor_offset(g, t) % 32 == 0);
        const uint8_t *p = (const uint8_t *)hg_gguf_tensor_data(g, t);
        CHECK(p && (uintptr_t)p % 32 == 0);
        bool same = true;
        for (uint64_t k = 0; p && k < bytes[t]; k++) same = same && p[k] == pattern((size_t)t, k);
        CHECK_MSG(same, names[t]);
    }
    CHECK(hg_gguf_find_tensor(g, "missing") == -1);
    CHECK(hg_gguf_find_key(g, "missing") == -1);
}

// Offset of the first occurrence of `needle` in the built file (for patching fields).
size_t find(const std::vector<uint8_t> &b, const std::string &needle) {
    auto it = std::search(b.begin(), b.end(), needle.begin(), needle.end());
    return it == b.end() ? std::string::npos : (size_t)(it - b.begin());
}
template <class T> void patch(std::vector<uint8_t> &b, size_t at, T v) {
    if (at + sizeof(T) <= b.size()) std::memcpy(b.data() + at, &v, sizeof(T));
}

FileSpec one_tensor(TensorSpec t) {
    FileSpec s;
    s.kvs = {{"general.architecture", str_value("llama")}};
    s.tensors = {t};
    return s;
}

FileSpec one_kv(const std::string &key, Value v) {
    FileSpec s;
    s.kvs = {{key, v}};
    return s;
}

} // namespace

// ---- valid files ----

TEST(valid_v3_all_types) {
    Built b = build(all_types_spec(3));
    TempFile tf(b.bytes);
    hg_gguf *g = hg_gguf_open(tf.path.c_str());
    CHECK_MSG(g, hg_last_error());
    if (!g) return;
    check_all_types(g, b, 3);
    hg_gguf_close(g);
}

TEST(valid_v2_all_types) {
    Built b = build(all_types_spec(2));
    TempFile tf(b.bytes);
    hg_gguf *g = hg_gguf_open(tf.path.c_str());
    CHECK_MSG(g, hg_last_error());
    if (!g) return;
    check_all_types(g, b, 2);
    hg_gguf_close(g);
}

TEST(alignment_64) {
    FileSpec s = all_types_spec(3);
    s.alignment = 64;
    s.kvs.push_back({"general.alignment", scalar<uint32_t>(HG_GGUF_UINT32, 64)});
    Built b = build(s);
    TempFile tf(b.bytes);
    hg_gguf *g = hg_gguf_open(tf.path.c_str());
    CHECK_MSG(g, hg_last_error());
    if (!g) return;
    CHECK(hg_gguf_alignment(g) == 64);
    CHECK(hg_gguf_data_offset(g) % 64 == 0 && hg_gguf_data_offset(g) == b.data_offset);
    for (int64_t t = 0; t < hg_gguf_n_tensors(g); t++) {
        CHECK(hg_gguf_tensor_offset(g, t) % 64 == 0);
        CHECK((uintptr_t)hg_gguf_tensor_data(g, t) % 64 == 0);
        const uint8_t *p = (const uint8_t *)hg_gguf_tensor_data(g, t);
        CHECK(p && p[0] == pattern((size_t)t, 0));
    }
    hg_gguf_close(g);

    // A 32-aligned offset is not 64-aligned.
    s.tensors[1].offset = 64 + 32;
    CHECK_REJECT(build(s).bytes, "not aligned to 64");
}

TEST(metadata_only_file) {
    FileSpec s = one_kv("general.architecture", str_value("llama"));
    s.pad_end = false; // ends right after the last value
    Built b = build(s);
    CHECK(b.bytes.size() % 32 != 0);
    TempFile tf(b.bytes);
    hg_gguf *g = hg_gguf_open(tf.path.c_str());
    CHECK_MSG(g, hg_last_error());
    if (!g) return;
    CHECK(hg_gguf_n_tensors(g) == 0 && hg_gguf_n_kv(g) == 1);
    hg_gguf_close(g);
}

// ---- faults ----

TEST(rejects_bad_header) {
    std::vector<uint8_t> good = build(all_types_spec(3)).bytes;
    CHECK_REJECT(std::vector<uint8_t>{}, "file is empty");
    CHECK_REJECT(std::vector<uint8_t>({'G', 'G'}), "truncated: magic");
    std::vector<uint8_t> b = good;
    b[0] = 'X';
    CHECK_REJECT(b, "bad magic");
    b = good;
    patch<uint32_t>(b, 4, 1);
    CHECK_REJECT(b, "version 1 is not supported");
    patch<uint32_t>(b, 4, 0);
    CHECK_REJECT(b, "unknown GGUF version 0");
    patch<uint32_t>(b, 4, 4);
    CHECK_REJECT(b, "unknown GGUF version 4");
    patch<uint32_t>(b, 4, 0x03000000); // version 3 written big-endian
    CHECK_REJECT(b, "big-endian");
    CHECK_REJECT(std::vector<uint8_t>(good.begin(), good.begin() + 12), "truncated: tensor count");
}

TEST(rejects_absurd_counts) {
    std::vector<uint8_t> good = build(all_types_spec(3)).bytes;
    std::vector<uint8_t> b = good;
    patch<uint64_t>(b, 8, 1ull << 60);
    CHECK_REJECT(b, "absurd tensor count 1152921504606846976");
    b = good;
    patch<uint64_t>(b, 16, 1ull << 60);
    CHECK_REJECT(b, "absurd metadata key/value count");
    patch<uint64_t>(b, 16, ~0ull);
    CHECK_REJECT(b, "absurd metadata key/value count");
    // More entries than the file holds, yet under the byte bound.
    b = good;
    patch<uint64_t>(b, 16, 40);
    CHECK_REJECT(b, "");

    // String length fields.
    b = good;
    patch<uint64_t>(b, 24, 1ull << 63); // the first key's length
    CHECK_REJECT(b, "truncated: key length 9223372036854775808 runs past the end");
    b = good;
    size_t at = find(b, "phi3") - 8;
    patch<uint64_t>(b, at, ~0ull);
    CHECK_REJECT(b, "truncated: string value length");
    // Array counts: fixed-size and string elements.
    b = good;
    at = find(b, "a.u32") + 5 + 4 + 4; // key bytes, value type, element type
    patch<uint64_t>(b, at, 1ull << 62);
    CHECK_REJECT(b, "truncated: array of 4611686018427387904 UINT32");
    b = good;
    at = find(b, "a.str") + 5 + 4 + 4;
    patch<uint64_t>(b, at, 1ull << 60);
    CHECK_REJECT(b, "truncated: array of 1152921504606846976 strings");
    b = good;
    at = find(b, "<s>") - 8;
    patch<uint64_t>(b, at, 1ull << 40);
    CHECK_REJECT(b, "element 0: truncated: string element length");
}

TEST(rejects_truncation_everywhere) {
    std::vector<uint8_t> good = build(all_types_spec(3)).bytes;
    for (size_t n = 0; n < good.size(); n++) {
        std::string m = reject(std::vector<uint8_t>(good.begin(), good.begin() + n), __FILE__, __LINE__);
        CHECK_MSG(m.find("truncated") != std::string::npos || (n == 0 && m.find("empty") != std::string::npos),
                  "size " + std::to_string(n) + ": " + m);
    }
    // Cutting into the last tensor's data names that tensor.
    std::vector<uint8_t> b(good.begin(), good.end() - 1);
    CHECK_REJECT(b, "tensor #4 't\xc3\xa9nsor': truncated: data at offset");
}

TEST(rejects_bad_values) {
    Value bad_type = scalar<uint32_t>(13, 0);
    CHECK_REJECT(build(one_kv("k", bad_type)).bytes, "key #0 'k': unknown value type 13");
    Value bad_elem = array_of<uint32_t>(13, {1});
    CHECK_REJECT(build(one_kv("k", bad_elem)).bytes, "unknown array element type 13");
    Value nested = array_of<uint32_t>(HG_GGUF_ARRAY, {});
    CHECK_REJECT(build(one_kv("k", nested)).bytes, "nested arrays are not supported");
    CHECK_REJECT(build(one_kv("general.alignment", scalar<uint64_t>(HG_GGUF_UINT64, 32))).bytes,
                 "general.alignment must be UINT32, not UINT64");
    CHECK_REJECT(build(one_kv("general.alignment", scalar<uint32_t>(HG_GGUF_UINT32, 0))).bytes,
                 "general.alignment 0 is not a non-zero power of two");
    CHECK_REJECT(build(one_kv("general.alignment", scalar<uint32_t>(HG_GGUF_UINT32, 48))).bytes,
                 "general.alignment 48 is not a non-zero power of two");
    FileSpec s = all_types_spec(3);
    s.kvs.push_back({"t.u8", scalar<uint8_t>(HG_GGUF_UINT8, 1)});
    CHECK_REJECT(build(s).bytes, "key #29 't.u8': duplicate key (first at offset 68)");
}

TEST(rejects_bad_utf8_and_names) {
    const char *bad[] = {
        "\xff",                // never valid
        "a\x80",               // stray continuation byte
        "\xc0\xaf",            // overlong '/'
        "\xe0\x80\xaf",        // overlong, 3 bytes
        "\xed\xa0\x80",        // UTF-16 surrogate
        "\xf4\x90\x80\x80",    // past U+10FFFF
        "abc\xe2\x82",         // cut sequence
        "\xf8\x88\x80\x80\x80" // 5-byte form
    };
    for (const char *s : bad) {
        CHECK_REJECT(build(one_kv(s, scalar<uint8_t>(HG_GGUF_UINT8, 1))).bytes, "key is not valid UTF-8");
        CHECK_REJECT(build(one_kv("k", str_value(s))).bytes, "'k': string value is not valid UTF-8");
        CHECK_REJECT(build(one_kv("k", str_array({"ok", s}))).bytes,
                     "'k' element 1: string element is not valid UTF-8");
        CHECK_REJECT(build(one_tensor({s, {4}, HG_TYPE_F32})).bytes, "tensor name is not valid UTF-8");
    }
    CHECK_REJECT(build(one_kv(std::string("a\0b", 3), scalar<uint8_t>(HG_GGUF_UINT8, 1))).bytes,
                 "key contains a NUL byte");
    CHECK_REJECT(build(one_kv("", scalar<uint8_t>(HG_GGUF_UINT8, 1))).bytes, "key is empty");
    CHECK_REJECT(build(one_tensor({"", {4}, HG_TYPE_F32})).bytes, "tensor name is empty");
    CHECK_REJECT(build(one_tensor({std::string("w\0", 2), {4}, HG_TYPE_F32})).bytes, "tensor name contains a NUL byte");
}

TEST(rejects_bad_tensors) {
    CHECK_REJECT(build(one_tensor({"w", {4, 1, 1, 1, 1}, HG_TYPE_F32})).bytes,
                 "tensor #0 'w': 5 dimensions (at most 4 supported)");
    CHECK_REJECT(build(one_tensor({"w", {4, 0}, HG_TYPE_F32, kAuto, 0})).bytes, "dimension 1 is 0 (must be > 0)");
    CHECK_REJECT(build(one_tensor({"w", {1ull << 63}, HG_TYPE_F32, kAuto, 0})).bytes,
                 "dimension 0 is -9223372036854775808 (must be > 0)");
    CHECK_REJECT(build(one_tensor({"w", {1ull << 32, 1ull << 32}, HG_TYPE_F32, kAuto, 0})).bytes,
                 "element count overflows");
    CHECK_REJECT(build(one_tensor({"w", {1ull << 62, 1}, HG_TYPE_F32, kAuto, 0})).bytes, "byte size overflows");
    CHECK_REJECT(build(one_tensor({"w", {48, 2}, HG_TYPE_Q8_0, kAuto, 0})).bytes,
                 "row length 48 is not a multiple of the q8_0 block size 32");
    for (uint32_t type : {4u, 5u, 31u, 36u, 42u, 1000u, 0x80000000u, 0xffffffffu})
        CHECK_REJECT(build(one_tensor({"w", {32}, type, kAuto, 0})).bytes,
                     "unknown tensor type id " + std::to_string(type));
    CHECK_REJECT(build(one_tensor({"w", {4}, HG_TYPE_F32, 8})).bytes, "data offset 8 is not aligned to 32");
    CHECK_REJECT(build(one_tensor({"w", {4}, HG_TYPE_F32, 1ll << 40})).bytes,
                 "truncated: data at offset 1099511627776 + 16 bytes runs past the end");
    CHECK_REJECT(build(one_tensor({"w", {4}, HG_TYPE_F32, ~0ull - 31})).bytes, "runs past the end of the file");
    CHECK_REJECT(build(one_tensor({"w", {1ull << 40}, HG_TYPE_F32})).bytes, "runs past the end of the file");

    FileSpec s;
    s.tensors = {{"a", {64}, HG_TYPE_F32, 0}, {"b", {8}, HG_TYPE_F32, 64}, {"c", {8}, HG_TYPE_F32, 256}};
    CHECK_REJECT(build(s).bytes, "tensor #1 'b': data [64, 96) overlaps tensor 'a' [0, 256)");
    s.tensors = {{"a", {8}, HG_TYPE_F32, 0}, {"b", {8}, HG_TYPE_F32, 0}};
    CHECK_REJECT(build(s).bytes, "overlaps tensor");
    s.tensors = {{"w", {8}, HG_TYPE_F32}, {"v", {8}, HG_TYPE_F32}, {"w", {8}, HG_TYPE_F32}};
    CHECK_REJECT(build(s).bytes, "tensor #2 'w': duplicate tensor name (first at offset 24)");
    // Data section start past the end of the file.
    std::vector<uint8_t> b = build(one_tensor({"w", {8}, HG_TYPE_F32})).bytes;
    size_t header_end = find(b, "w") + 1 + 4 + 8 + 4 + 8;
    b.resize(header_end + 1);
    CHECK_REJECT(b, "truncated: tensor data section would start at");
}

TEST(open_errors) {
    hg_gguf *g = hg_gguf_open("/nonexistent/dir/model.gguf");
    CHECK(!g);
    CHECK(std::string(hg_last_error()).find("/nonexistent/dir/model.gguf: cannot open") == 0);
    g = hg_gguf_open("/tmp");
    CHECK(!g);
    CHECK(std::string(hg_last_error()).find("not a regular file") != std::string::npos);
    // a named pipe with no writer: refused at once (a plain open would wait for a writer forever)
    const std::string fifo = "/tmp/hg_test_gguf_fifo_" + std::to_string(getpid());
    if (mkfifo(fifo.c_str(), 0600) == 0) {
        g = hg_gguf_open(fifo.c_str());
        CHECK(!g);
        CHECK(std::string(hg_last_error()).find("not a regular file") != std::string::npos);
        unlink(fifo.c_str());
    }
    CHECK(!hg_gguf_open(nullptr));
    hg_gguf_close(nullptr);
}

TEST(c_api_misuse) {
    Built b = build(all_types_spec(3));
    TempFile tf(b.bytes);
    hg_gguf *g = hg_gguf_open(tf.path.c_str());
    CHECK(g);
    if (!g) return;
    auto fresh = [] { hg_gguf_open(""); }; // resets the last error to a known message
    uint64_t len = 99;

    fresh();
    CHECK(hg_gguf_kv_key(g, 29) == nullptr);
    CHECK(std::string(hg_last_error()).find("metadata index 29 out of range [0, 29)") != std::string::npos);
    fresh();
    CHECK(hg_gguf_kv_key(g, -1) == nullptr && std::string(hg_last_error()).find("out of range") != std::string::npos);
    CHECK(hg_gguf_kv_type(g, 100) == -1);
    int64_t u8 = hg_gguf_find_key(g, "t.u8"), s = hg_gguf_find_key(g, "t.str"), as = hg_gguf_find_key(g, "a.str"),
            au = hg_gguf_find_key(g, "a.u32");
    fresh();
    CHECK(hg_gguf_kv_i64(g, u8) == 0);
    CHECK(std::string(hg_last_error()).find("key 't.u8' is UINT8, not a signed integer") != std::string::npos);
    CHECK(hg_gguf_kv_f64(g, u8) == 0.0);
    CHECK(hg_gguf_kv_u64(g, s) == 0);
    CHECK(hg_gguf_kv_str(g, u8, &len) == nullptr && len == 0);
    CHECK(hg_gguf_kv_arr_type(g, u8) == -1);
    CHECK(hg_gguf_kv_arr_n(g, s) == 0);
    CHECK(hg_gguf_kv_arr_u64(g, as, 0) == 0);
    CHECK(std::string(hg_last_error()).find("is an array of STRING, not of unsigned") != std::string::npos);
    CHECK(hg_gguf_kv_arr_str(g, au, 0, &len) == nullptr);
    CHECK(hg_gguf_kv_arr_str(g, as, 4, &len) == nullptr);
    CHECK(std::string(hg_last_error()).find("element 4 out of range [0, 4)") != std::string::npos);
    CHECK(hg_gguf_kv_arr_u64(g, au, ~0ull) == 0);
    CHECK(hg_gguf_kv_arr_data(g, as) == nullptr);
    CHECK(hg_gguf_kv_arr_data(g, u8) == nullptr);
    CHECK(hg_gguf_tensor_name(g, 5) == nullptr);
    CHECK(std::string(hg_last_error()).find("tensor index 5 out of range [0, 5)") != std::string::npos);
    CHECK(hg_gguf_tensor_n_dims(g, -1) == -1);
    CHECK(hg_gguf_tensor_dim(g, 0, 4) == -1);
    CHECK(hg_gguf_tensor_dim(g, 0, -1) == -1);
    CHECK(hg_gguf_tensor_type(g, 99) == -1);
    CHECK(hg_gguf_tensor_data(g, 99) == nullptr);
    CHECK(hg_gguf_tensor_bytes(g, 99) == 0 && hg_gguf_tensor_offset(g, 99) == 0);
    CHECK(hg_gguf_find_key(g, nullptr) == -1 && hg_gguf_find_tensor(g, nullptr) == -1);

    fresh();
    CHECK(hg_gguf_n_kv(nullptr) == -1);
    CHECK(std::string(hg_last_error()) == "null GGUF handle");
    CHECK(hg_gguf_version(nullptr) == 0 && hg_gguf_n_tensors(nullptr) == -1);
    CHECK(hg_gguf_kv_str(nullptr, 0, &len) == nullptr);
    hg_gguf_close(g);
}

// ---- gguf-py's file read back against what gguf-py's own reader saw ----

namespace {

// Just enough JSON for the fixture. Numbers keep their text so 64-bit integers stay exact.
struct Json {
    enum Kind { Null, Bool, Num, Str, Arr, Obj } kind = Null;
    bool b = false;
    std::string text; // Num: the literal; Str: the value (UTF-8)
    std::vector<Json> arr;
    std::vector<std::pair<std::string, Json>> obj;
    const Json *get(const std::string &k) const {
        for (auto &p : obj)
            if (p.first == k) return &p.second;
        return nullptr;
    }
};

struct JsonParser {
    const std::string &s;
    size_t i = 0;
    bool ok = true;
    void ws() {
        while (i < s.size() && std::isspace((unsigned char)s[i])) i++;
    }
    bool eat(char c) {
        ws();
        if (i < s.size() && s[i] == c) {
            i++;
            return true;
        }
        return false;
    }
    static void utf8(std::string &out, uint32_t cp) {
        if (cp < 0x80) {
            out += (char)cp;
        } else if (cp < 0x800) {
            out += (char)(0xC0 | (cp >> 6));
            out += (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += (char)(0xE0 | (cp >> 12));
            out += (char)(0x80 | ((cp >> 6) & 0x3F));
            out += (char)(0x80 | (cp & 0x3F));
        } else {
            out += (char)(0xF0 | (cp >> 18));
            out += (char)(0x80 | ((cp >> 12) & 0x3F));
            out += (char)(0x80 | ((cp >> 6) & 0x3F));
            out += (char)(0x80 | (cp & 0x3F));
        }
    }
    uint32_t hex4() {
        if (i + 4 > s.size()) return ok = false, 0;
        uint32_t v = (uint32_t)std::strtoul(s.substr(i, 4).c_str(), nullptr, 16);
        i += 4;
        return v;
    }
    std::string str() {
        std::string out;
        if (!eat('"')) return ok = false, out;
        while (i < s.size() && s[i] != '"') {
            char c = s[i++];
            if (c != '\\') {
                out += c;
                continue;
            }
            char e = i < s.size() ? s[i++] : 0;
            switch (e) {
            case 'n': out += '\n'; break;
            case 't': out += '\t'; break;
            case 'r': out += '\r'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'u': {
                uint32_t cp = hex4();
                if (cp >= 0xD800 && cp < 0xDC00 && s.compare(i, 2, "\\u") == 0) {
                    i += 2;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4() - 0xDC00);
                }
                utf8(out, cp);
                break;
            }
            default: out += e;
            }
        }
        i++;
        return out;
    }
    Json value() {
        Json j;
        ws();
        if (i >= s.size()) return ok = false, j;
        char c = s[i];
        if (c == '{') {
            j.kind = Json::Obj;
            i++;
            if (eat('}')) return j;
            do {
                std::string k = str();
                if (!eat(':')) return ok = false, j;
                j.obj.push_back({k, value()});
            } while (ok && eat(','));
            if (!eat('}')) ok = false;
        } else if (c == '[') {
            j.kind = Json::Arr;
            i++;
            if (eat(']')) return j;
            do j.arr.push_back(value());
            while (ok && eat(','));
            if (!eat(']')) ok = false;
        } else if (c == '"') {
            j.kind = Json::Str;
            j.text = str();
        } else if (s.compare(i, 4, "true") == 0 || s.compare(i, 5, "false") == 0) {
            j.kind = Json::Bool;
            j.b = c == 't';
            i += j.b ? 4 : 5;
        } else if (s.compare(i, 4, "null") == 0) {
            i += 4;
        } else {
            j.kind = Json::Num;
            size_t st = i;
            while (i < s.size() && (std::isdigit((unsigned char)s[i]) || std::strchr("+-.eE", s[i]))) i++;
            j.text = s.substr(st, i - st);
            if (j.text.empty()) ok = false;
        }
        return j;
    }
};

// One scalar of GGUF type `type`, read by `u`/`i`/`f`/`str`, against a JSON value.
template <class U, class I, class F, class S> bool same_value(int type, const Json &j, U u, I i, F f, S str) {
    switch (type) {
    case HG_GGUF_BOOL: return j.kind == Json::Bool && u() == (uint64_t)j.b;
    case HG_GGUF_UINT8:
    case HG_GGUF_UINT16:
    case HG_GGUF_UINT32:
    case HG_GGUF_UINT64: return j.kind == Json::Num && u() == std::strtoull(j.text.c_str(), nullptr, 10);
    case HG_GGUF_INT8:
    case HG_GGUF_INT16:
    case HG_GGUF_INT32:
    case HG_GGUF_INT64: return j.kind == Json::Num && i() == std::strtoll(j.text.c_str(), nullptr, 10);
    case HG_GGUF_FLOAT32:
    case HG_GGUF_FLOAT64: {
        if (j.kind != Json::Num) return false;
        double want = std::strtod(j.text.c_str(), nullptr), got = f();
        return std::fabs(got - want) <= 1e-6 * std::max(1.0, std::fabs(want));
    }
    case HG_GGUF_STRING: return j.kind == Json::Str && str() == j.text;
    default: return false;
    }
}

} // namespace

TEST(pygguf_fixture) {
    const char *path = "test/fixtures/gguf/pygguf.gguf";
    std::ifstream in("test/fixtures/gguf/pygguf.expected.json");
    if (!in || access(path, R_OK) != 0) SKIP("run from the repository root with test/fixtures/gguf present");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    JsonParser jp{text};
    Json root = jp.value();
    CHECK(jp.ok);
    const Json *meta = root.get("metadata"), *tensors = root.get("tensors");
    CHECK(meta && tensors);
    if (!jp.ok || !meta || !tensors) return;

    hg_gguf *g = hg_gguf_open(path);
    CHECK_MSG(g, hg_last_error());
    if (!g) return;
    CHECK(hg_gguf_n_kv(g) == (int64_t)meta->obj.size());
    for (auto &kv : meta->obj) {
        int64_t i = hg_gguf_find_key(g, kv.first.c_str());
        CHECK_MSG(i >= 0, kv.first);
        if (i < 0) continue;
        int type = hg_gguf_kv_type(g, i);
        if (type == HG_GGUF_ARRAY) {
            int et = hg_gguf_kv_arr_type(g, i);
            uint64_t n = hg_gguf_kv_arr_n(g, i);
            CHECK_MSG(kv.second.kind == Json::Arr && n == kv.second.arr.size(), kv.first);
            for (uint64_t j = 0; j < n && j < kv.second.arr.size(); j++)
                CHECK_MSG(same_value(
                              et, kv.second.arr[j], [&] { return hg_gguf_kv_arr_u64(g, i, j); },
                              [&] { return hg_gguf_kv_arr_i64(g, i, j); }, [&] { return hg_gguf_kv_arr_f64(g, i, j); },
                              [&] { return arr_string(g, i, j); }),
                          kv.first + "[" + std::to_string(j) + "]");
        } else {
            CHECK_MSG(same_value(
                          type, kv.second, [&] { return hg_gguf_kv_u64(g, i); }, [&] { return hg_gguf_kv_i64(g, i); },
                          [&] { return hg_gguf_kv_f64(g, i); }, [&] { return kv_string(g, i); }),
                      kv.first);
        }
    }
    CHECK(hg_gguf_n_tensors(g) == (int64_t)tensors->arr.size());
    for (auto &tj : tensors->arr) {
        const Json *name = tj.get("name"), *shape = tj.get("shape"), *type = tj.get("type"), *offset = tj.get("offset"),
                   *bytes = tj.get("bytes");
        CHECK(name && shape && type && offset && bytes);
        if (!name || !shape || !type || !offset || !bytes) continue;
        int64_t t = hg_gguf_find_tensor(g, name->text.c_str());
        CHECK_MSG(t >= 0, name->text);
        if (t < 0) continue;
        CHECK_MSG(hg_gguf_tensor_n_dims(g, t) == (int)shape->arr.size(), name->text);
        for (size_t d = 0; d < shape->arr.size(); d++)
            CHECK_MSG(hg_gguf_tensor_dim(g, t, (int)d) == std::strtoll(shape->arr[d].text.c_str(), nullptr, 10),
                      name->text);
        std::string tn = hg_type_name(hg_gguf_tensor_type(g, t));
        for (char &c : tn) c = (char)std::tolower((unsigned char)c);
        CHECK_MSG(tn == type->text, name->text + ": " + tn + " vs " + type->text);
        CHECK_MSG(hg_gguf_tensor_offset(g, t) == std::strtoull(offset->text.c_str(), nullptr, 10), name->text);
        CHECK_MSG(hg_gguf_tensor_bytes(g, t) == std::strtoull(bytes->text.c_str(), nullptr, 10), name->text);
    }
    hg_gguf_close(g);
}

HG_TEST_MAIN()
