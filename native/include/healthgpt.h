/* healthgpt engine: the C API.
 *
 * Everything the N-API addon (src/) or any other binding may call. No Node headers, no C++
 * types: plain C so the engine builds, tests and links on its own.
 *
 * Errors: functions that can fail return NULL or a negative status and leave a message for
 * the calling thread in hg_last_error(). No function aborts the process on bad input.
 */
#ifndef HEALTHGPT_H
#define HEALTHGPT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The message of the last failed call on this thread ("" when none). */
const char *hg_last_error(void);

/* ---- tensor types: the ggml ids, so GGUF files from llama.cpp load as they are ---- */
typedef enum hg_type {
    HG_TYPE_F32 = 0,
    HG_TYPE_F16 = 1,
    HG_TYPE_Q4_0 = 2,
    HG_TYPE_Q4_1 = 3,
    HG_TYPE_Q5_0 = 6,
    HG_TYPE_Q5_1 = 7,
    HG_TYPE_Q8_0 = 8,
    HG_TYPE_Q8_1 = 9,
    HG_TYPE_Q2_K = 10,
    HG_TYPE_Q3_K = 11,
    HG_TYPE_Q4_K = 12,
    HG_TYPE_Q5_K = 13,
    HG_TYPE_Q6_K = 14,
    HG_TYPE_Q8_K = 15,
    HG_TYPE_IQ2_XXS = 16,
    HG_TYPE_IQ2_XS = 17,
    HG_TYPE_IQ3_XXS = 18,
    HG_TYPE_IQ1_S = 19,
    HG_TYPE_IQ4_NL = 20,
    HG_TYPE_IQ3_S = 21,
    HG_TYPE_IQ2_S = 22,
    HG_TYPE_IQ4_XS = 23,
    HG_TYPE_I8 = 24,
    HG_TYPE_I16 = 25,
    HG_TYPE_I32 = 26,
    HG_TYPE_I64 = 27,
    HG_TYPE_F64 = 28,
    HG_TYPE_IQ1_M = 29,
    HG_TYPE_BF16 = 30,
    HG_TYPE_TQ1_0 = 34,
    HG_TYPE_TQ2_0 = 35,
    HG_TYPE_MXFP4 = 39,
    HG_TYPE_NVFP4 = 40,
    HG_TYPE_Q1_0 = 41,
    HG_TYPE_COUNT = 42
} hg_type;

/* Name ("q4_K"), or NULL for an id no file format defines. */
const char *hg_type_name(int type);
/* Elements per block and bytes per block; 0 for an unknown id. */
int64_t hg_type_block_size(int type);
size_t hg_type_block_bytes(int type);
/* 1 when this engine can dequantize / quantize / multiply with this type. */
int hg_type_supported(int type);

/* Reference (scalar) conversions of one row of n values (n a multiple of the block size).
 * Return 0, or -1 with hg_last_error() set. */
int hg_quantize_row(int type, const float *src, void *dst, int64_t n);
int hg_dequantize_row(int type, const void *src, float *dst, int64_t n);

/* ---- CPU features and kernel choice ---- */
typedef enum hg_isa { HG_ISA_SCALAR = 0, HG_ISA_AVX2 = 1, HG_ISA_AVX512 = 2 } hg_isa;
/* Best level this processor supports, the level in use, and a forced level for tests and
 * benchmarks (-1 returns to automatic). Forcing a level the CPU lacks fails. */
int hg_isa_best(void);
int hg_isa_active(void);
int hg_isa_force(int isa);
/* Space-separated feature names this process detected ("avx2 fma f16c avx512f ..."). */
const char *hg_cpu_features(void);

/* ---- compute backends ----
 * Number of CUDA devices this process can use: 0 when the engine was built without the CUDA
 * backend, or when there is no driver or GPU (never an error). */
int hg_cuda_devices(void);

/* ---- thread pool ---- */
typedef struct hg_pool hg_pool;
/* n_threads <= 0 means one per core. */
hg_pool *hg_pool_create(int n_threads);
void hg_pool_free(hg_pool *pool);
int hg_pool_size(const hg_pool *pool);

/* ---- matrix multiply: Y = W X ----
 * W: rows x k in `type` (row-major, one row = k values), X: n columns of k floats each
 * (contiguous, column after column), Y: n columns of `rows` floats. Activations are
 * quantized on the fly to the type the kernel pairs with W. Returns 0 or -1. */
int hg_matmul(hg_pool *pool, int type, const void *w, int64_t rows, int64_t k,
              const float *x, int64_t n, float *y);
/* Same product computed by the scalar reference, one thread: for tests. */
int hg_matmul_ref(int type, const void *w, int64_t rows, int64_t k, const float *x,
                  int64_t n, float *y);

