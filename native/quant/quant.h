// Tensor types: sizes, reference conversions, and the per-ISA kernel tables.
//
// Every type has a scalar reference (quant_ref.cpp). SIMD files (quant_avx2.cpp,
// quant_avx512.cpp) fill the same table for the processors that have them; an entry they
// leave null falls back to the level below, down to the scalar one.
#pragma once

#include <cstddef>
#include <cstdint>

#include "healthgpt.h"

namespace hg {

// x: one row of n elements of a type; y: floats.
typedef void (*to_float_fn)(const void *x, float *y, int64_t n);
typedef void (*from_float_fn)(const float *x, void *y, int64_t n);
// s = dot(x, y) over n elements: x a weight row, y an activation row of the paired type.
typedef void (*vec_dot_fn)(int64_t n, float *s, const void *x, const void *y);
// Tile of dots: kDotTileRows weight rows x kDotTileCols activation columns in one call, so a
// weight block is unpacked once for all columns and an activation block once for all rows.
// Row r starts at x + r * bx bytes, column c at y + c * by; s[c * bs + r] = dot(row r, col c).
constexpr int kDotTileRows = 4;
constexpr int kDotTileCols = 4;
typedef void (*vec_dot_tile_fn)(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by);

// Row block: kRowBlock weight rows x nc activation columns (1 <= nc <= kRowBlockCols) in one
// call, for kernels that keep one row per register lane: no horizontal sums, and each weight
// block is unpacked once for the nc columns. Addressing as vec_dot_tile_fn. Each activation
// row is q8_0 with its q8_0_aux at q8_0_aux_offset (q8_0_fill_aux), which the kernel reads.
constexpr int kRowBlock = 16;
constexpr int kRowBlockCols = 8;
typedef void (*vec_dot_rows_fn)(int64_t n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by,
                                int nc);

// For each weight vector j < n_w: out_j[0, n) = sum over rows r < n_rows, in order, of
// w_j[r] * row r, with out_j = out + j * out_stride and w_j = w + j * w_stride (floats); rows
// of n values of the type, row r at rows + r * stride bytes. Attention's probabilities times V
// (kept key by key), the query heads that share a kv head together, so that V is read once.
// Each out_j is the same, bit for bit, whatever n_w.
typedef void (*weighted_rows_fn)(int64_t n, float *out, size_t out_stride, const void *rows, size_t stride,
                                 const float *w, size_t w_stride, int n_w, int64_t n_rows);

// Packed weights (quant/repack.h): a weight type's rows regrouped at load so that a row block
// is one contiguous stream that the row-block kernel reads in order (the plain layout makes
// it read kRowBlock rows side by side: 16 streams that the prefetchers follow badly). The
// packed type of t is t | kPackedFlag; it never appears in a file, and every group of
// kRowBlock rows keeps its place and size, so a row range starting at a multiple of
// kRowBlock starts at the same byte offset. Rows past the last whole group stay plain.
constexpr int kPackedFlag = 0x100;
constexpr int packed_type(int type) { return type | kPackedFlag; }
constexpr bool is_packed(int type) { return (type & kPackedFlag) != 0; }
constexpr int plain_type(int type) { return type & ~kPackedFlag; }
// Per q8_0 block of an activation row: d as float and the sum of the 32 quants.
struct q8_0_aux {
    float d;
    int32_t sum;
};
// Writes the n / 32 q8_0_aux of the q8_0 row y (n elements) to aux.
void q8_0_fill_aux(const void *y, int64_t n, q8_0_aux *aux);
// Where the aux follows a q8_0 row of n elements (its bytes rounded up to the aux's
// alignment), and the bytes of row and aux together (a multiple of that alignment, so that
// columns laid end to end from an aligned start all keep it).
size_t q8_0_aux_offset(int64_t n);
size_t q8_0_row_with_aux(int64_t n);

struct type_info {
    const char *name;             // ggml's name, e.g. "q4_K"
    int64_t block_size;           // elements per block (1 for plain types)
    size_t block_bytes;           // bytes per block
    bool supported;               // we can convert and multiply it
    hg_type vec_dot_type;         // the activation type the dot kernel pairs it with
    to_float_fn to_float;         // reference dequantize (null when unsupported)
    from_float_fn from_float_ref; // reference quantize (null when unsupported)
};

// Table lookup; returns nullptr for ids no format defines.
const type_info *type_traits(int type);

// Bytes of a row of n elements; fails (hg::Error) when n is not a multiple of the block.
size_t row_bytes(int type, int64_t n);

struct kernel_table {
    vec_dot_fn vec_dot[HG_TYPE_COUNT];       // weight type -> dot with its vec_dot_type
    from_float_fn from_float[HG_TYPE_COUNT]; // activation quantizers (q8_0, q8_1, q8_K, f16, bf16)
    // Optional tile kernels (null: the caller loops vec_dot). Each is paired with the vec_dot
    // of its own level: a table's tile entry is only used where that level's vec_dot runs.
    vec_dot_tile_fn vec_dot_tile[HG_TYPE_COUNT];
    // Optional row-block kernels, paired with their level's vec_dot in the same way.
    vec_dot_rows_fn vec_dot_rows[HG_TYPE_COUNT];
    // Row-block kernels over packed groups, by plain type (bx is unused: a group is
    // contiguous). Every level that packs has one, the scalar reference included, because
    // packed weights can be read in no other way.
    vec_dot_rows_fn vec_dot_rows_packed[HG_TYPE_COUNT];
    // Optional: two consecutive packed groups at once (2 * kRowBlock rows; the second group at
    // x + kRowBlock * bx, bx a plain row's bytes), each row's result bit for bit the packed
    // kernel's, for kernels that share their activation broadcasts between the groups.
    vec_dot_rows_fn vec_dot_rows2_packed[HG_TYPE_COUNT];
    // F32, F16 and Q8_0 rows (a KV cache's types); every level has them, the scalar one
    // included. A Q8_0 row's values are weighted as dequantizing gives them (d * q in float).
    weighted_rows_fn weighted_rows[HG_TYPE_COUNT];
};

// Scalar reference table: every supported type filled.
const kernel_table &kernels_scalar();
// SIMD tables: only what each level implements; null entries fall back. On a processor or
// compiler without the ISA these return tables with every entry null.
const kernel_table &kernels_avx2();
const kernel_table &kernels_avx512();

// The table the engine runs with: the best level the CPU has (or the forced one), nulls
// already filled from the levels below.
const kernel_table &kernels_active();

// The level whose vec_dot for `type` a merged table runs (null if none): its optional tile
// and row-block kernels are the ones that belong with that vec_dot.
const kernel_table *kernel_level(const kernel_table &kt, int type);

} // namespace hg

namespace hg {
// The level kernels_active() uses, and a forced level (-1: automatic). Fails (hg::Error)
// for a level the processor cannot run.
int isa_active();
void isa_force(int isa);
} // namespace hg
