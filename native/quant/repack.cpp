#include "quant/repack.h"

#include <cstring>
#include <string>

#include "core/error.h"
#include "quant/blocks.h"
#include "quant/quant.h"

namespace hg {

namespace {

// A record is a type's plain block fields, one after another, each regrouped for 16 rows:
// a 2-byte field as 16 consecutive values (lane r = row r), a longer one (a multiple of 4
// bytes) as 64-byte chunks whose dword r holds row r's bytes 4j..4j+3 of the field. A field
// marked `side` is kept apart, after the records of all the group's blocks (block b's at
// b times its size), so that the records' chunks stay on 64-byte lines (q6_K's 32-byte d
// would shift every other record by half a line).
struct field {
    int offset; // in the plain block
    int bytes;  // per row
    uint8_t flip;  // xor'ed into every stored byte (q8_0's int8 -> uint8 + 128)
    bool pair_order; // a dword's bytes stored as 0, 2, 1, 3 (q6_K's scales, see repack.h)
    bool side;
};
struct layout {
    int block_bytes;
    int n_fields;
    field f[5];
};

const layout *layout_of(int type) {
    static const layout q4_0{sizeof(block_q4_0), 2, {{0, 2, 0, false}, {2, 16, 0, false}}};
    static const layout q8_0{sizeof(block_q8_0), 2, {{0, 2, 0, false}, {2, 32, 0x80, false}}};
    static const layout f16{sizeof(fp16_t), 1, {{0, 2, 0, false}}};
    static const layout q4_K{sizeof(block_q4_K), 4,
                             {{offsetof(block_q4_K, d), 2, 0, false},
                              {offsetof(block_q4_K, dmin), 2, 0, false},
                              {offsetof(block_q4_K, scales), K_SCALE_SIZE, 0, false},
                              {offsetof(block_q4_K, qs), QK_K / 2, 0, false}}};
    static const layout q5_K{sizeof(block_q5_K), 5,
                             {{offsetof(block_q5_K, d), 2, 0, false},
                              {offsetof(block_q5_K, dmin), 2, 0, false},
                              {offsetof(block_q5_K, scales), K_SCALE_SIZE, 0, false},
                              {offsetof(block_q5_K, qh), QK_K / 8, 0, false},
                              {offsetof(block_q5_K, qs), QK_K / 2, 0, false}}};
    static const layout q6_K{sizeof(block_q6_K), 4,
                             {{offsetof(block_q6_K, scales), QK_K / 16, 0, true},
                              {offsetof(block_q6_K, ql), QK_K / 2, 0, false},
                              {offsetof(block_q6_K, qh), QK_K / 4, 0, false},
                              {offsetof(block_q6_K, d), 2, 0, false, true}}};
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

// Where byte k of dword j of a field's row r sits in its part of the record.
inline int stored_at(const field &f, int r, int j, int k) {
    constexpr int pair_order[4] = {0, 2, 1, 3};
    return 64 * j + 4 * r + (f.pair_order ? pair_order[k] : k);
}

// Where field i of block b starts in a group of nb blocks.
size_t field_at(const layout &l, int i, int64_t b, int64_t nb) {
    size_t main = 0, side = 0, before_main = 0, before_side = 0;
    for (int j = 0; j < l.n_fields; j++) {
        const size_t bytes = (size_t)kRowBlock * l.f[j].bytes;
        if (j < i) (l.f[j].side ? before_side : before_main) += bytes;
        (l.f[j].side ? side : main) += bytes;
    }
    return l.f[i].side ? nb * main + b * side + before_side : b * main + before_main;
}

// Row r's plain block b (bytes `blk`) into its group, and back.
void to_group(const layout &l, const uint8_t *blk, int r, int64_t b, int64_t nb, uint8_t *group) {
    for (int i = 0; i < l.n_fields; i++) {
        const field &f = l.f[i];
        const uint8_t *in = blk + f.offset;
        uint8_t *o = group + field_at(l, i, b, nb);
        if (f.bytes == 2) std::memcpy(o + 2 * r, in, 2);
        else
            for (int j = 0; j < f.bytes / 4; j++)
                for (int k = 0; k < 4; k++) o[stored_at(f, r, j, k)] = (uint8_t)(in[4 * j + k] ^ f.flip);
    }
}

void from_group(const layout &l, const uint8_t *group, int r, int64_t b, int64_t nb, uint8_t *blk) {
    for (int i = 0; i < l.n_fields; i++) {
        const field &f = l.f[i];
        uint8_t *out = blk + f.offset;
        const uint8_t *o = group + field_at(l, i, b, nb);
        if (f.bytes == 2) std::memcpy(out, o + 2 * r, 2);
        else
            for (int j = 0; j < f.bytes / 4; j++)
                for (int k = 0; k < 4; k++) out[4 * j + k] = (uint8_t)(o[stored_at(f, r, j, k)] ^ f.flip);
    }
}

} // namespace

bool packable(int type) { return layout_of(type) != nullptr; }

bool pack_pays(int type) {
    if (!packable(type)) return false;
    switch (isa_active()) {
    case HG_ISA_AVX512: return kernels_avx512().vec_dot_rows_packed[type] != nullptr;
    case HG_ISA_AVX2: return kernels_avx2().vec_dot_rows_packed[type] != nullptr;
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
            for (int r = 0; r < kRowBlock; r++)
                to_group(l, s + (g + r) * w_row + b * bb, r, b, nb, d + g * w_row);
    if (r1 > whole) {
        const int64_t from = r0 > whole ? r0 : whole;
        std::memcpy(d + from * w_row, s + from * w_row, (size_t)(r1 - from) * w_row);
    }
}

void unpack_block(int type, const void *group, int64_t nb, int r, int64_t b, void *block) {
    const layout &l = layout_or_fail(type);
    from_group(l, static_cast<const uint8_t *>(group), r, b, nb, static_cast<uint8_t *>(block));
}

} // namespace hg
