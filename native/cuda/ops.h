// CUDA ops of the Phi-3 decoder: host functions that enqueue kernels on a stream.
//
// Plain C++ (no CUDA header), so tests and the model runner compile with the host compiler.
// Every pointer is device memory unless said otherwise; `stream` is a cudaStream_t passed as
// void* (nullptr: the legacy default stream). Each function checks its arguments and the
// launch and throws hg::Error on a failure; a fault inside a kernel surfaces at the next
// synchronizing call. Each op mirrors the CPU op named beside it (native/ops/...), in the
// same layouts, so that the two can be compared on the same inputs.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hg {
namespace cuda {

// ---- Y = W X (ops/matmul.h) ----
// W: rows x k of `type`, rows back to back (plain ggml block layouts, not the CPU's packed
// groups); X: n columns of k floats; Y column c at y + c * ldy (rows floats), added to what is
// there when accumulate. Weights of q4_0 / q8_0 meet activations quantized on the device to
// q8_0 exactly as the CPU quantizes them (int8 dp4a dot products); so do q4_K / q5_K / q6_K
// (the CPU rounds their activations to q8_K instead: results differ by that rounding); f32 /
// f16 weights meet f32 activations, bf16 weights bf16-rounded ones (as the CPU pairs them);
// q4_1, q5_0, q5_1 are dequantized on the fly against f32 activations (the CPU rounds those
// to q8_1 first).
bool matmul_supports(int type);
// More than 8 tokens (prefill) run on tensor cores: q4_0 / q8_0 on int8 ones (the same integer
// sums per quant block, scaled and added in the same order); q4_K / q5_K / q6_K on int8 ones
// too (a scale per 16 values); f16 on f16 ones with each activation split into two f16 parts (about 2^-22
// of it is kept); bf16 on bf16 ones from sm_80 (the mat-vec kernel below that), against
// bf16-rounded activations as on the CPU. Off: the mat-vec kernels. Default on, unless the
// environment has HEALTHGPT_CUDA_MMA=0.
void matmul_use_tensor_cores(bool on);
// Whether matmul of n columns of this type takes the tensor-core path on the current device.
bool matmul_uses_tensor_cores(int type, int64_t n);
// The values the K-quants' tensor-core path reads from a row of k (int8 q, a scale per 16
// values, a min per 32), as scale * q - min, computed on the host from the kernel's own
// unpacking: a check of that unpacking against the CPU's dequantization without a device.
void kquant_mma_values(int type, const void *row, int64_t k, float *out);
// Device scratch bytes matmul needs for the activations of n columns of k.
size_t matmul_scratch_bytes(int type, int64_t k, int64_t n);
void matmul(int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t n, float *y, int64_t ldy,
            bool accumulate, void *scratch, size_t scratch_bytes, void *stream);

// ---- element-wise and per-row ops ----
// ops/norm.h rms_norm: n_rows rows of n.
void rms_norm(const float *x, const float *weight, float *y, int64_t n, int64_t n_rows, float eps, void *stream);
// ops/rope.h rope_apply with the tables indexed by position: token t rotates with row
// pos0 + t of cos / sin (n_rot / 2 floats a row, as rope_cos_sin writes them).
void rope(float *x, int64_t n_tokens, int64_t token_stride, int64_t n_heads, int64_t head_dim, int n_rot,
          const float *cos, const float *sin, int64_t pos0, void *stream, const int32_t *pos0_dev = nullptr);
// ops/activation.h silu_mul.
void silu_mul(const float *gate_up, float *act, int64_t n_ff, int64_t n_tokens, void *stream);
// y[i] += x[i], n values.
void add(float *y, const float *x, int64_t n, void *stream);

// Embedding rows: out row t (n floats) = row rows[t] of `table` (n_table_rows rows of n values
// of `type`, any type matmul_supports), dequantized; rows[t] < 0 leaves out row t alone.
// rows is device memory; an index >= n_table_rows is a caller's bug, caught on the host.
void get_rows(int type, const void *table, int64_t n, const int32_t *rows, int64_t n_tokens, float *out, void *stream);

// ---- attention (ops/attention.h) ----
// One layer's cache on the device: K and V both [n_kv_heads][n_ctx][head_dim] of
// HG_TYPE_F16 or HG_TYPE_F32 (V is not transposed as on the CPU: a key's V row is read whole).
struct kv_cache_layer {
    int type = 0;
    void *k = nullptr, *v = nullptr;
    int64_t n_ctx = 0, n_kv_heads = 0, head_dim = 0;
};
// Position-dependent ops (rope, kv_store, attention) take pos0 from the host, or, when pos0_dev
// is given, from that device int at run time (pos0 then only serves the host's checks): a CUDA
// graph of a decode step replays at every position.
//
// kv_store: token t's K at k + t * token_stride (n_kv_heads * head_dim floats), V likewise.
void kv_store(const kv_cache_layer &kv, const float *k, const float *v, int64_t token_stride, int64_t n_tokens,
              int64_t pos0, void *stream, const int32_t *pos0_dev = nullptr);
// Scratch floats attention needs for its split-K partials (the split count follows the cache's
// size and window, not the position).
size_t attention_scratch_floats(int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t n_ctx,
                                int64_t sliding_window);
// Eight or more tokens (prefill) take a flash-attention kernel (tiles of 16 queries against
// tiles of 32 keys, online softmax, no scratch), fewer the split-K kernel. Off: split-K always.
// Default on, unless the environment has HEALTHGPT_CUDA_FLASH=0.
void attention_use_flash(bool on);
bool attention_uses_flash(int64_t n_tokens);
void attention(const kv_cache_layer &kv, const float *q, int64_t q_stride, int64_t n_tokens, int64_t pos0,
               int64_t n_heads, int64_t sliding_window, float *out, int64_t out_stride, float *scratch,
               size_t scratch_floats, void *stream, const int32_t *pos0_dev = nullptr);

// ---- H-LoRA epilogue (ops/hlora.cpp expert_mix) ----
// logits_a: n_tokens columns of ra_rows floats (router logits at 0.., A x at a_row..);
// g: n_tokens columns of rank floats = A x * softmax(router)[slot / (rank / n_experts)] * scale.
void hlora_mix(const float *logits_a, int64_t ra_rows, int64_t a_row, int64_t n_experts, int64_t rank, float scale,
               int64_t n_tokens, float *g, void *stream);

// One adapter in device memory (ops/hlora.h HLoraAdapter, plain layouts).
struct hlora_adapter {
    int ra_type = 0, b_type = 0;
    const void *ra = nullptr; // [router; lora_A]: ra_rows x in
    const void *b = nullptr;  // lora_B: out x rank
    int64_t in = 0, out = 0, rank = 0, n_experts = 0, a_row = 0, ra_rows = 0;
    float scale = 0;
};
// The H-LoRA linear (ops/hlora.h hlora_linear): y = W x, then [R; A] x in one pass over x into
// logits_a (n x ra_rows floats), the softmax / expansion / scale into g (n x rank floats), and
// B g added onto y. W: out x in of w_type.
void hlora_linear(int w_type, const void *w, const hlora_adapter &ad, const float *x, int64_t n, float *y,
                  float *logits_a, float *g, void *scratch, size_t scratch_bytes, void *stream);

// ---- greedy decoding's pick (ops/greedy.h) ----
// *out = the token of row's largest value in [range[0], range[1]) (both device memory, so a
// recorded graph reads the range of each launch), the first of equal maxima, NaN never
// chosen, -1 when none is above -infinity; a range of one token is that token. The range is
// checked by the caller.
void greedy_pick(const float *row, const int32_t *range, int32_t *out, void *stream);

} // namespace cuda
} // namespace hg
