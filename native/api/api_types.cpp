// C API: tensor types, reference conversions, CPU features.
#include <string>

#include "core/cpu.h"
#include "core/error.h"
#include "healthgpt.h"
#include "quant/quant.h"

using namespace hg;

extern "C" {

const char *hg_type_name(int type) {
    const type_info *t = type_traits(type);
    return t ? t->name : nullptr;
}

int64_t hg_type_block_size(int type) {
    const type_info *t = type_traits(type);
    return t ? t->block_size : 0;
}

size_t hg_type_block_bytes(int type) {
    const type_info *t = type_traits(type);
    return t ? t->block_bytes : 0;
}

int hg_type_supported(int type) {
    const type_info *t = type_traits(type);
    return t && t->supported ? 1 : 0;
}

static const type_info &convertible(int type, int64_t n, bool to_float) {
    const type_info *t = type_traits(type);
    if (!t) fail("unknown tensor type id " + std::to_string(type));
    if (to_float ? !t->to_float : !t->from_float_ref)
        fail(HG_ERR_UNSUPPORTED, std::string("type ") + t->name + " cannot be " +
                                     (to_float ? "dequantized" : "quantized") + " by this engine");
    row_bytes(type, n); // checks n against the block size
    return *t;
}

int hg_quantize_row(int type, const float *src, void *dst, int64_t n) {
    return guarded(-1, [&] {
        convertible(type, n, false).from_float_ref(src, dst, n);
        return 0;
    });
}

int hg_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    return guarded(-1, [&] {
        convertible(type, n, true).to_float(src, dst, n);
        return 0;
    });
}

int hg_isa_best(void) { return isa_best(); }

int hg_isa_active(void) { return isa_active(); }

int hg_isa_force(int isa) {
    return guarded(-1, [&] {
        isa_force(isa);
        return 0;
    });
}

const char *hg_cpu_features(void) {
    static const std::string s = cpu_feature_string();
    return s.c_str();
}

} // extern "C"
