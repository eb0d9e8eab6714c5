// Y = W X on the device for every weight type the Phi-3 files use, reading weights in their
// file layout. Decode (and batches of up to kCols tokens): one warp per weight row, four rows a
// block, int8 dp4a dot products against q8_0 activations for q4_0 / q8_0 / q4_K / q5_K / q6_K,
// f32 activations for the others. Prefill (more
// than kCols tokens) on tensor cores through WMMA, 64 rows x 64 tokens a block: q4_0 / q8_0 one
// quant block (32 values) per step, each step's exact integer sums scaled by d_w * d_x and
// added in order, as the CPU's scalar dot does; q4_K / q5_K / q6_K likewise with a scale per
// half block; f16 / bf16 in half-precision fragments with f32 accumulators.
#include <mma.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/dequant.cuh"
#include "cuda/ops.h"

namespace hg {
namespace cuda {
namespace {

constexpr int kWarps = 4; // weight rows per block
constexpr int kCols = 8;  // activation columns per block (prefill)

// ---- activations: q8_0 as the CPU's quantize_row_q8_0_ref makes it ----
// One warp per block of 32 values: qs[c * k + i] int8 and d[c * (k / 32) + b], the scale
// stored as its f16 rounding (the CPU block keeps d as f16), the quants made with the
// unrounded one, halves rounded away from zero, NaN as 0 (the CPU's clamp).
__global__ void quantize_q8_0_kernel(const float *__restrict__ x, int64_t n_blocks, int8_t *__restrict__ qs,
                                     float *__restrict__ d) {
    const int lane = threadIdx.x & 31;
    const int64_t b = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (b >= n_blocks) return; // whole warps leave together: blockDim is a multiple of 32
    const float v = x[b * 32 + lane];
    const float amax = warp_max(fabsf(v));
    const float db = amax / 127.0f;
    const float id = db != 0.0f ? 1.0f / db : 0.0f;
    const float vi = __fmul_rn(v, id);
    const float q = vi == vi ? fminf(fmaxf(vi, -127.0f), 127.0f) : 0.0f; // fmaxf(NaN, -127) is -127
    qs[b * 32 + lane] = (int8_t)roundf(q);
    if (lane == 0) d[b] = __half2float(__float2half_rn(db));
}

// The CPU pairs bf16 weights with bf16-rounded activations.
__global__ void round_bf16_kernel(const float *__restrict__ x, float *__restrict__ y, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = __bfloat162float(__float2bfloat16_rn(x[i]));
}

template <int NC> __device__ __forceinline__ void store(float (&acc)[NC], float *y, int64_t ldy, int64_t r, int64_t c0,
                                                        int64_t n, bool accumulate) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int c = 0; c < NC; c++) {
        const float s = warp_sum(acc[c]);
        if (lane == 0 && c0 + c < n) {
            float *out = y + (c0 + c) * ldy + r;
            *out = accumulate ? *out + s : s;
        }
    }
}

// q4_0 / q8_0 weights x q8_0 activations: integer dot products of a block (dp4a), scaled by
// the two f16 scales as the CPU does: (float)sumi * (d_w * d_x).
template <int TYPE, int NC> __global__ void __launch_bounds__(kWarps * 32)
    mm_q8_kernel(const uint8_t *__restrict__ w, int64_t rows, int64_t nb, const int8_t *__restrict__ aq,
                 const float *__restrict__ ad, float *__restrict__ y, int64_t ldy, int64_t n, bool accumulate) {
    constexpr int BB = TYPE == HG_TYPE_Q4_0 ? 18 : 34;
    const int lane = threadIdx.x & 31;
    const int64_t r = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5);
    const int64_t c0 = (int64_t)blockIdx.y * NC;
    if (r >= rows) return;
    const uint8_t *wr = w + r * nb * BB;
    const int64_t k = nb * 32;
    float acc[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) acc[c] = 0.0f;
    for (int64_t b = lane; b < nb; b += 32) {
        const uint8_t *blk = wr + b * BB;
        const float dw = ld_half(blk);
        int wq[8];
        if (TYPE == HG_TYPE_Q4_0) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int v = ld_i32_a2(blk + 2 + 4 * i);
                wq[i] = v & 0x0f0f0f0f;            // values 4i .. 4i + 3
                wq[i + 4] = (v >> 4) & 0x0f0f0f0f; // values 16 + 4i ..
            }
        } else {
#pragma unroll
            for (int i = 0; i < 8; i++) wq[i] = ld_i32_a2(blk + 2 + 4 * i);
        }
#pragma unroll
        for (int c = 0; c < NC; c++) {
            if (c0 + c >= n) break;
            const int *a = reinterpret_cast<const int *>(aq + (c0 + c) * k + b * 32);
            int sumi = 0, asum = 0;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const int av = a[i];
                sumi = __dp4a(wq[i], av, sumi);
                if (TYPE == HG_TYPE_Q4_0) asum = __dp4a(0x01010101, av, asum);
            }
            if (TYPE == HG_TYPE_Q4_0) sumi -= 8 * asum; // the q4_0 offset: (q - 8) a
            acc[c] += (float)sumi * (dw * ad[(c0 + c) * nb + b]);
        }
    }
    store<NC>(acc, y, ldy, r, c0, n, accumulate);
}

