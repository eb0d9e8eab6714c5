// Packed weights: a weight type's rows regrouped kRowBlock at a time so that the row-block
// kernel streams each group in order (quant.h's kPackedFlag says why).
//
// q4_0, per group of 16 rows and per block index b (32 elements of every row), 288 bytes,
// the same as the 16 plain blocks they replace:
//   bytes   0..31   d of rows 0..15 (fp16)
//   bytes  32..287  four 64-byte chunks L0..L3: dword r of L_j = quant bytes 4j..4j+3 of row r
// which is what the plain kernel builds in registers (a transposition and a gather per block).
#pragma once

#include <cstdint>

namespace hg {

// Whether weights of this plain type can be packed (a packed row-block kernel exists).
bool packable(int type);

// Packs rows [r0, r1) of a plain matrix (row length k) into dst, which has the plain
// matrix's size: whole groups of kRowBlock rows are regrouped, rows past the last whole
// group of the matrix (rows) are copied as they are. r0 must be a multiple of kRowBlock and
// r1 one too or rows; ranges may be packed by different threads.
void pack_rows(int type, const void *src, int64_t rows, int64_t k, int64_t r0, int64_t r1, void *dst);

// Row r of group g's block b, back in the plain block layout (for the scalar kernels and tests).
void unpack_block(int type, const void *group, int r, int64_t b, void *block);

} // namespace hg
