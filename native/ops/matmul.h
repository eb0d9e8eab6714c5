// Y = W X for a weight matrix of any supported type and float activations.
#pragma once

#include <cstdint>
#include <memory>

#include "core/threadpool.h"
#include "quant/quant.h"

namespace hg {

// W: rows x k (one row = k values of `type`, or of its packed groups when type is
// packed_type(t): quant/repack.h), X: n columns of k floats, Y: n columns of rows floats. Activations are converted once to W's vec_dot_type, then rows x columns tiles are
// shared out among the pool's threads. Throws hg::Error on unsupported types or shapes.
//
// exact_columns: every column's result has the bits it has alone (n = 1), whatever n and
// the column's place, so that a sequence's rows give the same logits batched with other
// sequences' rows or cut into other chunks. The row-block kernels are exact per column;
// the 4 x 4 dot tiles of AVX-512 (f16, q4_0, q8_0 rows outside row blocks) sum in another
// order than one dot, so this leaves them out (the prefill of a plain f16 matrix runs on
// one dot at a time). The language model asks for it; the vision tower does not.
void matmul(ThreadPool &pool, int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t n, float *y,
            bool exact_columns = false);

// Rows per task when one column (decode) is shared out in strips taken dynamically: about 8
// strips per thread, so that a thread slowed by others on a shared machine leaves little to
// wait for, while each strip is a multiple of 16 rows and long enough to be one stream.
int64_t decode_strip_rows(int64_t rows, int n_threads);

// The same product with a given kernel table on the calling thread only (tests pass
// kernels_scalar() to get the reference).
void matmul_with(const kernel_table &kt, int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t n,
                 float *y);

// A product's activation columns (n of them, a decode step's sequences: up to
// kRowBlockCols in one kernel call) converted once for W, then any range of rows computed
// with the kernels hg::matmul uses, every column exact as with exact_columns, so that a caller
// can share one pool job between several products (H-LoRA's decode step) and still get
// hg::matmul's result bit for bit, provided its ranges start at multiples of 16 rows as
// hg::matmul's do (packed weights refuse others).
class MatmulRows {
  public:
    MatmulRows(int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t n = 1);
    // rows r0 .. r1 - 1 of every column into y[c * rows() + r]; safe from several threads on
    // disjoint ranges
    void compute(int64_t r0, int64_t r1, float *y) const;
    int64_t rows() const { return rows_; }

  private:
    struct Impl;
    std::shared_ptr<const Impl> impl_;
    int64_t rows_ = 0;
};

} // namespace hg
