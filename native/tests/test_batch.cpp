// Several sequences in one batch (hg_model_eval_batch, hg_model_params.n_seq) against each
// sequence evaluated alone: five sequences under the base model and both H-LoRA plugins
// (test/fixtures/phi3-hlora), arriving at different steps so that prompt chunks and decode
// rows share passes, decoded greedily for 20 steps; every logits row and every token must be
// the solo run's, bit for bit, at every kernel level, over F32, F16, Q8_0 and Q4_0 bases.
// Then the refusals: a slot out of range or twice, a start_pos that is not the slot's, a
// context that would overflow, and none of them moves any slot.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "healthgpt.h"
#include "ops/greedy.h"
#include "tests/check.h"
#include "tests/gguf_builder.h"

namespace {

const std::string kDir = "test/fixtures/phi3-hlora/";
constexpr int kThreads = 2, kCtx = 64, kSteps = 20;

bool contains(const std::string &s, const std::string &needle) { return s.find(needle) != std::string::npos; }

// The fixture's F32 base with every linear (and the embeddings) re-encoded in `type`, so the
// plugins (made for its shape) run over a base of each weight type.
std::vector<uint8_t> base_as(int type) {
    hg_gguf *f = hg_gguf_open((kDir + "base.f32.gguf").c_str());
    CHECK_MSG(f != nullptr, hg_last_error());
    if (!f) return {};
    gguftest::FileSpec spec;
    for (int64_t i = 0; i < hg_gguf_n_kv(f); i++) {
        const std::string key = hg_gguf_kv_key(f, i);
        switch (hg_gguf_kv_type(f, i)) {
        case HG_GGUF_UINT32:
            spec.kvs.push_back({key, gguftest::scalar(HG_GGUF_UINT32, (uint32_t)hg_gguf_kv_u64(f, i))});
            break;
        case HG_GGUF_FLOAT32:
            spec.kvs.push_back({key, gguftest::scalar(HG_GGUF_FLOAT32, (float)hg_gguf_kv_f64(f, i))});
            break;
        case HG_GGUF_STRING: {
            uint64_t len = 0;
            const char *v = hg_gguf_kv_str(f, i, &len);
            spec.kvs.push_back({key, gguftest::str_value(std::string(v, len))});
            break;
        }
        default: CHECK_MSG(false, "base.f32.gguf: key " + key + " of a type this copy does not handle");
        }
    }
    std::vector<std::vector<uint8_t>> data;
    for (int64_t t = 0; t < hg_gguf_n_tensors(f); t++) {
        gguftest::TensorSpec ts;
        ts.name = hg_gguf_tensor_name(f, t);
        for (int d = 0; d < hg_gguf_tensor_n_dims(f, t); d++) ts.dims.push_back((uint64_t)hg_gguf_tensor_dim(f, t, d));
        const float *src = static_cast<const float *>(hg_gguf_tensor_data(f, t));
        const int64_t k = (int64_t)ts.dims[0], rows = ts.dims.size() > 1 ? (int64_t)ts.dims[1] : 1;
        ts.type = ts.dims.size() > 1 ? (uint32_t)type : (uint32_t)HG_TYPE_F32; // norms stay f32
        const int64_t row = hg_type_block_bytes((int)ts.type) * (k / hg_type_block_size((int)ts.type));
        std::vector<uint8_t> bytes((size_t)(row * rows));
        for (int64_t r = 0; r < rows; r++)
            CHECK(hg_quantize_row((int)ts.type, src + r * k, bytes.data() + r * row, k) == 0);
        data.push_back(std::move(bytes));
        spec.tensors.push_back(ts);
    }
    hg_gguf_close(f);
    gguftest::Built b = gguftest::build(spec);
    for (size_t t = 0; t < data.size(); t++)
        std::memcpy(&b.bytes[b.data_offset + b.offsets[t]], data[t].data(), data[t].size());
    return b.bytes;
}

// A segment with no greedy pick (hg_batch_seq's fields in order, the pick's left zero).
hg_batch_seq seg(int seq, int plugin, int start_pos, int n_tokens, const int32_t *tokens, const float *embd,
                 int logits) {
    hg_batch_seq s{};
    s.seq = seq, s.plugin = plugin, s.start_pos = start_pos, s.n_tokens = n_tokens;
    s.tokens = tokens, s.embd = embd, s.logits = logits;
    return s;
}

struct Model {
    hg_model *m = nullptr;
    int comprehension = -1, generation = -1;
};

Model load(const std::string &path, int n_seq, int kv_type) {
    hg_model_params p = hg_model_default_params();
    p.n_ctx = kCtx;
    p.n_threads = kThreads;
    p.kv_type = kv_type;
    p.n_seq = n_seq;
    Model r;
    r.m = hg_model_load(path.c_str(), &p);
    CHECK_MSG(r.m != nullptr, path + ": " + hg_last_error());
    if (!r.m) return r;
    r.comprehension = hg_model_load_plugin(r.m, (kDir + "comprehension.f32.gguf").c_str(), nullptr);
    r.generation = hg_model_load_plugin(r.m, (kDir + "generation.f16.gguf").c_str(), nullptr);
    CHECK_MSG(r.comprehension >= 0 && r.generation >= 0, hg_last_error());
    return r;
}

// A request: its plugin (0 base, 1 comprehension, 2 generation), its prompt (-1: an
// embedding row from embd), the chunk its prompt is fed in, the step it arrives at, and
// whether its prompt chunks return every row's logits.
struct Request {
    int plugin;
    std::vector<int32_t> prompt;
    std::vector<float> embd;
    int chunk, arrives;
    bool all_rows;
};

std::vector<Request> requests(int n_embd) {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 0.5f);
    auto ids = [&](int n, int salt) {
        std::vector<int32_t> v;
        for (int i = 0; i < n; i++) v.push_back((i * 37 + salt * 11 + 5) % 250);
        return v;
    };
    std::vector<Request> r = {
        {0, ids(7, 1), {}, 3, 0, true},   // base, fed 3 + 3 + 1
        {1, ids(5, 2), {}, 5, 0, false},  // comprehension, one chunk
        {2, ids(12, 3), {}, 4, 2, false}, // generation, arrives while the others decode
        {1, ids(3, 4), {}, 2, 5, true},   // comprehension again (one adapter pass for both)
        {2, ids(6, 5), {}, 6, 1, false},  // generation with image-like embedding rows
    };
    for (int i : {1, 2, 4}) r[4].prompt[i] = -1;
    for (int i = 0; i < 3 * n_embd; i++) r[4].embd.push_back(nd(rng));
    return r;
}

