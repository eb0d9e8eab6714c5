// The Phi-3 decoder's other ops on the device (declarations and contracts: cuda/ops.h).
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

#include "cuda/common.cuh"
#include "cuda/dequant.cuh"
#include "cuda/ops.h"

namespace hg {
namespace cuda {
namespace {

constexpr int kMaxHeadDim = 256; // attention keeps a head's accumulators in registers
constexpr int kAttnWarps = 4;
constexpr int64_t kFlashMinTokens = 8; // fewer tokens (decode): the split-K kernel

// Checks run on every launch: the message is built only on a failure.
void need(bool ok, const char *what) {
    if (!ok) throw Error(std::string("cuda ") + what);
}
template <class Msg> void need(bool ok, Msg &&what) {
    if (!ok) throw Error("cuda " + std::string(what()));
}

// ---- rms_norm: one block per row; the sum of squares in float as the CPU keeps it ----
__global__ void rms_norm_kernel(const float *__restrict__ x, const float *__restrict__ w, float *__restrict__ y,
                                int64_t n, float eps) {
    __shared__ float partial[32];
    const float *xr = x + blockIdx.x * n;
    float *yr = y + blockIdx.x * n;
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += xr[i] * xr[i];
    s = warp_sum(s);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x < 32) {
        s = threadIdx.x < (blockDim.x >> 5) ? partial[threadIdx.x] : 0.0f;
        s = warp_sum(s);
        if (threadIdx.x == 0) partial[0] = s;
    }
    __syncthreads();
    const float inv_rms = 1.0f / sqrtf(partial[0] / (float)n + eps);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = __fmul_rn(xr[i], inv_rms) * w[i];
}

// ---- rope: rotate-half on the first n_rot values of each head (ops/rope.cpp) ----
__global__ void rope_kernel(float *x, int64_t n_tokens, int64_t token_stride, int64_t n_heads, int64_t head_dim,
                            int half, const float *__restrict__ cos, const float *__restrict__ sin, int64_t pos_host,
                            const int32_t *__restrict__ pos_dev) {
    const int64_t pos0 = pos_dev ? *pos_dev : pos_host;
    const int64_t total = n_tokens * n_heads * half;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = e % half, h = (e / half) % n_heads, t = e / (half * n_heads);
        float *lo = x + t * token_stride + h * head_dim;
        const float c = cos[(pos0 + t) * half + i], s = sin[(pos0 + t) * half + i];
        const float a = lo[i], b = lo[i + half];
        // no fused multiply-add: the CPU rounds each product
        lo[i] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
        lo[i + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
    }
}

__global__ void silu_mul_kernel(const float *__restrict__ gate_up, float *__restrict__ act, int64_t n_ff,
                                int64_t n_tokens) {
    const int64_t total = n_ff * n_tokens;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = e / n_ff, i = e % n_ff;
        const float g = gate_up[t * 2 * n_ff + i], u = gate_up[t * 2 * n_ff + n_ff + i];
        act[e] = g / (1.0f + expf(-g)) * u;
    }
}

__global__ void add_kernel(float *y, const float *__restrict__ x, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

// ---- embeddings: one block per token ----
__global__ void get_rows_kernel(int type, const uint8_t *__restrict__ table, size_t row_bytes, int64_t n,
                                const int32_t *__restrict__ rows, float *__restrict__ out) {
    const int32_t r = rows[blockIdx.x];
    if (r < 0) return;
    const uint8_t *src = table + (size_t)r * row_bytes;
    float *dst = out + (int64_t)blockIdx.x * n;
    if (dq_is_float(type)) {
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) dst[i] = load_float_type(type, src, i);
        return;
    }
    float v[32];
    for (int64_t u = threadIdx.x; u < n / 32; u += blockDim.x) {
        dequant_unit(type, src, u, v);
        for (int j = 0; j < 32; j++) dst[u * 32 + j] = v[j];
    }
}

// ---- KV cache ----
template <class T> __device__ __forceinline__ T to_cache(float v);
template <> __device__ __forceinline__ float to_cache<float>(float v) { return v; }
template <> __device__ __forceinline__ __half to_cache<__half>(float v) { return __float2half_rn(v); }
__device__ __forceinline__ float from_cache(float v) { return v; }
__device__ __forceinline__ float from_cache(__half v) { return __half2float(v); }

template <class T> __global__ void kv_store_kernel(T *kc, T *vc, const float *__restrict__ k,
                                                   const float *__restrict__ v, int64_t token_stride, int64_t n_tokens,
                                                   int64_t pos_host, const int32_t *__restrict__ pos_dev, int64_t n_ctx,
                                                   int64_t n_kv_heads, int64_t hd) {
    const int64_t pos0 = pos_dev ? *pos_dev : pos_host;
    const int64_t total = n_tokens * n_kv_heads * hd;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t d = e % hd, h = (e / hd) % n_kv_heads, t = e / (hd * n_kv_heads);
        const int64_t dst = (h * n_ctx + pos0 + t) * hd + d, src = t * token_stride + h * hd + d;
        kc[dst] = to_cache<T>(k[src]);
        vc[dst] = to_cache<T>(v[src]);
    }
}

