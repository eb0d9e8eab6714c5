#include "ops/greedy.h"

#include <cmath>

namespace hg {

int32_t greedy_pick(const float *row, int32_t lo, int32_t hi) {
    if (hi - lo == 1) return lo;
    int32_t best = -1;
    for (int32_t i = lo; i < hi; i++)
        if (!std::isnan(row[i]) && (best < 0 || row[i] > row[best])) best = i;
    return best >= 0 && row[best] > -INFINITY ? best : -1;
}

} // namespace hg
