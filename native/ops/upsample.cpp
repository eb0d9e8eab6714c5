#include "ops/upsample.h"

#include <cstring>
#include <string>

#include "core/error.h"

namespace hg {

void upsample_nearest2x(ThreadPool &pool, const float *x, int64_t h, int64_t w, int64_t c, float *y) {
    if (h <= 0 || w <= 0 || c <= 0)
        fail("upsample: empty input " + std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c));
    const size_t run = (size_t)c * sizeof(float);
    pool.run([&](int ith, int nth) {
        int64_t r0, r1;
        split_range(2 * h, ith, nth, r0, r1); // output rows
        for (int64_t oy = r0; oy < r1; oy++) {
            const float *src = x + (oy / 2) * w * c;
            float *dst = y + oy * 2 * w * c;
            for (int64_t ix = 0; ix < w; ix++) {
                std::memcpy(dst + (2 * ix) * c, src + ix * c, run);
                std::memcpy(dst + (2 * ix + 1) * c, src + ix * c, run);
            }
        }
    });
}

} // namespace hg
