// The tensor-core product both the f16 / bf16 linears (gemm_mma.cu) and the f16 convolutions
// (conv2d.cu) run on: WMMA 16 x 16 x 16 with f32 accumulators,
//   C[n][m] = sum_k W[m][k] B(n, k)  (+ bias[m])  (c = c + that when accumulate)
// W row-major in T (f16 or bf16), read as it is; B through a loader of floats, rounded to T on
// their way into shared memory (the CPU's pairing for f16 and bf16 weights), so a conv reads
// its activations as an implicit im2col. 64 rows x 64 columns a block, 4 warps of 32 x 32,
// 32 k a step; the accumulators go through shared memory so the bias, the residual add and the
// edges are handled element by element. bf16 needs sm_80: the host never launches it on an
// older device.
//
// A B loader has three parts, so that the index arithmetic (an im2col's divisions) is paid once
// per column and once per k step, not per element: each thread loads the same 16 columns at
// every step and one k per step.
//   col_t col(int n) const   what column n needs (n may be >= N: then a column of zeros)
//   tap_t tap(int k) const   what k needs (k may be >= K: then zeros)
//   float operator()(col_t, tap_t) const
#pragma once

#include <mma.h>

#include <string>
#include <type_traits>

#include "cuda/common.cuh"

namespace hg {
namespace cuda {

constexpr int kMmaTile = 64, kMmaStep = 32, kMmaLd = kMmaStep + 8; // kMmaLd: a multiple of 8 halves, 16-byte rows

template <class T> __device__ __forceinline__ T mma_round(float v) {
    if constexpr (std::is_same<T, __half>::value)
        return __float2half_rn(v);
    else
        return __float2bfloat16_rn(v);
}

template <class T> struct mma_smem {
    T a[kMmaTile][kMmaLd]; // weights: [row][k]
    T b[kMmaTile][kMmaLd]; // activations: [column][k] (B column-major)
    float c[4][32 * 32];   // each warp's 32 x 32 sums, rows fastest (m + 32 n)
};

template <class T, class LoadB>
__device__ __forceinline__ void mma_body(const T *__restrict__ w, int M, int K, const LoadB &lb, int N,
                                         const float *__restrict__ bias, float *y, int64_t ldy, bool accumulate) {
    namespace wmma = nvcuda::wmma;
    __shared__ __align__(32) mma_smem<T> sm;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wr = warp >> 1, wc = warp & 1;
    const int m0 = blockIdx.x * kMmaTile, n0 = blockIdx.y * kMmaTile;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);
    const T zero = mma_round<T>(0.0f);

    // 64 x 32 of each a step: thread tid loads k tid % 32 of rows / columns tid / 32 + 4 i
    constexpr int kRowsPerThread = kMmaTile * kMmaStep / 128;
    const int kk = tid & 31, r0 = tid >> 5;
    typename LoadB::col_t cols[kRowsPerThread];
#pragma unroll
    for (int i = 0; i < kRowsPerThread; i++) cols[i] = lb.col(n0 + r0 + 4 * i);
    for (int k0 = 0; k0 < K; k0 += kMmaStep) {
        const int k = k0 + kk;
        const typename LoadB::tap_t t = lb.tap(k);
#pragma unroll
        for (int i = 0; i < kRowsPerThread; i++) {
            const int r = r0 + 4 * i, m = m0 + r;
            sm.a[r][kk] = m < M && k < K ? w[(int64_t)m * K + k] : zero;
            sm.b[r][kk] = mma_round<T>(lb(cols[i], t));
        }
        __syncthreads();
#pragma unroll
        for (int kh = 0; kh < kMmaStep / 16; kh++) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> af[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bf[2];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                wmma::load_matrix_sync(af[i], &sm.a[32 * wr + 16 * i][16 * kh], kMmaLd);
                wmma::load_matrix_sync(bf[i], &sm.b[32 * wc + 16 * i][16 * kh], kMmaLd);
            }
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], af[i], bf[j], acc[i][j]);
        }
        __syncthreads(); // the tiles are refilled next step
    }
    // fragment (i, j) covers rows 16 i.., columns 16 j.. of the warp's corner: column-major
    // storage puts row m of column n at m + 32 n
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(&sm.c[warp][16 * i + 32 * 16 * j], acc[i][j], 32, wmma::mem_col_major);
    __syncwarp();
    const int m = m0 + 32 * wr + lane;
    if (m >= M) return;
    const float b = bias ? bias[m] : 0.0f;
    for (int j = 0; j < 32; j++) {
        const int n = n0 + 32 * wc + j;
        if (n >= N) break;
        const float v = bias ? sm.c[warp][lane + 32 * j] + b : sm.c[warp][lane + 32 * j];
        float *out = y + (int64_t)n * ldy + m;
        *out = accumulate ? *out + v : v;
    }
}

template <class T, class LoadB> __global__ void __launch_bounds__(128)
    gemm_mma_kernel(const T *__restrict__ w, int M, int K, LoadB lb, int N, const float *__restrict__ bias, float *y,
                    int64_t ldy, bool accumulate) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    if constexpr (std::is_same<T, __nv_bfloat16>::value) {
        __trap(); // bf16 WMMA is sm_80+; the host does not launch this there
    } else {
        mma_body<T>(w, M, K, lb, N, bias, y, ldy, accumulate);
    }
#else
    mma_body<T>(w, M, K, lb, N, bias, y, ldy, accumulate);
#endif
}

// type HG_TYPE_F16 or HG_TYPE_BF16 (the caller checks the device supports it); w 2-byte aligned.
template <class LoadB> void launch_gemm_mma(int type, const void *w, int64_t M, int64_t K, const LoadB &lb, int64_t N,
                                            const float *bias, float *y, int64_t ldy, bool accumulate, void *stream,
                                            const char *what) {
    constexpr int64_t kMax = 0x7fffffff - kMmaTile;
    const int64_t gn = (N + kMmaTile - 1) / kMmaTile;
    if (M <= 0 || K <= 0 || N <= 0 || M > kMax || K > kMax || N > kMax || gn > 65535)
        throw Error(std::string("cuda ") + what + ": shape out of the tensor-core kernel's range");
    if ((uintptr_t)w % 2 != 0) throw Error(std::string("cuda ") + what + ": weights are not 2-byte aligned");
    const dim3 grid((unsigned)((M + kMmaTile - 1) / kMmaTile), (unsigned)gn);
    cudaStream_t s = as_stream(stream);
    if (type == HG_TYPE_F16)
        gemm_mma_kernel<__half, LoadB>
            <<<grid, 128, 0, s>>>(static_cast<const __half *>(w), (int)M, (int)K, lb, (int)N, bias, y, ldy, accumulate);
    else if (type == HG_TYPE_BF16)
        gemm_mma_kernel<__nv_bfloat16, LoadB><<<grid, 128, 0, s>>>(static_cast<const __nv_bfloat16 *>(w), (int)M,
                                                                   (int)K, lb, (int)N, bias, y, ldy, accumulate);
    else
        throw Error(std::string("cuda ") + what + ": weight type " + std::to_string(type) + " is not f16 or bf16");
    check_launch(what);
}

} // namespace cuda
} // namespace hg
