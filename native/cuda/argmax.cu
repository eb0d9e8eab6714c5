// Argmax on the device: the VQGAN encoder's last step (cuda/vision_ops.h argmax_rows: the
// index of each row's largest logit, the first of equal maxima as torch.argmax and the CPU
// take it), and greedy decoding's pick in a range of the vocabulary (cuda/ops.h greedy_pick).
#include <climits>

#include "cuda/common.cuh"
#include "cuda/ops.h"
#include "cuda/vision_ops.h"

namespace hg {
namespace cuda {
namespace {

// One warp per row: each lane scans a strided share keeping its first maximum (NaN never kept),
// then the lanes merge, a larger value winning and a tie going to the smaller index. The CPU
// compares each logit with row[best] from best = 0, so a NaN first logit wins: 0, as there.
__global__ void argmax_rows_kernel(const float *__restrict__ x, int64_t n_rows, int64_t n, int32_t *__restrict__ out) {
    const int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (row >= n_rows) return; // whole warps leave together: blockDim is a multiple of 32
    const float *r = x + row * n;
    float best = -INFINITY;
    int64_t at = n; // none yet
    for (int64_t i = lane; i < n; i += 32)
        if (r[i] > best || (at == n && !isnan(r[i]))) best = r[i], at = i;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float v = __shfl_xor_sync(0xffffffffu, best, o);
        const int64_t j = __shfl_xor_sync(0xffffffffu, at, o);
        if (v > best || (v == best && j < at)) best = v, at = j;
    }
    if (lane == 0) out[row] = at == n || isnan(r[0]) ? 0 : (int32_t)at;
}

// One block: each thread keeps the first of its strided share's largest values above
// -infinity (NaN compares false, so it is never kept), then warps and blocks merge, a larger
// value winning and a tie going to the smaller index: ops/greedy.cpp's pick, in parallel.
__global__ void greedy_pick_kernel(const float *__restrict__ row, const int32_t *__restrict__ range,
                                   int32_t *__restrict__ out) {
    const int32_t lo = range[0], hi = range[1];
    if (hi - lo == 1) { // a forced token
        if (threadIdx.x == 0) *out = lo;
        return;
    }
    float best = -INFINITY;
    int32_t at = INT_MAX;
    for (int32_t i = lo + (int32_t)threadIdx.x; i < hi; i += (int32_t)blockDim.x)
        if (row[i] > best) best = row[i], at = i;
    auto merge = [&](float v, int32_t j) {
        if (v > best || (v == best && j < at)) best = v, at = j;
    };
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) merge(__shfl_xor_sync(0xffffffffu, best, o), __shfl_xor_sync(0xffffffffu, at, o));
    __shared__ float wbest[32];
    __shared__ int32_t wat[32];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = blockDim.x >> 5;
    if (lane == 0) wbest[warp] = best, wat[warp] = at;
    __syncthreads();
    if (warp != 0) return;
    best = lane < n_warps ? wbest[lane] : -INFINITY;
    at = lane < n_warps ? wat[lane] : INT_MAX;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) merge(__shfl_xor_sync(0xffffffffu, best, o), __shfl_xor_sync(0xffffffffu, at, o));
    if (lane == 0) *out = at == INT_MAX ? -1 : at;
}

} // namespace

void greedy_pick(const float *row, const int32_t *range, int32_t *out, void *stream) {
    if (!row || !range || !out) throw Error("cuda greedy_pick: bad arguments");
    greedy_pick_kernel<<<1, 1024, 0, as_stream(stream)>>>(row, range, out);
    check_launch("greedy_pick");
}

void argmax_rows(const float *x, int64_t n_rows, int64_t n, int32_t *out, void *stream) {
    if (n_rows <= 0 || n <= 0 || n > 0x7fffffff || !x || !out) throw Error("cuda argmax_rows: bad arguments");
    argmax_rows_kernel<<<grid_for(n_rows * 32, 256, 0x7fffffff), 256, 0, as_stream(stream)>>>(x, n_rows, n, out);
    check_launch("argmax_rows");
}

} // namespace cuda
} // namespace hg