// f32 / f16 / bf16 weights x float activations: lanes stride the row, so loads coalesce.
template <int NC> __global__ void __launch_bounds__(kWarps * 32)
    mm_float_kernel(int type, const uint8_t *__restrict__ w, size_t row_bytes, int64_t rows, int64_t k,
                    const float *__restrict__ x, float *__restrict__ y, int64_t ldy, int64_t n, bool accumulate) {
    const int lane = threadIdx.x & 31;
    const int64_t r = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5);
    const int64_t c0 = (int64_t)blockIdx.y * NC;
    if (r >= rows) return;
    const uint8_t *wr = w + r * row_bytes;
    float acc[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) acc[c] = 0.0f;
    for (int64_t i = lane; i < k; i += 32) {
        const float wv = load_float_type(type, wr, i);
#pragma unroll
        for (int c = 0; c < NC; c++)
            if (c0 + c < n) acc[c] += wv * x[(c0 + c) * k + i];
    }
    store<NC>(acc, y, ldy, r, c0, n, accumulate);
}

// Other quant types, dequantized 32 values at a time per lane against float activations.
template <int NC> __global__ void __launch_bounds__(kWarps * 32)
    mm_dequant_kernel(int type, const uint8_t *__restrict__ w, size_t row_bytes, int64_t rows, int64_t k,
                      const float *__restrict__ x, float *__restrict__ y, int64_t ldy, int64_t n, bool accumulate) {
    const int lane = threadIdx.x & 31;
    const int64_t r = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5);
    const int64_t c0 = (int64_t)blockIdx.y * NC;
    if (r >= rows) return;
    const uint8_t *wr = w + r * row_bytes;
    float acc[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) acc[c] = 0.0f;
    float v[32];
    for (int64_t u = lane; u < k / 32; u += 32) {
        dequant_unit(type, wr, u, v);
#pragma unroll
        for (int c = 0; c < NC; c++) {
            if (c0 + c >= n) break;
            const float *xc = x + (c0 + c) * k + u * 32;
            float s = 0.0f;
#pragma unroll
            for (int j = 0; j < 32; j++) s += v[j] * xc[j];
            acc[c] += s;
        }
    }
    store<NC>(acc, y, ldy, r, c0, n, accumulate);
}

// ---- prefill: int8 tensor cores ----
constexpr int kTile = 64; // weight rows and tokens per block; 4 warps of 32 x 32

// Shared tiles: a quant block's 32 values split in two halves of 16 (WMMA's k), so every
// fragment pointer is 32-byte aligned with a 16-byte leading dimension.
struct mma_smem {
    int8_t a[2][kTile][16];     // weights: [k half][row][k], q - 8 for q4_0
    int8_t b[2][kTile][16];     // activations: [k half][token][k] (column-major B)
    float dw[kTile], dx[kTile]; // the block's scales (0 past the edges)
    int c[4][32][32];           // each warp's integer sums of one block
};