// ---- attention: split-K over the keys with an online softmax ----
// Block (token t, head h, split s) takes its share of the keys query position pos0 + t sees;
// each of its warps walks every kAttnWarps-th key of that share, a lane holding dims lane,
// lane + 32, ... of the query and of the running sum of V. The warps merge in shared memory
// and write one partial (max, sum, acc[head_dim]) per split; attention_combine_kernel merges
// the splits. A partial with no keys has max -inf and sum 0.
template <class T> __global__ void __launch_bounds__(kAttnWarps * 32)
    attention_kernel(const T *__restrict__ kc, const T *__restrict__ vc, int64_t n_ctx, int64_t hd, int64_t group,
                     const float *__restrict__ q, int64_t q_stride, int64_t pos_host,
                     const int32_t *__restrict__ pos_dev, int64_t n_heads, int64_t window, float scale, int n_split,
                     float *__restrict__ part) {
    const int64_t pos0 = pos_dev ? *pos_dev : pos_host;
    constexpr int D = kMaxHeadDim / 32;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t t = blockIdx.x, h = blockIdx.y, s = blockIdx.z, kvh = h / group;
    const int64_t p = pos0 + t, j0 = window > 0 ? max((int64_t)0, p - window + 1) : 0, n_keys = p + 1 - j0;
    const int64_t chunk = (n_keys + n_split - 1) / n_split;
    const int64_t ja = j0 + s * chunk, jb = min(p + 1, ja + chunk);
    const float *qh = q + t * q_stride + h * hd;
    float qv[D], acc[D];
#pragma unroll
    for (int i = 0; i < D; i++) {
        const int64_t d = lane + 32 * i;
        qv[i] = d < hd ? qh[d] : 0.0f;
        acc[i] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    const T *kb = kc + kvh * n_ctx * hd, *vb = vc + kvh * n_ctx * hd;
    for (int64_t j = ja + warp; j < jb; j += kAttnWarps) {
        const T *kr = kb + j * hd, *vr = vb + j * hd;
        float sc = 0.0f;
#pragma unroll
        for (int i = 0; i < D; i++) {
            const int64_t d = lane + 32 * i;
            if (d < hd) sc += qv[i] * from_cache(kr[d]);
        }
        sc = warp_sum(sc) * scale;
        const float m_new = fmaxf(m, sc);
        const float corr = expf(m - m_new), pe = expf(sc - m_new); // m = -inf at first: corr 0
        l = l * corr + pe;
#pragma unroll
        for (int i = 0; i < D; i++) {
            const int64_t d = lane + 32 * i;
            acc[i] = acc[i] * corr + (d < hd ? pe * from_cache(vr[d]) : 0.0f);
        }
        m = m_new;
    }
    __shared__ float sm_m[kAttnWarps], sm_l[kAttnWarps], sm_acc[kAttnWarps][kMaxHeadDim];
    if (lane == 0) sm_m[warp] = m, sm_l[warp] = l;
#pragma unroll
    for (int i = 0; i < D; i++) sm_acc[warp][lane + 32 * i] = acc[i];
    __syncthreads();
    float M = -INFINITY;
    for (int w = 0; w < kAttnWarps; w++) M = fmaxf(M, sm_m[w]);
    float *out = part + ((t * n_heads + h) * n_split + s) * (hd + 2);
    for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
        float a = 0.0f;
        if (M != -INFINITY)
            for (int w = 0; w < kAttnWarps; w++)
                if (sm_m[w] != -INFINITY) a += sm_acc[w][d] * expf(sm_m[w] - M);
        out[2 + d] = a;
    }
    if (threadIdx.x == 0) {
        float L = 0.0f;
        if (M != -INFINITY)
            for (int w = 0; w < kAttnWarps; w++)
                if (sm_m[w] != -INFINITY) L += sm_l[w] * expf(sm_m[w] - M);
        out[0] = M;
        out[1] = L;
    }
}

