// Nearest-neighbour x2 upsampling over channels-last activations (taming's Upsample before
// its conv: F.interpolate(scale_factor=2, mode="nearest")): output (2y + a, 2x + b) copies
// input (y, x) for a, b in {0, 1}.
#pragma once

#include <cstdint>

#include "core/threadpool.h"

namespace hg {

// x: h * w * c floats; y: 2h * 2w * c floats, must not alias x.
void upsample_nearest2x(ThreadPool &pool, const float *x, int64_t h, int64_t w, int64_t c, float *y);

} // namespace hg