template <int TYPE> __global__ void __launch_bounds__(128)
    mm_q8_mma_kernel(const uint8_t *__restrict__ w, int64_t rows, int64_t nb, const int8_t *__restrict__ aq,
                     const float *__restrict__ ad, float *__restrict__ y, int64_t ldy, int64_t n, bool accumulate) {
    namespace wmma = nvcuda::wmma;
    constexpr int BB = TYPE == HG_TYPE_Q4_0 ? 18 : 34;
    __shared__ __align__(32) mma_smem sm;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wr = warp >> 1, wc = warp & 1;
    const int64_t r0 = (int64_t)blockIdx.x * kTile, c0 = (int64_t)blockIdx.y * kTile, k = nb * 32;
    const int lr = tid >> 1, half = tid & 1; // the row (or token) and the half this thread loads
    float acc[32];
#pragma unroll
    for (int i = 0; i < 32; i++) acc[i] = 0.0f;

    for (int64_t b = 0; b < nb; b++) {
        // weights: thread (row lr, half) unpacks 16 of the row's 32 values
        {
            const int64_t r = r0 + lr;
            int8_t lo[16], hi[16]; // q4_0: values 8h.. (low nibbles) and 16 + 8h.. (high)
            float d = 0.0f;
            if (r < rows) {
                const uint8_t *blk = w + (r * nb + b) * BB;
                d = ld_half(blk);
                if (TYPE == HG_TYPE_Q4_0) {
                    for (int i = 0; i < 8; i++) {
                        const uint8_t q = blk[2 + 8 * half + i];
                        lo[i] = (int8_t)((q & 0x0f) - 8);
                        hi[i] = (int8_t)((q >> 4) - 8);
                    }
                } else {
                    for (int i = 0; i < 16; i++) lo[i] = (int8_t)blk[2 + 16 * half + i];
                }
            } else {
                for (int i = 0; i < 16; i++) lo[i] = hi[i] = 0;
            }
            if (TYPE == HG_TYPE_Q4_0) {
                for (int i = 0; i < 8; i++) {
                    sm.a[0][lr][8 * half + i] = lo[i];
                    sm.a[1][lr][8 * half + i] = hi[i];
                }
            } else {
                for (int i = 0; i < 16; i++) sm.a[half][lr][i] = lo[i];
            }
            if (half == 0) sm.dw[lr] = d;
        }
        // activations: thread (token lr, half) copies 16 quants
        {
            const int64_t c = c0 + lr;
            int4 v = make_int4(0, 0, 0, 0);
            float d = 0.0f;
            if (c < n) {
                v = *reinterpret_cast<const int4 *>(aq + c * k + b * 32 + 16 * half);
                d = ad[c * nb + b];
            }
            *reinterpret_cast<int4 *>(&sm.b[half][lr][0]) = v;
            if (half == 0) sm.dx[lr] = d;
        }
        __syncthreads();

        // each warp: its 32 x 32 corner as 2 x 2 fragments of 16 x 16, k = 2 x 16
        for (int fr = 0; fr < 2; fr++)
            for (int fc = 0; fc < 2; fc++) {
                wmma::fragment<wmma::accumulator, 16, 16, 16, int> c_frag;
                wmma::fill_fragment(c_frag, 0);
                for (int kh = 0; kh < 2; kh++) {
                    wmma::fragment<wmma::matrix_a, 16, 16, 16, signed char, wmma::row_major> a_frag;
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, signed char, wmma::col_major> b_frag;
                    wmma::load_matrix_sync(a_frag, &sm.a[kh][32 * wr + 16 * fr][0], 16);
                    wmma::load_matrix_sync(b_frag, &sm.b[kh][32 * wc + 16 * fc][0], 16);
                    wmma::mma_sync(c_frag, a_frag, b_frag, c_frag);
                }
                wmma::store_matrix_sync(&sm.c[warp][16 * fr][16 * fc], c_frag, 32, wmma::mem_row_major);
            }
        __syncwarp();
        // lane: token 32 wc + lane, rows 32 wr + i; (float)sumi * (d_w * d_x), no fused add
        const float dx = sm.dx[32 * wc + lane];
#pragma unroll
        for (int i = 0; i < 32; i++)
            acc[i] = __fadd_rn(acc[i], __fmul_rn((float)sm.c[warp][i][lane], __fmul_rn(sm.dw[32 * wr + i], dx)));
        __syncthreads(); // the tiles are refilled next step
    }

    const int64_t c = c0 + 32 * wc + lane;
    if (c >= n) return;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        const int64_t r = r0 + 32 * wr + i;
        if (r < rows) {
            float *out = y + c * ldy + r;
            *out = accumulate ? *out + acc[i] : acc[i];
        }
    }
}

// ---- prefill of the K-quants: int8 tensor cores with a scale per half unit ----
// A K-quant value is d_s q - m_s (q4_K, q5_K: q >= 0, a scale and a min per 32 values) or
// d_s q (q6_K: q - 32 stored as int8, a scale per 16), so each 16-value half of a 32-value unit
// is exact int8 times one float scale. The activations are q8_0 blocks of 32 (a finer rounding
// than the CPU's q8_K blocks of 256); a step adds c_0 d_w0 d_x + c_1 d_w1 d_x - m_w d_x sum(a),
// with c_h the exact integer sums of half h and sum(a) the block's quants summed.

// Values 16 h .. 16 h + 15 of unit u (32 values) of a K-quant row as int8, their scale and the
// unit's min (0 for q6_K).
template <int TYPE> __host__ __device__ __forceinline__ void kq_unpack16(const uint8_t *row, int64_t u, int h,
                                                                         int8_t q[16], float &scale, float &min) {
    const int j = (int)(u & 7);
    if (TYPE == HG_TYPE_Q6_K) {
        const uint8_t *b = row + (u >> 3) * 210;
        const int hh = j >> 2, c = j & 3;
        const uint8_t *ql = b + 64 * hh + 32 * (c & 1) + 16 * h, *qh = b + 128 + 32 * hh + 16 * h;
        const int lshift = (c >> 1) * 4, hshift = 2 * c;
#pragma unroll
        for (int l = 0; l < 16; l++)
            q[l] = (int8_t)((((ql[l] >> lshift) & 0x0f) | (((qh[l] >> hshift) & 3) << 4)) - 32);
        scale = ld_half(b + 208) * (float)reinterpret_cast<const int8_t *>(b + 192)[2 * j + h];
        min = 0.0f;
        return;
    }
    constexpr int BB = TYPE == HG_TYPE_Q4_K ? 144 : 176;
    const uint8_t *b = row + (u >> 3) * BB;
    int sc, m;
    scale_min_k4(j, b + 4, sc, m);
    scale = ld_half(b) * sc;
    min = ld_half(b + 2) * m;
    const int shift = (j & 1) * 4;
    const uint8_t *qs = b + (TYPE == HG_TYPE_Q4_K ? 16 : 48) + 32 * (j >> 1) + 16 * h;
#pragma unroll
    for (int l = 0; l < 16; l++) {
        int v = (qs[l] >> shift) & 0x0f;
        if (TYPE == HG_TYPE_Q5_K) v |= ((b[16 + 16 * h + l] >> j) & 1) << 4;
        q[l] = (int8_t)v;
    }
}