// One block per (token, head): merges the splits and divides by the softmax sum.
__global__ void attention_combine_kernel(const float *__restrict__ part, int n_split, int64_t hd, int64_t n_heads,
                                         float *__restrict__ out, int64_t out_stride) {
    const int64_t t = blockIdx.x, h = blockIdx.y;
    const float *pp = part + (t * n_heads + h) * n_split * (hd + 2);
    float M = -INFINITY;
    for (int s = 0; s < n_split; s++) M = fmaxf(M, pp[s * (hd + 2)]);
    float L = 0.0f;
    for (int s = 0; s < n_split; s++) {
        const float ms = pp[s * (hd + 2)];
        if (ms != -INFINITY) L += pp[s * (hd + 2) + 1] * expf(ms - M);
    }
    const float inv = 1.0f / L;
    for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
        float a = 0.0f;
        for (int s = 0; s < n_split; s++) {
            const float ms = pp[s * (hd + 2)];
            if (ms != -INFINITY) a += pp[s * (hd + 2) + 2 + d] * expf(ms - M);
        }
        out[t * out_stride + h * hd + d] = a * inv;
    }
}

// ---- attention of a prefill: tiles of queries against tiles of keys (flash attention) ----
// Block (query tile, head h): kFlashQ consecutive tokens, kFlashQ / kAttnWarps of them per
// warp, walk the keys any of them sees in tiles of kFlashK. A tile's keys go to shared memory
// as floats (rows padded by one float: lane j reads key j without bank conflicts), each lane
// scores one key against a query, the warp keeps that query's running max, sum and output
// (dims lane, lane + 32, ...) with an online softmax, and V rows are read whole by the warp.
// Masks: causal (key <= position), the sliding window (key > position - window), and the keys
// past the tile's last query. Every K and V row is read from global memory once per tile of
// kFlashQ queries instead of once per query.
constexpr int kFlashQ = 16;
constexpr int kFlashK = 32;

size_t flash_smem_bytes(int64_t hd) { return (size_t)(kFlashQ * hd + kFlashK * (hd + 1)) * sizeof(float); }

