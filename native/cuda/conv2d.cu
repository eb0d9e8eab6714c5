// The VQGAN's convolutions (cuda/vision_ops.h conv2d) as an implicit GEMM: the weights are the
// tile's A rows, and its B loader reads each output position's column straight from the
// channels-last activations (zero in the padding), so no column buffer is written.
#include <string>

#include "cuda/gemm_tile.cuh"
#include "cuda/vision_ops.h"

namespace hg {
namespace cuda {

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
    launch_gemm_tile(la, lb, s.c_out, oh * ow, K, bias, y, s.c_out, accumulate, stream, "conv2d");
}

} // namespace cuda
} // namespace hg
