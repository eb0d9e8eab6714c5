// Software prefetch for the packed row-block kernels (quant_avx2.cpp, quant_avx512.cpp).
//
// A decode step of several sequences (a call with 2 to kRowBlockCols - 1 columns: matmul hands
// a prompt's columns over in whole calls of kRowBlockCols) computes long enough per weight
// record that the hardware prefetchers fall behind the weight stream (a 16384 x 3072 q4_0
// product from memory ran 1.3-1.6x slower than from L2 at 2-4 columns on Zen 4, AVX-512; the
// AVX2 kernel 1.7x), so the q4_0 and q8_0 kernels then ask for the record 8 records on. Not
// for a prompt, whose later column calls find the panel's weights in L2 (prefill ran 3-5%
// slower with it), nor for one column (decode), which streams at full speed. The K-quant
// kernels never: a Q4_K_M model decoded 4 sequences 8% slower with it.
// Included by those files where their instruction set is on, after <immintrin.h>.
#pragma once

#include <xmmintrin.h>

#include <cstddef>
#include <cstdint>

#include "quant/quant.h"

namespace hg {

// static: each kernel file (compiled for its own instruction set) keeps its own copy
static constexpr bool streams_weights(int nc) { return nc > 1 && nc < kRowBlockCols; }

static inline void prefetch_record(const uint8_t *record, size_t bytes, size_t ahead) {
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)record + ahead + o, _MM_HINT_T0);
}

} // namespace hg