// What one sequence saw: every logits row it got, and the tokens it chose.
struct Trace {
    std::vector<float> logits;
    std::vector<int32_t> tokens;
};

int32_t argmax(const float *row, int n) { return (int32_t)(std::max_element(row, row + n) - row); }

// Every request alone on a one-sequence model: the prompt in one call (every row or the
// last), then kSteps greedy tokens one at a time.
std::vector<Trace> solo(const Model &m, const std::vector<Request> &reqs) {
    const int V = hg_model_n_vocab(m.m);
    const int ids[3] = {-1, m.comprehension, m.generation};
    std::vector<Trace> out;
    for (const Request &r : reqs) {
        Trace t;
        const int n = (int)r.prompt.size();
        std::vector<float> lg((size_t)(r.all_rows ? n : 1) * V);
        CHECK(hg_model_kv_clear(m.m, 0) == 0);
        CHECK_MSG(hg_model_eval_embd(m.m, ids[r.plugin], r.prompt.data(), r.embd.empty() ? nullptr : r.embd.data(), n,
                                     0, lg.data(), r.all_rows ? 1 : 0) == 0,
                  hg_last_error());
        t.logits = lg;
        int32_t next = argmax(&lg[lg.size() - V], V);
        for (int s = 0; s < kSteps; s++) {
            t.tokens.push_back(next);
            std::vector<float> row(V);
            CHECK_MSG(hg_model_eval_plugin(m.m, ids[r.plugin], &next, 1, n + s, row.data(), 0) == 0, hg_last_error());
            t.logits.insert(t.logits.end(), row.begin(), row.end());
            next = argmax(row.data(), V);
        }
        out.push_back(t);
    }
    return out;
}

