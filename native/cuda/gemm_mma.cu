// f16 / bf16 linears on tensor cores (cuda/vision_ops.h gemm_tensor_cores): WMMA 16 x 16 x 16
// with f32 accumulators. The weights are read as they are; the activations are rounded to the
// weights' type on their way into shared memory (the CPU's pairing for f16 and bf16 weights).
// 64 rows x 64 tokens a block, 4 warps of 32 x 32, 32 k a step; the accumulators go through
// shared memory so the bias, the residual add and the edges are handled element by element.
// bf16 needs sm_80: the host never launches it on an older device.
#include <mma.h>

#include <string>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/vision_ops.h"

namespace hg {
namespace cuda {
namespace {

constexpr int kTile = 64, kStep = 32, kLd = kStep + 8; // kLd: a multiple of 8 halves, 16-byte rows

template <class T> __device__ __forceinline__ T round_to(float v) {
    if constexpr (std::is_same<T, __half>::value)
        return __float2half_rn(v);
    else
        return __float2bfloat16_rn(v);
}

template <class T> struct mma_smem {
    T a[kTile][kLd];     // weights: [row][k]
    T b[kTile][kLd];     // activations: [token][k] (B column-major)
    float c[4][32 * 32]; // each warp's 32 x 32 sums, rows fastest (m + 32 n)
};

template <class T> __device__ __forceinline__ void mma_body(const T *__restrict__ w, int M, int K,
                                                            const float *__restrict__ x, int64_t ldx, int N,
                                                            const float *__restrict__ bias, float *y, int64_t ldy,
                                                            bool accumulate) {
    namespace wmma = nvcuda::wmma;
    __shared__ __align__(32) mma_smem<T> sm;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wr = warp >> 1, wc = warp & 1;
    const int m0 = blockIdx.x * kTile, n0 = blockIdx.y * kTile;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);
    const T zero = round_to<T>(0.0f);

    for (int k0 = 0; k0 < K; k0 += kStep) {
        // 64 x 32 of each: element e at row e / 32, k e % 32 (neighbouring threads, neighbouring k)
#pragma unroll 4
        for (int e = tid; e < kTile * kStep; e += 128) {
            const int r = e >> 5, kk = e & 31, k = k0 + kk, m = m0 + r, n = n0 + r;
            sm.a[r][kk] = m < M && k < K ? w[(int64_t)m * K + k] : zero;
            sm.b[r][kk] = n < N && k < K ? round_to<T>(x[(int64_t)n * ldx + k]) : zero;
        }
        __syncthreads();
#pragma unroll
        for (int kh = 0; kh < kStep / 16; kh++) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> af[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bf[2];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                wmma::load_matrix_sync(af[i], &sm.a[32 * wr + 16 * i][16 * kh], kLd);
                wmma::load_matrix_sync(bf[i], &sm.b[32 * wc + 16 * i][16 * kh], kLd);
            }
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], af[i], bf[j], acc[i][j]);
        }
        __syncthreads(); // the tiles are refilled next step
    }
    // fragment (i, j) covers rows 16 i.., tokens 16 j.. of the warp's corner: column-major
    // storage puts row m of token n at m + 32 n
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

template <class T> __global__ void __launch_bounds__(128)
    gemm_mma_kernel(const T *__restrict__ w, int M, int K, const float *__restrict__ x, int64_t ldx, int N,
                    const float *__restrict__ bias, float *y, int64_t ldy, bool accumulate) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    if constexpr (std::is_same<T, __nv_bfloat16>::value) {
        __trap(); // bf16 WMMA is sm_80+; the host does not launch this there
    } else {
        mma_body<T>(w, M, K, x, ldx, N, bias, y, ldy, accumulate);
    }
#else
    mma_body<T>(w, M, K, x, ldx, N, bias, y, ldy, accumulate);
#endif
}

} // namespace

bool gemm_tensor_cores_support(int type) {
    if (type == HG_TYPE_F16) return true; // every architecture built (sm_75 and up)
    if (type != HG_TYPE_BF16) return false;
    int dev = 0, major = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev), "cudaDeviceGetAttribute");
    return major >= 8;
}

void gemm_tensor_cores(int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t ldx, int64_t n,
                       const float *bias, float *y, int64_t ldy, bool accumulate, void *stream) {
    if (!gemm_tensor_cores_support(type))
        throw Error("cuda gemm_tensor_cores: weight type " + std::to_string(type) + " has no tensor-core path here");
    constexpr int64_t kMax = 0x7fffffff - kTile;
    if (rows <= 0 || k <= 0 || n <= 0 || ldx < k || ldy < rows || rows > kMax || k > kMax || n > kMax)
        throw Error("cuda gemm_tensor_cores: bad shape rows=" + std::to_string(rows) + " k=" + std::to_string(k) +
                    " n=" + std::to_string(n));
    if (!w || !x || !y) throw Error("cuda gemm_tensor_cores: null pointer");
    if ((uintptr_t)w % 2 != 0) throw Error("cuda gemm_tensor_cores: weights are not 2-byte aligned");
    const int64_t gn = (n + kTile - 1) / kTile;
    if (gn > 65535) throw Error("cuda gemm_tensor_cores: too many columns");
    const dim3 grid((unsigned)((rows + kTile - 1) / kTile), (unsigned)gn);
    cudaStream_t s = as_stream(stream);
    if (type == HG_TYPE_F16)
        gemm_mma_kernel<__half><<<grid, 128, 0, s>>>(static_cast<const __half *>(w), (int)rows, (int)k, x, ldx, (int)n,
                                                     bias, y, ldy, accumulate);
    else
        gemm_mma_kernel<__nv_bfloat16><<<grid, 128, 0, s>>>(static_cast<const __nv_bfloat16 *>(w), (int)rows, (int)k, x,
                                                            ldx, (int)n, bias, y, ldy, accumulate);
    check_launch("gemm_tensor_cores");
}

} // namespace cuda
} // namespace hg
