// Y = W X for a weight matrix of any supported type and float activations.
#pragma once

#include <cstdint>

#include "core/threadpool.h"
#include "quant/quant.h"

namespace hg {

// W: rows x k (one row = k values of `type`), X: n columns of k floats, Y: n columns of rows
// floats. Activations are converted once to W's vec_dot_type, then rows x columns tiles are
// shared out among the pool's threads. Throws hg::Error on unsupported types or shapes.
void matmul(ThreadPool &pool, int type, const void *w, int64_t rows, int64_t k, const float *x,
            int64_t n, float *y);

// The same product with a given kernel table on the calling thread only (tests pass
// kernels_scalar() to get the reference).
void matmul_with(const kernel_table &kt, int type, const void *w, int64_t rows, int64_t k,
                 const float *x, int64_t n, float *y);

} // namespace hg
