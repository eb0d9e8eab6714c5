// What the processor can do, read once with cpuid, and which kernel level runs.
#pragma once

#include <string>

namespace hg {

struct cpu_features {
    bool avx2 = false, fma = false, f16c = false;
    bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
    bool avx512vnni = false, avx512bf16 = false, avx_vnni = false;
};

const cpu_features &cpu();
std::string cpu_feature_string();

// Highest kernel level this process may run: HG_ISA_SCALAR, _AVX2 or _AVX512, the processor's
// best lowered by HEALTHGPT_ISA=scalar|avx2 (so tests and users see exactly what an older
// processor would: nothing, not even a forced level, runs above it).
int isa_best();

} // namespace hg
