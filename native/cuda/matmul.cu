// Y = W X on the device for every weight type the Phi-3 files use, reading weights in their
// file layout. Decode (and batches of up to kCols tokens): one warp per weight row, four rows a
// block, int8 dp4a dot products for q4_0 / q8_0. Prefill of q4_0 / q8_0 (more than kCols
// tokens): int8 tensor cores through WMMA, 64 rows x 64 tokens a block, one quant block (32
// values) per step, each step's exact integer sums scaled by d_w * d_x and added in order, as
// the CPU's scalar dot does.
#include <mma.h>

#include <atomic>
#include <cstdlib>
#include <string>

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
// unrounded one, halves rounded away from zero.
__global__ void quantize_q8_0_kernel(const float *__restrict__ x, int64_t n_blocks, int8_t *__restrict__ qs,
                                     float *__restrict__ d) {
    const int lane = threadIdx.x & 31;
    const int64_t b = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (b >= n_blocks) return; // whole warps leave together: blockDim is a multiple of 32
    const float v = x[b * 32 + lane];
    const float amax = warp_max(fabsf(v));
    const float db = amax / 127.0f;
    const float id = db != 0.0f ? 1.0f / db : 0.0f;
    const float q = fminf(fmaxf(__fmul_rn(v, id), -127.0f), 127.0f);
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

} // namespace

bool matmul_supports(int type) { return dq_block_bytes(type) != 0; }

void matmul_use_tensor_cores(bool on) { g_tensor_cores.store(on ? 1 : 0, std::memory_order_relaxed); }

size_t matmul_scratch_bytes(int type, int64_t k, int64_t n) {
    if (type == HG_TYPE_Q4_0 || type == HG_TYPE_Q8_0)
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
        if (n > kCols && tensor_cores_on()) {
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
    if (one)
        mm_dequant_kernel<1><<<grid, block, 0, s>>>(type, wb, row_bytes, rows, k, x, y, ldy, n, accumulate);
    else
        mm_dequant_kernel<kCols><<<grid, block, 0, s>>>(type, wb, row_bytes, rows, k, x, y, ldy, n, accumulate);
    check_launch("mm_dequant");
}

} // namespace cuda
} // namespace hg