/* Converts n_rows rows of row_len values from src_type to dst_type (dequantize to f32, then
 * the reference quantizer), rows shared among the pool's threads. Returns 0 or -1. */
int hg_convert_rows(hg_pool *pool, int src_type, const void *src, int dst_type, void *dst,
                    int64_t n_rows, int64_t row_len);

/* Measured read bandwidth of this machine in GB/s (1e9 bytes/s): the median of `reps`
 * passes over a buffer of `bytes` bytes summed by the pool's threads. Returns < 0 on error. */
double hg_read_bandwidth(hg_pool *pool, size_t bytes, int reps);

/* ---- GGUF files (mmap'ed, every extent checked at open) ---- */
typedef struct hg_gguf hg_gguf;

typedef enum hg_gguf_value_type {
    HG_GGUF_UINT8 = 0,
    HG_GGUF_INT8 = 1,
    HG_GGUF_UINT16 = 2,
    HG_GGUF_INT16 = 3,
    HG_GGUF_UINT32 = 4,
    HG_GGUF_INT32 = 5,
    HG_GGUF_FLOAT32 = 6,
    HG_GGUF_BOOL = 7,
    HG_GGUF_STRING = 8,
    HG_GGUF_ARRAY = 9,
    HG_GGUF_UINT64 = 10,
    HG_GGUF_INT64 = 11,
    HG_GGUF_FLOAT64 = 12
} hg_gguf_value_type;

/* Open and validate; NULL with hg_last_error() naming the file and the fault. */
hg_gguf *hg_gguf_open(const char *path);
void hg_gguf_close(hg_gguf *f);

uint32_t hg_gguf_version(const hg_gguf *f);
uint64_t hg_gguf_alignment(const hg_gguf *f);
/* File offset of the tensor data section; for a file without tensors it is the aligned end
 * of the metadata and may lie past the end of the file. */
uint64_t hg_gguf_data_offset(const hg_gguf *f);
uint64_t hg_gguf_file_size(const hg_gguf *f);

/* Getters fail with hg_last_error() set (a successful call does not clear it): those whose
 * answer may be 0 (counts, types, dims) return -1, the others 0 or NULL. Getters are strict
 * about the value's kind: hg_gguf_kv_i64 on a UINT32 fails.
 *
 * Metadata: index i in [0, n_kv). Scalars read through the widest getter of their kind. */
int64_t hg_gguf_n_kv(const hg_gguf *f);
int64_t hg_gguf_find_key(const hg_gguf *f, const char *key); /* -1 when absent */
const char *hg_gguf_kv_key(const hg_gguf *f, int64_t i);
int hg_gguf_kv_type(const hg_gguf *f, int64_t i);
uint64_t hg_gguf_kv_u64(const hg_gguf *f, int64_t i); /* UINT8..UINT64, BOOL */
int64_t hg_gguf_kv_i64(const hg_gguf *f, int64_t i);  /* INT8..INT64 */
double hg_gguf_kv_f64(const hg_gguf *f, int64_t i);   /* FLOAT32, FLOAT64 */
/* STRING: bytes (not NUL-terminated inside the file: use the length). */
const char *hg_gguf_kv_str(const hg_gguf *f, int64_t i, uint64_t *len);
/* ARRAY: element type and count; elements by index with the getters below. */
int hg_gguf_kv_arr_type(const hg_gguf *f, int64_t i);
uint64_t hg_gguf_kv_arr_n(const hg_gguf *f, int64_t i);
uint64_t hg_gguf_kv_arr_u64(const hg_gguf *f, int64_t i, uint64_t j);
int64_t hg_gguf_kv_arr_i64(const hg_gguf *f, int64_t i, uint64_t j);
double hg_gguf_kv_arr_f64(const hg_gguf *f, int64_t i, uint64_t j);
const char *hg_gguf_kv_arr_str(const hg_gguf *f, int64_t i, uint64_t j, uint64_t *len);
/* Raw pointer to the array's elements when they are fixed-size (not strings), else NULL.
 * It may be unaligned: copy with memcpy. */
const void *hg_gguf_kv_arr_data(const hg_gguf *f, int64_t i);

/* Tensors: index t in [0, n_tensors). Dims are ggml order (ne[0] = row length); dims from
 * n_dims up to 3 read as 1, as in ggml. */
int64_t hg_gguf_n_tensors(const hg_gguf *f);
int64_t hg_gguf_find_tensor(const hg_gguf *f, const char *name); /* -1 when absent */
const char *hg_gguf_tensor_name(const hg_gguf *f, int64_t t);
int hg_gguf_tensor_n_dims(const hg_gguf *f, int64_t t);
int64_t hg_gguf_tensor_dim(const hg_gguf *f, int64_t t, int d);
int hg_gguf_tensor_type(const hg_gguf *f, int64_t t);
uint64_t hg_gguf_tensor_offset(const hg_gguf *f, int64_t t); /* relative to the data section */
uint64_t hg_gguf_tensor_bytes(const hg_gguf *f, int64_t t);
const void *hg_gguf_tensor_data(const hg_gguf *f, int64_t t);