struct kq_smem {
    int8_t a[2][kTile][16];        // weights: [half][row][k]
    int8_t b[2][kTile][16];        // activations: [half][token][k]
    float dw[2][kTile], mw[kTile]; // the rows' half scales and unit min (0 past the edges)
    float dx[kTile];               // the tokens' block scales
    int ax[2][kTile];              // the tokens' quants summed per half
    int c[4][2][32][32];           // each warp's integer sums, per half
};

template <int TYPE> __global__ void __launch_bounds__(128)
    mm_kq_mma_kernel(const uint8_t *__restrict__ w, size_t row_bytes, int64_t rows, int64_t nb,
                     const int8_t *__restrict__ aq, const float *__restrict__ ad, float *__restrict__ y, int64_t ldy,
                     int64_t n, bool accumulate) {
    namespace wmma = nvcuda::wmma;
    __shared__ __align__(32) kq_smem sm;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wr = warp >> 1, wc = warp & 1;
    const int64_t r0 = (int64_t)blockIdx.x * kTile, c0 = (int64_t)blockIdx.y * kTile, k = nb * 32;
    const int lr = tid >> 1, half = tid & 1;
    float acc[32];
#pragma unroll
    for (int i = 0; i < 32; i++) acc[i] = 0.0f;

    for (int64_t b = 0; b < nb; b++) {
        {
            const int64_t r = r0 + lr;
            int8_t q[16];
            float scale = 0.0f, min = 0.0f;
            if (r < rows) {
                kq_unpack16<TYPE>(w + r * row_bytes, b, half, q, scale, min);
            } else {
#pragma unroll
                for (int i = 0; i < 16; i++) q[i] = 0;
            }
#pragma unroll
            for (int i = 0; i < 16; i++) sm.a[half][lr][i] = q[i];
            sm.dw[half][lr] = scale;
            if (half == 0) sm.mw[lr] = min;
        }
        {
            const int64_t c = c0 + lr;
            int4 v = make_int4(0, 0, 0, 0);
            float d = 0.0f;
            if (c < n) {
                v = *reinterpret_cast<const int4 *>(aq + c * k + b * 32 + 16 * half);
                d = ad[c * nb + b];
            }
            *reinterpret_cast<int4 *>(&sm.b[half][lr][0]) = v;
            int s = 0;
            for (int x : {v.x, v.y, v.z, v.w}) s = __dp4a(x, 0x01010101, s);
            sm.ax[half][lr] = s;
            if (half == 0) sm.dx[lr] = d;
        }
        __syncthreads();

        for (int fr = 0; fr < 2; fr++)
            for (int fc = 0; fc < 2; fc++)
                for (int kh = 0; kh < 2; kh++) {
                    wmma::fragment<wmma::accumulator, 16, 16, 16, int> c_frag;
                    wmma::fragment<wmma::matrix_a, 16, 16, 16, signed char, wmma::row_major> a_frag;
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, signed char, wmma::col_major> b_frag;
                    wmma::fill_fragment(c_frag, 0);
                    wmma::load_matrix_sync(a_frag, &sm.a[kh][32 * wr + 16 * fr][0], 16);
                    wmma::load_matrix_sync(b_frag, &sm.b[kh][32 * wc + 16 * fc][0], 16);
                    wmma::mma_sync(c_frag, a_frag, b_frag, c_frag);
                    wmma::store_matrix_sync(&sm.c[warp][kh][16 * fr][16 * fc], c_frag, 32, wmma::mem_row_major);
                }
        __syncwarp();
        const int t = 32 * wc + lane;
        const float dx = sm.dx[t];
        const float asum = (float)(sm.ax[0][t] + sm.ax[1][t]);
#pragma unroll
        for (int i = 0; i < 32; i++) {
            const int r = 32 * wr + i;
            const float s = (float)sm.c[warp][0][i][lane] * sm.dw[0][r] + (float)sm.c[warp][1][i][lane] * sm.dw[1][r] -
                            sm.mw[r] * asum;
            acc[i] += s * dx;
        }
        __syncthreads();
    }

    const int64_t c = c0 + 32 * wc + lane;
    if (c >= n) return;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        const int64_t r = r0 + 32 * wr + i;
        if (r < rows) {
            float *out = y + c * ldy + r;
            *out = accumulate ? *out + acc[i] : acc[i];
        }
    }
}

// Decode of the K-quants (and batches of up to kCols tokens): one warp per weight row, a lane
// per 32-value unit, the same int8 values, scales and q8_0 activations as the tensor-core
// kernel, dp4a dot products per half unit.
template <int TYPE, int NC> __global__ void __launch_bounds__(kWarps * 32)
    mm_kq_kernel(const uint8_t *__restrict__ w, size_t row_bytes, int64_t rows, int64_t nb,
                 const int8_t *__restrict__ aq, const float *__restrict__ ad, float *__restrict__ y, int64_t ldy,
                 int64_t n, bool accumulate) {
    const int lane = threadIdx.x & 31;
    const int64_t r = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5);
    const int64_t c0 = (int64_t)blockIdx.y * NC;
    if (r >= rows) return;
    const uint8_t *wr = w + r * row_bytes;
    const int64_t k = nb * 32;
    float acc[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) acc[c] = 0.0f;
    for (int64_t u = lane; u < nb; u += 32) {
        int wq[2][4];
        float scale[2], min = 0.0f;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int8_t q[16];
            kq_unpack16<TYPE>(wr, u, h, q, scale[h], min);
#pragma unroll
            for (int i = 0; i < 4; i++)
                wq[h][i] = (int)((uint32_t)(uint8_t)q[4 * i] | ((uint32_t)(uint8_t)q[4 * i + 1] << 8) |
                                 ((uint32_t)(uint8_t)q[4 * i + 2] << 16) | ((uint32_t)(uint8_t)q[4 * i + 3] << 24));
        }
