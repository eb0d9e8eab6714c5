// C API: the thread pool and matrix multiply.
#include "core/error.h"
#include "core/threadpool.h"
#include "healthgpt.h"
#include "ops/matmul.h"

struct hg_pool {
    hg::ThreadPool pool;
    explicit hg_pool(int n) : pool(n) {}
};

extern "C" {

hg_pool *hg_pool_create(int n_threads) {
    return hg::guarded<hg_pool *>(nullptr, [&] { return new hg_pool(n_threads); });
}

void hg_pool_free(hg_pool *pool) { delete pool; }

int hg_pool_size(const hg_pool *pool) { return pool ? pool->pool.size() : 0; }

int hg_matmul(hg_pool *pool, int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t n, float *y) {
    return hg::guarded(-1, [&] {
        if (!pool || !w || !x || !y) hg::fail("hg_matmul: null argument");
        hg::matmul(pool->pool, type, w, rows, k, x, n, y);
        return 0;
    });
}

int hg_matmul_ref(int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t n, float *y) {
    return hg::guarded(-1, [&] {
        if (!w || !x || !y) hg::fail("hg_matmul_ref: null argument");
        hg::matmul_with(hg::kernels_scalar(), type, w, rows, k, x, n, y);
        return 0;
    });
}

} // extern "C"

#include "ops/bandwidth.h"
#include "ops/convert.h"

extern "C" {

int hg_convert_rows(hg_pool *pool, int src_type, const void *src, int dst_type, void *dst, int64_t n_rows,
                    int64_t row_len) {
    return hg::guarded(-1, [&] {
        if (!pool || !src || !dst) hg::fail("hg_convert_rows: null argument");
        hg::convert_rows(pool->pool, src_type, src, dst_type, dst, n_rows, row_len);
        return 0;
    });
}

double hg_read_bandwidth(hg_pool *pool, size_t bytes, int reps) {
    return hg::guarded(-1.0, [&] {
        if (!pool) hg::fail("hg_read_bandwidth: null pool");
        return hg::read_bandwidth(pool->pool, bytes, reps);
    });
}

} // extern "C"
