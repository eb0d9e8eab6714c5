// The vision paths' products (cuda/vision_ops.h gemm, gemm_f32): f16 / bf16 linears to the
// tensor cores (cuda/gemm_mma.cu) when on, everything else on the f32 tile of cuda/gemm_tile.cuh.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cuda/gemm_tile.cuh"
#include "cuda/vision_ops.h"

namespace hg {
namespace cuda {
namespace {

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

} // namespace

void gemm_use_tensor_cores(bool on) { g_tensor_cores.store(on ? 1 : 0, std::memory_order_relaxed); }
bool gemm_tensor_cores_enabled() { return tensor_cores_on(); }

bool gemm_supports(int type) { return type == HG_TYPE_F32 || type == HG_TYPE_F16 || type == HG_TYPE_BF16; }

void gemm(int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t ldx, int64_t n, const float *bias,
          float *y, int64_t ldy, bool accumulate, void *stream) {
    if (!gemm_supports(type))
        throw Error("cuda gemm: weight type " + std::to_string(type) + " is not f32, f16 or bf16");
    if (rows <= 0 || k <= 0 || n <= 0 || ldx < k || ldy < rows)
        throw Error("cuda gemm: bad shape rows=" + std::to_string(rows) + " k=" + std::to_string(k) +
                    " n=" + std::to_string(n));
    if (!w || !x || !y) throw Error("cuda gemm: null pointer");
    // a misaligned load would be a sticky device error that ends the context, not a message
    if ((uintptr_t)w % (type == HG_TYPE_F32 ? 4 : 2) != 0 || (uintptr_t)x % 4 != 0 || (uintptr_t)y % 4 != 0)
        throw Error("cuda gemm: weights or activations are not aligned for their type");
    if (type != HG_TYPE_F32 && tensor_cores_on() && gemm_tensor_cores_support(type))
        return gemm_tensor_cores(type, w, rows, k, x, ldx, n, bias, y, ldy, accumulate, stream);
    const load_typed_rows la{static_cast<const uint8_t *>(w), type, k};
    const load_f32 lb{x, ldx, 1, type == HG_TYPE_BF16};
    launch_gemm_tile(la, lb, rows, n, k, bias, y, ldy, accumulate, stream, "gemm");
}

void gemm_f32(const float *a, int64_t a_m, int64_t a_k, const float *b, int64_t b_n, int64_t b_k, int64_t m, int64_t n,
              int64_t k, float *c, int64_t ldc, void *stream) {
    if (m <= 0 || n <= 0 || k <= 0 || ldc < m) throw Error("cuda gemm_f32: bad shape");
    if (!a || !b || !c) throw Error("cuda gemm_f32: null pointer");
    launch_gemm_tile(load_f32{a, a_m, a_k, false}, load_f32{b, b_n, b_k, false}, m, n, k, nullptr, c, ldc, false,
                     stream, "gemm_f32");
}

} // namespace cuda
} // namespace hg