#pragma unroll
        for (int c = 0; c < NC; c++) {
            if (c0 + c >= n) break;
            const int4 *a = reinterpret_cast<const int4 *>(aq + (c0 + c) * k + u * 32);
            float s = 0.0f;
            int asum = 0;
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int4 av = a[h];
                const int ai[4] = {av.x, av.y, av.z, av.w};
                int sumi = 0;
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    sumi = __dp4a(wq[h][i], ai[i], sumi);
                    asum = __dp4a(ai[i], 0x01010101, asum);
                }
                s += (float)sumi * scale[h];
            }
            acc[c] += (s - min * (float)asum) * ad[(c0 + c) * nb + u];
        }
    }
    store<NC>(acc, y, ldy, r, c0, n, accumulate);
}

// ---- prefill of f16 / bf16 weights: half-precision tensor cores, f32 accumulators ----
// bf16: the activations rounded to bf16 (as the CPU pairs them), so every product is exact.
// f16: an activation x is split into hi = f16(x) and lo = f16(x - hi), two products summed on
// the tensor cores, which keeps x to about 2^-22 of itself (one f16 product would keep 2^-11);
// |x| past the f16 range (65504) gives inf or NaN, as in any f16 GEMM. k steps of 32, zero-padded.
constexpr int kHalfK = 32;
constexpr int kHalfLd = kHalfK + 8; // a multiple of 8 halves, as WMMA needs; spreads banks

template <class T> struct half_smem {
    T a[kTile][kHalfLd];  // weights [row][k]
    T hi[kTile][kHalfLd]; // activations [token][k] (column-major B)
    T lo[kTile][kHalfLd]; // f16 only: x - hi
    float c[4][32][32];   // each warp's result, for the bounded store
};

template <class T> __device__ __forceinline__ T to_half_type(float v);
template <> __device__ __forceinline__ __half to_half_type<__half>(float v) { return __float2half_rn(v); }
template <class T> __device__ __forceinline__ float half_type_to_float(T v);
template <> __device__ __forceinline__ float half_type_to_float<__half>(__half v) { return __half2float(v); }
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800 // bf16 fragments: sm_80 on
template <> __device__ __forceinline__ __nv_bfloat16 to_half_type<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}
template <> __device__ __forceinline__ float half_type_to_float<__nv_bfloat16>(__nv_bfloat16 v) {
    return __bfloat162float(v);
}
#endif

template <class T> __device__ __forceinline__ void half_mma_tile(const T *__restrict__ w, int64_t rows, int64_t k,
                                                                 const float *__restrict__ x, float *__restrict__ y,
                                                                 int64_t ldy, int64_t n, bool accumulate) {
    namespace wmma = nvcuda::wmma;
    constexpr bool kSplit = std::is_same<T, __half>::value;
    __shared__ __align__(32) half_smem<T> sm;
    const int tid = threadIdx.x, warp = tid >> 5, wr = warp >> 1, wc = warp & 1;
    const int64_t r0 = (int64_t)blockIdx.x * kTile, c0 = (int64_t)blockIdx.y * kTile;
    const int lr = tid >> 1, part = tid & 1; // the row (or token) and the 16 values this thread loads
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
    for (int fr = 0; fr < 2; fr++)
        for (int fc = 0; fc < 2; fc++) wmma::fill_fragment(acc[fr][fc], 0.0f);

    for (int64_t k0 = 0; k0 < k; k0 += kHalfK) {
        {
            const int64_t r = r0 + lr;
            const T *src = w + r * k + k0 + 16 * part;
            for (int i = 0; i < 16; i++) {
                const bool in = r < rows && k0 + 16 * part + i < k;
                sm.a[lr][16 * part + i] = in ? src[i] : to_half_type<T>(0.0f);
            }
        }
        {
            const int64_t c = c0 + lr;
            const float *src = x + c * k + k0 + 16 * part;
            for (int i = 0; i < 16; i++) {
                const float v = c < n && k0 + 16 * part + i < k ? src[i] : 0.0f;
                const T hi = to_half_type<T>(v);
                sm.hi[lr][16 * part + i] = hi;
                if (kSplit) sm.lo[lr][16 * part + i] = to_half_type<T>(v - half_type_to_float<T>(hi));
            }
        }
        __syncthreads();
        for (int kh = 0; kh < kHalfK / 16; kh++)
            for (int fr = 0; fr < 2; fr++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a_frag;
                wmma::load_matrix_sync(a_frag, &sm.a[32 * wr + 16 * fr][16 * kh], kHalfLd);
                for (int fc = 0; fc < 2; fc++) {
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b_frag;
                    wmma::load_matrix_sync(b_frag, &sm.hi[32 * wc + 16 * fc][16 * kh], kHalfLd);
                    wmma::mma_sync(acc[fr][fc], a_frag, b_frag, acc[fr][fc]);
                    if (kSplit) {
                        wmma::load_matrix_sync(b_frag, &sm.lo[32 * wc + 16 * fc][16 * kh], kHalfLd);
                        wmma::mma_sync(acc[fr][fc], a_frag, b_frag, acc[fr][fc]);
                    }
                }
            }
        __syncthreads();
    }
    for (int fr = 0; fr < 2; fr++)
        for (int fc = 0; fc < 2; fc++)
            wmma::store_matrix_sync(&sm.c[warp][16 * fr][16 * fc], acc[fr][fc], 32, wmma::mem_row_major);
    __syncwarp();
    const int lane = tid & 31;
    const int64_t c = c0 + 32 * wc + lane;
    if (c >= n) return;
    for (int i = 0; i < 32; i++) {
        const int64_t r = r0 + 32 * wr + i;
        if (r < rows) {
            float *out = y + c * ldy + r;
            *out = accumulate ? *out + sm.c[warp][i][lane] : sm.c[warp][i][lane];
        }
    }
}

