#include "ops/conv2d.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "healthgpt.h"
#include "ops/conv2d_gemm.h"
#include "ops/matmul.h"
#include "quant/quant.h"

namespace hg {

namespace {

// Column buffer budget: bounds the memory of a 256x256x128 3x3 conv (300 MB unchunked)
// while keeping each matmul wide enough (thousands of columns) to reuse weight tiles.
constexpr int64_t kColBytes = int64_t(16) << 20;

void add_bias(ThreadPool &pool, float *y, int64_t n_pos, int64_t c, const float *bias) {
    if (!bias) return;
    pool.run([&](int ith, int nth) {
        int64_t p0, p1;
        split_range(n_pos, ith, nth, p0, p1);
        for (int64_t p = p0; p < p1; p++)
            for (int64_t o = 0; o < c; o++) y[p * c + o] += bias[o];
    });
}

// The SIMD tile kernel for this weight type, or null (then hg::matmul runs the product).
gemm_block_fn simd_kernel(bool simd, int type) {
    if (!simd || (type != HG_TYPE_F32 && type != HG_TYPE_F16)) return nullptr;
    gemm_block_fn fn = nullptr;
    if (isa_active() >= HG_ISA_AVX512) fn = gemm_block_avx512_kernel();
    if (!fn && isa_active() >= HG_ISA_AVX2) fn = gemm_block_avx2_kernel();
    return fn;
}

// Tile-kernel blocks: kRows weight rows (32 x 1152 f32 = 147 KB at 128 channels) against kCols
// columns, both held in L2 while the 4 x 6 register tiles sweep them.
constexpr int64_t kRows = 32, kCols = 48;

// Output position p's column: kh * kw runs of c_in floats, zeros where the kernel overhangs.
void gather_column(const Conv2dWeight &wt, const Conv2dGeom &g, const float *x, int64_t h, int64_t w, int64_t ow,
                   int64_t p, float *dst) {
    const size_t run = (size_t)wt.c_in * sizeof(float);
    const int64_t oy = p / ow, ox = p % ow;
    for (int64_t ky = 0; ky < wt.kh; ky++) {
        const int64_t iy = oy * g.stride + ky - g.pad_top;
        for (int64_t kx = 0; kx < wt.kw; kx++, dst += wt.c_in) {
            const int64_t ix = ox * g.stride + kx - g.pad_left;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                std::memset(dst, 0, run);
            else
                std::memcpy(dst, x + (iy * w + ix) * wt.c_in, run);
        }
    }
}

} // namespace

void conv_gemm(ThreadPool &pool, int type, const void *w, int64_t rows, int64_t k, const float *x, int64_t n, float *y,
               bool simd) {
    const gemm_block_fn fn = simd_kernel(simd, type);
    if (!fn || rows <= 0 || k <= 0 || n <= 0) {
        matmul(pool, type, w, rows, k, x, n, y);
        return;
    }
    // Blocks of kRows weight rows x kCols columns, handed out dynamically (a shared, noisy
    // machine makes static splits wait on the slowest thread); consecutive blocks share columns.
    const int64_t n_rb = (rows + kRows - 1) / kRows, n_cb = (n + kCols - 1) / kCols;
    std::atomic<int64_t> next{0};
    pool.run([&](int, int) {
        for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < n_rb * n_cb;) {
            const int64_t r0 = t % n_rb * kRows, c0 = t / n_rb * kCols;
            fn(type, w, rows, k, x, r0, std::min(rows, r0 + kRows), c0, std::min(n, c0 + kCols), y);
        }
    });
}

int64_t conv2d_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad_a, int64_t pad_b) {
    if (in <= 0 || k <= 0 || stride <= 0 || pad_a < 0 || pad_b < 0 || in + pad_a + pad_b < k)
        fail("conv2d: kernel " + std::to_string(k) + " (stride " + std::to_string(stride) +
             ") does not fit an input of " + std::to_string(in) + " padded by " + std::to_string(pad_a) + "+" +
             std::to_string(pad_b));
    return (in + pad_a + pad_b - k) / stride + 1;
}

