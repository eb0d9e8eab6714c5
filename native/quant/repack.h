// Packed weights: a weight type's rows regrouped kRowBlock at a time so that the row-block
// kernel streams each group in order (quant.h's kPackedFlag says why). Per group of 16 rows
// and per block index b, one record the size of the 16 plain blocks it replaces:
//
// q4_0 (288 bytes):  d of rows 0..15 (fp16, 32 bytes), then four 64-byte chunks L0..L3:
//                    dword r of L_j = quant bytes 4j..4j+3 of row r
// q8_0 (544 bytes):  d of rows 0..15 (32 bytes), then eight 64-byte chunks L0..L7 as above,
//                    each quant stored + 128 (unsigned), so that it is vpdpbusd's unsigned
//                    operand; the kernels subtract 128 * sum(y) of the block
// f16 (32 bytes):    element b of rows 0..15 (a block is one element)
//
// and for the k-quants (b a 256-element super-block), pieces of the plain block in the order
// the kernel reads them, 2-byte fields as 16 values, longer ones as 64-byte chunks as above
// (chunk j of a field: dword r = the field's bytes 4j..4j+3 of row r):
// q4_K (2304 bytes): d x 16, dmin x 16, scales (3 chunks), qs (32 chunks)
// q5_K (2816 bytes): d x 16, dmin x 16, scales (3 chunks), qh chunk i then qs chunk i for
//                    i < 8, qs chunks 8..31
// q6_K (3328 bytes): scales (4 chunks, each dword's bytes stored in the order 0, 2, 1, 3,
//                    so that its low and high 16-bit halves sign-extend to the scale pairs
//                    (0, 1) and (2, 3)), then for half h, sb < 2, i < 4 with j = 4 sb + i:
//                    ql chunks 16h + j and 16h + 8 + j, qh chunk 8h + j; the d x 16 of all
//                    the group's super-blocks after its last record (32 bytes each), so
//                    that every record stays on 64-byte lines
//
// which is what a row-block kernel wants in its registers: one row per 32-bit lane.
#pragma once

#include <cstdint>

namespace hg {

// Whether weights of this plain type have a packed layout.
bool packable(int type);

// Whether packing this type makes the engine faster here: the running kernel level has a
// packed kernel of its own for it (a level without one would run the scalar reference),
// and it is not slower at one column than the plain dot (AVX2's q5_K and q6_K are).
bool pack_pays(int type);

// Packs rows [r0, r1) of a plain matrix (row length k) into dst, which has the plain
// matrix's size: whole groups of kRowBlock rows are regrouped, rows past the last whole
// group of the matrix (rows) are copied as they are. r0 must be a multiple of kRowBlock and
// r1 one too or rows; ranges may be packed by different threads.
void pack_rows(int type, const void *src, int64_t rows, int64_t k, int64_t r0, int64_t r1, void *dst);

// Row r of a group's block b (of nb blocks a row), back in the plain block layout (for the
// scalar kernels and tests).
void unpack_block(int type, const void *group, int64_t nb, int r, int64_t b, void *block);
// The inverse: a plain block stored as row r's block b of a group (a q8_0 KV cache writes its
// keys one at a time into the groups that attention reads).
void pack_block(int type, void *group, int64_t nb, int r, int64_t b, const void *block);

} // namespace hg
