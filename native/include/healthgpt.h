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

/* Why this thread's last failed call failed (hg_last_error() says it in words). */
typedef enum hg_status {
    HG_OK = 0,
    HG_ERR_INVALID_ARG = -1,  /* an argument out of range, or calls out of order */
    HG_ERR_FILE = -2,         /* a file that cannot be read, or is not what it claims to be */
    HG_ERR_NO_MEMORY = -3,    /* an allocation failed */
    HG_ERR_CONTEXT_FULL = -4, /* positions past the KV cache's size */
    HG_ERR_UNSUPPORTED = -5   /* a tensor type or a model feature this engine does not compute */
} hg_status;
int hg_last_status(void);

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
/* Best level this process may use (the processor's, lowered by HEALTHGPT_ISA=scalar|avx2),
 * the level in use, and a forced level for tests and benchmarks (-1 returns to automatic).
 * Forcing a level above the best fails. */
int hg_isa_best(void);
int hg_isa_active(void);
int hg_isa_force(int isa);
/* Space-separated feature names this process detected ("avx2 fma f16c avx512f ..."). */
const char *hg_cpu_features(void);

/* ---- compute backends ----
 * Number of CUDA devices this process can use: 0 when the engine was built without the CUDA
 * backend, or when there is no driver or GPU (never an error). */
int hg_cuda_devices(void);

/* Where an engine object runs: the `gpu` of hg_model_params, hg_clip_params and
 * hg_vqgan_params, each object saying where it landed through its *_backend() accessor. */
typedef enum hg_gpu {
    HG_GPU_OFF = 0,  /* the CPU */
    HG_GPU_AUTO = 1, /* CUDA when the engine has it, a device is present and the object fits;
                        else the CPU, with the reason in *_backend() */
    HG_GPU_CUDA = 2  /* CUDA, or a load error saying why not */
} hg_gpu;

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
int hg_matmul(hg_pool *pool, int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t n, float *y);
/* Same product computed by the scalar reference, one thread: for tests. */
int hg_matmul_ref(int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t n, float *y);

/* Converts n_rows rows of row_len values from src_type to dst_type (dequantize to f32, then
 * the reference quantizer), rows shared among the pool's threads. Returns 0 or -1. */
int hg_convert_rows(hg_pool *pool, int src_type, const void *src, int dst_type, void *dst, int64_t n_rows,
                    int64_t row_len);

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
    int n_ctx;      /* positions the KV cache holds; <= 0: the file's context_length */
    int n_threads;  /* <= 0: one per core */
    int kv_type;    /* HG_TYPE_F16 (default), HG_TYPE_F32 or HG_TYPE_Q8_0 (half of f16's memory; CPU only) */
    int repack;     /* 1 (default): q4_0 linears are regrouped at load for the kernels (faster;
                      they move from the file's mapping to the model's memory); 0: all read
                      in place from the mapping */
    int gpu;        /* hg_gpu: HG_GPU_OFF (default), HG_GPU_AUTO or HG_GPU_CUDA. On CUDA the
                      weights are uploaded once at load in their file types, the KV cache
                      lives in device memory, and only the logits come back to the host. */
    int gpu_layers; /* with a GPU: how many layers (the first ones) run there, the rest and the
                       output head on the CPU, for a card that cannot hold the model; < 0
                       (default): all; 0: none (the CPU alone) */
    int n_seq;      /* KV cache slots (sequences), each of n_ctx positions; default 1, at most
                       256. A slot's memory is committed as it is written: an untouched slot
                       costs address space only. The CUDA backend holds one sequence: with
                       n_seq > 1, HG_GPU_CUDA fails to load and HG_GPU_AUTO runs on the CPU. */
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
/* Where the forward pass runs: "cpu", "cuda: <device name> (...)", or, when gpu was
 * HG_GPU_AUTO and CUDA could not be used, "cpu (<why>)". NULL on a NULL model. */
const char *hg_model_backend(const hg_model *model);

/* Runs n tokens at positions start_pos .. start_pos + n - 1; start_pos must equal
 * hg_model_n_past() (use hg_model_kv_clear to go back). One path for prefill (n > 1) and
 * decode (n = 1). logits: n_vocab floats for the last token, or n * n_vocab (token after
 * token) when all_logits; NULL to only fill the cache. Returns 0, or -1 with hg_last_error()
 * (a token outside the vocabulary, a sequence past n_ctx); on failure the cache is as before. */
int hg_model_eval(hg_model *model, const int32_t *tokens, int n, int start_pos, float *logits, int all_logits);

/* Forgets positions from_pos and later, keeping the prefix before it for reuse; 0 empties
 * the cache. A from_pos past n_past changes nothing. Returns 0 or -1. */
int hg_model_kv_clear(hg_model *model, int from_pos);

/* ---- several sequences (hg_model_params.n_seq): continuous batching ----
 * hg_model_eval, _eval_plugin, _eval_embd, _kv_clear and _n_past act on slot 0. */
