#include "ops/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/softmax_exp.h"
#include "quant/blocks.h"
#include "quant/quant.h"
#include "quant/repack.h"

namespace hg {

namespace {

bool quantized(int type) { return type == HG_TYPE_Q8_0; }

// Bytes of one key's (or value's) head_dim values.
int64_t head_bytes(int type, int64_t head_dim) {
    if (type == HG_TYPE_F32) return 4 * head_dim;
    if (type == HG_TYPE_F16) return 2 * head_dim;
    if (type == HG_TYPE_Q8_0) {
        if (head_dim % QK8_0 != 0)
            fail("attention: a q8_0 KV cache needs head_dim a multiple of " + std::to_string(QK8_0) + ", got " +
                 std::to_string(head_dim));
        return (int64_t)row_bytes(type, head_dim);
    }
    fail(std::string("attention: KV cache type ") +
         (type_traits(type) ? type_traits(type)->name : std::to_string(type)) + " is not supported (f32, f16 or q8_0)");
}

// Positions a head's run holds: a q8_0 cache's keys sit in whole groups of kRowBlock.
int64_t head_positions(int type, int64_t n_ctx) {
    return quantized(type) ? (n_ctx + kRowBlock - 1) / kRowBlock * kRowBlock : n_ctx;
}

// Byte offsets in a layer's K or V: a q8_0 cache's key j sits in the group of kRowBlock keys
// that starts at key_group_at (packed as quant/repack.h packs weight rows, so that q.K is the
// packed row-block kernel over 16 keys at once); every other key and every value at value_at.
int64_t key_group_at(const kv_layer &kv, int64_t kvh, int64_t j, int64_t rb) {
    return (kvh * head_positions(kv.type, kv.n_ctx) + j / kRowBlock * kRowBlock) * rb;
}
int64_t value_at(const kv_layer &kv, int64_t kvh, int64_t j, int64_t rb) {
    return (kvh * head_positions(kv.type, kv.n_ctx) + j) * rb;
}

// Key or value j of kv head kvh as floats (the reference's and the tests' view of the cache).
void read_row(const kv_layer &kv, bool key, int64_t kvh, int64_t j, float *out) {
    const int64_t hd = kv.head_dim, rb = head_bytes(kv.type, hd);
    if (quantized(kv.type) && key) {
        const uint8_t *group = static_cast<const uint8_t *>(kv.k) + key_group_at(kv, kvh, j, rb);
        block_q8_0 blk;
        for (int64_t b = 0; b < hd / QK8_0; b++) {
            unpack_block(kv.type, group, hd / QK8_0, (int)(j % kRowBlock), b, &blk);
            type_traits(kv.type)->to_float(&blk, out + b * QK8_0, QK8_0);
        }
        return;
    }
    const uint8_t *row = static_cast<const uint8_t *>(key ? kv.k : kv.v) + value_at(kv, kvh, j, rb);
    if (kv.type == HG_TYPE_F32)
        std::copy((const float *)row, (const float *)row + hd, out);
    else
        type_traits(kv.type)->to_float(row, out, hd);
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

// A query head as a q8_0 activation row with its aux (what the packed q8_0 kernel reads): a
// q8_0 cache's q.K is 8-bit on both sides, as llama.cpp's is.
void quantize_query(const float *q, int64_t hd, uint8_t *col) {
    kernels_active().from_float[HG_TYPE_Q8_0](q, col, hd);
    q8_0_fill_aux(col, hd, reinterpret_cast<q8_0_aux *>(col + q8_0_aux_offset(hd)));
}

} // namespace

int64_t kv_layer_bytes(int type, int64_t n_ctx, int64_t n_kv_heads, int64_t head_dim) {
    return head_bytes(type, head_dim) * head_positions(type, n_ctx) * n_kv_heads;
}

void kv_store(const kv_layer &kv, const float *k, const float *v, int64_t token_stride, int64_t n_tokens, int64_t pos0,
              int64_t h0, int64_t h1) {
    const int64_t hd = kv.head_dim, rb = head_bytes(kv.type, hd);
    if (h1 < 0) h1 = kv.n_kv_heads;
    if (pos0 < 0 || pos0 + n_tokens > kv.n_ctx)
        fail("kv_store: positions " + std::to_string(pos0) + ".." + std::to_string(pos0 + n_tokens - 1) +
             " outside a cache of " + std::to_string(kv.n_ctx));
    if (h0 < 0 || h1 > kv.n_kv_heads || h0 > h1)
        fail("kv_store: heads " + std::to_string(h0) + ".." + std::to_string(h1) + " of " +
             std::to_string(kv.n_kv_heads));
    const from_float_fn convert = kv.type == HG_TYPE_F32 ? nullptr : kernels_active().from_float[kv.type];
    uint8_t *kb = static_cast<uint8_t *>(kv.k), *vb = static_cast<uint8_t *>(kv.v);
    std::vector<block_q8_0> key(quantized(kv.type) ? (size_t)(hd / QK8_0) : 0);
    for (int64_t h = h0; h < h1; h++)
        for (int64_t t = 0; t < n_tokens; t++) {
            const float *kr = k + t * token_stride + h * hd, *vr = v + t * token_stride + h * hd;
            const int64_t pos = pos0 + t, at = value_at(kv, h, pos, rb);
            if (kv.type == HG_TYPE_F32) {
                std::copy(kr, kr + hd, reinterpret_cast<float *>(kb + at));
                std::copy(vr, vr + hd, reinterpret_cast<float *>(vb + at));
                continue;
            }
            convert(vr, vb + at, hd);
            if (!quantized(kv.type)) {
                convert(kr, kb + at, hd);
                continue;
            }
            // the key into its group; a group's first key clears it, so that the rows past the
            // last key (which the kernel computes and attention drops) hold zeros, not NaNs
            uint8_t *group = kb + key_group_at(kv, h, pos, rb);
            if (pos % kRowBlock == 0) std::memset(group, 0, (size_t)(kRowBlock * rb));
            convert(kr, key.data(), hd);
            for (int64_t b = 0; b < hd / QK8_0; b++)
                pack_block(kv.type, group, hd / QK8_0, (int)(pos % kRowBlock), b, &key[(size_t)b]);
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
    // each segment's kernels for its cache type. F32 and F16 caches dot against plain floats:
    // the query and the probabilities are never rounded to the cache's type. A q8_0 cache's
    // keys are dotted 16 at a time (a packed group) with the query rounded to q8_0.
    const kernel_table &kt = kernels_active();
    std::vector<int64_t> first(n_segs + 1, 0);
    std::vector<vec_dot_fn> dots(n_segs);
    std::vector<vec_dot_rows_fn> rows_of(n_segs);
    std::vector<weighted_rows_fn> sums(n_segs);
    for (size_t i = 0; i < n_segs; i++) {
        const attention_segment &sg = segs[i];
        check_heads(sg.kv, n_heads);
        head_bytes(sg.kv.type, sg.kv.head_dim);
        if (sg.pos0 < 0 || sg.n_tokens < 0 || sg.pos0 + sg.n_tokens > sg.kv.n_ctx)
            fail("attention: positions outside the cache");
        if (quantized(sg.kv.type)) {
            if (!(rows_of[i] = kt.vec_dot_rows_packed[sg.kv.type])) fail("attention: no kernel for the cache type");
        } else {
            if (!(dots[i] = kt.vec_dot[sg.kv.type])) fail("attention: no dot kernel for the cache type");
            const kernel_table *level = kernel_level(kt, sg.kv.type);
            rows_of[i] = level ? level->vec_dot_rows[sg.kv.type] : nullptr;
        }
        if (!(sums[i] = kt.weighted_rows[sg.kv.type])) fail("attention: no weighted-sum kernel for the cache type");
        first[i + 1] = first[i] + sg.kv.n_kv_heads * sg.n_tokens;
    }
    std::atomic<int64_t> next{0};
    pool.run([&](int, int) {
        std::vector<float> scores;
        std::vector<uint8_t> q8; // a q8_0 cache's query heads, rounded
        size_t i = 0;
        for (int64_t item; (item = next.fetch_add(1, std::memory_order_relaxed)) < first[n_segs];) {
            while (item >= first[i + 1]) i++; // items are taken in increasing order
            const attention_segment &sg = segs[i];
            const kv_layer &kv = sg.kv;
            const int64_t hd = kv.head_dim, rb = head_bytes(kv.type, hd);
            const int64_t group = n_heads / kv.n_kv_heads;
            const float scale = 1.0f / std::sqrt((float)hd);
            const vec_dot_rows_fn rows = rows_of[i];
            // Consecutive items are tokens of one kv head: they share its K and V rows.
            const int64_t local = item - first[i];
            const int64_t kvh = local / sg.n_tokens, t = local % sg.n_tokens;
            const int64_t p = sg.pos0 + t, j0 = first_key(p, sliding_window), n_keys = p + 1 - j0;
            // the group's query heads side by side: head g's scores for keys k0.. at scores +
            // g * span, its keys' (j0..p) from + off on
            const float *q0 = sg.q + t * q_stride + kvh * group * hd;
            const bool q8_0 = quantized(kv.type);
            const uint8_t *kb = static_cast<const uint8_t *>(kv.k);
            const int64_t k0 = q8_0 ? j0 / kRowBlock * kRowBlock : j0, off = j0 - k0;
            const int64_t span = q8_0 ? (p / kRowBlock + 1) * kRowBlock - k0 : n_keys;
            scores.resize((size_t)(group * span));
            if (q8_0) { // whole groups of keys; the scores past p are computed and left
                const size_t col = q8_0_row_with_aux(hd);
                q8.resize(col * (size_t)group);
                for (int64_t g = 0; g < group; g++) quantize_query(q0 + g * hd, hd, &q8[g * col]);
                for (int64_t j = 0; j < span; j += kRowBlock)
                    for (int64_t g = 0; g < group; g += kRowBlockCols)
                        rows(hd, &scores[(size_t)(g * span + j)], (size_t)span, kb + key_group_at(kv, kvh, k0 + j, rb),
                             0, &q8[g * col], col, (int)std::min<int64_t>(kRowBlockCols, group - g));
            } else {
                const uint8_t *k_rows = kb + value_at(kv, kvh, j0, rb);
                int64_t j = 0;
                if (rows) // 16 keys a call: a call per head_dim-long dot costs as much as the dot
                    for (; j + kRowBlock <= n_keys; j += kRowBlock)
                        for (int64_t g = 0; g < group; g += kRowBlockCols)
                            rows(hd, &scores[(size_t)(g * span + j)], (size_t)span, k_rows + j * rb, (size_t)rb,
                                 q0 + g * hd, (size_t)(hd * 4), (int)std::min<int64_t>(kRowBlockCols, group - g));
                for (; j < n_keys; j++)
                    for (int64_t g = 0; g < group; g++)
                        dots[i](hd, &scores[(size_t)(g * span + j)], k_rows + j * rb, q0 + g * hd);
            }
            for (int64_t g = 0; g < group; g++) {
                float *sc = &scores[(size_t)(g * span + off)];
                float max_score = -INFINITY;
                for (int64_t j = 0; j < n_keys; j++) {
                    sc[j] *= scale;
                    max_score = std::max(max_score, sc[j]);
                }
                const float inv_sum = 1.0f / exp_sum(sc, n_keys, max_score);
                for (int64_t j = 0; j < n_keys; j++) sc[j] *= inv_sum;
            }
            // out = probs . V over the same key range: V's rows, weighted, in order, read once
            // for the group's heads
            sums[i](hd, sg.out + t * out_stride + kvh * group * hd, (size_t)hd,
                    static_cast<const uint8_t *>(kv.v) + value_at(kv, kvh, j0, rb), (size_t)rb, &scores[(size_t)off],
                    (size_t)span, (int)group, n_keys);
        }
    });
}

void attention_ref(const kv_layer &kv, const float *q, int64_t q_stride, int64_t n_tokens, int64_t pos0,
                   int64_t n_heads, int64_t sliding_window, float *out, int64_t out_stride) {
    check_heads(kv, n_heads);
    head_bytes(kv.type, kv.head_dim);
    const int64_t hd = kv.head_dim, group = n_heads / kv.n_kv_heads;
    if (pos0 < 0 || pos0 + n_tokens > kv.n_ctx) fail("attention_ref: positions outside the cache");
    std::vector<double> probs;
    std::vector<float> qh((size_t)hd), row((size_t)hd);
    std::vector<uint8_t> q8(quantized(kv.type) ? q8_0_row_with_aux(hd) : 0);
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t h = 0; h < n_heads; h++) {
            const int64_t kvh = h / group, p = pos0 + t, j0 = first_key(p, sliding_window);
            std::copy(q + t * q_stride + h * hd, q + t * q_stride + (h + 1) * hd, qh.begin());
            if (quantized(kv.type)) { // the query as the kernels round it
                quantize_query(qh.data(), hd, q8.data());
                type_traits(HG_TYPE_Q8_0)->to_float(q8.data(), qh.data(), hd);
            }
            probs.assign(p + 1 - j0, 0.0);
            double max_score = -INFINITY, sum = 0;
            for (int64_t j = j0; j <= p; j++) {
                read_row(kv, true, kvh, j, row.data());
                double s = 0;
                for (int64_t d = 0; d < hd; d++) s += qh[d] * (double)row[d];
                probs[j - j0] = s / std::sqrt((double)hd);
                max_score = std::max(max_score, probs[j - j0]);
            }
            for (double &s : probs) sum += (s = std::exp(s - max_score));
            std::vector<double> o((size_t)hd, 0.0);
            for (int64_t j = j0; j <= p; j++) {
                read_row(kv, false, kvh, j, row.data());
                for (int64_t d = 0; d < hd; d++) o[d] += probs[j - j0] * row[d];
            }
            for (int64_t d = 0; d < hd; d++) out[t * out_stride + h * hd + d] = (float)(o[d] / sum);
        }
}

} // namespace hg