// Mutations a test of the batch must catch (each makes the comparison fail).
struct Mutation {
    bool swap_plugins = false; // requests 1 and 2 swap plugins in every batch
};

// All requests through one n_seq model: each step one batch with a prompt chunk of every
// request still reading its prompt and a decode row of every other, in an order that
// changes from step to step, request i on slot (i * 3 + 1) % n_seq.
std::vector<Trace> batched(const Model &m, const std::vector<Request> &reqs, Mutation mut = {}) {
    const int V = hg_model_n_vocab(m.m), E = hg_model_n_embd(m.m), n_seq = hg_model_n_seq(m.m);
    const int ids[3] = {-1, m.comprehension, m.generation};
    const size_t R = reqs.size();
    std::vector<Trace> out(R);
    std::vector<int> fed(R, 0), embd_used(R, 0), decoded(R, 0);
    std::vector<int32_t> next(R, 0);
    for (size_t i = 0; i < R; i++) CHECK(hg_model_seq_clear(m.m, (int)(i * 3 + 1) % n_seq, 0) == 0);
    for (int step = 0;; step++) {
        std::vector<hg_batch_seq> segs;
        std::vector<size_t> who;
        for (size_t k = 0; k < R; k++) {
            const size_t i = step % 2 ? R - 1 - k : (k + step) % R;
            const Request &r = reqs[i];
            const int n = (int)r.prompt.size();
            if (step < r.arrives || decoded[i] == kSteps) continue;
            hg_batch_seq s{};
            s.seq = (int)(i * 3 + 1) % n_seq;
            s.plugin = ids[r.plugin];
            if (fed[i] < n) {
                s.n_tokens = std::min(r.chunk, n - fed[i]);
                s.start_pos = fed[i];
                s.tokens = r.prompt.data() + fed[i];
                s.embd = r.embd.empty() ? nullptr : r.embd.data() + (size_t)embd_used[i] * E;
                for (int j = 0; j < s.n_tokens; j++) embd_used[i] += s.tokens[j] == -1;
                s.logits = r.all_rows ? 2 : fed[i] + s.n_tokens == n ? 1 : 0;
                fed[i] += s.n_tokens;
            } else {
                s.n_tokens = 1;
                s.start_pos = n + decoded[i];
                s.tokens = &next[i];
                s.logits = 1;
                out[i].tokens.push_back(next[i]);
                decoded[i]++;
            }
            segs.push_back(s);
            who.push_back(i);
        }
        if (segs.empty()) break;
        if (mut.swap_plugins)
            for (hg_batch_seq &s : segs)
                s.plugin = s.plugin == ids[1] ? ids[2] : s.plugin == ids[2] ? ids[1] : s.plugin;
        size_t rows = 0;
        for (const hg_batch_seq &s : segs) rows += s.logits == 2 ? (size_t)s.n_tokens : (size_t)s.logits;
        std::vector<float> lg(rows * V);
        CHECK_MSG(hg_model_eval_batch(m.m, segs.data(), (int)segs.size(), lg.data()) == 0, hg_last_error());
        const float *row = lg.data();
        for (size_t j = 0; j < segs.size(); j++) {
            const hg_batch_seq &s = segs[j];
            const int nr = s.logits == 2 ? s.n_tokens : s.logits;
            Trace &t = out[who[j]];
            t.logits.insert(t.logits.end(), row, row + (size_t)nr * V);
            if (nr) next[who[j]] = argmax(row + (size_t)(nr - 1) * V, V);
            row += (size_t)nr * V;
        }
    }
    return out;
}

bool same(const std::vector<Trace> &a, const std::vector<Trace> &b, std::string &why) {
    if (a.size() != b.size()) return why = "request counts differ", false;
    for (size_t i = 0; i < a.size(); i++) {
        if (a[i].tokens != b[i].tokens) return why = "request " + std::to_string(i) + ": tokens differ", false;
        if (a[i].logits.size() != b[i].logits.size() ||
            std::memcmp(a[i].logits.data(), b[i].logits.data(), a[i].logits.size() * sizeof(float)) != 0)
            return why = "request " + std::to_string(i) + ": logits differ", false;
    }
    return true;
}

} // namespace