__global__ void __launch_bounds__(128)
    mm_f16_mma_kernel(const __half *__restrict__ w, int64_t rows, int64_t k, const float *__restrict__ x,
                      float *__restrict__ y, int64_t ldy, int64_t n, bool accumulate) {
    half_mma_tile<__half>(w, rows, k, x, y, ldy, n, accumulate);
}

// bf16 fragments exist from sm_80; below, the kernel is empty and never launched (the host
// keeps bf16 on the mat-vec kernel there).
__global__ void __launch_bounds__(128)
    mm_bf16_mma_kernel(const __nv_bfloat16 *__restrict__ w, int64_t rows, int64_t k, const float *__restrict__ x,
                       float *__restrict__ y, int64_t ldy, int64_t n, bool accumulate) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    half_mma_tile<__nv_bfloat16>(w, rows, k, x, y, ldy, n, accumulate);
#endif
}

// Compute capability major of the current device (bf16 tensor cores need 8 or more), cached.
int device_cc_major() {
    static std::atomic<int> cache[16] = {};
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    std::atomic<int> &slot = cache[dev & 15];
    int v = slot.load(std::memory_order_relaxed);
    if (v == 0) {
        check(cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMajor, dev), "cudaDeviceGetAttribute");
        slot.store(v, std::memory_order_relaxed);
    }
    return v;
}

// HEALTHGPT_CUDA_MMA=0 keeps prefill on the dp4a kernels (a comparison, a workaround).
std::atomic<int> g_tensor_cores{-1};
bool tensor_cores_on() {
    int v = g_tensor_cores.load(std::memory_order_relaxed);
    if (v < 0) {
        const char *e = std::getenv("HEALTHGPT_CUDA_MMA");
        v = e && std::string(e) == "0" ? 0 : 1;
        g_tensor_cores.store(v, std::memory_order_relaxed);
    }
    return v == 1;
}

std::string type_label(int type) { return "type " + std::to_string(type); }

size_t align256(size_t b) { return (b + 255) / 256 * 256; }

bool is_k_quant(int type) { return type == HG_TYPE_Q4_K || type == HG_TYPE_Q5_K || type == HG_TYPE_Q6_K; }

} // namespace

bool matmul_supports(int type) { return dq_block_bytes(type) != 0; }

void kquant_mma_values(int type, const void *row, int64_t k, float *out) {
    if (!is_k_quant(type) || k <= 0 || k % 256 != 0) throw Error("kquant_mma_values: a K-quant row of 256s");
    const uint8_t *r = static_cast<const uint8_t *>(row);
    for (int64_t u = 0; u < k / 32; u++)
        for (int h = 0; h < 2; h++) {
            int8_t q[16];
            float scale = 0.0f, min = 0.0f;
            if (type == HG_TYPE_Q4_K)
                kq_unpack16<HG_TYPE_Q4_K>(r, u, h, q, scale, min);
            else if (type == HG_TYPE_Q5_K)
                kq_unpack16<HG_TYPE_Q5_K>(r, u, h, q, scale, min);
            else
                kq_unpack16<HG_TYPE_Q6_K>(r, u, h, q, scale, min);
            for (int l = 0; l < 16; l++) out[u * 32 + 16 * h + l] = scale * (float)q[l] - min;
        }
}

void matmul_use_tensor_cores(bool on) { g_tensor_cores.store(on ? 1 : 0, std::memory_order_relaxed); }

bool matmul_uses_tensor_cores(int type, int64_t n) {
    if (n <= kCols || !tensor_cores_on()) return false;
    if (type == HG_TYPE_BF16) return device_cc_major() >= 8;
    return type == HG_TYPE_Q4_0 || type == HG_TYPE_Q8_0 || type == HG_TYPE_F16 || is_k_quant(type);
}