/* ---- the language model (Phi-3 / Phi-4, GGUF architecture "phi3") ----
 * A model owns its weights (the mapped file), its KV cache and its thread pool. Calls on one
 * model must not overlap; different models may run at the same time. */
typedef struct hg_model hg_model;

typedef struct hg_model_params {
    int n_ctx;     /* positions the KV cache holds; <= 0: the file's context_length */
    int n_threads; /* <= 0: one per core */
    int kv_type;   /* HG_TYPE_F16 (default) or HG_TYPE_F32 */
} hg_model_params;

hg_model_params hg_model_default_params(void);

/* Opens a GGUF file and checks every hyper-parameter and tensor; NULL with hg_last_error()
 * naming the file and the key or tensor at fault. params NULL: the defaults. */
hg_model *hg_model_load(const char *path, const hg_model_params *params);
void hg_model_free(hg_model *model);

int hg_model_n_vocab(const hg_model *model); /* -1 on a NULL model */
int hg_model_n_embd(const hg_model *model);
int hg_model_n_ctx(const hg_model *model);  /* the KV cache's size */
int hg_model_n_past(const hg_model *model); /* positions the KV cache holds now */

/* Runs n tokens at positions start_pos .. start_pos + n - 1; start_pos must equal
 * hg_model_n_past() (use hg_model_kv_clear to go back). One path for prefill (n > 1) and
 * decode (n = 1). logits: n_vocab floats for the last token, or n * n_vocab (token after
 * token) when all_logits; NULL to only fill the cache. Returns 0, or -1 with hg_last_error()
 * (a token outside the vocabulary, a sequence past n_ctx); on failure the cache is as before. */
int hg_model_eval(hg_model *model, const int32_t *tokens, int n, int start_pos, float *logits,
                  int all_logits);

/* Forgets positions from_pos and later, keeping the prefix before it for reuse; 0 empties
 * the cache. A from_pos past n_past changes nothing. Returns 0 or -1. */
int hg_model_kv_clear(hg_model *model, int from_pos);

/* ---- H-LoRA plugins (MODEL.md "H-LoRA"; the file format: README.md, "H-LoRA plugin files") ----
 * A plugin holds one task's adapters (router, lora_A, lora_B for every linear of the language
 * model) in a GGUF file of its own, checked against the base model at load. A model may hold
 * several; each eval names the plugin it runs with (hard routing): switching costs nothing,
 * the base weights are shared, and plugin -1 runs the base model unchanged. The KV cache does
 * not record which plugin filled it: clear it (hg_model_kv_clear) before continuing a prefix
 * under another plugin. */
typedef struct hg_plugin_params {
    int adapter_type; /* -1 (default): as the file holds them; HG_TYPE_F32, HG_TYPE_F16,
                         HG_TYPE_BF16 or HG_TYPE_Q8_0: re-encoded at load (Q8_0 reads about
                         half the bytes of F16 per token) */
    int fused;        /* 1 (default): router and lora_A in one pass; 0: apart (benchmarks) */
} hg_plugin_params;

hg_plugin_params hg_plugin_default_params(void);

/* Loads a plugin file for this model; returns its id (0, 1, ...) or -1 with hg_last_error()
 * naming the file and the key or tensor at fault. params NULL: the defaults. Must not overlap
 * an eval on the same model. */
int hg_model_load_plugin(hg_model *model, const char *path, const hg_plugin_params *params);
int hg_model_n_plugins(const hg_model *model);
/* The plugin's name from its file (hlora.plugin), valid while the model lives; NULL on error. */
const char *hg_model_plugin_name(const hg_model *model, int plugin);

/* hg_model_eval with a plugin: -1 for none, else an id from hg_model_load_plugin. */
int hg_model_eval_plugin(hg_model *model, int plugin, const int32_t *tokens, int n, int start_pos,
                         float *logits, int all_logits);

/* hg_model_eval_plugin where some positions take a vector in place of a token: wherever
 * tokens[i] is -1, the next row of embd (hg_model_n_embd() floats; rows in the order of the
 * -1s) enters the model as that position's embedding, e.g. projected image features.
 * embd may be NULL when no token is -1. */
int hg_model_eval_embd(hg_model *model, int plugin, const int32_t *tokens, const float *embd, int n,
                       int start_pos, float *logits, int all_logits);

#ifdef __cplusplus
}
#endif

#endif /* HEALTHGPT_H */