TEST(batched_sequences_equal_each_alone_bit_for_bit) {
    struct Base {
        std::string name;
        int type, kv_type;
    };
    const Base bases[] = {{"f32", HG_TYPE_F32, HG_TYPE_F32},
                          {"f16", HG_TYPE_F16, HG_TYPE_F16},
                          {"q8_0", HG_TYPE_Q8_0, HG_TYPE_F16},
                          {"q4_0", HG_TYPE_Q4_0, HG_TYPE_F32}};
    for (const Base &base : bases) {
        const std::vector<uint8_t> bytes = base_as(base.type);
        gguftest::TempFile file(bytes);
        for (int isa = HG_ISA_SCALAR; isa <= hg_isa_best(); isa++) {
            CHECK(hg_isa_force(isa) == 0);
            const std::string what = base.name + " isa " + std::to_string(isa);
            Model one = load(file.path, 1, base.kv_type), many = load(file.path, 7, base.kv_type);
            if (!one.m || !many.m) return;
            const std::vector<Request> reqs = requests(hg_model_n_embd(one.m));
            const std::vector<Trace> want = solo(one, reqs);
            std::string why;
            CHECK_MSG(same(batched(many, reqs), want, why), what + ": " + why);
            // the comparison is not blind: two requests under each other's plugin differ
            if (isa == hg_isa_best()) {
                Mutation swap;
                swap.swap_plugins = true;
                CHECK_MSG(!same(batched(many, reqs, swap), want, why), what + ": swapped plugins went unnoticed");
            }
            hg_model_free(one.m);
            hg_model_free(many.m);
        }
        CHECK(hg_isa_force(hg_isa_best()) == 0);
    }
}

