#include "ops/matmul.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/error.h"
#include "quant/blocks.h"

namespace hg {

namespace {

struct plan {
    vec_dot_fn dot;
    vec_dot_tile_fn tile;   // kDotTileRows x kDotTileCols dots at once, or null
    vec_dot_rows_fn rows;   // kRowBlock rows x 1..kRowBlockCols columns at once, or null
    vec_dot_rows_fn rows2;  // two packed groups at once (quant.h), or null
    bool packed;            // weights in packed groups (quant/repack.h): rows is their kernel
    bool aux;               // activation columns carry a q8_0_aux (the q8_0 row-block kernels)
    from_float_fn quantize; // null when activations stay f32
    size_t w_row;           // bytes of one weight row
    size_t x_row;           // bytes of one converted activation column (q8_0_aux included)
};

plan make_plan(const kernel_table &kt, int weight_type, int64_t rows, int64_t k, int64_t n) {
    const bool packed = is_packed(weight_type);
    const int type = plain_type(weight_type);
    const type_info *ti = type_traits(type);
    if (!ti || !ti->supported)
        fail(HG_ERR_UNSUPPORTED,
             std::string("matmul: weight type ") + (ti ? ti->name : std::to_string(weight_type)) + " is not supported");
    if (rows <= 0 || k <= 0 || n <= 0)
        fail("matmul: empty shape rows=" + std::to_string(rows) + " k=" + std::to_string(k) +
             " n=" + std::to_string(n));
    const type_info *at = type_traits(ti->vec_dot_type);
    if (k % ti->block_size != 0 || k % at->block_size != 0)
        fail(std::string("matmul: k=") + std::to_string(k) + " is not a multiple of the " + ti->name + " block");
    plan p{};
    p.packed = packed;
    p.dot = kt.vec_dot[type];
    const kernel_table *level = kernel_level(kt, type);
    p.tile = level ? level->vec_dot_tile[type] : nullptr;
    if (packed) {
        p.rows = kt.vec_dot_rows_packed[type];
        p.rows2 = kt.vec_dot_rows2_packed[type];
        if (!p.rows) fail(std::string("matmul: no kernel for packed ") + ti->name);
    } else {
        p.rows = level ? level->vec_dot_rows[type] : nullptr;
        // row blocks read q8_0 columns with their aux, and gather at 32-bit row offsets
        if (p.rows && (ti->vec_dot_type != HG_TYPE_Q8_0 || row_bytes(type, k) * (kRowBlock - 1) > INT32_MAX))
            p.rows = nullptr;
    }
    p.quantize = ti->vec_dot_type == HG_TYPE_F32 ? nullptr : kt.from_float[ti->vec_dot_type];
    if (!p.dot || (ti->vec_dot_type != HG_TYPE_F32 && !p.quantize))
        fail(std::string("matmul: no kernel for ") + ti->name);
    p.w_row = row_bytes(type, k);
    p.x_row = row_bytes(ti->vec_dot_type, k);
    p.aux = p.rows && ti->vec_dot_type == HG_TYPE_Q8_0;
    if (p.aux) p.x_row = q8_0_row_with_aux(k);
    return p;
}

// Converts column c of x into the plan's activation layout.
void convert_column(const plan &p, const float *x, int64_t k, int64_t c, uint8_t *out) {
    uint8_t *col = out + c * p.x_row;
    p.quantize(x + c * k, col, k);
    if (p.aux) q8_0_fill_aux(col, k, reinterpret_cast<q8_0_aux *>(col + q8_0_aux_offset(k)));
}

// Tile sizes: a block of weight rows is reused across a block of columns while it sits in
// L1/L2; for one column (decode) the tile is rows only and the weights stream once. The
// row-block kernels take panels: 64 rows (4 row blocks, 72-288 KB of q4_0 at Phi-3's k, in
// L2) under 64 columns taken 8 at a time (a 28-74 KB chunk, in L1 for its 4 row blocks), so
// weights and activations each come from beyond L2 once per 64 of the other.
constexpr int64_t kTileRows = 16;
constexpr int64_t kTileCols = 16;
constexpr int64_t kPanelRows = 64;
constexpr int64_t kPanelCols = 64;

void dot_loop(const plan &p, const uint8_t *w, const uint8_t *xq, int64_t rows, int64_t k, int64_t r0, int64_t r1,
              int64_t c0, int64_t c1, float *y) {
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + r * p.w_row;
        for (int64_t c = c0; c < c1; c++) p.dot(k, &y[c * rows + r], wr, xq + c * p.x_row);
    }
}

void compute_tile(const plan &p, const uint8_t *w, const uint8_t *xq, int64_t rows, int64_t k, int64_t r0, int64_t r1,
                  int64_t c0, int64_t c1, float *y) {
    if (p.rows && r1 - r0 >= kRowBlock) {
        // whole row blocks by the row-block kernel, kRowBlockCols columns a call (a column
        // chunk stays in L1 across the panel's row blocks); the last rows by vec_dot (packed
        // weights keep rows past the last whole group plain, and every range starts on a group)
        const int64_t rt = r0 + (r1 - r0) / kRowBlock * kRowBlock;
        for (int64_t c = c0; c < c1; c += kRowBlockCols) {
            const int nc = (int)std::min<int64_t>(kRowBlockCols, c1 - c);
            int64_t r = r0;
            if (p.rows2)
                for (; r + 2 * kRowBlock <= rt; r += 2 * kRowBlock)
                    p.rows2(k, &y[c * rows + r], (size_t)rows, w + r * p.w_row, p.w_row, xq + c * p.x_row, p.x_row, nc);
            for (; r < rt; r += kRowBlock)
                p.rows(k, &y[c * rows + r], (size_t)rows, w + r * p.w_row, p.w_row, xq + c * p.x_row, p.x_row, nc);
        }
        dot_loop(p, w, xq, rows, k, rt, r1, c0, c1, y);
        return;
    }
    if (p.tile && r1 - r0 >= kDotTileRows && c1 - c0 >= kDotTileCols) {
        // whole kDotTileRows x kDotTileCols tiles by the tile kernel, the edges by vec_dot
        const int64_t rt = r0 + (r1 - r0) / kDotTileRows * kDotTileRows;
        const int64_t ct = c0 + (c1 - c0) / kDotTileCols * kDotTileCols;
        for (int64_t r = r0; r < rt; r += kDotTileRows)
            for (int64_t c = c0; c < ct; c += kDotTileCols)
                p.tile(k, &y[c * rows + r], (size_t)rows, w + r * p.w_row, p.w_row, xq + c * p.x_row, p.x_row);
        dot_loop(p, w, xq, rows, k, rt, r1, c0, ct, y);
        dot_loop(p, w, xq, rows, k, r0, r1, ct, c1, y);
        return;
    }
    dot_loop(p, w, xq, rows, k, r0, r1, c0, c1, y);
}

} // namespace

