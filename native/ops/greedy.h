// Greedy decoding's pick where the logits are (the engine, not its caller): the token of the
// largest logit in a range of the vocabulary, as lib/model/sampler.ts picks it at temperature
// 0 under a mask that keeps only that range (image generation keeps <idx_0> .. <idx_K-1>).
#pragma once

#include <cstdint>

namespace hg {

// The index in [lo, hi) of row's largest logit, the first of equal maxima; NaN is never
// chosen; -1 when no logit there is a number above -infinity. A range of one token is that
// token whatever its logit (a forced token: the caller's mask would keep it at any value).
int32_t greedy_pick(const float *row, int32_t lo, int32_t hi);

} // namespace hg