TEST(bad_batches_are_refused_and_move_no_slot) {
    Model m = load(kDir + "base.f32.gguf", 3, HG_TYPE_F16);
    if (!m.m) return;
    const int V = hg_model_n_vocab(m.m);
    CHECK(hg_model_n_seq(m.m) == 3);
    const int32_t toks[4] = {1, 2, 3, 4};
    std::vector<float> lg((size_t)8 * V);
    // slot 1 holds 2 positions, slot 2 holds 3
    hg_batch_seq a = seg(1, -1, 0, 2, toks, nullptr, 0), b = seg(2, m.generation, 0, 3, toks, nullptr, 1);
    hg_batch_seq ab[2] = {a, b};
    CHECK_MSG(hg_model_eval_batch(m.m, ab, 2, lg.data()) == 0, hg_last_error());
    CHECK(hg_model_seq_n_past(m.m, 0) == 0 && hg_model_seq_n_past(m.m, 1) == 2 && hg_model_seq_n_past(m.m, 2) == 3);

    auto refused = [&](std::vector<hg_batch_seq> segs, const std::string &msg, int status) {
        CHECK(hg_model_eval_batch(m.m, segs.data(), (int)segs.size(), lg.data()) == -1);
        CHECK_MSG(contains(hg_last_error(), msg), std::string(hg_last_error()) + " (expected: " + msg + ")");
        CHECK(hg_last_status() == status);
        CHECK(hg_model_seq_n_past(m.m, 0) == 0 && hg_model_seq_n_past(m.m, 1) == 2 && hg_model_seq_n_past(m.m, 2) == 3);
    };
    const hg_batch_seq good = seg(0, -1, 0, 4, toks, nullptr, 1);
    refused({good, seg(3, -1, 0, 1, toks, nullptr, 1)}, "segment 1 (sequence 3)", HG_ERR_INVALID_ARG);
    refused({good, seg(3, -1, 0, 1, toks, nullptr, 1)}, "not a slot of this model (n_seq 3)", HG_ERR_INVALID_ARG);
    refused({good, seg(-1, -1, 0, 1, toks, nullptr, 1)}, "sequence -1 is not a slot", HG_ERR_INVALID_ARG);
    refused({good, seg(1, -1, 2, 1, toks, nullptr, 1), seg(1, -1, 3, 1, toks, nullptr, 1)}, "appears twice",
            HG_ERR_INVALID_ARG);
    refused({good, seg(1, -1, 1, 1, toks, nullptr, 1)}, "start_pos 1 but the KV cache holds 2 positions",
            HG_ERR_INVALID_ARG);
    refused({good, seg(2, -1, 4, 1, toks, nullptr, 1)}, "start_pos 4 but the KV cache holds 3", HG_ERR_INVALID_ARG);
    hg_batch_seq far = seg(2, -1, 3, 1, toks, nullptr, 1);
    std::vector<int32_t> many((size_t)kCtx, 5);
    far.tokens = many.data(), far.n_tokens = kCtx - 2;
    refused({good, far}, "would exceed the context of 64 tokens", HG_ERR_CONTEXT_FULL);
    refused({good, seg(1, 9, 2, 1, toks, nullptr, 1)}, "plugin 9 is not loaded", HG_ERR_INVALID_ARG);
    const int32_t bad_token = 999;
    refused({good, seg(1, -1, 2, 1, &bad_token, nullptr, 1)}, "token 999 at index 0 (position 2)", HG_ERR_INVALID_ARG);
    refused({good, seg(1, -1, 2, 1, toks, nullptr, 3)}, "logits 3", HG_ERR_INVALID_ARG);
    CHECK(hg_model_eval_batch(m.m, &good, 1, nullptr) == -1);
    CHECK(contains(hg_last_error(), "no output buffer"));
    CHECK(hg_model_eval_batch(m.m, nullptr, 0, lg.data()) == -1);
    CHECK(hg_model_seq_n_past(m.m, 3) == -1);
    CHECK(contains(hg_last_error(), "sequence 3 is not a slot"));
    CHECK(hg_model_seq_clear(m.m, 3, 0) == -1);
    // the model lives on: the same batch, now right, runs
    CHECK_MSG(hg_model_eval_batch(m.m, &good, 1, lg.data()) == 0, hg_last_error());
    CHECK(hg_model_seq_n_past(m.m, 0) == 4 && hg_model_n_past(m.m) == 4);
    CHECK(hg_model_seq_clear(m.m, 0, 1) == 0 && hg_model_seq_n_past(m.m, 0) == 1);
    hg_model_free(m.m);

    // n_seq at load: at least 1; CUDA holds one sequence
    hg_model_params p = hg_model_default_params();
    p.n_seq = 0;
    CHECK(hg_model_load((kDir + "base.f32.gguf").c_str(), &p) == nullptr);
    CHECK(contains(hg_last_error(), "n_seq 0"));
    p.n_seq = 2;
    p.gpu = HG_GPU_CUDA;
    CHECK(hg_model_load((kDir + "base.f32.gguf").c_str(), &p) == nullptr);
    CHECK(contains(hg_last_error(), "the CUDA backend holds one sequence"));
}

HG_TEST_MAIN()

TEST(greedy_pick_takes_the_first_largest_number_of_its_range) {
    const float nan = std::nanf(""), inf = INFINITY;
    const float row[8] = {5, nan, 7, 7, -inf, 1, nan, 7};
    CHECK(hg::greedy_pick(row, 0, 8) == 2); // the first of the equal maxima
    CHECK(hg::greedy_pick(row, 3, 8) == 3); // the range's own first
    CHECK(hg::greedy_pick(row, 4, 7) == 5); // NaN is never chosen, -inf loses to a number
    CHECK(hg::greedy_pick(row, 0, 2) == 0); // NaN after a number
    CHECK(hg::greedy_pick(row, 1, 3) == 2); // NaN before one
    CHECK(hg::greedy_pick(row, 4, 5) == 4); // a range of one token is that token
    CHECK(hg::greedy_pick(row, 6, 7) == 6); // even NaN
    const float none[3] = {nan, -inf, nan};
    CHECK(hg::greedy_pick(none, 0, 3) == -1); // nothing above -infinity
    const float big[2] = {inf, inf};
    CHECK(hg::greedy_pick(big, 0, 2) == 0);
}

