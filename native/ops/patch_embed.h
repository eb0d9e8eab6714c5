// The ViT patch embedding: a conv with kernel = stride = patch size and no bias, over a
// channels-first image. Done as im2col + matmul: each patch becomes one column of
// channels * patch * patch values in the weight's own (channel, row, column) order, so the
// conv weight [n_embd][channels][patch][patch] is a plain n_embd x (channels * patch^2)
// matrix and all patches go through one threaded matmul.
#pragma once

#include <cstdint>

#include "core/threadpool.h"

namespace hg {

// pixels: channels x height x width floats (CHW). cols: (height / patch) * (width / patch)
// columns of channels * patch^2 floats, patches row-major (left to right, then down), the
// order CLIP flattens them into positions 1.. in.
void patch_im2col(const float *pixels, int64_t channels, int64_t height, int64_t width, int64_t patch, float *cols);

// out: one row of n_embd floats per patch (patch-major). weight: n_embd rows of
// channels * patch^2 values of `type`.
void patch_embed(ThreadPool &pool, int type, const void *weight, int64_t n_embd, const float *pixels, int64_t channels,
                 int64_t height, int64_t width, int64_t patch, float *out);

// Plain reference: the convolution written out as loops, weight already in float, sums in
// double.
void patch_embed_ref(const float *weight, int64_t n_embd, const float *pixels, int64_t channels, int64_t height,
                     int64_t width, int64_t patch, float *out);

} // namespace hg
