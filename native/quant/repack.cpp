#include "quant/repack.h"

#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "quant/blocks.h"
#include "quant/quant.h"

namespace hg {

namespace {

// A record is a sequence of pieces of a type's plain block, each regrouped for 16 rows: a
// 2-byte field as 16 consecutive values (lane r = row r), four bytes of a longer field as a
// 64-byte chunk whose dword r holds row r's four bytes. Pieces come in the order the
// row-block kernel reads them, so that it streams each record front to back (the hardware
// prefetchers follow a record read out of order badly: a q6_K matrix read fields-first ran
// at half the rate). A piece marked `side` is kept apart, after the records of all the
// group's blocks (block b's at b times their size), so that the records' chunks stay on
// 64-byte lines (q6_K's 32-byte d would shift every other record by half a line).
struct piece {
    int offset;      // in the plain block
    int bytes;       // 2 or 4
    uint8_t flip;    // xor'ed into every stored byte (q8_0's int8 -> uint8 + 128)
    bool pair_order; // a dword's bytes stored as 0, 2, 1, 3 (q6_K's scales, see repack.h)
    bool side;
};
struct layout {
    int block_bytes = 0;
    std::vector<piece> p;
    std::vector<size_t> at; // each piece's place: in its record, or in its block's side part
    size_t record = 0, side = 0;
    // a whole field: one 2-byte piece, or its dwords in order
    layout &field(int offset, int bytes, uint8_t flip = 0, bool pair_order = false, bool side = false) {
        if (bytes == 2) return add({offset, 2, flip, pair_order, side});
        for (int j = 0; j < bytes; j += 4) add({offset + j, 4, flip, pair_order, side});
        return *this;
    }
    layout &add(piece q) {
        size_t &end = q.side ? side : record;
        p.push_back(q);
        at.push_back(end);
        end += (size_t)kRowBlock * q.bytes;
        return *this;
    }
};

layout make(int block_bytes) {
    layout l;
    l.block_bytes = block_bytes;
    return l;
}

const layout *layout_of(int type) {
    static const layout q4_0 = make(sizeof(block_q4_0)).field(0, 2).field(2, 16);
    static const layout q8_0 = make(sizeof(block_q8_0)).field(0, 2).field(2, 32, 0x80);
    static const layout f16 = make(sizeof(fp16_t)).field(0, 2);
    static const layout q4_K = make(sizeof(block_q4_K))
                                   .field(offsetof(block_q4_K, d), 2)
                                   .field(offsetof(block_q4_K, dmin), 2)
                                   .field(offsetof(block_q4_K, scales), K_SCALE_SIZE)
                                   .field(offsetof(block_q4_K, qs), QK_K / 2);
    // qh dword i beside quant dword i (the first chunk reads both; the later ones read qh again)
    static const layout q5_K = [] {
        layout l = make(sizeof(block_q5_K));
        l.field(offsetof(block_q5_K, d), 2)
            .field(offsetof(block_q5_K, dmin), 2)
            .field(offsetof(block_q5_K, scales), K_SCALE_SIZE);
        for (int i = 0; i < 8; i++)
            l.add({(int)offsetof(block_q5_K, qh) + 4 * i, 4, 0, false, false})
                .add({(int)offsetof(block_q5_K, qs) + 4 * i, 4, 0, false, false});
        return l.field(offsetof(block_q5_K, qs) + 32, QK_K / 2 - 32);
    }();
    // per half h, sub-block pair sb and i < 4: ql dwords 16h + 4sb + i and 16h + 8 + 4sb + i,
    // then qh dword 8h + 4sb + i
    static const layout q6_K = [] {
        layout l = make(sizeof(block_q6_K));
        l.field(offsetof(block_q6_K, scales), QK_K / 16, 0, true);
        for (int h = 0; h < 2; h++)
            for (int sb = 0; sb < 2; sb++)
                for (int i = 0; i < 4; i++) {
                    const int j = 4 * sb + i;
                    l.add({(int)offsetof(block_q6_K, ql) + 4 * (16 * h + j), 4, 0, false, false});
                    l.add({(int)offsetof(block_q6_K, ql) + 4 * (16 * h + 8 + j), 4, 0, false, false});
                    l.add({(int)offsetof(block_q6_K, qh) + 4 * (8 * h + j), 4, 0, false, false});
                }
        return l.field(offsetof(block_q6_K, d), 2, 0, false, true);
    }();
    switch (type) {
    case HG_TYPE_Q4_0: return &q4_0;
    case HG_TYPE_Q8_0: return &q8_0;
    case HG_TYPE_F16: return &f16;
    case HG_TYPE_Q4_K: return &q4_K;
    case HG_TYPE_Q5_K: return &q5_K;
    case HG_TYPE_Q6_K: return &q6_K;
    default: return nullptr;
    }
}

const layout &layout_or_fail(int type) {
    const layout *l = layout_of(type);
    if (!l) fail("type " + std::to_string(type) + " has no packed layout");
    return *l;
}

// Where byte k of row r of piece i of block b sits in a group of nb blocks.
inline size_t stored_at(const layout &l, size_t i, int r, int k, int64_t b, int64_t nb) {
    constexpr int pair_order[4] = {0, 2, 1, 3};
    const piece &q = l.p[i];
    const size_t base = q.side ? nb * l.record + b * l.side : b * l.record;
    return base + l.at[i] + (size_t)(q.bytes * r) + (q.pair_order ? pair_order[k] : k);
}

// Row r's plain block b (bytes `blk`) into its group, and back.
void to_group(const layout &l, const uint8_t *blk, int r, int64_t b, int64_t nb, uint8_t *group) {
    for (size_t i = 0; i < l.p.size(); i++)
        for (int k = 0; k < l.p[i].bytes; k++)
            group[stored_at(l, i, r, k, b, nb)] = (uint8_t)(blk[l.p[i].offset + k] ^ l.p[i].flip);
}

void from_group(const layout &l, const uint8_t *group, int r, int64_t b, int64_t nb, uint8_t *blk) {
    for (size_t i = 0; i < l.p.size(); i++)
        for (int k = 0; k < l.p[i].bytes; k++)
            blk[l.p[i].offset + k] = (uint8_t)(group[stored_at(l, i, r, k, b, nb)] ^ l.p[i].flip);
}

} // namespace

bool packable(int type) { return layout_of(type) != nullptr; }

bool pack_pays(int type) {
    if (!packable(type)) return false;
    switch (isa_active()) {
    case HG_ISA_AVX512: return kernels_avx512().vec_dot_rows_packed[type] != nullptr;
    // AVX2's packed q5_K and q6_K kernels, without VNNI, are slower than the plain dot at
    // one column (a 3072 x 8192 matrix, one thread: q5_K 13.7 vs 16.1 GB/s, q6_K 9.4 vs
    // 21.8), and decode is what a model mostly does: those stay plain there (twice as fast
    // packed at 8 columns; a level forced down to AVX2 after packing still runs them)
    case HG_ISA_AVX2:
        return kernels_avx2().vec_dot_rows_packed[type] != nullptr && type != HG_TYPE_Q5_K && type != HG_TYPE_Q6_K;
    default: return false;
    }
}

void pack_rows(int type, const void *src, int64_t rows, int64_t k, int64_t r0, int64_t r1, void *dst) {
    const layout *lp = layout_of(type);
    if (!lp) fail("pack_rows: type " + std::to_string(type) + " has no packed layout");
    const layout &l = *lp;
    const int64_t whole = rows / kRowBlock * kRowBlock;
    if (r0 < 0 || r0 > r1 || r1 > rows || r0 % kRowBlock != 0 || (r1 % kRowBlock != 0 && r1 != rows))
        fail("pack_rows: rows " + std::to_string(r0) + ".." + std::to_string(r1) + " of " + std::to_string(rows) +
             " do not start and end on " + std::to_string(kRowBlock) + "-row groups");
    const size_t w_row = row_bytes(type, k), bb = (size_t)l.block_bytes;
    const int64_t nb = (int64_t)(w_row / bb);
    const uint8_t *s = static_cast<const uint8_t *>(src);
    uint8_t *d = static_cast<uint8_t *>(dst);
    for (int64_t g = r0; g < r1 && g < whole; g += kRowBlock)
        for (int64_t b = 0; b < nb; b++)
            for (int r = 0; r < kRowBlock; r++) to_group(l, s + (g + r) * w_row + b * bb, r, b, nb, d + g * w_row);
    if (r1 > whole) {
        const int64_t from = r0 > whole ? r0 : whole;
        std::memcpy(d + from * w_row, s + from * w_row, (size_t)(r1 - from) * w_row);
    }
}

void unpack_block(int type, const void *group, int64_t nb, int r, int64_t b, void *block) {
    const layout &l = layout_or_fail(type);
    from_group(l, static_cast<const uint8_t *>(group), r, b, nb, static_cast<uint8_t *>(block));
}

void pack_block(int type, void *group, int64_t nb, int r, int64_t b, const void *block) {
    if (type == HG_TYPE_Q8_0) { // a q8_0 KV cache stores every key so: the layout above, unrolled
        const block_q8_0 &x = *static_cast<const block_q8_0 *>(block);
        uint8_t *rec = static_cast<uint8_t *>(group) + b * kRowBlock * sizeof(block_q8_0);
        std::memcpy(rec + 2 * r, &x.d, 2);
        for (int j = 0; j < QK8_0 / 4; j++) {
            uint32_t w;
            std::memcpy(&w, x.qs + 4 * j, 4);
            w ^= 0x80808080u;
            std::memcpy(rec + 2 * kRowBlock + 4 * kRowBlock * j + 4 * r, &w, 4);
        }
        return;
    }
    const layout &l = layout_or_fail(type);
    to_group(l, static_cast<const uint8_t *>(block), r, b, nb, static_cast<uint8_t *>(group));
}

} // namespace hg