void matmul(ThreadPool &pool, int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t n, float *y,
            bool exact_columns) {
    plan p = make_plan(kernels_active(), type, rows, k, n);
    if (exact_columns) p.tile = nullptr;
    const uint8_t *wb = static_cast<const uint8_t *>(w);

    std::vector<uint8_t> converted;
    const uint8_t *xq = reinterpret_cast<const uint8_t *>(x);
    if (p.quantize) {
        converted.resize(p.x_row * n);
        // one column (decode) on the caller: waking the pool costs more than the work
        if (n == 1)
            convert_column(p, x, k, 0, converted.data());
        else
            pool.run([&](int ith, int nth) {
                int64_t c0, c1;
                split_range(n, ith, nth, c0, c1);
                for (int64_t c = c0; c < c1; c++) convert_column(p, x, k, c, converted.data());
            });
        xq = converted.data();
    }

    // One column (decode): a tile is a strip of rows (decode_strip_rows); each grab of the
    // shared counter (a cache line moving between cores) is paid once per ~100 KB of weights.
    const int64_t tile_cols = n == 1 ? 1 : p.rows ? kPanelCols : kTileCols;
    const int64_t tile_rows = n == 1 ? decode_strip_rows(rows, pool.size()) : p.rows ? kPanelRows : kTileRows;
    const int64_t n_row_tiles = (rows + tile_rows - 1) / tile_rows;
    const int64_t n_col_tiles = (n + tile_cols - 1) / tile_cols;
    const int64_t n_tiles = n_row_tiles * n_col_tiles;
    // Tiles are handed out dynamically: on a shared, noisy machine a static split waits on
    // the slowest thread. The counter has a cache line to itself, so that taking a tile does
    // not evict what the workers read (the plan, the pointers) from the others' caches.
    struct alignas(64) counter {
        std::atomic<int64_t> v{0};
    } next;
    pool.run([&](int, int) {
        for (int64_t t; (t = next.v.fetch_add(1, std::memory_order_relaxed)) < n_tiles;) {
            const int64_t rt = t % n_row_tiles, ct = t / n_row_tiles;
            const int64_t r0 = rt * tile_rows, r1 = std::min(rows, r0 + tile_rows);
            const int64_t c0 = ct * tile_cols, c1 = std::min(n, c0 + tile_cols);
            compute_tile(p, wb, xq, rows, k, r0, r1, c0, c1, y);
        }
    });
}

