#include "core/cpu.h"

#include <cstdlib>
#include <cstring>

#include "healthgpt.h"

namespace hg {

static cpu_features detect() {
    cpu_features f;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    // __builtin_cpu_supports also checks that the OS saves the wide registers (xgetbv).
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.f16c = __builtin_cpu_supports("f16c");
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
    f.avx512vl = __builtin_cpu_supports("avx512vl");
    f.avx512dq = __builtin_cpu_supports("avx512dq");
    f.avx512vnni = __builtin_cpu_supports("avx512vnni");
    f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
    f.avx_vnni = __builtin_cpu_supports("avxvnni");
#endif
    return f;
}

const cpu_features &cpu() {
    static const cpu_features f = detect();
    return f;
}

std::string cpu_feature_string() {
    const cpu_features &f = cpu();
    std::string s;
    auto add = [&](bool on, const char *name) {
        if (!on) return;
        if (!s.empty()) s += ' ';
        s += name;
    };
    add(f.avx2, "avx2");
    add(f.fma, "fma");
    add(f.f16c, "f16c");
    add(f.avx_vnni, "avx_vnni");
    add(f.avx512f, "avx512f");
    add(f.avx512bw, "avx512bw");
    add(f.avx512vl, "avx512vl");
    add(f.avx512dq, "avx512dq");
    add(f.avx512vnni, "avx512vnni");
    add(f.avx512bf16, "avx512bf16");
    return s;
}

static int isa_of_processor() {
    const cpu_features &f = cpu();
    const bool avx2 = f.avx2 && f.fma && f.f16c;
    // quant_avx512.cpp is compiled with all of these, so the level needs all of them.
    if (avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni && f.avx512bf16)
        return HG_ISA_AVX512;
    if (avx2) return HG_ISA_AVX2;
    return HG_ISA_SCALAR;
}

int isa_best() {
    static const int best = [] {
        const int have = isa_of_processor();
        const char *e = std::getenv("HEALTHGPT_ISA");
        int cap = have;
        if (e && !std::strcmp(e, "scalar"))
            cap = HG_ISA_SCALAR;
        else if (e && !std::strcmp(e, "avx2"))
            cap = HG_ISA_AVX2;
        return cap < have ? cap : have; // never a level the processor lacks
    }();
    return best;
}

} // namespace hg
