// The VQGAN's convolutions (cuda/vision_ops.h conv2d) as an implicit GEMM: the weights are the
// product's A rows, and its B loader reads each output position's column straight from the
// channels-last activations (zero in the padding), so no column buffer is written. f16 weights
// on tensor cores (cuda/gemm_mma.cuh: activations rounded to f16, f32 sums) unless switched
// off; f32 weights, and f16 with tensor cores off, on the f32 tile (cuda/gemm_tile.cuh).
#include <string>

#include "cuda/gemm_mma.cuh"
#include "cuda/gemm_tile.cuh"
#include "cuda/vision_ops.h"

namespace hg {
namespace cuda {
namespace {

// The im2col as gemm_mma.cuh's three-part loader: a column is its output position's input
// corner (far outside for a position past the edge), a k its (ky, kx, c_in) offsets (far outside
// past K), so an element is two additions and a bounds test. Unsigned 32-bit divisions, once a
// column and once a step (the host checks every extent fits).
struct load_im2col_mma {
    load_im2col g; // the geometry, as the f32 tile's loader holds it
    int N, K;
    struct col_t {
        int iy, ix;
    };
    struct tap_t {
        int ky, kx, ci;
    };
    static constexpr int kFar = -(1 << 30);
    __device__ __forceinline__ col_t col(int n) const {
        if (n >= N) return {kFar, kFar};
        const unsigned oy = (unsigned)n / (unsigned)g.out_w, ox = (unsigned)n - oy * (unsigned)g.out_w;
        return {(int)oy * g.stride - g.pad_top, (int)ox * g.stride - g.pad_left};
    }
    __device__ __forceinline__ tap_t tap(int k) const {
        if (k >= K) return {kFar, kFar, 0};
        const unsigned t = (unsigned)k / (unsigned)g.c_in, ci = (unsigned)k - t * (unsigned)g.c_in;
        const unsigned ky = t / (unsigned)g.kw, kx = t - ky * (unsigned)g.kw;
        return {(int)ky, (int)kx, (int)ci};
    }
    __device__ __forceinline__ float operator()(col_t c, tap_t t) const {
        const int iy = c.iy + t.ky, ix = c.ix + t.kx;
        if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return 0.0f;
        return g.x[((int64_t)iy * g.w + ix) * g.c_in + t.ci];
    }
};

} // namespace

void conv2d(int type, const void *w, const float *bias, const conv2d_shape &s, const float *x, int64_t h, int64_t w_,
            float *y, bool accumulate, void *stream) {
    if (type != HG_TYPE_F32 && type != HG_TYPE_F16) throw Error("cuda conv2d: weights must be f32 or f16");
    if (s.c_in <= 0 || s.c_out <= 0 || s.kh <= 0 || s.kw <= 0 || s.stride <= 0 || h <= 0 || w_ <= 0 || s.pad_top < 0 ||
        s.pad_left < 0 || s.pad_bottom < 0 || s.pad_right < 0)
        throw Error("cuda conv2d: bad shape");
    const int64_t eh = h + s.pad_top + s.pad_bottom, ew = w_ + s.pad_left + s.pad_right;
    if (eh < s.kh || ew < s.kw)
        throw Error("cuda conv2d: a " + std::to_string(s.kh) + "x" + std::to_string(s.kw) + " kernel does not fit " +
                    std::to_string(h) + "x" + std::to_string(w_));
    if (!w || !x || !y || x == y) throw Error("cuda conv2d: null or aliased pointer");
    const int64_t oh = (eh - s.kh) / s.stride + 1, ow = (ew - s.kw) / s.stride + 1, K = s.kh * s.kw * s.c_in;
    // the loader's 32-bit index arithmetic: every extent (and stride * extent) below 2^30
    constexpr int64_t lim = int64_t(1) << 30;
    if (h * w_ * s.c_in >= lim || oh * ow >= lim || K >= lim || s.stride * (oh + ow) + s.kh + s.kw >= lim ||
        s.pad_top >= lim || s.pad_left >= lim)
        throw Error("cuda conv2d: shape too large");
    const load_typed_rows la{static_cast<const uint8_t *>(w), type, K};
    const load_im2col lb{
        x, (int)h, (int)w_, (int)s.c_in, (int)s.kw, (int)s.stride, (int)s.pad_top, (int)s.pad_left, (int)ow};
    if (type == HG_TYPE_F16 && gemm_tensor_cores_enabled()) {
        const load_im2col_mma lm{lb, (int)(oh * ow), (int)K};
        return launch_gemm_mma(type, w, s.c_out, K, lm, oh * ow, bias, y, s.c_out, accumulate, stream, "conv2d");
    }
    launch_gemm_tile(la, lb, s.c_out, oh * ow, K, bias, y, s.c_out, accumulate, stream, "conv2d");
}

} // namespace cuda
} // namespace hg
