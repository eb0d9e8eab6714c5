#include "ops/convert.h"

#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "quant/quant.h"

namespace hg {

void convert_rows(ThreadPool &pool, int src_type, const void *src, int dst_type, void *dst, int64_t n_rows,
                  int64_t row_len) {
    const type_info *s = type_traits(src_type), *d = type_traits(dst_type);
    if (!s || !s->to_float) fail(std::string("convert: cannot read type ") + (s ? s->name : std::to_string(src_type)));
    if (!d || !d->from_float_ref)
        fail(std::string("convert: cannot write type ") + (d ? d->name : std::to_string(dst_type)));
    if (n_rows < 0 || row_len <= 0) fail("convert: empty shape");
    const size_t src_row = row_bytes(src_type, row_len), dst_row = row_bytes(dst_type, row_len);
    const uint8_t *in = static_cast<const uint8_t *>(src);
    uint8_t *out = static_cast<uint8_t *>(dst);
    if (src_type == dst_type) {
        std::memcpy(out, in, src_row * n_rows);
        return;
    }
    pool.run([&](int ith, int nth) {
        int64_t r0, r1;
        split_range(n_rows, ith, nth, r0, r1);
        std::vector<float> row(row_len);
        for (int64_t r = r0; r < r1; r++) {
            s->to_float(in + r * src_row, row.data(), row_len);
            d->from_float_ref(row.data(), out + r * dst_row, row_len);
        }
    });
}

} // namespace hg
