#include "models/packed_weights.h"

#include <algorithm>
#include <new>

#include "core/error.h"
#include "quant/quant.h"
#include "quant/repack.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace hg {

namespace {
constexpr size_t kAlign = size_t(2) << 20;
} // namespace

void PackedWeights::Free::operator()(uint8_t *p) const { ::operator delete(p, std::align_val_t(kAlign)); }

std::vector<const void *> PackedWeights::pack(const GGUFFile &f, const std::vector<const GGUFTensor *> &tensors,
                                              ThreadPool *pool, bool with_f16) {
    if (buf_) fail("PackedWeights::pack: already packed");
    std::vector<const void *> out(tensors.size(), nullptr);
    std::vector<size_t> at(tensors.size(), SIZE_MAX);
    size_t total = 0;
    for (size_t i = 0; i < tensors.size(); i++) {
        const GGUFTensor &t = *tensors[i];
        if (!pack_pays(t.type) || (t.type == HG_TYPE_F16 && !with_f16) || t.ne[1] < kRowBlock) continue;
        at[i] = total;
        total += (t.bytes + 63) / 64 * 64;
    }
    if (total == 0) return out;
    uint8_t *buf = static_cast<uint8_t *>(::operator new(total, std::align_val_t(kAlign), std::nothrow));
    if (!buf) return out;
    buf_.reset(buf);
#ifdef MADV_HUGEPAGE
    madvise(buf, total, MADV_HUGEPAGE); // a hint where transparent huge pages are opt-in
#endif
    for (size_t i = 0; i < tensors.size(); i++) {
        if (at[i] == SIZE_MAX) continue;
        const GGUFTensor &t = *tensors[i];
        const int64_t rows = t.ne[1], k = t.ne[0], groups = (rows + kRowBlock - 1) / kRowBlock;
        auto run = [&](int ith, int nth) {
            int64_t g0, g1;
            split_range(groups, ith, nth, g0, g1);
            if (g0 < g1)
                pack_rows(t.type, t.data, rows, k, g0 * kRowBlock, std::min(rows, g1 * kRowBlock), buf + at[i]);
        };
        if (pool)
            pool->run(run);
        else
            run(0, 1);
        out[i] = buf + at[i];
        f.release(t);
    }
    return out;
}

} // namespace hg
