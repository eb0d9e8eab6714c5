// The type table: one entry per ggml type id, sizes as GGUF files use them, and the
// reference conversions of the types this engine computes with.
#include <string>

#include "core/error.h"
#include "quant/quant.h"
#include "quant/quant_ref.h"

namespace hg {

namespace {

struct table {
    type_info t[HG_TYPE_COUNT] = {};
    bool known[HG_TYPE_COUNT] = {};

    // a type the engine only has to recognise (sizes for GGUF offsets, a name for errors)
    void def(hg_type id, const char *name, int64_t block, size_t bytes, hg_type dot) {
        t[id] = type_info{name, block, bytes, false, dot, nullptr, nullptr};
        known[id] = true;
    }
    void def(hg_type id, const char *name, int64_t block, size_t bytes, hg_type dot, to_float_fn to,
             from_float_fn from) {
        t[id] = type_info{name, block, bytes, true, dot, to, from};
        known[id] = true;
    }

    table() {
        // Supported: vec_dot_type pairs as in llama.cpp's CPU backend.
        def(HG_TYPE_F32, "f32", 1, 4, HG_TYPE_F32, dequantize_row_f32_ref, quantize_row_f32_ref);
        def(HG_TYPE_F16, "f16", 1, 2, HG_TYPE_F32, dequantize_row_f16_ref, quantize_row_f16_ref);
        def(HG_TYPE_BF16, "bf16", 1, 2, HG_TYPE_BF16, dequantize_row_bf16_ref, quantize_row_bf16_ref);
        def(HG_TYPE_Q4_0, "q4_0", QK4_0, sizeof(block_q4_0), HG_TYPE_Q8_0, dequantize_row_q4_0_ref,
            quantize_row_q4_0_ref);
        def(HG_TYPE_Q4_1, "q4_1", QK4_1, sizeof(block_q4_1), HG_TYPE_Q8_1, dequantize_row_q4_1_ref,
            quantize_row_q4_1_ref);
        def(HG_TYPE_Q5_0, "q5_0", QK5_0, sizeof(block_q5_0), HG_TYPE_Q8_0, dequantize_row_q5_0_ref,
            quantize_row_q5_0_ref);
        def(HG_TYPE_Q5_1, "q5_1", QK5_1, sizeof(block_q5_1), HG_TYPE_Q8_1, dequantize_row_q5_1_ref,
            quantize_row_q5_1_ref);
        def(HG_TYPE_Q8_0, "q8_0", QK8_0, sizeof(block_q8_0), HG_TYPE_Q8_0, dequantize_row_q8_0_ref,
            quantize_row_q8_0_ref);
        def(HG_TYPE_Q4_K, "q4_K", QK_K, sizeof(block_q4_K), HG_TYPE_Q8_K, dequantize_row_q4_K_ref,
            quantize_row_q4_K_ref);
        def(HG_TYPE_Q5_K, "q5_K", QK_K, sizeof(block_q5_K), HG_TYPE_Q8_K, dequantize_row_q5_K_ref,
            quantize_row_q5_K_ref);
        def(HG_TYPE_Q6_K, "q6_K", QK_K, sizeof(block_q6_K), HG_TYPE_Q8_K, dequantize_row_q6_K_ref,
            quantize_row_q6_K_ref);
        // Activation-only: quantized on the fly, never a weight, so no dot kernel of their own.
        // q8_1 is ggml's 36-byte struct (gguf-py's table still says 40).
        def(HG_TYPE_Q8_1, "q8_1", QK8_1, sizeof(block_q8_1), HG_TYPE_Q8_1, dequantize_row_q8_1_ref,
            quantize_row_q8_1_ref);
        def(HG_TYPE_Q8_K, "q8_K", QK_K, sizeof(block_q8_K), HG_TYPE_Q8_K, dequantize_row_q8_K_ref,
            quantize_row_q8_K_ref);

        // Known but not computed with: sizes from gguf-py 0.19.0's GGML_QUANT_SIZES.
        def(HG_TYPE_Q2_K, "q2_K", 256, 84, HG_TYPE_Q8_K);
        def(HG_TYPE_Q3_K, "q3_K", 256, 110, HG_TYPE_Q8_K);
        def(HG_TYPE_IQ2_XXS, "iq2_xxs", 256, 66, HG_TYPE_Q8_K);
        def(HG_TYPE_IQ2_XS, "iq2_xs", 256, 74, HG_TYPE_Q8_K);
        def(HG_TYPE_IQ3_XXS, "iq3_xxs", 256, 98, HG_TYPE_Q8_K);
        def(HG_TYPE_IQ1_S, "iq1_s", 256, 50, HG_TYPE_Q8_K);
        def(HG_TYPE_IQ4_NL, "iq4_nl", 32, 18, HG_TYPE_Q8_0);
        def(HG_TYPE_IQ3_S, "iq3_s", 256, 110, HG_TYPE_Q8_K);
        def(HG_TYPE_IQ2_S, "iq2_s", 256, 82, HG_TYPE_Q8_K);
        def(HG_TYPE_IQ4_XS, "iq4_xs", 256, 136, HG_TYPE_Q8_K);
        def(HG_TYPE_I8, "i8", 1, 1, HG_TYPE_I8);
        def(HG_TYPE_I16, "i16", 1, 2, HG_TYPE_I16);
        def(HG_TYPE_I32, "i32", 1, 4, HG_TYPE_I32);
        def(HG_TYPE_I64, "i64", 1, 8, HG_TYPE_I64);
        def(HG_TYPE_F64, "f64", 1, 8, HG_TYPE_F64);
        def(HG_TYPE_IQ1_M, "iq1_m", 256, 56, HG_TYPE_Q8_K);
        def(HG_TYPE_TQ1_0, "tq1_0", 256, 54, HG_TYPE_Q8_K);
        def(HG_TYPE_TQ2_0, "tq2_0", 256, 66, HG_TYPE_Q8_K);
        def(HG_TYPE_MXFP4, "mxfp4", 32, 17, HG_TYPE_Q8_0);
        def(HG_TYPE_NVFP4, "nvfp4", 64, 36, HG_TYPE_Q8_0);
        def(HG_TYPE_Q1_0, "q1_0", 128, 18, HG_TYPE_Q8_0);
        // 4, 5 (q4_2, q4_3) and 31..33, 36..38 (repacked layouts) were retired from the
        // format: they stay unknown.
    }
};

const table &the_table() {
    static const table t;
    return t;
}

} // namespace

const type_info *type_traits(int type) {
    if (type < 0 || type >= HG_TYPE_COUNT) return nullptr;
    const table &t = the_table();
    return t.known[type] ? &t.t[type] : nullptr;
}

size_t row_bytes(int type, int64_t n) {
    const type_info *ti = type_traits(type);
    if (!ti) fail("unknown tensor type id " + std::to_string(type) + " (row of " + std::to_string(n) + " elements)");
    if (n < 0 || n % ti->block_size != 0)
        fail(std::string("row of ") + std::to_string(n) + " elements is not a whole number of " + ti->name +
             " blocks (" + std::to_string(ti->block_size) + " elements each)");
    return (size_t)(n / ti->block_size) * ti->block_bytes;
}

} // namespace hg
