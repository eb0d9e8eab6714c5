#include "ops/matmul.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "core/error.h"

namespace hg {

namespace {

struct plan {
    vec_dot_fn dot;
    from_float_fn quantize; // null when activations stay f32
    size_t w_row;           // bytes of one weight row
    size_t x_row;           // bytes of one converted activation column
};

plan make_plan(const kernel_table &kt, int type, int64_t rows, int64_t k, int64_t n) {
    const type_info *ti = type_traits(type);
    if (!ti || !ti->supported)
        fail(std::string("matmul: weight type ") + (ti ? ti->name : std::to_string(type)) +
             " is not supported");
    if (rows <= 0 || k <= 0 || n <= 0)
        fail("matmul: empty shape rows=" + std::to_string(rows) + " k=" + std::to_string(k) +
             " n=" + std::to_string(n));
    const type_info *at = type_traits(ti->vec_dot_type);
    if (k % ti->block_size != 0 || k % at->block_size != 0)
        fail(std::string("matmul: k=") + std::to_string(k) + " is not a multiple of the " +
             ti->name + " block");
    plan p;
    p.dot = kt.vec_dot[type];
    p.quantize = ti->vec_dot_type == HG_TYPE_F32 ? nullptr : kt.from_float[ti->vec_dot_type];
    if (!p.dot || (ti->vec_dot_type != HG_TYPE_F32 && !p.quantize))
        fail(std::string("matmul: no kernel for ") + ti->name);
    p.w_row = row_bytes(type, k);
    p.x_row = row_bytes(ti->vec_dot_type, k);
    return p;
}

// Tile sizes: a block of weight rows is reused across a block of columns while it sits in
// L1/L2; for one column (decode) the tile is rows only and the weights stream once.
constexpr int64_t kTileRows = 16;
constexpr int64_t kTileCols = 16;

void compute_tile(const plan &p, const uint8_t *w, const uint8_t *xq, int64_t rows, int64_t k,
                  int64_t r0, int64_t r1, int64_t c0, int64_t c1, float *y) {
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + r * p.w_row;
        for (int64_t c = c0; c < c1; c++) p.dot(k, &y[c * rows + r], wr, xq + c * p.x_row);
    }
}

} // namespace

void matmul(ThreadPool &pool, int type, const void *w, int64_t rows, int64_t k, const float *x,
            int64_t n, float *y) {
    const plan p = make_plan(kernels_active(), type, rows, k, n);
    const uint8_t *wb = static_cast<const uint8_t *>(w);

    std::vector<uint8_t> converted;
    const uint8_t *xq = reinterpret_cast<const uint8_t *>(x);
    if (p.quantize) {
        converted.resize(p.x_row * n);
        pool.run([&](int ith, int nth) {
            int64_t c0, c1;
            split_range(n, ith, nth, c0, c1);
            for (int64_t c = c0; c < c1; c++) p.quantize(x + c * k, &converted[c * p.x_row], k);
        });
        xq = converted.data();
    }

    const int64_t tile_cols = n == 1 ? 1 : kTileCols;
    const int64_t n_row_tiles = (rows + kTileRows - 1) / kTileRows;
    const int64_t n_col_tiles = (n + tile_cols - 1) / tile_cols;
    const int64_t n_tiles = n_row_tiles * n_col_tiles;
    // Tiles are handed out dynamically: on a shared, noisy machine a static split waits on
    // the slowest thread.
    std::atomic<int64_t> next{0};
    pool.run([&](int, int) {
        for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < n_tiles;) {
            const int64_t rt = t % n_row_tiles, ct = t / n_row_tiles;
            const int64_t r0 = rt * kTileRows, r1 = std::min(rows, r0 + kTileRows);
            const int64_t c0 = ct * tile_cols, c1 = std::min(n, c0 + tile_cols);
            compute_tile(p, wb, xq, rows, k, r0, r1, c0, c1, y);
        }
    });
}

void matmul_with(const kernel_table &kt, int type, const void *w, int64_t rows, int64_t k,
                 const float *x, int64_t n, float *y) {
    const plan p = make_plan(kt, type, rows, k, n);
    std::vector<uint8_t> converted;
    const uint8_t *xq = reinterpret_cast<const uint8_t *>(x);
    if (p.quantize) {
        converted.resize(p.x_row * n);
        for (int64_t c = 0; c < n; c++) p.quantize(x + c * k, &converted[c * p.x_row], k);
        xq = converted.data();
    }
    compute_tile(p, static_cast<const uint8_t *>(w), xq, rows, k, 0, rows, 0, n, y);
}

} // namespace hg