template <class T> __global__ void __launch_bounds__(kAttnWarps * 32)
    flash_attention_kernel(const T *__restrict__ kc, const T *__restrict__ vc, int64_t n_ctx, int64_t hd, int64_t group,
                           const float *__restrict__ q, int64_t q_stride, int64_t n_tokens, int64_t pos_host,
                           const int32_t *__restrict__ pos_dev, int64_t window, float scale, float *__restrict__ out,
                           int64_t out_stride) {
    constexpr int D = kMaxHeadDim / 32, QW = kFlashQ / kAttnWarps;
    extern __shared__ float flash_sm[];
    float *qs = flash_sm, *ks = flash_sm + kFlashQ * hd; // [kFlashQ][hd], [kFlashK][hd + 1]
    const int64_t pos0 = pos_dev ? *pos_dev : pos_host;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t t0 = (int64_t)blockIdx.x * kFlashQ, h = blockIdx.y, kvh = h / group;
    const int64_t t_end = min(n_tokens, t0 + kFlashQ);
    const int64_t p_first = pos0 + t0, p_last = pos0 + t_end - 1;
    const int64_t j_lo = window > 0 ? max((int64_t)0, p_first - window + 1) : 0, j_hi = p_last + 1;
    const T *kb = kc + kvh * n_ctx * hd, *vb = vc + kvh * n_ctx * hd;

    for (int64_t e = threadIdx.x; e < kFlashQ * hd; e += blockDim.x) {
        const int64_t t = t0 + e / hd;
        qs[e] = t < n_tokens ? q[t * q_stride + h * hd + e % hd] : 0.0f;
    }
    float m[QW], l[QW], acc[QW][D];
#pragma unroll
    for (int i = 0; i < QW; i++) {
        m[i] = -INFINITY, l[i] = 0.0f;
#pragma unroll
        for (int d = 0; d < D; d++) acc[i][d] = 0.0f;
    }

    for (int64_t j0 = j_lo; j0 < j_hi; j0 += kFlashK) {
        const int nk = (int)min((int64_t)kFlashK, j_hi - j0);
        __syncthreads(); // the previous tile is read (and, the first time, the queries are written)
        for (int64_t e = threadIdx.x; e < kFlashK * hd; e += blockDim.x) {
            const int jj = (int)(e / hd);
            const int64_t d = e % hd;
            ks[jj * (hd + 1) + d] = jj < nk ? from_cache(kb[(j0 + jj) * hd + d]) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < QW; i++) {
            const int r = warp * QW + i;
            const int64_t t = t0 + r, p = pos0 + t;
            if (t >= n_tokens) break; // whole warp
            const int64_t j = j0 + lane;
            float sc = -INFINITY;
            if (lane < nk && j <= p && (window <= 0 || j > p - window)) {
                const float *qr = qs + r * hd, *kr = ks + lane * (hd + 1);
                float dot = 0.0f;
                for (int64_t d = 0; d < hd; d++) dot += qr[d] * kr[d];
                sc = dot * scale;
            }
            const float m_new = fmaxf(m[i], warp_max(sc));
            if (m_new == -INFINITY) continue; // no key of this tile (nor before) is visible yet
            const float corr = expf(m[i] - m_new), pe = expf(sc - m_new); // exp(-inf) = 0
            l[i] = l[i] * corr + warp_sum(pe);
#pragma unroll
            for (int d = 0; d < D; d++) acc[i][d] *= corr;
            for (int jj = 0; jj < nk; jj++) {
                const float pj = __shfl_sync(0xffffffffu, pe, jj);
                if (pj == 0.0f) continue; // masked (the same for the whole warp)
                const T *vr = vb + (j0 + jj) * hd;
#pragma unroll
                for (int d = 0; d < D; d++) {
                    const int64_t dd = lane + 32 * d;
                    if (dd < hd) acc[i][d] += pj * from_cache(vr[dd]);
                }
            }
            m[i] = m_new;
        }
    }
#pragma unroll
    for (int i = 0; i < QW; i++) {
        const int64_t t = t0 + warp * QW + i;
        if (t >= n_tokens) break;
        const float inv = 1.0f / l[i];
#pragma unroll
        for (int d = 0; d < D; d++) {
            const int64_t dd = lane + 32 * d;
            if (dd < hd) out[t * out_stride + h * hd + dd] = acc[i][d] * inv;
        }
    }
}

// Splits per (token, head): enough blocks to fill a large GPU at one token (decode), none at a
// long prefill, and no split with fewer than 64 keys.
int split_count(int64_t n_tokens, int64_t n_heads, int64_t n_keys_max) {
    const int64_t by_keys = std::max<int64_t>(1, n_keys_max / 64);
    const int64_t by_blocks = std::max<int64_t>(1, 512 / std::max<int64_t>(1, n_tokens * n_heads));
    return (int)std::min<int64_t>(std::min<int64_t>(by_keys, by_blocks), 32);
}

