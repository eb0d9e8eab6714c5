#include "ops/hlora.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "core/fp16.h"
#include "ops/matmul.h"
#include "quant/quant.h"
#include "quant/repack.h"

namespace hg {

namespace {

float element(const HLoraTensor &t, int64_t i) {
    switch (t.type) {
    case HG_TYPE_F32: return static_cast<const float *>(t.data)[i];
    case HG_TYPE_F16: return fp16_to_f32(static_cast<const fp16_t *>(t.data)[i]);
    default: return bf16_to_f32(static_cast<const bf16_t *>(t.data)[i]);
    }
}

size_t elem_bytes(int type) { return type == HG_TYPE_F32 ? 4 : 2; }

void check_tensor(const std::string &name, const char *what, const HLoraTensor &t, int64_t rows, int64_t cols,
                  const char *shape) {
    const std::string who = name + "." + what;
    if (t.type != HG_TYPE_F32 && t.type != HG_TYPE_F16 && t.type != HG_TYPE_BF16) {
        const type_info *ti = type_traits(t.type);
        fail(HG_ERR_UNSUPPORTED,
             who + ": type " + (ti ? ti->name : std::to_string(t.type)) + " is not supported (f32, f16 or bf16)");
    }
    if (t.rows != rows || t.cols != cols)
        fail(who + ": " + std::to_string(t.rows) + " x " + std::to_string(t.cols) + ", expected " +
             std::to_string(rows) + " x " + std::to_string(cols) + " (" + shape + ")");
    if (!t.data) fail(who + ": no data");
    // a NaN or inf here would poison every token through the softmax or B g: refuse at load
    for (int64_t i = 0; i < rows * cols; i++)
        if (!std::isfinite(element(t, i)))
            fail(who + ": non-finite value at row " + std::to_string(i / cols) + ", column " +
                 std::to_string(i % cols));
}

void append(std::vector<uint8_t> &dst, int dst_type, const HLoraTensor &t) {
    const int64_t n = t.rows * t.cols;
    if (dst_type == t.type) {
        const size_t bytes = (size_t)n * elem_bytes(t.type);
        const uint8_t *p = static_cast<const uint8_t *>(t.data);
        dst.insert(dst.end(), p, p + bytes);
        return;
    }
    // only F16/BF16 -> F32 (exact) is ever asked for
    const size_t at = dst.size();
    dst.resize(at + (size_t)n * 4);
    for (int64_t i = 0; i < n; i++) {
        const float v = element(t, i);
        std::memcpy(&dst[at + (size_t)i * 4], &v, 4);
    }
}

// Rows of a plain (F32/F16) matrix as floats.
std::vector<float> to_floats(int type, const std::vector<uint8_t> &m, int64_t rows, int64_t cols) {
    std::vector<float> f((size_t)(rows * cols));
    const to_float_fn cv = type_traits(type)->to_float;
    const size_t row = row_bytes(type, cols);
    for (int64_t r = 0; r < rows; r++) cv(m.data() + r * row, &f[(size_t)(r * cols)], cols);
    return f;
}

// Per-thread scratch reused across calls: a decode step calls this for every linear of every
// layer, and the temporaries are the same size each time. One per plugin of a batch; the
// references stay valid until the next call grows the set.
struct Scratch {
    std::vector<float> logits_a, g, bg;
};
Scratch *scratches(size_t n) {
    thread_local std::vector<Scratch> set;
    if (set.size() < n) set.resize(n);
    return set.data();
}

} // namespace

HLoraAdapter HLoraAdapter::make(const std::string &name, int64_t in, int64_t out, int64_t rank, int64_t n_experts,
                                float alpha, const HLoraTensor &router, const HLoraTensor &lora_a,
                                const HLoraTensor &lora_b) {
    if (in <= 0 || out <= 0 || rank <= 0 || n_experts <= 0)
        fail(name + ": in, out, rank and experts must be positive (in " + std::to_string(in) + ", out " +
             std::to_string(out) + ", rank " + std::to_string(rank) + ", experts " + std::to_string(n_experts) + ")");
    if (rank % n_experts != 0)
        fail(name + ": rank " + std::to_string(rank) + " is not divisible by " + std::to_string(n_experts) +
             " experts (each expert owns rank / experts slots)");
    if (!std::isfinite(alpha)) fail(name + ": alpha is not finite");
    check_tensor(name, "router", router, n_experts, in, "experts x in");
    check_tensor(name, "lora_A", lora_a, rank, in, "rank x in");
    check_tensor(name, "lora_B", lora_b, out, rank, "out x rank");

    HLoraAdapter ad;
    ad.name = name;
    ad.in = in, ad.out = out, ad.rank = rank, ad.n_experts = n_experts, ad.alpha = alpha;
    // one matrix for the router and lora_A, so one matmul serves both
    ad.router_lora_a_type = router.type == lora_a.type ? router.type : HG_TYPE_F32;
    ad.a_row = n_experts;
    ad.router_lora_a.reserve(row_bytes(ad.router_lora_a_type, in) * (size_t)(n_experts + rank));
    append(ad.router_lora_a, ad.router_lora_a_type, router);
    append(ad.router_lora_a, ad.router_lora_a_type, lora_a);
    ad.lora_b_type = lora_b.type;
    append(ad.lora_b, ad.lora_b_type, lora_b);
    return ad;
}

void HLoraAdapter::convert(int type) {
    if (type != HG_TYPE_F32 && type != HG_TYPE_F16 && type != HG_TYPE_BF16 && type != HG_TYPE_Q8_0) {
        const type_info *ti = type_traits(type);
        fail(HG_ERR_UNSUPPORTED, name + ": adapter type " + (ti ? ti->name : std::to_string(type)) +
                                     " is not supported (f32, f16, bf16 or q8_0)");
    }
    if (is_packed(router_lora_a_type) || is_packed(lora_b_type)) fail(name + ": convert after pack");
    const type_info *dst = type_traits(type);
    auto recode = [&](int &mtype, std::vector<uint8_t> &m, int64_t rows, int64_t cols) {
        if (mtype == type || cols % dst->block_size != 0) return;
        const std::vector<float> f = to_floats(mtype, m, rows, cols);
        const size_t row = row_bytes(type, cols);
        std::vector<uint8_t> out(row * (size_t)rows);
        for (int64_t r = 0; r < rows; r++) dst->from_float_ref(&f[(size_t)(r * cols)], &out[r * row], cols);
        m.swap(out);
        mtype = type;
    };
    recode(router_lora_a_type, router_lora_a, n_experts + rank, in);
    recode(lora_b_type, lora_b, out, rank);
}

void HLoraAdapter::pack() {
    if (!is_packed(router_lora_a_type) && pack_pays(router_lora_a_type) && n_experts + rank >= kRowBlock) {
        const int64_t pad = (n_experts + kRowBlock - 1) / kRowBlock * kRowBlock;
        const size_t row = row_bytes(router_lora_a_type, in);
        std::vector<uint8_t> stacked(row * (size_t)(pad + rank), 0); // zero rows: d = 0 or 0.0
        std::memcpy(stacked.data(), router_lora_a.data(), row * (size_t)n_experts);
        std::memcpy(stacked.data() + row * pad, router_lora_a.data() + row * n_experts, row * (size_t)rank);
        router_lora_a.assign(stacked.size(), 0);
        pack_rows(router_lora_a_type, stacked.data(), pad + rank, in, 0, pad + rank, router_lora_a.data());
        router_lora_a_type = packed_type(router_lora_a_type);
        a_row = pad;
    }
    if (!is_packed(lora_b_type) && pack_pays(lora_b_type) && out >= kRowBlock) {
        std::vector<uint8_t> packed(lora_b.size());
        pack_rows(lora_b_type, lora_b.data(), out, rank, 0, out, packed.data());
        lora_b.swap(packed);
        lora_b_type = packed_type(lora_b_type);
    }
}

namespace {

// g of every token from the router logits and A x in s.logits_a: per token softmax over the
// experts, expansion to the rank slots, scale. O(tokens * rank), microseconds even for a
// prompt: on this thread, not worth a pool wake-up.
void expert_mix(const HLoraAdapter &ad, int64_t n_tokens, Scratch &s) {
    const int64_t n = ad.n_experts, r = ad.rank, per = r / n, nr = ad.ra_rows();
    s.g.resize((size_t)(r * n_tokens));
    const float scale = ad.scale();
    for (int64_t c = 0; c < n_tokens; c++) {
        const float *logits = &s.logits_a[(size_t)(c * nr)], *a = logits + ad.a_row;
        float *g = &s.g[(size_t)(c * r)];
        float mx = logits[0], sum = 0;
        for (int64_t j = 1; j < n; j++) mx = std::max(mx, logits[j]);
        for (int64_t j = 0; j < n; j++) sum += std::exp(logits[j] - mx);
        for (int64_t j = 0; j < n; j++) {
            const float e = std::exp(logits[j] - mx) * (scale / sum); // expert j's route times s
            for (int64_t k = j * per; k < (j + 1) * per; k++) g[k] = a[k] * e;
        }
    }
}

// y += B g for every token, g in s.g.
void add_lora_b(ThreadPool &pool, const HLoraAdapter &ad, int64_t n_tokens, float *y, Scratch &s) {
    const int64_t out = ad.out;
    s.bg.resize((size_t)(out * n_tokens));
    matmul(pool, ad.lora_b_type, ad.lora_b.data(), out, ad.rank, s.g.data(), n_tokens, s.bg.data(), true);
    const float *bg = s.bg.data();
    const int64_t total = out * n_tokens;
    auto add = [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; i++) y[i] += bg[i];
    };
    if (total < (1 << 16)) { // a decode step's add is shorter than waking the pool
        add(0, total);
        return;
    }
    pool.run([&](int ith, int nth) {
        int64_t i0, i1;
        split_range(total, ith, nth, i0, i1);
        add(i0, i1);
    });
}

// A decode step's tokens (one per sequence, up to kRowBlockCols: one kernel call per row
// block), one pool job: the strips of every part's [R; A] x first, then those of W x, then
// each part's strips of B g, all taken from one counter. Whichever thread finishes a part's
// last [R; A] strip mixes its experts (g) while the others are still on W x, so B g waits on
// no barrier; its strips go to the part's scratch, and whichever thread ends the last of a row
// strip's products (W x and every part's B g) adds that strip of each B g to y. MatmulRows
// runs hg::matmul's own kernels, so each token's result is hg::matmul's, bit for bit, as on
// the unfused path; the step pays no barriers between the products, nor the tail of the small
// [R; A] products split in panels.
void linear_parts(ThreadPool &pool, int w_type, const void *w, int64_t in, int64_t out, const float *x,
                  int64_t n_tokens, const HLoraPart *parts, size_t n_parts, float *y) {
    Scratch *scratch = scratches(n_parts);
    struct Part {
        const HLoraAdapter &ad;
        int64_t c0, n, nr, sa, na, first; // columns, [R; A] rows, its strips and where they start
        Scratch &s;
        std::unique_ptr<MatmulRows> RA, B;
        std::atomic<int64_t> ra_left{0};
        std::atomic<int> g_state{0}; // 0: being computed, 1: ready, -1: failed (the pool rethrows)
        Part(const HLoraPart &p, Scratch &s) : ad(*p.ad), c0(p.c0), n(p.c1 - p.c0), s(s) {}
    };
    std::vector<std::unique_ptr<Part>> ps;
    int64_t na_all = 0;
    for (size_t i = 0; i < n_parts; i++) {
        auto p = std::make_unique<Part>(parts[i], scratch[i]);
        p->nr = p->ad.ra_rows();
        p->sa = decode_strip_rows(p->nr, pool.size());
        p->na = (p->nr + p->sa - 1) / p->sa;
        p->first = na_all;
        na_all += p->na;
        p->ra_left.store(p->na, std::memory_order_relaxed);
        p->s.logits_a.resize((size_t)(p->nr * p->n));
        p->s.bg.resize((size_t)(out * p->n));
        p->RA.reset(
            new MatmulRows(p->ad.router_lora_a_type, p->ad.router_lora_a.data(), p->nr, in, x + p->c0 * in, p->n));
        ps.push_back(std::move(p));
    }
    const MatmulRows W(w_type, w, out, in, x, n_tokens);
    const int64_t sw = decode_strip_rows(out, pool.size()), nw = (out + sw - 1) / sw;
    std::unique_ptr<std::atomic<int>[]> strip_done(new std::atomic<int>[nw]);
    for (int64_t i = 0; i < nw; i++) strip_done[i].store(0, std::memory_order_relaxed);
    // rows of strip i: y += B g of every part, once all the strip's products are in
    auto add_strip = [&](int64_t i) {
        if (strip_done[i].fetch_add(1, std::memory_order_acq_rel) != (int)n_parts) return;
        const int64_t r0 = i * sw, r1 = std::min(out, r0 + sw);
        for (const auto &p : ps)
            for (int64_t c = 0; c < p->n; c++) {
                float *yc = y + (p->c0 + c) * out;
                const float *bg = p->s.bg.data() + c * out;
                for (int64_t r = r0; r < r1; r++) yc[r] += bg[r];
            }
    };
    std::atomic<int64_t> next{0};
    const int64_t n_tasks = na_all + nw * (1 + (int64_t)n_parts);
    pool.run([&](int, int) {
        for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < n_tasks;) {
            if (t < na_all) {
                size_t k = 0;
                while (t >= ps[k]->first + ps[k]->na) k++;
                Part &p = *ps[k];
                try { // a failure here must free the threads waiting for g
                    const int64_t r0 = (t - p.first) * p.sa;
                    p.RA->compute(r0, std::min(p.nr, r0 + p.sa), p.s.logits_a.data());
                    if (p.ra_left.fetch_sub(1, std::memory_order_acq_rel) != 1) continue;
                    // the part's last [R; A] strip: g, and B's converted input
                    expert_mix(p.ad, p.n, p.s);
                    p.B.reset(new MatmulRows(p.ad.lora_b_type, p.ad.lora_b.data(), out, p.ad.rank, p.s.g.data(), p.n));
                } catch (...) {
                    p.g_state.store(-1, std::memory_order_release);
                    throw;
                }
                p.g_state.store(1, std::memory_order_release);
            } else if (t < na_all + nw) {
                const int64_t i = t - na_all, r0 = i * sw;
                W.compute(r0, std::min(out, r0 + sw), y);
                add_strip(i);
            } else {
                Part &p = *ps[(size_t)((t - na_all - nw) / nw)];
                int state;
                while ((state = p.g_state.load(std::memory_order_acquire)) == 0) cpu_relax();
                if (state < 0) return;
                const int64_t i = (t - na_all - nw) % nw, r0 = i * sw;
                p.B->compute(r0, std::min(out, r0 + sw), p.s.bg.data());
                add_strip(i);
            }
        }
    });
}

} // namespace