int hg_model_n_seq(const hg_model *model);                      /* -1 on a NULL model */
int hg_model_seq_n_past(const hg_model *model, int seq);        /* -1 on a bad slot */
int hg_model_seq_clear(hg_model *model, int seq, int from_pos); /* hg_model_kv_clear for slot seq */

/* One sequence's part of a batch. */
typedef struct hg_batch_seq {
    int seq;               /* slot 0 .. n_seq-1; at most once per batch */
    int plugin;            /* -1: the base model; else an id from hg_model_load_plugin */
    int start_pos;         /* must equal the slot's n_past */
    int n_tokens;          /* >= 1 */
    const int32_t *tokens; /* -1 takes the next row of embd */
    const float *embd;     /* may be NULL */
    int logits;            /* 0: none, 1: the last token's row, 2: every token's row */
    /* Greedy in the engine: when next is not NULL (logits must be 1), the row is not returned;
     * *next gets the token of its largest logit in [greedy_lo, greedy_hi), the first of equal
     * maxima, NaN never chosen, or -1 when none there is a number above -infinity; a range of
     * one token is that token. On a device the row never leaves it (4 bytes come back). */
    int greedy_lo, greedy_hi;
    int32_t *next;
} hg_batch_seq;

/* Runs every segment: the next tokens of several sequences (decode rows and prompt chunks
 * mixed), each continuing its own slot under its own plugin. One pass over the weights for
 * all rows: the base W x is shared by every row, each segment's H-LoRA adapters are its
 * plugin's. logits: n_vocab floats per row asked for, segment after segment (NULL when none
 * asks; a greedy segment's row is not among them). Greedy results are bit-identical to evaluating each segment alone (hg_model_eval_embd
 * on a model holding only that sequence). Returns 0, or -1 with hg_last_error() naming the
 * segment (a slot out of range or twice, a start_pos that is not the slot's n_past, a
 * context that would overflow, a bad token or plugin); on failure no slot's n_past changes.
 * A model on a device (CUDA) holds one sequence: there, a batch is one segment on slot 0. */
int hg_model_eval_batch(hg_model *model, const hg_batch_seq *seqs, int n_seqs, float *logits);

/* ---- the vision tower (CLIP ViT, GGUF architecture "clip": llama.cpp's mmproj layout) ----
 * A tower owns its weights (the mapped file) and its thread pool; calls on one tower must not
 * overlap. Features are hidden states of the tower with the class position dropped: n_patches
 * rows of n_embd floats (576 x 1024 for ViT-L/14-336). Hidden-state indices count from the
 * original tower (0: the pre-layernormed embeddings, i: the output of layer i); the
 * comprehension tap is hidden state -2 (clip.vision.feature_layer), the generation tap hidden
 * state 1 (clip.vision.generation_feature_layer); layers past the tap are not run. */
typedef struct hg_clip hg_clip;

typedef enum hg_clip_tap { HG_CLIP_TAP_COMPREHENSION = 0, HG_CLIP_TAP_GENERATION = 1 } hg_clip_tap;
/* The mlp2x_gelu projectors: mm.0 / mm.2 (comprehension), mm.gen.0 / mm.gen.2 (generation). */
typedef enum hg_clip_projector {
    HG_CLIP_PROJECTOR_COMPREHENSION = 0,
    HG_CLIP_PROJECTOR_GENERATION = 1
} hg_clip_projector;

typedef struct hg_clip_params {
    int n_threads; /* <= 0: one per core */
    int gpu;       /* hg_gpu: HG_GPU_OFF (default), HG_GPU_AUTO or HG_GPU_CUDA */
} hg_clip_params;

hg_clip_params hg_clip_default_params(void);

/* Opens a GGUF file and checks every hyper-parameter and tensor; NULL with hg_last_error()
 * naming the file and the key or tensor at fault. params NULL: the defaults. */
hg_clip *hg_clip_load(const char *path, const hg_clip_params *params);
void hg_clip_free(hg_clip *clip);
/* Where the tower runs: "cpu", "cuda: <device name> (...)", or "cpu (<why>)" after
 * HG_GPU_AUTO. NULL on a NULL tower. */
const char *hg_clip_backend(const hg_clip *clip);

int hg_clip_image_size(const hg_clip *clip); /* pixels per side; -1 on a NULL tower */
int hg_clip_patch_size(const hg_clip *clip);
int hg_clip_n_embd(const hg_clip *clip);
int hg_clip_n_patches(const hg_clip *clip);                    /* rows of a feature map */
int hg_clip_n_layer(const hg_clip *clip);                      /* layers the file holds */
int hg_clip_tap_layer(const hg_clip *clip, int tap);           /* hidden-state index of a tap */
int hg_clip_projector_dim(const hg_clip *clip, int projector); /* output width; 0: absent */
/* clip.vision.image_mean / image_std (3 floats each) into mean and std; 0 or -1. */
int hg_clip_image_norm(const hg_clip *clip, float *mean, float *std);

/* pixels: 3 x image_size x image_size floats, channels first, already normalised. out:
 * n_patches x n_embd floats. tap: an hg_clip_tap. Returns 0, or -1 with hg_last_error(). */