// ---- H-LoRA: softmax over the experts, expansion to the rank slots, scale (ops/hlora.cpp) ----
__global__ void hlora_mix_kernel(const float *__restrict__ logits_a, int64_t ra_rows, int64_t a_row, int64_t n_experts,
                                 int64_t rank, float scale, float *__restrict__ g) {
    const int64_t c = blockIdx.x, per = rank / n_experts;
    const float *logits = logits_a + c * ra_rows, *a = logits + a_row;
    // every thread computes the same max and sum, in the CPU's order
    float mx = logits[0], sum = 0.0f;
    for (int64_t j = 1; j < n_experts; j++) mx = fmaxf(mx, logits[j]);
    for (int64_t j = 0; j < n_experts; j++) sum += expf(logits[j] - mx);
    for (int64_t k = threadIdx.x; k < rank; k += blockDim.x) {
        const int64_t j = k / per;
        const float e = expf(logits[j] - mx) * (scale / sum);
        g[c * rank + k] = a[k] * e;
    }
}

// HEALTHGPT_CUDA_FLASH=0 keeps prefill on the split-K kernel (a comparison, a workaround).
std::atomic<int> g_flash{-1};

} // namespace

void attention_use_flash(bool on) { g_flash.store(on ? 1 : 0, std::memory_order_relaxed); }

bool attention_uses_flash(int64_t n_tokens) {
    int v = g_flash.load(std::memory_order_relaxed);
    if (v < 0) {
        const char *e = std::getenv("HEALTHGPT_CUDA_FLASH");
        v = e && std::string(e) == "0" ? 0 : 1;
        g_flash.store(v, std::memory_order_relaxed);
    }
    return v == 1 && n_tokens >= kFlashMinTokens;
}

void rms_norm(const float *x, const float *weight, float *y, int64_t n, int64_t n_rows, float eps, void *stream) {
    need(n > 0 && n_rows > 0 && n_rows <= 0x7fffffff, "rms_norm: bad shape");
    need(x && weight && y, "rms_norm: null pointer");
    rms_norm_kernel<<<(unsigned)n_rows, 256, 0, as_stream(stream)>>>(x, weight, y, n, eps);
    check_launch("rms_norm");
}

void rope(float *x, int64_t n_tokens, int64_t token_stride, int64_t n_heads, int64_t head_dim, int n_rot,
          const float *cos, const float *sin, int64_t pos0, void *stream, const int32_t *pos0_dev) {
    need(n_tokens > 0 && n_heads > 0 && n_rot > 0 && n_rot % 2 == 0 && n_rot <= head_dim &&
             token_stride >= n_heads * head_dim && pos0 >= 0,
         "rope: bad shape");
    need(x && cos && sin, "rope: null pointer");
    const int64_t total = n_tokens * n_heads * (n_rot / 2);
    rope_kernel<<<grid_for(total, 256), 256, 0, as_stream(stream)>>>(x, n_tokens, token_stride, n_heads, head_dim,
                                                                     n_rot / 2, cos, sin, pos0, pos0_dev);
    check_launch("rope");
}

void silu_mul(const float *gate_up, float *act, int64_t n_ff, int64_t n_tokens, void *stream) {
    need(n_ff > 0 && n_tokens > 0, "silu_mul: bad shape");
    silu_mul_kernel<<<grid_for(n_ff * n_tokens, 256), 256, 0, as_stream(stream)>>>(gate_up, act, n_ff, n_tokens);
    check_launch("silu_mul");
}

void add(float *y, const float *x, int64_t n, void *stream) {
    need(n > 0, "add: bad size");
    add_kernel<<<grid_for(n, 256), 256, 0, as_stream(stream)>>>(y, x, n);
    check_launch("add");
}

void get_rows(int type, const void *table, int64_t n, const int32_t *rows, int64_t n_tokens, float *out, void *stream) {
    need(dq_block_bytes(type) != 0, [&] { return "get_rows: type " + std::to_string(type) + " is not supported"; });
    need(n > 0 && n % dq_block_size(type) == 0 && (dq_is_float(type) || n % 32 == 0), "get_rows: bad row length");
    need(n_tokens > 0 && n_tokens <= 0x7fffffff, "get_rows: bad token count");
    need(table && rows && out, "get_rows: null pointer");
    const size_t row_bytes = (size_t)(n / dq_block_size(type)) * dq_block_bytes(type);
    get_rows_kernel<<<(unsigned)n_tokens, 128, 0, as_stream(stream)>>>(type, static_cast<const uint8_t *>(table),
                                                                       row_bytes, n, rows, out);
    check_launch("get_rows");
}