void hlora_linear(ThreadPool &pool, const HLoraAdapter &ad, int w_type, const void *w, const float *x, int64_t n_tokens,
                  float *y) {
    const HLoraPart all{&ad, 0, n_tokens};
    hlora_linear_parts(pool, w_type, w, ad.in, ad.out, x, n_tokens, &all, 1, y);
}

void hlora_linear_parts(ThreadPool &pool, int w_type, const void *w, int64_t in, int64_t out, const float *x,
                        int64_t n_tokens, const HLoraPart *parts, size_t n_parts, float *y) {
    if (n_tokens <= 0) return;
    for (size_t i = 0; i < n_parts; i++) {
        const HLoraPart &p = parts[i];
        if (!p.ad || p.c0 < 0 || p.c1 > n_tokens || p.c0 >= p.c1 || (i > 0 && p.c0 < parts[i - 1].c1))
            fail("hlora_linear_parts: part " + std::to_string(i) + " (columns " + std::to_string(p.c0) + ".." +
                 std::to_string(p.c1) + ") is not an adapter over ordered columns within 0.." +
                 std::to_string(n_tokens));
        if (p.ad->in != in || p.ad->out != out)
            fail("hlora " + p.ad->name + ": shape " + std::to_string(p.ad->out) + " x " + std::to_string(p.ad->in) +
                 " against W's " + std::to_string(out) + " x " + std::to_string(in));
    }
    if (n_tokens <= kRowBlockCols) return linear_parts(pool, w_type, w, in, out, x, n_tokens, parts, n_parts, y);
    matmul(pool, w_type, w, out, in, x, n_tokens, y, true);
    for (size_t i = 0; i < n_parts; i++)
        hlora_add(pool, *parts[i].ad, true, x + parts[i].c0 * in, parts[i].c1 - parts[i].c0, y + parts[i].c0 * out);
}