TEST(greedy_segments_pick_the_token_of_the_row_they_do_not_return) {
    Model m = load(kDir + "base.f32.gguf", 4, HG_TYPE_F16);
    if (!m.m) return;
    const int V = hg_model_n_vocab(m.m);
    const std::vector<int32_t> prompt = {11, 48, 85, 122, 159, 196};
    // slot 0 returns its row; slots 1-3 run the same prompt under the same plugin (the same
    // row, bit for bit) and pick in the whole vocabulary, in a range without the top, and
    // in a range of one token
    std::vector<float> lg((size_t)V);
    int32_t next[4] = {-2, -2, -2, -2};
    std::vector<hg_batch_seq> segs(4);
    for (int i = 0; i < 4; i++) {
        hg_batch_seq &s = segs[(size_t)i];
        s.seq = i, s.plugin = m.generation, s.n_tokens = (int)prompt.size(), s.tokens = prompt.data(), s.logits = 1;
        if (i > 0) s.next = &next[i], s.greedy_lo = 0, s.greedy_hi = V;
    }
    segs[3].greedy_lo = 7, segs[3].greedy_hi = 8;
    // the top of the row, then a range that leaves it out
    CHECK_MSG(hg_model_eval_batch(m.m, segs.data(), 1, lg.data()) == 0, hg_last_error());
    const int32_t top = argmax(lg.data(), V);
    segs[2].greedy_lo = top + 1 < V ? top + 1 : 0, segs[2].greedy_hi = top + 1 < V ? V : top;
    CHECK(hg_model_seq_clear(m.m, 0, 0) == 0);
    CHECK_MSG(hg_model_eval_batch(m.m, segs.data(), 4, lg.data()) == 0, hg_last_error());
    CHECK(argmax(lg.data(), V) == top);
    CHECK(next[1] == top);
    const int32_t lo2 = segs[2].greedy_lo;
    CHECK(next[2] == lo2 + argmax(lg.data() + lo2, segs[2].greedy_hi - lo2) && next[2] != top);
    CHECK(next[3] == 7);
    // decoding on: slot 0 from its rows, slot 1 from its picks, token for token
    int32_t a = top, b = next[1];
    for (int t = 0; t < 8; t++) {
        const int pos = (int)prompt.size() + t;
        hg_batch_seq s0 = seg(0, m.generation, pos, 1, &a, nullptr, 1),
                     s1 = seg(1, m.generation, pos, 1, &b, nullptr, 1);
        int32_t picked = -2;
        s1.next = &picked, s1.greedy_lo = 0, s1.greedy_hi = V;
        hg_batch_seq step[2] = {s0, s1};
        CHECK_MSG(hg_model_eval_batch(m.m, step, 2, lg.data()) == 0, hg_last_error());
        a = argmax(lg.data(), V), b = picked;
        CHECK_MSG(a == b, "step " + std::to_string(t) + ": " + std::to_string(a) + " vs " + std::to_string(b));
    }
    // refused, and no slot moves: a pick needs logits 1 and a range inside the vocabulary
    const int n1 = hg_model_seq_n_past(m.m, 1);
    auto refused = [&](hg_batch_seq s, const std::string &msg) {
        CHECK(hg_model_eval_batch(m.m, &s, 1, lg.data()) == -1);
        CHECK_MSG(contains(hg_last_error(), msg), std::string(hg_last_error()) + " (expected: " + msg + ")");
        CHECK(hg_model_seq_n_past(m.m, 1) == n1);
    };
    int32_t out = 0;
    hg_batch_seq s = seg(1, -1, n1, 1, prompt.data(), nullptr, 2);
    s.next = &out, s.greedy_lo = 0, s.greedy_hi = V;
    refused(s, "a greedy pick needs logits 1");
    s.logits = 1, s.greedy_lo = 5, s.greedy_hi = 5;
    refused(s, "greedy range [5, 5) is empty or outside the vocabulary");
    s.greedy_lo = 0, s.greedy_hi = V + 1;
    refused(s, "outside the vocabulary of " + std::to_string(V));
    hg_model_free(m.m);
}