void kv_store(const kv_cache_layer &kv, const float *k, const float *v, int64_t token_stride, int64_t n_tokens,
              int64_t pos0, void *stream, const int32_t *pos0_dev) {
    need(kv.type == HG_TYPE_F16 || kv.type == HG_TYPE_F32, "kv_store: cache type must be f16 or f32");
    need(pos0 >= 0 && n_tokens > 0 && pos0 + n_tokens <= kv.n_ctx, [&] {
        return "kv_store: positions " + std::to_string(pos0) + ".." + std::to_string(pos0 + n_tokens - 1) +
               " outside a cache of " + std::to_string(kv.n_ctx);
    });
    const int64_t total = n_tokens * kv.n_kv_heads * kv.head_dim;
    cudaStream_t s = as_stream(stream);
    if (kv.type == HG_TYPE_F16)
        kv_store_kernel<__half><<<grid_for(total, 256), 256, 0, s>>>(
            static_cast<__half *>(kv.k), static_cast<__half *>(kv.v), k, v, token_stride, n_tokens, pos0, pos0_dev,
            kv.n_ctx, kv.n_kv_heads, kv.head_dim);
    else
        kv_store_kernel<float><<<grid_for(total, 256), 256, 0, s>>>(
            static_cast<float *>(kv.k), static_cast<float *>(kv.v), k, v, token_stride, n_tokens, pos0, pos0_dev,
            kv.n_ctx, kv.n_kv_heads, kv.head_dim);
    check_launch("kv_store");
}

size_t attention_scratch_floats(int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t n_ctx,
                                int64_t sliding_window) {
    const int64_t n_keys_max = sliding_window > 0 ? std::min(n_ctx, sliding_window) : n_ctx;
    return (size_t)(n_tokens * n_heads * split_count(n_tokens, n_heads, n_keys_max) * (head_dim + 2));
}

