// Shared by the CUDA sources: error checks that throw hg::Error (never abort), byte loads
// that need no alignment beyond what a block layout guarantees, and warp reductions.
#pragma once

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/error.h"

namespace hg {
namespace cuda {

[[noreturn]] inline void throw_cuda(const char *what, cudaError_t e) {
    (void)cudaGetLastError(); // a non-sticky error must not be reported again by the next check
    throw Error(std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

inline void check(cudaError_t e, const char *what) {
    if (e != cudaSuccess) throw_cuda(what, e);
}

// After every launch: a bad configuration is reported here, a fault at the next sync.
inline void check_launch(const char *kernel) { check(cudaGetLastError(), kernel); }

inline cudaStream_t as_stream(void *s) { return static_cast<cudaStream_t>(s); }

// Grid of at most `cap` blocks for a grid-stride loop over n items.
inline unsigned grid_for(int64_t n, int threads, int64_t cap = 1 << 20) {
    int64_t g = (n + threads - 1) / threads;
    if (g < 1) g = 1;
    return (unsigned)(g < cap ? g : cap);
}

// A half stored little-endian at any byte address (quant blocks put d at odd offsets).
__host__ __device__ __forceinline__ float ld_half(const uint8_t *p) {
    return __half2float(__ushort_as_half((unsigned short)(p[0] | (p[1] << 8))));
}

// Four bytes at a 2-byte aligned address (the quants of q4_0 / q8_0 blocks, whose blocks are
// 18 / 34 bytes, so every block starts on an even byte when the row does).
__device__ __forceinline__ int ld_i32_a2(const uint8_t *p) {
    const uint16_t *q = reinterpret_cast<const uint16_t *>(p);
    return (int)((uint32_t)q[0] | ((uint32_t)q[1] << 16));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

} // namespace cuda
} // namespace hg
