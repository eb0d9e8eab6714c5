// Mutation fuzzer for the GGUF reader, no libFuzzer needed: builds a few valid seed files,
// mutates them (bit flips, byte sets, truncations, huge values in count/length/offset
// fields, splices, inserts, deletes), opens each through the C API and, when a file is
// accepted, walks every accessor and checks what it returns against the file.
//
//   fuzz_gguf [--seconds N | --iters N] [--seed N]
//
// Exit status: 0 when nothing went wrong; 1 when an accepted file breaks an invariant or a
// rejection has no proper message (the input is saved as fuzz-gguf-failure.gguf). A crash
// leaves the input that caused it at the temp path printed at start.
//
// With -DHEALTHGPT_LIBFUZZER (clang -fsanitize=fuzzer) only LLVMFuzzerTestOneInput is built.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/gguf.h"
#include "healthgpt.h"
#include "tests/gguf_builder.h"

using namespace gguftest;

namespace {

#ifndef HEALTHGPT_LIBFUZZER // seeds and mutations: libFuzzer brings its own

// ---- seed files ----

// A valid file, with the positions of its 4- and 8-byte fields for mutations to aim at.
using Seed = Built;

// The data section is padded to the alignment and filled by file position (not
// gguftest::pattern), as the seeds always were: a given --seed replays the same inputs.
Seed make_seed(const FileSpec &spec) {
    Seed s = build(spec);
    while (s.bytes.size() % spec.alignment) s.bytes.push_back(0);
    for (size_t i = s.data_offset; i < s.bytes.size(); i++) s.bytes[i] = (uint8_t)(i * 13 + 5);
    return s;
}

std::vector<Seed> make_seeds() {
    std::vector<Seed> seeds;
    // Every value type, several tensor types.
    FileSpec all;
    all.kvs = {
        {"general.architecture", str_value("phi3")},
        {"u8", scalar<uint8_t>(HG_GGUF_UINT8, 7)},
        {"i8", scalar<int8_t>(HG_GGUF_INT8, -7)},
        {"u16", scalar<uint16_t>(HG_GGUF_UINT16, 700)},
        {"i16", scalar<int16_t>(HG_GGUF_INT16, -700)},
        {"u32", scalar<uint32_t>(HG_GGUF_UINT32, 70000)},
        {"i32", scalar<int32_t>(HG_GGUF_INT32, -70000)},
        {"f32", scalar<float>(HG_GGUF_FLOAT32, 0.5f)},
        {"bool", scalar<uint8_t>(HG_GGUF_BOOL, 1)},
        {"u64", scalar<uint64_t>(HG_GGUF_UINT64, 1ull << 40)},
        {"i64", scalar<int64_t>(HG_GGUF_INT64, -(1ll << 40))},
        {"f64", scalar<double>(HG_GGUF_FLOAT64, 0.25)},
        {"s", str_value("h\xc3\xa9llo \xf0\x9f\xa9\xba")},
        {"a.i32", array_of<int32_t>(HG_GGUF_INT32, {-1, 0, 1})},
        {"a.f64", array_of<double>(HG_GGUF_FLOAT64, {1.0, -1.0})},
        {"a.bool", array_of<uint8_t>(HG_GGUF_BOOL, {1, 0})},
        {"a.str", str_array({"<s>", "", "\xe2\x96\x81the"})},
    };
    all.tensors = {{"token_embd.weight", {4, 3}, HG_TYPE_F32},
                   {"blk.0.attn_norm.weight", {8}, HG_TYPE_F16},
                   {"blk.0.ffn_up.weight", {64, 2}, HG_TYPE_Q8_0},
                   {"output.weight", {256, 1, 1, 1}, HG_TYPE_Q4_K}};
    seeds.push_back(make_seed(all));
    // Version 2, alignment 64.
    FileSpec v2;
    v2.version = 2;
    v2.alignment = 64;
    v2.kvs = {{"general.alignment", scalar<uint32_t>(HG_GGUF_UINT32, 64)}, {"general.name", str_value("v2")}};
    v2.tensors = {{"a", {32}, HG_TYPE_Q4_0}, {"b", {16, 2}, HG_TYPE_BF16}, {"c", {256}, HG_TYPE_Q6_K}};
    seeds.push_back(make_seed(v2));
    // A vocabulary: long string and number arrays.
    std::vector<std::string> tokens;
    std::vector<float> scores;
    for (int i = 0; i < 120; i++) {
        tokens.push_back(i % 7 ? "tok" + std::to_string(i) : "\xc4\xa0" + std::to_string(i));
        scores.push_back(-(float)i);
    }
    FileSpec vocab;
    vocab.kvs = {{"tokenizer.ggml.tokens", str_array(tokens)},
                 {"tokenizer.ggml.scores", array_of<float>(HG_GGUF_FLOAT32, scores)},
                 {"tokenizer.ggml.token_type", array_of<int32_t>(HG_GGUF_INT32, std::vector<int32_t>(120, 1))}};
    vocab.tensors = {{"token_embd.weight", {32, 4}, HG_TYPE_Q8_0}};
    seeds.push_back(make_seed(vocab));
    // Metadata only.
    FileSpec meta;
    meta.kvs = {{"general.architecture", str_value("llama")}};
    seeds.push_back(make_seed(meta));
    // Many small tensors.
    FileSpec many;
    many.kvs = {{"general.architecture", str_value("phi3")}};
    const uint32_t types[] = {HG_TYPE_F32,  HG_TYPE_F16,    HG_TYPE_Q4_1, HG_TYPE_Q5_0,
                              HG_TYPE_Q2_K, HG_TYPE_IQ4_NL, HG_TYPE_I16,  HG_TYPE_F64};
    for (int i = 0; i < 16; i++)
        many.tensors.push_back(
            {"blk." + std::to_string(i) + ".w", {(uint64_t)hg_type_block_size((int)types[i % 8]), 2}, types[i % 8]});
    seeds.push_back(make_seed(many));
    return seeds;
}

// ---- mutations ----

struct Rng {
    uint64_t s;
    uint64_t next() { // splitmix64
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    uint64_t below(uint64_t n) { return n ? next() % n : 0; }
};

uint64_t interesting_u64(Rng &r, uint64_t old, size_t size) {
    const uint64_t v[] = {0,
                          1,
                          2,
                          3,
                          4,
                          31,
                          32,
                          33,
                          64,
                          255,
                          256,
                          65535,
                          1ull << 31,
                          1ull << 32,
                          (1ull << 32) + 1,
                          1ull << 60,
                          1ull << 62,
                          1ull << 63,
                          (1ull << 63) - 1,
                          ~0ull,
                          ~0ull - 31,
                          ~0ull / 8,
                          size,
                          size - 1,
                          size + 1};
    switch (r.below(4)) {
    case 0: return old + (r.below(2) ? 1 : -1);
    case 1: return old * 2 + r.below(64);
    case 2: return r.next();
    default: return v[r.below(sizeof v / sizeof v[0])];
    }
}

uint32_t interesting_u32(Rng &r) {
    const uint32_t v[] = {0, 1, 4, 5, 8, 9, 12, 13, 31, 36, 42, 100, 0x7fffffff, 0x80000000u, 0xffffffffu};
    return r.below(2) ? (uint32_t)r.below(45) : v[r.below(sizeof v / sizeof v[0])];
}

void mutate(std::vector<uint8_t> &b, const Seed &seed, const std::vector<Seed> &all, Rng &r) {
    int n = 1 + (int)r.below(4);
    for (int k = 0; k < n; k++) {
        size_t size = b.size();
        switch (r.below(11)) {
        case 0: // bit flip
            if (size) b[r.below(size)] ^= (uint8_t)(1u << r.below(8));
            break;
        case 1: { // byte set
            if (!size) break;
            const uint8_t v[] = {0, 0xff, 0x7f, 0x80, (uint8_t)r.next()};
            b[r.below(size)] = v[r.below(5)];
            break;
        }
        case 2: // truncate, mostly close to the end
            if (size) b.resize(r.below(2) ? r.below(size) : size - std::min<size_t>(size, 1 + r.below(64)));
            break;
        case 3:
        case 4: { // a u64 field (count, length, dim, offset) or any 8 bytes
            size_t at =
                !seed.u64_at.empty() && r.below(4) ? seed.u64_at[r.below(seed.u64_at.size())] : (size_t)r.below(size);
            if (at + 8 > size) break;
            uint64_t old;
            std::memcpy(&old, &b[at], 8);
            uint64_t v = interesting_u64(r, old, size);
            std::memcpy(&b[at], &v, 8);
            break;
        }
        case 5: { // a u32 field (value type, element type, n_dims, tensor type, version)
            if (seed.u32_at.empty()) break;
            size_t at = seed.u32_at[r.below(seed.u32_at.size())];
            if (at + 4 > size) break;
            uint32_t v = interesting_u32(r);
            std::memcpy(&b[at], &v, 4);
            break;
        }
        case 6: { // splice: overwrite with a chunk of another seed
            const Seed &o = all[r.below(all.size())];
            if (o.bytes.empty() || !size) break;
            size_t from = r.below(o.bytes.size()), len = 1 + r.below(std::min<size_t>(64, o.bytes.size() - from));
            size_t to = r.below(size);
            len = std::min(len, size - to);
            std::memcpy(&b[to], &o.bytes[from], len);
            break;
        }
        case 7: { // splice: insert a chunk of this file or another seed
            const std::vector<uint8_t> &src = r.below(2) ? b : all[r.below(all.size())].bytes;
            if (src.empty()) break;
            size_t from = r.below(src.size()), len = 1 + r.below(std::min<size_t>(64, src.size() - from));
            std::vector<uint8_t> chunk(src.begin() + from, src.begin() + from + len);
            b.insert(b.begin() + r.below(size + 1), chunk.begin(), chunk.end());
            break;
        }
        case 8: { // delete a range
            if (!size) break;
            size_t at = r.below(size), len = 1 + r.below(std::min<size_t>(32, size - at));
            b.erase(b.begin() + at, b.begin() + at + len);
            break;
        }
        case 9: { // insert random bytes
            size_t len = 1 + r.below(16), at = r.below(size + 1);
            std::vector<uint8_t> chunk(len);
            for (auto &c : chunk) c = (uint8_t)r.next();
            b.insert(b.begin() + at, chunk.begin(), chunk.end());
            break;
        }
        default: { // a byte inside a string: breaks UTF-8 or the name
            if (!size) break;
            const uint8_t v[] = {0x00, 0x80, 0xc0, 0xed, 0xf4, 0xf8, 'a'};
            b[r.below(size)] = v[r.below(7)];
        }
        }
    }
}

#endif // HEALTHGPT_LIBFUZZER

// ---- one input ----

std::string g_path;       // the temp file each input is written to
std::string g_failure;    // what broke, when something did
volatile uint64_t g_sink; // keeps the reads of every byte from being optimised out

#define EXPECT(cond)                                                                                                   \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            g_failure = std::string("invariant broken: ") + #cond + " (line " + std::to_string(__LINE__) + ")";        \
            return false;                                                                                              \
        }                                                                                                              \
    } while (0)