int64_t decode_strip_rows(int64_t rows, int n_threads) {
    const int64_t per = rows / (8 * std::max(1, n_threads));
    return std::max<int64_t>(kTileRows, (per + kTileRows - 1) / kTileRows * kTileRows);
}

struct MatmulRows::Impl {
    plan p;
    const uint8_t *w;
    int64_t rows, k, n;
    std::vector<uint8_t> converted;
    const uint8_t *xq;
};

MatmulRows::MatmulRows(int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t n) : rows_(rows) {
    auto impl = std::make_shared<Impl>();
    impl->p = make_plan(kernels_active(), type, rows, k, n);
    impl->p.tile = nullptr; // exact columns
    impl->w = static_cast<const uint8_t *>(w);
    impl->rows = rows;
    impl->k = k;
    impl->n = n;
    impl->xq = reinterpret_cast<const uint8_t *>(x);
    if (impl->p.quantize) {
        impl->converted.resize(impl->p.x_row * n);
        for (int64_t c = 0; c < n; c++) convert_column(impl->p, x, k, c, impl->converted.data());
        impl->xq = impl->converted.data();
    }
    impl_ = std::move(impl);
}

void MatmulRows::compute(int64_t r0, int64_t r1, float *y) const {
    const Impl &m = *impl_;
    if (r0 < 0 || r1 > m.rows || r0 > r1)
        fail("MatmulRows: rows " + std::to_string(r0) + ".." + std::to_string(r1) + " outside 0.." +
             std::to_string(m.rows));
    if (m.p.packed && (r0 % kRowBlock != 0 || (r1 % kRowBlock != 0 && r1 != m.rows)))
        fail("MatmulRows: rows " + std::to_string(r0) + ".." + std::to_string(r1) +
             " of packed weights must start and end on " + std::to_string(kRowBlock) + "-row groups");
    // row blocks start at r0 (a multiple of 16 gives hg::matmul's blocks)
    compute_tile(m.p, m.w, m.xq, m.rows, m.k, r0, r1, 0, m.n, y);
}

void matmul_with(const kernel_table &kt, int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t n,
                 float *y) {
    const plan p = make_plan(kt, type, rows, k, n);
    std::vector<uint8_t> converted;
    const uint8_t *xq = reinterpret_cast<const uint8_t *>(x);
    if (p.quantize) {
        converted.resize(p.x_row * n);
        for (int64_t c = 0; c < n; c++) convert_column(p, x, k, c, converted.data());
        xq = converted.data();
    }
    compute_tile(p, static_cast<const uint8_t *>(w), xq, rows, k, 0, rows, 0, n, y);
}

} // namespace hg
