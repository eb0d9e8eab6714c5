// f16 / bf16 linears on tensor cores (cuda/vision_ops.h gemm_tensor_cores): the WMMA product of
// cuda/gemm_mma.cuh with the activations' rows as its B.
#include <string>

#include "cuda/gemm_mma.cuh"
#include "cuda/vision_ops.h"

namespace hg {
namespace cuda {
namespace {

// row n of x: k values from n * ldx (gemm_mma.cuh's loader; -1 for a column or k past the edge)
struct load_rows {
    const float *x;
    int64_t ldx;
    int N, K;
    typedef int64_t col_t;
    typedef int tap_t;
    __device__ __forceinline__ col_t col(int n) const { return n < N ? (int64_t)n * ldx : -1; }
    __device__ __forceinline__ tap_t tap(int k) const { return k < K ? k : -1; }
    __device__ __forceinline__ float operator()(col_t c, tap_t k) const { return c >= 0 && k >= 0 ? x[c + k] : 0.0f; }
};

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
    if (rows <= 0 || k <= 0 || n <= 0 || ldx < k || ldy < rows)
        throw Error("cuda gemm_tensor_cores: bad shape rows=" + std::to_string(rows) + " k=" + std::to_string(k) +
                    " n=" + std::to_string(n));
    if (!w || !x || !y) throw Error("cuda gemm_tensor_cores: null pointer");
    launch_gemm_mma(type, w, rows, k, load_rows{x, ldx, (int)n, (int)k}, n, bias, y, ldy, accumulate, stream,
                    "gemm_tensor_cores");
}

} // namespace cuda
} // namespace hg