uint64_t touch(const void *p, uint64_t n) {
    const uint8_t *b = static_cast<const uint8_t *>(p);
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++) s += b[i];
    return s;
}

bool is_unsigned(int t) {
    return t == HG_GGUF_UINT8 || t == HG_GGUF_UINT16 || t == HG_GGUF_UINT32 || t == HG_GGUF_UINT64 || t == HG_GGUF_BOOL;
}
bool is_signed(int t) { return t == HG_GGUF_INT8 || t == HG_GGUF_INT16 || t == HG_GGUF_INT32 || t == HG_GGUF_INT64; }
uint64_t elem_size(int t) {
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

// Every accessor of an accepted file, checked against the file's size and the format's rules.
bool exercise(const hg_gguf *g) {
    uint64_t size = hg_gguf_file_size(g), align = hg_gguf_alignment(g), data = hg_gguf_data_offset(g);
    uint32_t version = hg_gguf_version(g);
    EXPECT(version == 2 || version == 3);
    EXPECT(align && (align & (align - 1)) == 0);
    EXPECT(data % align == 0);
    uint64_t sum = 0;
    int64_t n_kv = hg_gguf_n_kv(g);
    EXPECT(n_kv >= 0 && (uint64_t)n_kv <= size);
    for (int64_t i = 0; i < n_kv; i++) {
        const char *key = hg_gguf_kv_key(g, i);
        EXPECT(key && *key);
        EXPECT(hg_gguf_find_key(g, key) == i);
        int type = hg_gguf_kv_type(g, i);
        uint64_t len = 0;
        if (is_unsigned(type)) {
            sum += hg_gguf_kv_u64(g, i);
            EXPECT(hg_gguf_kv_i64(g, i) == 0 && hg_gguf_kv_str(g, i, &len) == nullptr);
        } else if (is_signed(type)) {
            sum += (uint64_t)hg_gguf_kv_i64(g, i);
            EXPECT(hg_gguf_kv_u64(g, i) == 0);
        } else if (type == HG_GGUF_FLOAT32 || type == HG_GGUF_FLOAT64) {
            sum += (uint64_t)(hg_gguf_kv_f64(g, i) != 0);
            EXPECT(hg_gguf_kv_arr_n(g, i) == 0);
        } else if (type == HG_GGUF_STRING) {
            const char *s = hg_gguf_kv_str(g, i, &len);
            EXPECT(s && len <= size);
            sum += touch(s, len);
        } else if (type == HG_GGUF_ARRAY) {
            int et = hg_gguf_kv_arr_type(g, i);
            uint64_t n = hg_gguf_kv_arr_n(g, i);
            EXPECT(n <= size);
            if (et == HG_GGUF_STRING) {
                EXPECT(hg_gguf_kv_arr_data(g, i) == nullptr);
                for (uint64_t j = 0; j < n; j++) {
                    const char *s = hg_gguf_kv_arr_str(g, i, j, &len);
                    EXPECT(s && len <= size);
                    sum += touch(s, len);
                }
            } else {
                uint64_t es = elem_size(et);
                EXPECT(es && n <= size / es);
                const void *p = hg_gguf_kv_arr_data(g, i);
                EXPECT(p);
                sum += touch(p, n * es);
                for (uint64_t j = 0; j < n; j++)
                    sum += is_unsigned(et) ? hg_gguf_kv_arr_u64(g, i, j)
                           : is_signed(et) ? (uint64_t)hg_gguf_kv_arr_i64(g, i, j)
                                           : (uint64_t)(hg_gguf_kv_arr_f64(g, i, j) != 0);
                EXPECT(hg_gguf_kv_arr_str(g, i, 0, &len) == nullptr);
            }
            EXPECT(hg_gguf_kv_arr_u64(g, i, n) == 0); // one past the end
        } else {
            EXPECT(!"unknown value type accepted");
        }
    }
    EXPECT(hg_gguf_kv_key(g, n_kv) == nullptr && hg_gguf_kv_key(g, -1) == nullptr);

    int64_t n_t = hg_gguf_n_tensors(g);
    EXPECT(n_t >= 0);
    std::vector<std::pair<uint64_t, uint64_t>> extents;
    for (int64_t t = 0; t < n_t; t++) {
        const char *name = hg_gguf_tensor_name(g, t);
        EXPECT(name && *name);
        EXPECT(hg_gguf_find_tensor(g, name) == t);
        int nd = hg_gguf_tensor_n_dims(g, t), type = hg_gguf_tensor_type(g, t);
        EXPECT(nd >= 0 && nd <= 4);
        EXPECT(hg_type_name(type) != nullptr);
        int64_t bs = hg_type_block_size(type);
        uint64_t bb = hg_type_block_bytes(type);
        EXPECT(bs > 0 && bb > 0);
        // Recompute the size with 128-bit arithmetic.
        unsigned __int128 elems = 1;
        for (int d = 0; d < 4; d++) {
            int64_t ne = hg_gguf_tensor_dim(g, t, d);
            EXPECT(ne > 0 && (d < nd || ne == 1));
            elems *= (uint64_t)ne;
        }
        EXPECT(elems <= (unsigned __int128)INT64_MAX);
        EXPECT(hg_gguf_tensor_dim(g, t, 0) % bs == 0);
        unsigned __int128 bytes = elems / (uint64_t)bs * bb;
        uint64_t off = hg_gguf_tensor_offset(g, t), nb = hg_gguf_tensor_bytes(g, t);
        EXPECT(bytes == nb);
        EXPECT(off % align == 0);
        EXPECT((unsigned __int128)data + off + nb <= size);
        const void *p = hg_gguf_tensor_data(g, t);
        EXPECT(p && (uintptr_t)p % align == 0);
        sum += touch(p, nb);
        extents.push_back({off, nb});
    }
    EXPECT(hg_gguf_tensor_name(g, n_t) == nullptr && hg_gguf_tensor_dim(g, 0, 4) == -1);
    std::sort(extents.begin(), extents.end());
    for (size_t k = 1; k < extents.size(); k++)
        EXPECT(extents[k - 1].first + extents[k - 1].second <= extents[k].first);
    g_sink = g_sink + sum;
    return true;
}

// The parser over an exact-size heap copy, where a sanitizer sees a read one byte past the
// end (in a mapping such a read lands in the page's slack and goes unnoticed). Returns the
// message, "" when accepted.
std::string parse_heap_copy(const uint8_t *data, size_t n) {
    std::unique_ptr<uint8_t[]> copy(n ? new uint8_t[n] : nullptr);
    if (n) std::memcpy(copy.get(), data, n);
    try {
        hg::GGUFFile::parse(copy.get(), n, g_path);
        return "";
    } catch (const hg::Error &e) {
        return e.what();
    }
}

// 1 accepted, 0 rejected, -1 something broke (g_failure says what).
int run_one(const uint8_t *data, size_t n, std::string *reason) {
    std::string heap = parse_heap_copy(data, n);
    if (!write_file(g_path, data, n)) {
        g_failure = "cannot write " + g_path;
        return -1;
    }
    hg_gguf *g = hg_gguf_open(g_path.c_str());
    if (!g) {
        std::string m = hg_last_error();
        if (m.empty() || m.compare(0, g_path.size(), g_path) != 0) {
            g_failure = "rejection without a message naming the file: '" + m + "'";
            return -1;
        }
        if (m != heap) {
            g_failure = "mapped and heap parses disagree: '" + m + "' vs '" + heap + "'";
            return -1;
        }
        if (reason) *reason = m.substr(g_path.size());
        return 0;
    }
    if (!heap.empty()) {
        hg_gguf_close(g);
        g_failure = "mapped parse accepted what the heap parse refused: " + heap;
        return -1;
    }
    bool ok = exercise(g);
    hg_gguf_close(g);
    return ok ? 1 : -1;
}

std::string default_path() { return temp_dir() + "/hg_fuzz_gguf_" + std::to_string(getpid()) + ".gguf"; }

#ifndef HEALTHGPT_LIBFUZZER
// Message with numbers and quoted names blanked: one line per kind of fault.
std::string reason_kind(const std::string &m) {
    std::string out;
    bool quoted = false;
    for (size_t i = 0; i < m.size(); i++) {
        char c = m[i];
        if (c == '\'') {
            quoted = !quoted;
            out += quoted ? "'_'" : "";
            continue;
        }
        if (quoted) continue;
        if (c >= '0' && c <= '9') {
            if (out.empty() || out.back() != 'N') out += 'N';
            continue;
        }
        out += c;
    }
    return out;
}
#endif

} // namespace

