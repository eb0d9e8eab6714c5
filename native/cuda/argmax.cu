// The VQGAN encoder's last step on the device (cuda/vision_ops.h argmax_rows): the index of
// each row's largest logit, the first of equal maxima as torch.argmax (and the CPU) take it.
#include "cuda/common.cuh"
#include "cuda/vision_ops.h"

namespace hg {
namespace cuda {
namespace {

// One warp per row: each lane scans a strided share keeping its first maximum, then the lanes
// merge, a larger value winning and a tie going to the smaller index.
__global__ void argmax_rows_kernel(const float *__restrict__ x, int64_t n_rows, int64_t n, int32_t *__restrict__ out) {
    const int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (row >= n_rows) return; // whole warps leave together: blockDim is a multiple of 32
    const float *r = x + row * n;
    float best = -INFINITY;
    int64_t at = n; // none yet
    for (int64_t i = lane; i < n; i += 32)
        if (r[i] > best || at == n) best = r[i], at = i;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float v = __shfl_xor_sync(0xffffffffu, best, o);
        const int64_t j = __shfl_xor_sync(0xffffffffu, at, o);
        if (v > best || (v == best && j < at)) best = v, at = j;
    }
    if (lane == 0) out[row] = (int32_t)at;
}

} // namespace

void argmax_rows(const float *x, int64_t n_rows, int64_t n, int32_t *out, void *stream) {
    if (n_rows <= 0 || n <= 0 || n > 0x7fffffff || !x || !out) throw Error("cuda argmax_rows: bad arguments");
    argmax_rows_kernel<<<grid_for(n_rows * 32, 256, 0x7fffffff), 256, 0, as_stream(stream)>>>(x, n_rows, n, out);
    check_launch("argmax_rows");
}

} // namespace cuda
} // namespace hg