size_t matmul_scratch_bytes(int type, int64_t k, int64_t n) {
    // the K-quants' kernels quantize the activations as q4_0 / q8_0 do
    if (type == HG_TYPE_Q4_0 || type == HG_TYPE_Q8_0 || is_k_quant(type))
        return align256((size_t)(n * k)) + (size_t)(n * (k / 32)) * sizeof(float);
    if (type == HG_TYPE_BF16) return (size_t)(n * k) * sizeof(float);
    return 0;
}

void matmul(int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t n, float *y, int64_t ldy,
            bool accumulate, void *scratch, size_t scratch_bytes, void *stream) {
    if (!matmul_supports(type)) throw Error("cuda matmul: weight " + type_label(type) + " is not supported");
    if (rows <= 0 || k <= 0 || n <= 0)
        throw Error("cuda matmul: empty shape rows=" + std::to_string(rows) + " k=" + std::to_string(k) +
                    " n=" + std::to_string(n));
    if (k % dq_block_size(type) != 0 || (!dq_is_float(type) && k % 32 != 0))
        throw Error("cuda matmul: k=" + std::to_string(k) + " is not a multiple of the block of " + type_label(type));
    if (ldy < rows) throw Error("cuda matmul: ldy " + std::to_string(ldy) + " < rows " + std::to_string(rows));
    if (!w || !x || !y) throw Error("cuda matmul: null pointer");
    if ((uintptr_t)w % 2 != 0 || (type == HG_TYPE_F32 && (uintptr_t)w % 4 != 0))
        throw Error("cuda matmul: weights are not aligned for their type");
    if ((uintptr_t)scratch % 16 != 0) // the activations' quants are read 16 bytes at a time
        throw Error("cuda matmul: scratch is not 16-byte aligned");
    const int64_t row_groups = (rows + kWarps - 1) / kWarps;
    if (row_groups > 0x7fffffff) throw Error("cuda matmul: too many rows");
    const size_t need = matmul_scratch_bytes(type, k, n);
    if (need > scratch_bytes || (need && !scratch))
        throw Error("cuda matmul: scratch of " + std::to_string(scratch_bytes) + " bytes, " + std::to_string(need) +
                    " needed");
    cudaStream_t s = as_stream(stream);
    const size_t row_bytes = (size_t)(k / dq_block_size(type)) * dq_block_bytes(type);
    const bool one = n == 1;
    const int64_t col_groups = one ? 1 : (n + kCols - 1) / kCols;
    if (col_groups > 65535) throw Error("cuda matmul: too many columns (" + std::to_string(n) + ")");
    const dim3 grid((unsigned)row_groups, (unsigned)col_groups), block(kWarps * 32);
    const uint8_t *wb = static_cast<const uint8_t *>(w);

    if (type == HG_TYPE_Q4_0 || type == HG_TYPE_Q8_0) {
        const int64_t nb = k / 32, n_blocks = n * nb;
        int8_t *aq = static_cast<int8_t *>(scratch);
        float *ad = reinterpret_cast<float *>(static_cast<uint8_t *>(scratch) + align256((size_t)(n * k)));
        quantize_q8_0_kernel<<<grid_for(n_blocks * 32, 256, 0x7fffffff), 256, 0, s>>>(x, n_blocks, aq, ad);
        check_launch("quantize_q8_0");
        if (matmul_uses_tensor_cores(type, n)) {
            const int64_t tr = (rows + kTile - 1) / kTile, tc = (n + kTile - 1) / kTile;
            if (tr > 0x7fffffff || tc > 65535) throw Error("cuda matmul: shape too large for the tensor-core path");
            const dim3 tgrid((unsigned)tr, (unsigned)tc);
            if (type == HG_TYPE_Q4_0)
                mm_q8_mma_kernel<HG_TYPE_Q4_0><<<tgrid, 128, 0, s>>>(wb, rows, nb, aq, ad, y, ldy, n, accumulate);
            else
                mm_q8_mma_kernel<HG_TYPE_Q8_0><<<tgrid, 128, 0, s>>>(wb, rows, nb, aq, ad, y, ldy, n, accumulate);
            check_launch("mm_q8_mma");
            return;
        }
        if (type == HG_TYPE_Q4_0) {
            if (one)
                mm_q8_kernel<HG_TYPE_Q4_0, 1><<<grid, block, 0, s>>>(wb, rows, nb, aq, ad, y, ldy, n, accumulate);
            else
                mm_q8_kernel<HG_TYPE_Q4_0, kCols><<<grid, block, 0, s>>>(wb, rows, nb, aq, ad, y, ldy, n, accumulate);
        } else {
            if (one)
                mm_q8_kernel<HG_TYPE_Q8_0, 1><<<grid, block, 0, s>>>(wb, rows, nb, aq, ad, y, ldy, n, accumulate);
            else
                mm_q8_kernel<HG_TYPE_Q8_0, kCols><<<grid, block, 0, s>>>(wb, rows, nb, aq, ad, y, ldy, n, accumulate);
        }
        check_launch("mm_q8");
        return;
    }
    if (matmul_uses_tensor_cores(type, n)) {
        const int64_t tr = (rows + kTile - 1) / kTile, tc = (n + kTile - 1) / kTile;
        if (tr > 0x7fffffff || tc > 65535) throw Error("cuda matmul: shape too large for the tensor-core path");
        const dim3 tgrid((unsigned)tr, (unsigned)tc);
        if (type == HG_TYPE_F16)
            mm_f16_mma_kernel<<<tgrid, 128, 0, s>>>(static_cast<const __half *>(w), rows, k, x, y, ldy, n, accumulate);
        else if (type == HG_TYPE_BF16)
            mm_bf16_mma_kernel<<<tgrid, 128, 0, s>>>(static_cast<const __nv_bfloat16 *>(w), rows, k, x, y, ldy, n,
                                                     accumulate);
        else {
            const int64_t nb = k / 32, n_blocks = n * nb;
            int8_t *aq = static_cast<int8_t *>(scratch);
            float *ad = reinterpret_cast<float *>(static_cast<uint8_t *>(scratch) + align256((size_t)(n * k)));
            quantize_q8_0_kernel<<<grid_for(n_blocks * 32, 256, 0x7fffffff), 256, 0, s>>>(x, n_blocks, aq, ad);
            check_launch("quantize_q8_0");
            if (type == HG_TYPE_Q4_K)
                mm_kq_mma_kernel<HG_TYPE_Q4_K>
                    <<<tgrid, 128, 0, s>>>(wb, row_bytes, rows, nb, aq, ad, y, ldy, n, accumulate);
            else if (type == HG_TYPE_Q5_K)
                mm_kq_mma_kernel<HG_TYPE_Q5_K>
                    <<<tgrid, 128, 0, s>>>(wb, row_bytes, rows, nb, aq, ad, y, ldy, n, accumulate);
            else
                mm_kq_mma_kernel<HG_TYPE_Q6_K>
                    <<<tgrid, 128, 0, s>>>(wb, row_bytes, rows, nb, aq, ad, y, ldy, n, accumulate);
        }
        check_launch("mm_mma");
        return;
    }
    if (dq_is_float(type)) {
        const float *xa = x;
        if (type == HG_TYPE_BF16) {
            float *xr = static_cast<float *>(scratch);
            round_bf16_kernel<<<grid_for(n * k, 256), 256, 0, s>>>(x, xr, n * k);
            check_launch("round_bf16");
            xa = xr;
        }
        if (one)
            mm_float_kernel<1><<<grid, block, 0, s>>>(type, wb, row_bytes, rows, k, xa, y, ldy, n, accumulate);
        else
            mm_float_kernel<kCols><<<grid, block, 0, s>>>(type, wb, row_bytes, rows, k, xa, y, ldy, n, accumulate);
        check_launch("mm_float");
        return;
    }
    if (is_k_quant(type)) {
        const int64_t nb = k / 32, n_blocks = n * nb;
        int8_t *aq = static_cast<int8_t *>(scratch);
        float *ad = reinterpret_cast<float *>(static_cast<uint8_t *>(scratch) + align256((size_t)(n * k)));
        quantize_q8_0_kernel<<<grid_for(n_blocks * 32, 256, 0x7fffffff), 256, 0, s>>>(x, n_blocks, aq, ad);
        check_launch("quantize_q8_0");
        if (one) {
            if (type == HG_TYPE_Q4_K)
                mm_kq_kernel<HG_TYPE_Q4_K, 1>
                    <<<grid, block, 0, s>>>(wb, row_bytes, rows, nb, aq, ad, y, ldy, n, accumulate);
            else if (type == HG_TYPE_Q5_K)
                mm_kq_kernel<HG_TYPE_Q5_K, 1>
                    <<<grid, block, 0, s>>>(wb, row_bytes, rows, nb, aq, ad, y, ldy, n, accumulate);
            else
                mm_kq_kernel<HG_TYPE_Q6_K, 1>
                    <<<grid, block, 0, s>>>(wb, row_bytes, rows, nb, aq, ad, y, ldy, n, accumulate);
        } else {
            if (type == HG_TYPE_Q4_K)
                mm_kq_kernel<HG_TYPE_Q4_K, kCols>
                    <<<grid, block, 0, s>>>(wb, row_bytes, rows, nb, aq, ad, y, ldy, n, accumulate);
            else if (type == HG_TYPE_Q5_K)
                mm_kq_kernel<HG_TYPE_Q5_K, kCols>
                    <<<grid, block, 0, s>>>(wb, row_bytes, rows, nb, aq, ad, y, ldy, n, accumulate);
            else
                mm_kq_kernel<HG_TYPE_Q6_K, kCols>
                    <<<grid, block, 0, s>>>(wb, row_bytes, rows, nb, aq, ad, y, ldy, n, accumulate);
        }
        check_launch("mm_kq");
        return;
    }
    if (one)
        mm_dequant_kernel<1><<<grid, block, 0, s>>>(type, wb, row_bytes, rows, k, x, y, ldy, n, accumulate);
    else
        mm_dequant_kernel<kCols><<<grid, block, 0, s>>>(type, wb, row_bytes, rows, k, x, y, ldy, n, accumulate);
    check_launch("mm_dequant");
}

} // namespace cuda
} // namespace hg
