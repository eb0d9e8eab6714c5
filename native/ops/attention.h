// Causal self-attention of a batch of new tokens against the KV cache, with grouped-query
// heads (n_heads a multiple of n_kv_heads: head h reads kv head h / (n_heads / n_kv_heads),
// as transformers' repeat_kv lays them out) and an optional sliding window.
//
// Query token i of a batch starting at position pos0 sits at p = pos0 + i and sees the keys
// at positions j with j <= p and, with a window W > 0, p - j < W (W keys, itself included:
// transformers' sliding-window mask). Scores are q.k / sqrt(head_dim), softmax in float.
#pragma once

#include <cstdint>

#include "core/threadpool.h"

namespace hg {

// One layer's cache, positions 0..n_ctx-1. K and V are kept key by key per kv head
// ([n_kv_heads][n_ctx][head_dim]): a head's keys up to a position are one run of memory, read
// once by q.K (dots, 16 keys a call) and once by probs.V (a weighted sum of the V rows). A
// transposed V (head_dim runs at the cache's stride) read from memory at decode took 1.5x
// as long for the whole attention.
//
// A q8_0 cache (head_dim a multiple of 32) holds each key and value as q8_0 blocks, 1.06
// bytes a value against f16's 2: half the memory a slot takes and half the bytes a long
// context's attention reads. Its keys sit in groups of 16 packed as quant/repack.h packs
// weight rows (each head's run rounded up to whole groups), so that q.K is the packed q8_0
// row-block kernel with the query rounded to q8_0 (llama.cpp's q8_0 cache rounds it too);
// its values stay row by row, weighted as dequantized. Values are quantized as they are
// stored (the active kernels' q8_0 quantizer, llama.cpp's rounding).
struct kv_layer {
    int type = 0; // HG_TYPE_F32, HG_TYPE_F16 or HG_TYPE_Q8_0
    void *k = nullptr;
    void *v = nullptr;
    int64_t n_ctx = 0, n_kv_heads = 0, head_dim = 0;
};

// Bytes one layer's K (or V) takes. Fails (hg::Error) for a type the cache cannot hold, and
// for q8_0 with a head_dim that is not whole blocks.
int64_t kv_layer_bytes(int type, int64_t n_ctx, int64_t n_kv_heads, int64_t head_dim);

// Writes the K and V of n_tokens tokens at positions pos0.. (token t's K at k + t *
// token_stride, n_kv_heads * head_dim floats, heads one after the other; the same for V);
// kv heads [h0, h1) only when given (threads share a store out by heads). An F16 cache
// rounds with the active kernels' f16 conversion (F16C where there is one: the same bits as
// the scalar f32_to_fp16, round to nearest even).
void kv_store(const kv_layer &kv, const float *k, const float *v, int64_t token_stride, int64_t n_tokens, int64_t pos0,
              int64_t h0 = 0, int64_t h1 = -1);

// q: token t's n_heads query heads at q + t * q_stride (already rotated); out: token t's
// n_heads * head_dim floats at out + t * out_stride. The cache must already hold positions
// 0..pos0 + n_tokens - 1. sliding_window <= 0: none. Work is shared out over (kv head, token)
// pairs, the query heads of a kv head together (each of its K and V rows read once for them).
// The cache's values are widened exactly; q and the probabilities stay floats.
void attention(ThreadPool &pool, const kv_layer &kv, const float *q, int64_t q_stride, int64_t n_tokens, int64_t pos0,
               int64_t n_heads, int64_t sliding_window, float *out, int64_t out_stride);

// Several segments' attention in one pool job (a batch of sequences, each against its own
// cache): segment i's tokens t at segs[i].q + t * q_stride, its output at segs[i].out + t *
// out_stride, every segment computed exactly as attention() computes it alone.
struct attention_segment {
    kv_layer kv;
    const float *q;
    int64_t n_tokens, pos0;
    float *out;
};
void attention_segments(ThreadPool &pool, const attention_segment *segs, size_t n_segs, int64_t q_stride,
                        int64_t n_heads, int64_t sliding_window, int64_t out_stride);

// Plain scalar reference on one thread: the cache read as floats, the probabilities
// unrounded, sums in double; q unrounded too, except against a q8_0 cache, whose attention is
// defined with q rounded to q8_0 (as the kernels round it).
void attention_ref(const kv_layer &kv, const float *q, int64_t q_stride, int64_t n_tokens, int64_t pos0,
                   int64_t n_heads, int64_t sliding_window, float *out, int64_t out_stride);

} // namespace hg
