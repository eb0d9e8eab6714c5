// Biases, the two GELUs and residual adds of the vision paths (cuda/vision_ops.h), element by
// element in the CPU's order of operations (ops/gelu.cpp).
#include "cuda/common.cuh"
#include "cuda/vision_ops.h"

namespace hg {
namespace cuda {
namespace {

__global__ void bias_act_kernel(float *x, const float *__restrict__ bias, int64_t n, int64_t total, int kind) {
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
        const float v = bias ? x[e] + bias[e % n] : x[e];
        if (kind == BIAS_QUICK_GELU)
            x[e] = v / (1.0f + expf(__fmul_rn(-1.702f, v)));
        else if (kind == BIAS_GELU_ERF)
            x[e] = __fmul_rn(__fmul_rn(0.5f, v), 1.0f + erff(__fmul_rn(v, 0.70710678118654752f)));
        else
            x[e] = v;
    }
}

__global__ void add_bias_residual_kernel(float *y, const float *__restrict__ t, const float *__restrict__ bias,
                                         int64_t n, int64_t total) {
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x)
        y[e] += bias ? t[e] + bias[e % n] : t[e];
}

__global__ void add_kernel(float *y, const float *__restrict__ x, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

} // namespace

void bias_act(float *x, const float *bias, int64_t n, int64_t n_rows, int kind, void *stream) {
    if (n <= 0 || n_rows <= 0 || kind < BIAS_ONLY || kind > BIAS_GELU_ERF) throw Error("cuda bias_act: bad arguments");
    if (!x) throw Error("cuda bias_act: null pointer");
    bias_act_kernel<<<grid_for(n * n_rows, 256), 256, 0, as_stream(stream)>>>(x, bias, n, n * n_rows, kind);
    check_launch("bias_act");
}

void add_bias_residual(float *y, const float *t, const float *bias, int64_t n, int64_t n_rows, void *stream) {
    if (n <= 0 || n_rows <= 0) throw Error("cuda add_bias_residual: bad shape");
    if (!y || !t) throw Error("cuda add_bias_residual: null pointer");
    add_bias_residual_kernel<<<grid_for(n * n_rows, 256), 256, 0, as_stream(stream)>>>(y, t, bias, n, n * n_rows);
    check_launch("add_bias_residual");
}

void add_f32(float *y, const float *x, int64_t n, void *stream) {
    if (n <= 0 || !y || !x) throw Error("cuda add_f32: bad arguments");
    add_kernel<<<grid_for(n, 256), 256, 0, as_stream(stream)>>>(y, x, n);
    check_launch("add_f32");
}

} // namespace cuda
} // namespace hg
