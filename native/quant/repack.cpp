#include "quant/repack.h"

#include <cstring>
#include <string>

#include "core/error.h"
#include "quant/blocks.h"
#include "quant/quant.h"

namespace hg {

namespace {

constexpr size_t kQ4_0Group = kRowBlock * sizeof(block_q4_0); // one block of every row
static_assert(kQ4_0Group == 288, "the q4_0 group record is 16 fp16 scales and 4 x 64 quant bytes");

void pack_group_q4_0(const uint8_t *src, int64_t nb, uint8_t *dst) {
    const size_t w_row = (size_t)nb * sizeof(block_q4_0);
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *o = dst + b * kQ4_0Group;
        for (int r = 0; r < kRowBlock; r++) {
            const block_q4_0 *x = reinterpret_cast<const block_q4_0 *>(src + r * w_row) + b;
            std::memcpy(o + 2 * r, &x->d, 2);
            for (int j = 0; j < 4; j++) std::memcpy(o + 32 + 64 * j + 4 * r, x->qs + 4 * j, 4);
        }
    }
}

} // namespace

bool packable(int type) { return type == HG_TYPE_Q4_0; }

void pack_rows(int type, const void *src, int64_t rows, int64_t k, int64_t r0, int64_t r1, void *dst) {
    if (!packable(type)) fail("pack_rows: type " + std::to_string(type) + " has no packed layout");
    const int64_t whole = rows / kRowBlock * kRowBlock;
    if (r0 < 0 || r0 > r1 || r1 > rows || r0 % kRowBlock != 0 || (r1 % kRowBlock != 0 && r1 != rows))
        fail("pack_rows: rows " + std::to_string(r0) + ".." + std::to_string(r1) + " of " + std::to_string(rows) +
             " do not start and end on " + std::to_string(kRowBlock) + "-row groups");
    const size_t w_row = row_bytes(type, k);
    const uint8_t *s = static_cast<const uint8_t *>(src);
    uint8_t *d = static_cast<uint8_t *>(dst);
    for (int64_t r = r0; r < r1 && r < whole; r += kRowBlock)
        pack_group_q4_0(s + r * w_row, k / QK4_0, d + r * w_row);
    if (r1 > whole) {
        const int64_t from = r0 > whole ? r0 : whole;
        std::memcpy(d + from * w_row, s + from * w_row, (size_t)(r1 - from) * w_row);
    }
}

void unpack_block(int type, const void *group, int r, int64_t b, void *block) {
    if (type != HG_TYPE_Q4_0) fail("unpack_block: type " + std::to_string(type) + " has no packed layout");
    const uint8_t *o = static_cast<const uint8_t *>(group) + b * kQ4_0Group;
    block_q4_0 *x = static_cast<block_q4_0 *>(block);
    std::memcpy(&x->d, o + 2 * r, 2);
    for (int j = 0; j < 4; j++) std::memcpy(x->qs + 4 * j, o + 32 + 64 * j + 4 * r, 4);
}

} // namespace hg