int hg_clip_encode(hg_clip *clip, const float *pixels, int tap, float *out);
/* The same at any hidden state 0 .. hg_clip_n_layer(). */
int hg_clip_encode_hidden_state(hg_clip *clip, const float *pixels, int hidden_state, float *out);
/* n rows of n_embd floats -> n rows of hg_clip_projector_dim() floats. 0 or -1 (also when the
 * file has no such projector). */
int hg_clip_project(hg_clip *clip, int projector, const float *in, int n, float *out);
/* hg_clip_encode at a tap, then hg_clip_project with a projector, in one call: out gets
 * n_patches x hg_clip_projector_dim(projector) floats. With the tower on a device the features
 * never leave it: the projected rows are all that is copied back. The same numbers as the two
 * calls. 0 or -1 (also when the file has no such projector). */
int hg_clip_encode_project(hg_clip *clip, const float *pixels, int tap, int projector, float *out);
/* Replaces the tower's projector (an hg_clip_projector) with the mlp2x_gelu an H-LoRA plugin
 * file carries (mm.0.weight [n_embd, d], mm.0.bias [d], mm.2.weight [d, n_out], mm.2.bias
 * [n_out]): HealthGPT's plugins bring the projector they were trained with. Returns 1 when
 * replaced, 0 when the file has no projector (the tower unchanged), -1 with hg_last_error()
 * naming the file and tensor at fault. Must not overlap another call on the tower. */
int hg_clip_load_projector(hg_clip *clip, int projector, const char *path);

/* ---- the VQGAN image decoder / encoder (taming GumbelVQ, GGUF architecture "vqgan") ----
 * Code indices (HealthGPT's <idx_k> tokens, k = index) to an image and back; the GGUF layout
 * is documented in native/models/vqgan.h. A VQGAN owns its mapped file and its thread pool;
 * calls on one VQGAN must not overlap. */
typedef struct hg_vqgan hg_vqgan;

typedef struct hg_vqgan_info {
    int resolution;  /* image side in pixels (256) */
    int latent;      /* latent side (32): latent * latent indices per image */
    int n_embed;     /* codebook size (8192): indices are 0 .. n_embed - 1 */
    int out_ch;      /* decoded channels (3) */
    int in_channels; /* encoder input channels (3) */
    int has_encoder; /* 0: a decoder-only file, hg_vqgan_encode fails */
} hg_vqgan_info;

typedef struct hg_vqgan_params {
    int n_threads; /* <= 0: one per core */
    int gpu;       /* hg_gpu: HG_GPU_OFF (default), HG_GPU_AUTO or HG_GPU_CUDA */
} hg_vqgan_params;

hg_vqgan_params hg_vqgan_default_params(void);

/* NULL with hg_last_error() naming the file and the key or tensor at fault. params NULL: the
 * defaults. */
hg_vqgan *hg_vqgan_load(const char *path, const hg_vqgan_params *params);
void hg_vqgan_free(hg_vqgan *vq);
/* Where the VQGAN runs: "cpu", "cuda: <device name> (...)", or "cpu (<why>)" after
 * HG_GPU_AUTO. NULL on a NULL VQGAN. */
const char *hg_vqgan_backend(const hg_vqgan *vq);
int hg_vqgan_get_info(const hg_vqgan *vq, hg_vqgan_info *info); /* 0 or -1 */

/* n_indices (must be latent^2) row-major indices -> the image: chw (optional) receives
 * out_ch * resolution^2 floats, channel-major, before the clamp (about [-1, 1]); rgb
 * (optional) receives resolution^2 * out_ch bytes, row-major pixels, as taming's
 * custom_to_pil makes them (clamp to [-1, 1], (x + 1) / 2 * 255, truncated). Returns 0, or -1
 * (an index outside the codebook is named with its position). */
int hg_vqgan_decode(hg_vqgan *vq, const int32_t *indices, int64_t n_indices, float *chw, uint8_t *rgb);

/* An image of in_channels * resolution^2 floats, channel-major, in [-1, 1] -> latent^2
 * indices: the argmax of quantize.proj's logits at each position (the reference samples
 * with Gumbel noise; this is its deterministic mode). Returns 0 or -1. */
int hg_vqgan_encode(hg_vqgan *vq, const float *chw, int64_t n_values, int32_t *indices, int64_t n_indices);

/* ---- H-LoRA plugins (docs/model.md "H-LoRA"; the file format: README.md, "H-LoRA plugin files") ----
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
int hg_model_eval_plugin(hg_model *model, int plugin, const int32_t *tokens, int n, int start_pos, float *logits,
                         int all_logits);

/* hg_model_eval_plugin where some positions take a vector in place of a token: wherever
 * tokens[i] is -1, the next row of embd (hg_model_n_embd() floats; rows in the order of the
 * -1s) enters the model as that position's embedding, e.g. projected image features.
 * embd may be NULL when no token is -1. */
int hg_model_eval_embd(hg_model *model, int plugin, const int32_t *tokens, const float *embd, int n, int start_pos,
                       float *logits, int all_logits);

#ifdef __cplusplus
}
#endif

#endif /* HEALTHGPT_H */