void attention(const kv_cache_layer &kv, const float *q, int64_t q_stride, int64_t n_tokens, int64_t pos0,
               int64_t n_heads, int64_t sliding_window, float *out, int64_t out_stride, float *scratch,
               size_t scratch_floats, void *stream, const int32_t *pos0_dev) {
    need(kv.type == HG_TYPE_F16 || kv.type == HG_TYPE_F32, "attention: cache type must be f16 or f32");
    need(kv.head_dim > 0 && kv.head_dim <= kMaxHeadDim, [&] {
        return "attention: head_dim " + std::to_string(kv.head_dim) + " (at most " + std::to_string(kMaxHeadDim) + ")";
    });
    need(kv.n_kv_heads > 0 && n_heads > 0 && n_heads % kv.n_kv_heads == 0 && n_heads <= 65535, [&] {
        return "attention: " + std::to_string(n_heads) + " heads cannot share " + std::to_string(kv.n_kv_heads) +
               " kv heads";
    });
    need(pos0 >= 0 && n_tokens > 0 && n_tokens <= 0x7fffffff && pos0 + n_tokens <= kv.n_ctx,
         "attention: positions outside the cache");
    // splits from the cache's size, not the position: one launch shape for every decode step
    // (a CUDA graph replays it), and the same sums whichever way a step runs
    const int64_t n_keys_max = sliding_window > 0 ? std::min(kv.n_ctx, sliding_window) : kv.n_ctx;
    const int n_split = split_count(n_tokens, n_heads, n_keys_max);
    need(scratch &&
             scratch_floats >= attention_scratch_floats(n_tokens, n_heads, kv.head_dim, kv.n_ctx, sliding_window),
         "attention: scratch too small");
    const float scale = 1.0f / sqrtf((float)kv.head_dim);
    const int64_t group = n_heads / kv.n_kv_heads;
    cudaStream_t s = as_stream(stream);
    if (attention_uses_flash(n_tokens)) {
        const int64_t tiles = (n_tokens + kFlashQ - 1) / kFlashQ;
        need(tiles <= 0x7fffffff, "attention: too many tokens");
        const dim3 fgrid((unsigned)tiles, (unsigned)n_heads);
        const size_t smem = flash_smem_bytes(kv.head_dim);
        if (kv.type == HG_TYPE_F16) {
            if (smem > 48 * 1024)
                check(cudaFuncSetAttribute(flash_attention_kernel<__half>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int)smem),
                      "flash_attention shared memory");
            flash_attention_kernel<__half><<<fgrid, kAttnWarps * 32, smem, s>>>(
                static_cast<const __half *>(kv.k), static_cast<const __half *>(kv.v), kv.n_ctx, kv.head_dim, group, q,
                q_stride, n_tokens, pos0, pos0_dev, sliding_window, scale, out, out_stride);
        } else {
            if (smem > 48 * 1024)
                check(cudaFuncSetAttribute(flash_attention_kernel<float>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int)smem),
                      "flash_attention shared memory");
            flash_attention_kernel<float><<<fgrid, kAttnWarps * 32, smem, s>>>(
                static_cast<const float *>(kv.k), static_cast<const float *>(kv.v), kv.n_ctx, kv.head_dim, group, q,
                q_stride, n_tokens, pos0, pos0_dev, sliding_window, scale, out, out_stride);
        }
        check_launch("flash_attention");
        return;
    }
    const dim3 grid((unsigned)n_tokens, (unsigned)n_heads, (unsigned)n_split);
    if (kv.type == HG_TYPE_F16)
        attention_kernel<__half><<<grid, kAttnWarps * 32, 0, s>>>(
            static_cast<const __half *>(kv.k), static_cast<const __half *>(kv.v), kv.n_ctx, kv.head_dim, group, q,
            q_stride, pos0, pos0_dev, n_heads, sliding_window, scale, n_split, scratch);
    else
        attention_kernel<float><<<grid, kAttnWarps * 32, 0, s>>>(
            static_cast<const float *>(kv.k), static_cast<const float *>(kv.v), kv.n_ctx, kv.head_dim, group, q,
            q_stride, pos0, pos0_dev, n_heads, sliding_window, scale, n_split, scratch);
    check_launch("attention");
    attention_combine_kernel<<<dim3((unsigned)n_tokens, (unsigned)n_heads), 128, 0, s>>>(scratch, n_split, kv.head_dim,
                                                                                         n_heads, out, out_stride);
    check_launch("attention_combine");
}

void hlora_mix(const float *logits_a, int64_t ra_rows, int64_t a_row, int64_t n_experts, int64_t rank, float scale,
               int64_t n_tokens, float *g, void *stream) {
    need(n_experts > 0 && rank > 0 && rank % n_experts == 0 && a_row >= n_experts && a_row + rank <= ra_rows,
         "hlora_mix: bad shape");
    need(n_tokens > 0 && n_tokens <= 0x7fffffff, "hlora_mix: bad token count");
    hlora_mix_kernel<<<(unsigned)n_tokens, 64, 0, as_stream(stream)>>>(logits_a, ra_rows, a_row, n_experts, rank, scale,
                                                                       g);
    check_launch("hlora_mix");
}

void hlora_linear(int w_type, const void *w, const hlora_adapter &ad, const float *x, int64_t n, float *y,
                  float *logits_a, float *g, void *scratch, size_t scratch_bytes, void *stream) {
    need(ad.ra && ad.b && logits_a && g, "hlora_linear: null pointer");
    matmul(w_type, w, ad.out, ad.in, x, n, y, ad.out, false, scratch, scratch_bytes, stream);
    matmul(ad.ra_type, ad.ra, ad.ra_rows, ad.in, x, n, logits_a, ad.ra_rows, false, scratch, scratch_bytes, stream);
    hlora_mix(logits_a, ad.ra_rows, ad.a_row, ad.n_experts, ad.rank, ad.scale, n, g, stream);
    matmul(ad.b_type, ad.b, ad.out, ad.rank, g, n, y, ad.out, true, scratch, scratch_bytes, stream);
}

} // namespace cuda
} // namespace hg