// A pick computes only the output rows its range needs: none of the base's where the plugin's
// own rows hold the whole range (an image token), row groups of the base around the range
// otherwise. Every pick must still be the first largest logit of the full row in its range,
// for ranges inside, across the edge of and outside the plugin's rows, aligned to row groups
// or not, base and plugin segments in one batch (their ranges' union computed once).
TEST(greedy_ranges_compute_only_the_output_rows_they_need) {
    hg_gguf *g = hg_gguf_open((kDir + "generation.f16.gguf").c_str());
    CHECK_MSG(g != nullptr, hg_last_error());
    if (!g) return;
    const int64_t key = hg_gguf_find_key(g, "hlora.output.first_row"), t = hg_gguf_find_tensor(g, "output.weight");
    CHECK(key >= 0 && t >= 0);
    const int f = key >= 0 ? (int)hg_gguf_kv_u64(g, key) : 0, n = t >= 0 ? (int)hg_gguf_tensor_dim(g, t, 1) : 0;
    hg_gguf_close(g);
    for (int type : {HG_TYPE_F32, HG_TYPE_Q4_0}) { // plain and packed output heads
        gguftest::TempFile file(base_as(type));
        Model m = load(file.path, 8, HG_TYPE_F16);
        if (!m.m) return;
        const int V = hg_model_n_vocab(m.m);
        CHECK_MSG(n >= 20 && f >= 50 && f + n <= V, "the fixture's plugin rows " + std::to_string(f) + " + " +
                                                        std::to_string(n) + " leave no room for the ranges below");
        const std::vector<int32_t> prompt = {11, 48, 85, 122, 159, 196};
        // the full rows first (slot 0 under the plugin, slot 1 the base): every slot that runs
        // the same prompt under the same plugin has these rows, bit for bit
        std::vector<float> lg((size_t)(2 * V));
        hg_batch_seq full[2] = {seg(0, m.generation, 0, (int)prompt.size(), prompt.data(), nullptr, 1),
                                seg(1, -1, 0, (int)prompt.size(), prompt.data(), nullptr, 1)};
        CHECK_MSG(hg_model_eval_batch(m.m, full, 2, lg.data()) == 0, hg_last_error());
        const float *gen = lg.data(), *base = lg.data() + V;
        // a range across the plugin's first row whose largest logit is a base row just below it
        int across = f - 1;
        while (across > 0 && hg::greedy_pick(gen, across, f + 1) >= f) across--;
        CHECK_MSG(hg::greedy_pick(gen, across, f + 1) < f, "no base row below the plugin's beats its first");
        struct Range {
            bool plugin;
            int lo, hi;
        };
        // one batch inside the plugin's rows only (no base rows at all), one with everything else
        const std::vector<std::vector<Range>> batches = {{{true, f, f + n}, {true, f + 3, f + n - 2}},
                                                         {{true, across, f + 1},
                                                          {true, 1, 9},
                                                          {false, f + 1, f + 17},
                                                          {true, 19, 45},
                                                          {false, 3, 5},
                                                          {true, f - 40, V}}};
        for (const std::vector<Range> &ranges : batches) {
            std::vector<int32_t> next(ranges.size(), -2);
            std::vector<hg_batch_seq> segs;
            for (size_t i = 0; i < ranges.size(); i++) {
                hg_batch_seq s = seg(2 + (int)i, ranges[i].plugin ? m.generation : -1, 0, (int)prompt.size(),
                                     prompt.data(), nullptr, 1);
                s.next = &next[i], s.greedy_lo = ranges[i].lo, s.greedy_hi = ranges[i].hi;
                segs.push_back(s);
            }
            CHECK_MSG(hg_model_eval_batch(m.m, segs.data(), (int)segs.size(), nullptr) == 0, hg_last_error());
            for (size_t i = 0; i < ranges.size(); i++) {
                const Range &r = ranges[i];
                const int32_t want = hg::greedy_pick(r.plugin ? gen : base, r.lo, r.hi);
                CHECK_MSG(next[i] == want, "type " + std::to_string(type) + ", range [" + std::to_string(r.lo) + ", " +
                                               std::to_string(r.hi) + "): picked " + std::to_string(next[i]) +
                                               ", the row's is " + std::to_string(want));
            }
            for (size_t i = 0; i < ranges.size(); i++) CHECK(hg_model_seq_clear(m.m, 2 + (int)i, 0) == 0);
        }
        // the test is not blind: the plugin's rows change what its ranges pick
        CHECK(hg::greedy_pick(gen, f, f + n) != hg::greedy_pick(base, f, f + n));
        hg_model_free(m.m);
    }
}