void hlora_linear_unfused(ThreadPool &pool, const HLoraAdapter &ad, int w_type, const void *w, const float *x,
                          int64_t n_tokens, float *y) {
    if (n_tokens <= 0) return;
    matmul(pool, w_type, w, ad.out, ad.in, x, n_tokens, y, true);
    hlora_add(pool, ad, false, x, n_tokens, y);
}

void hlora_add(ThreadPool &pool, const HLoraAdapter &ad, bool fused, const float *x, int64_t n_tokens, float *y) {
    if (n_tokens <= 0) return;
    Scratch &s = scratches(1)[0];
    const int64_t nr = ad.ra_rows();
    s.logits_a.resize((size_t)(nr * n_tokens));
    if (fused) {
        // router logits and A x of every token in one pass over x
        matmul(pool, ad.router_lora_a_type, ad.router_lora_a.data(), nr, ad.in, x, n_tokens, s.logits_a.data(), true);
    } else {
        const int64_t n = ad.a_row, r = ad.rank; // n: the router's rows, padding included
        std::vector<float> route((size_t)(n * n_tokens)), a((size_t)(r * n_tokens));
        const size_t row = row_bytes(plain_type(ad.router_lora_a_type), ad.in);
        matmul(pool, ad.router_lora_a_type, ad.router_lora_a.data(), n, ad.in, x, n_tokens, route.data(), true);
        matmul(pool, ad.router_lora_a_type, ad.router_lora_a.data() + (size_t)n * row, r, ad.in, x, n_tokens, a.data(),
               true);
        for (int64_t c = 0; c < n_tokens; c++) { // the fused layout, for the shared epilogue
            std::memcpy(&s.logits_a[(size_t)(c * nr)], &route[(size_t)(c * n)], (size_t)n * 4);
            std::memcpy(&s.logits_a[(size_t)(c * nr + n)], &a[(size_t)(c * r)], (size_t)r * 4);
        }
    }
    expert_mix(ad, n_tokens, s);
    add_lora_b(pool, ad, n_tokens, y, s);
}

