#include "ops/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "ops/softmax_exp.h"
#include "quant/quant.h"

namespace hg {

namespace {

int64_t elem_bytes(int type) {
    if (type == HG_TYPE_F32) return 4;
    if (type == HG_TYPE_F16) return 2;
    fail(std::string("attention: KV cache type ") +
         (type_traits(type) ? type_traits(type)->name : std::to_string(type)) + " is not supported (f32 or f16)");
}

float load(int type, const void *base, int64_t i) {
    return type == HG_TYPE_F32 ? static_cast<const float *>(base)[i]
                               : fp16_to_f32(static_cast<const fp16_t *>(base)[i]);
}

void check_heads(const kv_layer &kv, int64_t n_heads) {
    if (kv.n_kv_heads <= 0 || n_heads <= 0 || n_heads % kv.n_kv_heads != 0)
        fail("attention: " + std::to_string(n_heads) + " heads cannot share " + std::to_string(kv.n_kv_heads) +
             " kv heads");
}

// The keys query position p sees: [j0, p].
int64_t first_key(int64_t p, int64_t sliding_window) {
    return sliding_window > 0 ? std::max<int64_t>(0, p - sliding_window + 1) : 0;
}

} // namespace

int64_t kv_layer_bytes(int type, int64_t n_ctx, int64_t n_kv_heads, int64_t head_dim) {
    return elem_bytes(type) * n_ctx * n_kv_heads * head_dim;
}

void kv_store(const kv_layer &kv, const float *k, const float *v, int64_t token_stride, int64_t n_tokens, int64_t pos0,
              int64_t h0, int64_t h1) {
    const int64_t eb = elem_bytes(kv.type), hd = kv.head_dim;
    if (h1 < 0) h1 = kv.n_kv_heads;
    if (pos0 < 0 || pos0 + n_tokens > kv.n_ctx)
        fail("kv_store: positions " + std::to_string(pos0) + ".." + std::to_string(pos0 + n_tokens - 1) +
             " outside a cache of " + std::to_string(kv.n_ctx));
    if (h0 < 0 || h1 > kv.n_kv_heads || h0 > h1)
        fail("kv_store: heads " + std::to_string(h0) + ".." + std::to_string(h1) + " of " +
             std::to_string(kv.n_kv_heads));
    const from_float_fn to_f16 = kernels_active().from_float[HG_TYPE_F16];
    uint8_t *kb = static_cast<uint8_t *>(kv.k), *vb = static_cast<uint8_t *>(kv.v);
    for (int64_t h = h0; h < h1; h++)
        for (int64_t t = 0; t < n_tokens; t++) {
            const float *kr = k + t * token_stride + h * hd, *vr = v + t * token_stride + h * hd;
            const int64_t at = ((h * kv.n_ctx + pos0 + t) * hd) * eb;
            if (kv.type == HG_TYPE_F32) {
                std::copy(kr, kr + hd, reinterpret_cast<float *>(kb + at));
                std::copy(vr, vr + hd, reinterpret_cast<float *>(vb + at));
            } else {
                to_f16(kr, kb + at, hd);
                to_f16(vr, vb + at, hd);
            }
        }
}

void attention(ThreadPool &pool, const kv_layer &kv, const float *q, int64_t q_stride, int64_t n_tokens, int64_t pos0,
               int64_t n_heads, int64_t sliding_window, float *out, int64_t out_stride) {
    const attention_segment one{kv, q, n_tokens, pos0, out};
    attention_segments(pool, &one, 1, q_stride, n_heads, sliding_window, out_stride);
}

void attention_segments(ThreadPool &pool, const attention_segment *segs, size_t n_segs, int64_t q_stride,
                        int64_t n_heads, int64_t sliding_window, int64_t out_stride) {
    // items [first[i], first[i + 1]) are segment i's (kv head, token) pairs: the query heads
    // that share a kv head go together, so that its K and V are read once for all of them;
    // each segment's kernels for its cache type. Both cache types dot against plain floats:
    // the query and the probabilities are never rounded to the cache's type.
    const kernel_table &kt = kernels_active();
    std::vector<int64_t> first(n_segs + 1, 0);
    std::vector<vec_dot_fn> dots(n_segs);
    std::vector<vec_dot_rows_fn> rows_of(n_segs);
    std::vector<weighted_rows_fn> sums(n_segs);
    for (size_t i = 0; i < n_segs; i++) {
        const attention_segment &sg = segs[i];
        check_heads(sg.kv, n_heads);
        elem_bytes(sg.kv.type);
        if (sg.pos0 < 0 || sg.n_tokens < 0 || sg.pos0 + sg.n_tokens > sg.kv.n_ctx)
            fail("attention: positions outside the cache");
        if (!(dots[i] = kt.vec_dot[sg.kv.type])) fail("attention: no dot kernel for the cache type");
        const kernel_table *level = kernel_level(kt, sg.kv.type);
        rows_of[i] = level ? level->vec_dot_rows[sg.kv.type] : nullptr;
        if (!(sums[i] = kt.weighted_rows[sg.kv.type])) fail("attention: no weighted-sum kernel for the cache type");
        first[i + 1] = first[i] + sg.kv.n_kv_heads * sg.n_tokens;
    }
    std::atomic<int64_t> next{0};
    pool.run([&](int, int) {
        std::vector<float> scores;
        size_t i = 0;
        for (int64_t item; (item = next.fetch_add(1, std::memory_order_relaxed)) < first[n_segs];) {
            while (item >= first[i + 1]) i++; // items are taken in increasing order
            const attention_segment &sg = segs[i];
            const kv_layer &kv = sg.kv;
            const int64_t eb = elem_bytes(kv.type), hd = kv.head_dim, n_ctx = kv.n_ctx;
            const int64_t group = n_heads / kv.n_kv_heads;
            const float scale = 1.0f / std::sqrt((float)hd);
            const vec_dot_fn dot = dots[i];
            const vec_dot_rows_fn rows = rows_of[i];
            const uint8_t *kb = static_cast<const uint8_t *>(kv.k), *vb = static_cast<const uint8_t *>(kv.v);
            // Consecutive items are tokens of one kv head: they share its K and V rows.
            const int64_t local = item - first[i];
            const int64_t kvh = local / sg.n_tokens, t = local % sg.n_tokens;
            const int64_t p = sg.pos0 + t, j0 = first_key(p, sliding_window), n_keys = p + 1 - j0;
            // the group's query heads side by side, head g's scores at scores + g * n_keys
            const float *q0 = sg.q + t * q_stride + kvh * group * hd;
            scores.resize((size_t)(group * n_keys));
            const uint8_t *k_rows = kb + (kvh * n_ctx + j0) * hd * eb;
            int64_t j = 0;
            if (rows) // 16 keys a call: a call per head_dim-long dot costs as much as the dot
                for (; j + kRowBlock <= n_keys; j += kRowBlock)
                    for (int64_t g = 0; g < group; g += kRowBlockCols)
                        rows(hd, &scores[(size_t)(g * n_keys + j)], (size_t)n_keys, k_rows + j * hd * eb,
                             (size_t)(hd * eb), q0 + g * hd, (size_t)(hd * 4),
                             (int)std::min<int64_t>(kRowBlockCols, group - g));
            for (; j < n_keys; j++)
                for (int64_t g = 0; g < group; g++)
                    dot(hd, &scores[(size_t)(g * n_keys + j)], k_rows + j * hd * eb, q0 + g * hd);
            for (int64_t g = 0; g < group; g++) {
                float *sc = &scores[(size_t)(g * n_keys)];
                float max_score = -INFINITY;
                for (j = 0; j < n_keys; j++) {
                    sc[j] *= scale;
                    max_score = std::max(max_score, sc[j]);
                }
                const float inv_sum = 1.0f / exp_sum(sc, n_keys, max_score);
                for (j = 0; j < n_keys; j++) sc[j] *= inv_sum;
            }
            // out = probs . V over the same key range: V's rows, weighted, in order, read once
            // for the group's heads
            sums[i](hd, sg.out + t * out_stride + kvh * group * hd, (size_t)hd, vb + (kvh * n_ctx + j0) * hd * eb,
                    (size_t)(hd * eb), scores.data(), (size_t)n_keys, (int)group, n_keys);
        }
    });
}

void attention_ref(const kv_layer &kv, const float *q, int64_t q_stride, int64_t n_tokens, int64_t pos0,
                   int64_t n_heads, int64_t sliding_window, float *out, int64_t out_stride) {
    check_heads(kv, n_heads);
    elem_bytes(kv.type);
    const int64_t hd = kv.head_dim, n_ctx = kv.n_ctx, group = n_heads / kv.n_kv_heads;
    if (pos0 < 0 || pos0 + n_tokens > n_ctx) fail("attention_ref: positions outside the cache");
    std::vector<double> probs;
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t h = 0; h < n_heads; h++) {
            const int64_t kvh = h / group, p = pos0 + t, j0 = first_key(p, sliding_window);
            const float *qh = q + t * q_stride + h * hd;
            probs.assign(p + 1 - j0, 0.0);
            double max_score = -INFINITY, sum = 0;
            for (int64_t j = j0; j <= p; j++) {
                double s = 0;
                for (int64_t d = 0; d < hd; d++) s += qh[d] * (double)load(kv.type, kv.k, (kvh * n_ctx + j) * hd + d);
                probs[j - j0] = s / std::sqrt((double)hd);
                max_score = std::max(max_score, probs[j - j0]);
            }
            for (double &s : probs) sum += (s = std::exp(s - max_score));
            for (int64_t d = 0; d < hd; d++) {
                double o = 0;
                for (int64_t j = j0; j <= p; j++) o += probs[j - j0] * load(kv.type, kv.v, (kvh * n_ctx + j) * hd + d);
                out[t * out_stride + h * hd + d] = (float)(o / sum);
            }
        }
}

} // namespace hg