void conv2d(ThreadPool &pool, const Conv2dWeight &wt, const Conv2dGeom &g, const float *x, int64_t h, int64_t w,
            float *y, int64_t col_bytes, bool simd) {
    if (wt.type != HG_TYPE_F32 && wt.type != HG_TYPE_F16)
        fail("conv2d: weight type " + std::to_string(wt.type) + " is not f32 or f16");
    if (wt.c_in <= 0 || wt.c_out <= 0) fail("conv2d: empty channel count");
    const int64_t oh = conv2d_out_size(h, wt.kh, g.stride, g.pad_top, g.pad_bottom);
    const int64_t ow = conv2d_out_size(w, wt.kw, g.stride, g.pad_left, g.pad_right);
    const int64_t k = wt.kh * wt.kw * wt.c_in;

    const bool plain = wt.kh == 1 && wt.kw == 1 && g.stride == 1 && oh == h && ow == w;

    // With a SIMD kernel, im2col is fused into the product: a thread takes kCols output
    // positions, gathers their columns into its own L2-sized buffer (a 1x1 conv reads the
    // activations in place), multiplies every weight row block by them and adds the bias,
    // all while the columns are hot; no full column matrix, no barrier between the steps.
    if (const gemm_block_fn fn = simd_kernel(simd, wt.type)) {
        const int64_t n = oh * ow, n_cb = (n + kCols - 1) / kCols, c_out = wt.c_out;
        std::vector<float> bufs(plain ? 0 : (size_t)(pool.size() * kCols * k));
        std::atomic<int64_t> next{0};
        pool.run([&](int ith, int) {
            float *buf = plain ? nullptr : &bufs[(size_t)(ith * kCols * k)];
            for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < n_cb;) {
                const int64_t c0 = t * kCols, nc = std::min(n - c0, kCols);
                const float *cols = x + c0 * k;
                if (!plain) {
                    for (int64_t j = 0; j < nc; j++) gather_column(wt, g, x, h, w, ow, c0 + j, buf + j * k);
                    cols = buf;
                }
                float *yb = y + c0 * c_out;
                for (int64_t r0 = 0; r0 < c_out; r0 += kRows)
                    fn(wt.type, wt.data, c_out, k, cols, r0, std::min(c_out, r0 + kRows), 0, nc, yb);
                if (wt.bias)
                    for (int64_t j = 0; j < nc; j++)
                        for (int64_t o = 0; o < c_out; o++) yb[j * c_out + o] += wt.bias[o];
            }
        });
        return;
    }

    // A 1x1 stride-1 unpadded conv is a plain product: the activations are the columns.
    if (plain) {
        matmul(pool, wt.type, wt.data, wt.c_out, k, x, h * w, y);
        add_bias(pool, y, h * w, wt.c_out, wt.bias);
        return;
    }

    const int64_t rows_per_chunk =
        std::max<int64_t>(1, (col_bytes > 0 ? col_bytes : kColBytes) / (int64_t)sizeof(float) / (k * ow));
    std::vector<float> col((size_t)(std::min(rows_per_chunk, oh) * ow * k));
    for (int64_t r0 = 0; r0 < oh; r0 += rows_per_chunk) {
        const int64_t r1 = std::min(oh, r0 + rows_per_chunk);
        const int64_t n = (r1 - r0) * ow;
        pool.run([&](int ith, int nth) {
            int64_t p0, p1;
            split_range(n, ith, nth, p0, p1);
            for (int64_t p = p0; p < p1; p++) gather_column(wt, g, x, h, w, ow, r0 * ow + p, &col[(size_t)(p * k)]);
        });
        matmul(pool, wt.type, wt.data, wt.c_out, k, col.data(), n, y + r0 * ow * wt.c_out);
    }
    add_bias(pool, y, oh * ow, wt.c_out, wt.bias);
}

void conv2d_weight_from_torch(const void *src, int64_t elem_bytes, int64_t c_out, int64_t c_in, int64_t kh, int64_t kw,
                              void *dst) {
    const uint8_t *s = static_cast<const uint8_t *>(src);
    uint8_t *d = static_cast<uint8_t *>(dst);
    for (int64_t o = 0; o < c_out; o++)
        for (int64_t i = 0; i < c_in; i++)
            for (int64_t ky = 0; ky < kh; ky++)
                for (int64_t kx = 0; kx < kw; kx++) {
                    const int64_t from = ((o * c_in + i) * kh + ky) * kw + kx;
                    const int64_t to = ((o * kh + ky) * kw + kx) * c_in + i;
                    std::memcpy(d + to * elem_bytes, s + from * elem_bytes, (size_t)elem_bytes);
                }
}

void conv2d_ref(const float *w_torch, const float *bias, int64_t c_in, int64_t c_out, int64_t kh, int64_t kw,
                const Conv2dGeom &g, const float *x, int64_t h, int64_t w, float *y) {
    const int64_t oh = conv2d_out_size(h, kh, g.stride, g.pad_top, g.pad_bottom);
    const int64_t ow = conv2d_out_size(w, kw, g.stride, g.pad_left, g.pad_right);
    for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++)
            for (int64_t o = 0; o < c_out; o++) {
                double s = bias ? bias[o] : 0.0;
                for (int64_t i = 0; i < c_in; i++)
                    for (int64_t ky = 0; ky < kh; ky++)
                        for (int64_t kx = 0; kx < kw; kx++) {
                            const int64_t iy = oy * g.stride + ky - g.pad_top;
                            const int64_t ix = ox * g.stride + kx - g.pad_left;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                            s += (double)w_torch[((o * c_in + i) * kh + ky) * kw + kx] * x[(iy * w + ix) * c_in + i];
                        }
                y[(oy * ow + ox) * c_out + o] = (float)s;
            }
}

} // namespace hg
