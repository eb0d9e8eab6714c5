// Picks the kernel table at run time: the best level the CPU has, unless HEALTHGPT_ISA
// (scalar | avx2 | avx512) or hg_isa_force() says otherwise. Entries a level leaves null are
// taken from the level below, so every supported type always has a kernel.
#include <atomic>
#include <initializer_list>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/cpu.h"
#include "core/error.h"
#include "quant/quant.h"

namespace hg {

static kernel_table merged(int isa) {
    kernel_table t = kernels_scalar();
    auto overlay = [&t](const kernel_table &k) {
        for (int i = 0; i < HG_TYPE_COUNT; i++) {
            if (k.vec_dot[i]) t.vec_dot[i] = k.vec_dot[i];
            if (k.from_float[i]) t.from_float[i] = k.from_float[i];
            if (k.weighted_rows[i]) t.weighted_rows[i] = k.weighted_rows[i];
            if (k.vec_dot_rows_packed[i]) {
                t.vec_dot_rows_packed[i] = k.vec_dot_rows_packed[i];
                t.vec_dot_rows2_packed[i] = k.vec_dot_rows2_packed[i]; // paired with its level's
            }
        }
    };
    if (isa >= HG_ISA_AVX2) overlay(kernels_avx2());
    if (isa >= HG_ISA_AVX512) overlay(kernels_avx512());
    return t;
}

static const kernel_table &table_for(int isa) {
    static const kernel_table tables[3] = {merged(HG_ISA_SCALAR), merged(HG_ISA_AVX2), merged(HG_ISA_AVX512)};
    return tables[isa];
}

// isa_best() already holds HEALTHGPT_ISA's cap
static std::atomic<int> &active_isa() {
    static std::atomic<int> isa{isa_best()};
    return isa;
}

const kernel_table *kernel_level(const kernel_table &kt, int type) {
    if (type < 0 || type >= HG_TYPE_COUNT) return nullptr;
    const vec_dot_fn dot = kt.vec_dot[type];
    for (const kernel_table *l : {&kernels_avx512(), &kernels_avx2(), &kernels_scalar()})
        if (l->vec_dot[type] && l->vec_dot[type] == dot) return l;
    return nullptr;
}

const kernel_table &kernels_active() { return table_for(active_isa().load(std::memory_order_relaxed)); }

int isa_active() { return active_isa().load(); }

void isa_force(int isa) {
    if (isa < 0) {
        active_isa().store(isa_best());
        return;
    }
    if (isa > HG_ISA_AVX512) fail("unknown kernel level " + std::to_string(isa));
    if (isa > isa_best())
        fail("kernel level " + std::to_string(isa) + " is above this processor's (or HEALTHGPT_ISA's) " +
             std::to_string(isa_best()));
    active_isa().store(isa);
}

} // namespace hg
