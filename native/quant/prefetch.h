// Software prefetch for the packed row-block kernels (quant_avx2.cpp, quant_avx512.cpp).
//
// A decode step of several sequences (a call with 2 to kRowBlockCols - 1 columns: matmul hands
// a prompt's columns over in whole calls of kRowBlockCols) computes long enough per weight
// record that the hardware prefetchers fall behind the weight stream (a 16384 x 3072 q4_0
// product from memory ran 1.3-1.6x slower than from L2 at 2-4 columns on Zen 4, AVX-512; the
// AVX2 kernel 1.7x), so the q4_0 and q8_0 kernels then ask for the record 32 records on, into
// L2: far enough to cover memory's latency at the rate a few columns consume records, and
// past the end of a short row's group (a 256-value lora_B row is 8 records: 8 records on, the
// first group of a pair asked for the second's, which it was already reading). Against 8
// records into L1, 1 GB products on 2 threads, Zen 4, rounds interleaved in one process: q4_0
// 4 columns x 3072 1.09x, q8_0 4 x 3072 1.26x, q8_0 4 x 256 1.45x, 2 columns 1.02x; AVX2 q4_0
// 4 columns 1.20x, 2 1.06x; a whole decode step of Phi-3-mini Q4_0 (paired rounds in one
// process) 1.04x at 4 sequences, 1.025x at 4 image generations. Not for a prompt, whose later
// column calls find the panel's weights in L2 (prefill ran 3-5% slower with it), nor for one
// column (decode), which streams at full speed. The K-quant kernels never: a Q4_K_M model
// decoded 4 sequences 8% slower with it.
// Included by those files where their instruction set is on, after <immintrin.h>.
#pragma once

#include <xmmintrin.h>

#include <cstddef>
#include <cstdint>

#include "quant/quant.h"

namespace hg {

// static: each kernel file (compiled for its own instruction set) keeps its own copy
static constexpr bool streams_weights(int nc) { return nc > 1 && nc < kRowBlockCols; }

// The weight record `bytes` long that a row-block kernel reads kPrefetchRecords records on.
static constexpr size_t kPrefetchRecords = 32;
static inline void prefetch_weights(const uint8_t *record, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64)
        _mm_prefetch((const char *)record + kPrefetchRecords * bytes + o, _MM_HINT_T1);
}

// `bytes` from record + ahead into L1 (attention's rows, some rows on).
static inline void prefetch_record(const uint8_t *record, size_t bytes, size_t ahead) {
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)record + ahead + o, _MM_HINT_T0);
}

} // namespace hg