#ifdef HEALTHGPT_LIBFUZZER

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (g_path.empty()) {
        g_path = default_path();
        std::atexit([] { std::remove(g_path.c_str()); });
    }
    if (run_one(data, size, nullptr) < 0) {
        std::fprintf(stderr, "fuzz_gguf: %s\n", g_failure.c_str());
        std::abort();
    }
    return 0;
}

#else

int main(int argc, char **argv) {
    double seconds = 20;
    uint64_t iters = 0, seed = (uint64_t)std::chrono::steady_clock::now().time_since_epoch().count();
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--seconds" && i + 1 < argc)
            seconds = std::atof(argv[++i]);
        else if (a == "--iters" && i + 1 < argc)
            iters = std::strtoull(argv[++i], nullptr, 10);
        else if (a == "--seed" && i + 1 < argc)
            seed = std::strtoull(argv[++i], nullptr, 10);
        else {
            std::fprintf(stderr, "usage: fuzz_gguf [--seconds N | --iters N] [--seed N]\n");
            return 2;
        }
    }
    g_path = default_path();
    std::printf("fuzz_gguf: seed %llu, input file %s (left in place if the process crashes)\n",
                (unsigned long long)seed, g_path.c_str());
    std::fflush(stdout);

    std::vector<Seed> seeds = make_seeds();
    // Seeds must be accepted, or the fuzzer would only test the first bytes.
    for (size_t s = 0; s < seeds.size(); s++) {
        if (run_one(seeds[s].bytes.data(), seeds[s].bytes.size(), nullptr) != 1) {
            std::fprintf(stderr, "fuzz_gguf: seed %zu is not accepted: %s %s\n", s, hg_last_error(), g_failure.c_str());
            std::remove(g_path.c_str());
            return 1;
        }
    }

    Rng rng{seed};
    std::vector<std::vector<uint8_t>> pool; // accepted mutants, mutated further
    std::map<std::string, uint64_t> reasons;
    uint64_t n = 0, accepted = 0, rejected = 0;
    auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    std::vector<uint8_t> buf;
    for (;; n++) {
        if (iters ? n >= iters : (n % 256 == 0 && elapsed >= seconds)) break;
        if (n % 256 == 0) elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const Seed &sd = seeds[rng.below(seeds.size())];
        buf = !pool.empty() && rng.below(4) == 0 ? pool[rng.below(pool.size())] : sd.bytes;
        mutate(buf, sd, seeds, rng);
        std::string reason;
        int r = run_one(buf.data(), buf.size(), &reason);
        if (r < 0) {
            write_file("fuzz-gguf-failure.gguf", buf.data(), buf.size());
            std::fprintf(stderr, "fuzz_gguf: iteration %llu: %s\n  input saved as fuzz-gguf-failure.gguf\n",
                         (unsigned long long)n, g_failure.c_str());
            std::remove(g_path.c_str());
            return 1;
        }
        if (r == 1) {
            accepted++;
            if (pool.size() < 256)
                pool.push_back(buf);
            else
                pool[rng.below(pool.size())] = buf;
        } else {
            rejected++;
            reasons[reason_kind(reason)]++;
        }
    }
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::remove(g_path.c_str());
    std::printf("fuzz_gguf: %llu inputs in %.1f s (%.0f/s): %llu accepted, %llu rejected, %zu kinds of rejection\n",
                (unsigned long long)n, elapsed, elapsed > 0 ? n / elapsed : 0.0, (unsigned long long)accepted,
                (unsigned long long)rejected, reasons.size());
    std::vector<std::pair<uint64_t, std::string>> top;
    for (auto &kv : reasons) top.push_back({kv.second, kv.first});
    std::sort(top.rbegin(), top.rend());
    for (size_t i = 0; i < top.size() && i < 15; i++)
        std::printf("  %8llu %s\n", (unsigned long long)top[i].first, top[i].second.c_str());
    return 0;
}

#endif