void hlora_linear_ref(const HLoraAdapter &ad, int w_type, const void *w, const float *x, int64_t n_tokens, float *y) {
    const type_info *ti = type_traits(w_type);
    if (!ti || !ti->supported || !ti->to_float)
        fail(HG_ERR_UNSUPPORTED,
             "hlora " + ad.name + ": weight type " + (ti ? ti->name : std::to_string(w_type)) + " is not supported");
    if (is_packed(ad.router_lora_a_type) || is_packed(ad.lora_b_type))
        fail("hlora " + ad.name + ": the reference reads plain adapters, this one is packed");
    const int64_t in = ad.in, out = ad.out, n = ad.n_experts, r = ad.rank, per = r / n;
    const double s = (double)ad.alpha / (double)r * (double)n;
    const std::vector<float> ra = to_floats(ad.router_lora_a_type, ad.router_lora_a, n + r, in);
    const std::vector<float> B = to_floats(ad.lora_b_type, ad.lora_b, out, r);
    const float *R = ra.data(), *A = R + n * in;
    auto dot = [in](const float *u, const float *v) {
        double acc = 0;
        for (int64_t i = 0; i < in; i++) acc += (double)u[i] * (double)v[i];
        return acc;
    };

    // g for every token: route = softmax(R x), a = (A x) * s, g = repeat_each(route, r/n) * a
    std::vector<double> g((size_t)(r * n_tokens)), route((size_t)n);
    for (int64_t c = 0; c < n_tokens; c++) {
        const float *xc = x + c * in;
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n; j++) mx = std::max(mx, route[(size_t)j] = dot(R + j * in, xc));
        for (int64_t j = 0; j < n; j++) sum += route[(size_t)j] = std::exp(route[(size_t)j] - mx);
        for (int64_t j = 0; j < n; j++) route[(size_t)j] /= sum;
        for (int64_t k = 0; k < r; k++) g[(size_t)(c * r + k)] = route[(size_t)(k / per)] * (dot(A + k * in, xc) * s);
    }

    // y = W x + B g, one dequantized W row at a time
    const size_t row = row_bytes(w_type, in);
    std::vector<float> wrow((size_t)in);
    for (int64_t o = 0; o < out; o++) {
        ti->to_float(static_cast<const uint8_t *>(w) + o * row, wrow.data(), in);
        for (int64_t c = 0; c < n_tokens; c++) {
            double v = dot(wrow.data(), x + c * in);
            for (int64_t k = 0; k < r; k++) v += (double)B[(size_t)(o * r + k)] * g[(size_t)(c * r + k)];
            y[c * out + o] = (float)v;
        }
    }
}

} // namespace hg
