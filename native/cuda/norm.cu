// LayerNorm (CLIP) and GroupNorm + swish (VQGAN) on the device (cuda/vision_ops.h). Both take
// the mean first and then the mean of squared deviations from it (two passes, as the CPU
// does), so the variance never cancels.
#include <string>

#include "cuda/common.cuh"
#include "cuda/vision_ops.h"

namespace hg {
namespace cuda {
namespace {

constexpr int kNormThreads = 256;
constexpr int kGroupSplits = 64; // blocks per group in group_norm's reductions

// The sum of v over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
__device__ float block_sum(float v) {
    __shared__ float part[32];
    __shared__ float total;
    v = warp_sum(v);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        float s = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : 0.0f;
        s = warp_sum(s);
        if (threadIdx.x == 0) total = s;
    }
    __syncthreads();
    const float r = total;
    __syncthreads(); // part and total are reused by the next call
    return r;
}

// One block per row.
__global__ void layer_norm_kernel(const float *x, const float *__restrict__ wt, const float *__restrict__ bs, float *y,
                                  int64_t n, float eps) {
    const float *xr = x + blockIdx.x * n;
    float *yr = y + blockIdx.x * n;
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += xr[i];
    const float mean = block_sum(s) / (float)n;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const float d = xr[i] - mean;
        ss = fmaf(d, d, ss);
    }
    const float inv_std = 1.0f / sqrtf(block_sum(ss) / (float)n + eps);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        yr[i] = __fadd_rn(__fmul_rn(__fmul_rn(xr[i] - mean, inv_std), wt[i]), bs[i]);
}

// Block (group g, split s): the sum of x - centre (or its square) over split s's positions of
// the group's channels, into part[g * kGroupSplits + s]. 32-bit indices (the host checks).
__global__ void group_sum_kernel(const float *__restrict__ x, int n_pos, int c, int cg,
                                 const float *__restrict__ centre, float *__restrict__ part) {
    const int g = blockIdx.x, s = blockIdx.y;
    const int per = (n_pos + kGroupSplits - 1) / kGroupSplits;
    const int p0 = s * per, p1 = min(n_pos, p0 + per), count = p1 > p0 ? (p1 - p0) * cg : 0;
    const float m = centre ? centre[g] : 0.0f;
    float acc = 0.0f;
    for (int e = threadIdx.x; e < count; e += blockDim.x) {
        const unsigned p = (unsigned)e / (unsigned)cg, j = (unsigned)e - p * (unsigned)cg;
        const float d = x[(int64_t)(p0 + p) * c + g * cg + j] - m;
        acc += centre ? d * d : d;
    }
    const float total = block_sum(acc);
    if (threadIdx.x == 0) part[g * kGroupSplits + s] = total;
}

// One thread per group: the splits folded in double; out[g] = the mean, or 1 / sqrt(var + eps).
__global__ void group_stat_kernel(const float *__restrict__ part, int64_t n_groups, double count, float eps,
                                  bool inv_std, float *__restrict__ out) {
    const int64_t g = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= n_groups) return;
    double s = 0;
    for (int i = 0; i < kGroupSplits; i++) s += part[g * kGroupSplits + i];
    out[g] = inv_std ? (float)(1.0 / sqrt(s / count + (double)eps)) : (float)(s / count);
}

__global__ void group_apply_kernel(const float *x, float *y, int total, int c, int cg, const float *__restrict__ mean,
                                   const float *__restrict__ inv, const float *__restrict__ gamma,
                                   const float *__restrict__ beta, bool swish) {
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < total; e += gridDim.x * blockDim.x) {
        const int ch = (int)((unsigned)e % (unsigned)c), g = ch / cg;
        float v = __fadd_rn(__fmul_rn(x[e] - mean[g], __fmul_rn(inv[g], gamma[ch])), beta[ch]);
        if (swish) v = v / (1.0f + expf(-v));
        y[e] = v;
    }
}

} // namespace

void layer_norm(const float *x, const float *weight, const float *bias, float *y, int64_t n, int64_t n_rows, float eps,
                void *stream) {
    if (n <= 0 || n_rows <= 0 || n_rows > 0x7fffffff) throw Error("cuda layer_norm: bad shape");
    if (!x || !weight || !bias || !y) throw Error("cuda layer_norm: null pointer");
    layer_norm_kernel<<<(unsigned)n_rows, kNormThreads, 0, as_stream(stream)>>>(x, weight, bias, y, n, eps);
    check_launch("layer_norm");
}

int64_t group_norm_scratch_floats(int64_t n_groups) { return n_groups * (kGroupSplits + 2); }

void group_norm(const float *x, float *y, int64_t n_pos, int64_t c, int64_t n_groups, const float *gamma,
                const float *beta, float eps, bool swish, float *scratch, void *stream) {
    if (n_pos <= 0 || n_groups <= 0 || c <= 0 || c % n_groups != 0 || n_groups > 65535)
        throw Error("cuda group_norm: " + std::to_string(c) + " channels in " + std::to_string(n_groups) + " groups");
    if (n_pos * c >= (int64_t(1) << 30)) throw Error("cuda group_norm: too many values"); // 32-bit indices
    if (!x || !y || !gamma || !beta || !scratch) throw Error("cuda group_norm: null pointer");
    cudaStream_t s = as_stream(stream);
    const int64_t cg = c / n_groups;
    float *part = scratch, *mean = scratch + n_groups * kGroupSplits, *inv = mean + n_groups;
    const dim3 grid((unsigned)n_groups, kGroupSplits);
    const unsigned stat_blocks = (unsigned)((n_groups + 63) / 64);
    const double count = (double)n_pos * (double)cg;
    group_sum_kernel<<<grid, kNormThreads, 0, s>>>(x, (int)n_pos, (int)c, (int)cg, nullptr, part);
    check_launch("group_norm sum");
    group_stat_kernel<<<stat_blocks, 64, 0, s>>>(part, n_groups, count, eps, false, mean);
    check_launch("group_norm mean");
    group_sum_kernel<<<grid, kNormThreads, 0, s>>>(x, (int)n_pos, (int)c, (int)cg, mean, part);
    check_launch("group_norm squares");
    group_stat_kernel<<<stat_blocks, 64, 0, s>>>(part, n_groups, count, eps, true, inv);
    check_launch("group_norm variance");
    group_apply_kernel<<<grid_for(n_pos * c, 256), 256, 0, s>>>(x, y, (int)(n_pos * c), (int)c, (int)cg, mean, inv,
                                                                gamma, beta, swish);
    check_launch("group_norm apply");
}

} // namespace cuda
} // namespace hg
