// The tiled f32 product both the linears (gemm.cu) and the convolutions (conv2d.cu) run on:
//   C[n][m] = sum_k A(m, k) B(n, k)  (+ bias[m])  (c = c + that when accumulate)
// where A and B are read through loaders, so a conv reads its activations as an implicit
// im2col without a column buffer. 64 x 64 outputs a block, 16 k a step through shared memory,
// 256 threads of 4 x 4 outputs each (rows tx + 16 i, columns ty + 16 j: neighbouring threads
// write neighbouring m, so stores coalesce). Loaders are called only inside [0, M) x [0, K)
// (resp. [0, N) x [0, K)); the tile is zero past the edges, so any shape works. Coordinates
// are 32-bit (the host checks M, N, K): index arithmetic, the im2col's divisions above all,
// would otherwise cost more than the products; offsets are formed in 64 bits.
#pragma once

#include "cuda/common.cuh"

namespace hg {
namespace cuda {

constexpr int kGemmTile = 64, kGemmK = 16, kGemmThreads = 256;

template <class LoadA, class LoadB> __global__ void __launch_bounds__(kGemmThreads)
    gemm_tile_kernel(LoadA la, LoadB lb, int M, int N, int K, const float *__restrict__ bias, float *c, int64_t ldc,
                     bool accumulate) {
    __shared__ float as[kGemmK][kGemmTile + 1], bs[kGemmK][kGemmTile + 1];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int m0 = blockIdx.x * kGemmTile, n0 = blockIdx.y * kGemmTile;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += kGemmK) {
        // element e of a 64 x 16 tile: row e / 16, k e % 16 (16 neighbouring k per row)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int e = tid + kGemmThreads * i, r = e >> 4, kk = e & 15;
            const int k = k0 + kk, m = m0 + r, n = n0 + r;
            as[kk][r] = m < M && k < K ? la(m, k) : 0.0f;
            bs[kk][r] = n < N && k < K ? lb(n, k) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kGemmK; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = as[kk][tx + 16 * i], b[i] = bs[kk][ty + 16 * i];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const int n = n0 + ty + 16 * j;
        if (n >= N) continue;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int m = m0 + tx + 16 * i;
            if (m >= M) continue;
            const float v = bias ? acc[i][j] + bias[m] : acc[i][j];
            float *out = c + (int64_t)n * ldc + m;
            *out = accumulate ? *out + v : v;
        }
    }
}

// A row-major matrix of a float type (f32, f16, bf16): element (r, k) of rows of ld values.
struct load_typed_rows {
    const uint8_t *p;
    int type;
    int64_t ld;
    __device__ __forceinline__ float operator()(int r, int k) const {
        const int64_t i = (int64_t)r * ld + k;
        if (type == HG_TYPE_F32) return reinterpret_cast<const float *>(p)[i];
        const unsigned short b = reinterpret_cast<const unsigned short *>(p)[i];
        if (type == HG_TYPE_F16) return __half2float(__ushort_as_half(b));
        return __uint_as_float((uint32_t)b << 16); // bf16
    }
};

// f32 at any strides, optionally rounded to bf16 (the CPU's pairing for bf16 weights).
struct load_f32 {
    const float *p;
    int64_t s_row, s_k;
    bool round_bf16;
    __device__ __forceinline__ float operator()(int r, int k) const {
        const float v = p[(int64_t)r * s_row + (int64_t)k * s_k];
        return round_bf16 ? __bfloat162float(__float2bfloat16_rn(v)) : v;
    }
};

// Output position n's column of a conv: k = (ky * kw + kx) * c_in + ci, zero in the padding.
// Unsigned 32-bit divisions (the host checks every extent fits).
struct load_im2col {
    const float *x;
    int h, w, c_in, kw, stride, pad_top, pad_left, out_w;
    __device__ __forceinline__ float operator()(int n, int k) const {
        const unsigned t = (unsigned)k / (unsigned)c_in, ci = (unsigned)k - t * (unsigned)c_in;
        const unsigned ky = t / (unsigned)kw, kx = t - ky * (unsigned)kw;
        const unsigned oy = (unsigned)n / (unsigned)out_w, ox = (unsigned)n - oy * (unsigned)out_w;
        const int iy = (int)(oy * stride + ky) - pad_top, ix = (int)(ox * stride + kx) - pad_left;
        if (iy < 0 || iy >= h || ix < 0 || ix >= w) return 0.0f;
        return x[((int64_t)iy * w + ix) * c_in + ci];
    }
};

template <class LoadA, class LoadB> void launch_gemm_tile(const LoadA &la, const LoadB &lb, int64_t M, int64_t N,
                                                          int64_t K, const float *bias, float *c, int64_t ldc,
                                                          bool accumulate, void *stream, const char *what) {
    constexpr int64_t kMax = 0x7fffffff - kGemmTile;
    const int64_t gn = (N + kGemmTile - 1) / kGemmTile;
    if (M > kMax || N > kMax || K > kMax || gn > 65535) throw Error(std::string("cuda ") + what + ": shape too large");
    const unsigned gm = (unsigned)((M + kGemmTile - 1) / kGemmTile);
    gemm_tile_kernel<LoadA, LoadB><<<dim3(gm, (unsigned)gn), kGemmThreads, 0, as_stream(stream)>>>(
        la, lb, (int)M, (int)N, (int)K, bias, c, ldc, accumulate);
    check_launch(what);
}

} // namespace cuda
} // namespace hg
