#include "quant/repack.h"

#include <cstring>
#include <string>

#include "core/error.h"
#include "quant/blocks.h"
#include "quant/quant.h"

namespace hg {

namespace {

static_assert(kRowBlock * sizeof(block_q4_0) == 32 + 4 * 64, "q4_0 record: 16 scales and 4 x 64 quant bytes");
static_assert(kRowBlock * sizeof(block_q8_0) == 32 + 8 * 64, "q8_0 record: 16 scales and 8 x 64 quant bytes");

// Bytes of one plain block of the type (the record is kRowBlock of them).
size_t block_bytes(int type) {
    switch (type) {
    case HG_TYPE_Q4_0: return sizeof(block_q4_0);
    case HG_TYPE_Q8_0: return sizeof(block_q8_0);
    case HG_TYPE_F16: return sizeof(fp16_t);
    default: fail("type " + std::to_string(type) + " has no packed layout");
    }
}

// Plain block of row r (bytes `blk`) into record o, and back; quant dwords go to chunk j's lane r.
void to_record(int type, const uint8_t *blk, int r, uint8_t *o) {
    std::memcpy(o + 2 * r, blk, 2); // d, or the f16 element itself
    if (type == HG_TYPE_F16) return;
    const int n_chunks = type == HG_TYPE_Q4_0 ? 4 : 8;
    for (int j = 0; j < n_chunks; j++) {
        uint8_t *q = o + 32 + 64 * j + 4 * r;
        std::memcpy(q, blk + 2 + 4 * j, 4);
        if (type == HG_TYPE_Q8_0)
            for (int i = 0; i < 4; i++) q[i] ^= 0x80; // int8 q -> uint8 q + 128
    }
}

void from_record(int type, const uint8_t *o, int r, uint8_t *blk) {
    std::memcpy(blk, o + 2 * r, 2);
    if (type == HG_TYPE_F16) return;
    const int n_chunks = type == HG_TYPE_Q4_0 ? 4 : 8;
    for (int j = 0; j < n_chunks; j++) {
        std::memcpy(blk + 2 + 4 * j, o + 32 + 64 * j + 4 * r, 4);
        if (type == HG_TYPE_Q8_0)
            for (int i = 0; i < 4; i++) blk[2 + 4 * j + i] ^= 0x80;
    }
}

} // namespace

bool packable(int type) { return type == HG_TYPE_Q4_0 || type == HG_TYPE_Q8_0 || type == HG_TYPE_F16; }

bool pack_pays(int type) {
    if (!packable(type)) return false;
    switch (isa_active()) {
    case HG_ISA_AVX512: return kernels_avx512().vec_dot_rows_packed[type] != nullptr;
    case HG_ISA_AVX2: return kernels_avx2().vec_dot_rows_packed[type] != nullptr;
    default: return false;
    }
}

void pack_rows(int type, const void *src, int64_t rows, int64_t k, int64_t r0, int64_t r1, void *dst) {
    if (!packable(type)) fail("pack_rows: type " + std::to_string(type) + " has no packed layout");
    const int64_t whole = rows / kRowBlock * kRowBlock;
    if (r0 < 0 || r0 > r1 || r1 > rows || r0 % kRowBlock != 0 || (r1 % kRowBlock != 0 && r1 != rows))
        fail("pack_rows: rows " + std::to_string(r0) + ".." + std::to_string(r1) + " of " + std::to_string(rows) +
             " do not start and end on " + std::to_string(kRowBlock) + "-row groups");
    const size_t w_row = row_bytes(type, k), bb = block_bytes(type), rec = kRowBlock * bb;
    const int64_t nb = (int64_t)(w_row / bb);
    const uint8_t *s = static_cast<const uint8_t *>(src);
    uint8_t *d = static_cast<uint8_t *>(dst);
    for (int64_t g = r0; g < r1 && g < whole; g += kRowBlock)
        for (int64_t b = 0; b < nb; b++)
            for (int r = 0; r < kRowBlock; r++) to_record(type, s + (g + r) * w_row + b * bb, r, d + g * w_row + b * rec);
    if (r1 > whole) {
        const int64_t from = r0 > whole ? r0 : whole;
        std::memcpy(d + from * w_row, s + from * w_row, (size_t)(r1 - from) * w_row);
    }
}

void unpack_block(int type, const void *group, int r, int64_t b, void *block) {
    const size_t bb = block_bytes(type);
    from_record(type, static_cast<const uint8_t *>(group) + b * kRowBlock * bb, r, static_cast<uint8_t *>(block));
}

} // namespace hg
