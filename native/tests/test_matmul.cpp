// The thread pool and the threaded matmul, at every kernel level this CPU runs, against
// the scalar reference (hg_matmul_ref) and against a double-precision product of the
// dequantized operands.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/threadpool.h"
#include "ops/matmul.h"
#include "quant/repack.h"
#include "healthgpt.h"
#include "tests/check.h"

static const int kWeightTypes[] = {HG_TYPE_F32,  HG_TYPE_F16,  HG_TYPE_BF16, HG_TYPE_Q8_0, HG_TYPE_Q4_0, HG_TYPE_Q4_1,
                                   HG_TYPE_Q5_0, HG_TYPE_Q5_1, HG_TYPE_Q4_K, HG_TYPE_Q5_K, HG_TYPE_Q6_K};

TEST(pool_runs_every_thread_once) {
    for (int n : {1, 2, 3, 5}) {
        hg::ThreadPool pool(n);
        CHECK(pool.size() == n);
        std::vector<std::atomic<int>> hits(n);
        for (int rep = 0; rep < 1000; rep++)
            pool.run([&](int ith, int nth) {
                if (nth == n) hits[ith]++;
            });
        for (int i = 0; i < n; i++) CHECK(hits[i].load() == 1000);
    }
}

// More threads than the pool holds is an error, not tens of thousands of threads started
// (they took the machine's process slots); the largest pool allowed still starts.
TEST(pool_refuses_more_than_its_limit) {
    bool refused = false;
    try {
        hg::ThreadPool pool(hg::ThreadPool::kMaxThreads + 1);
    } catch (const hg::Error &e) {
        refused = std::string(e.what()).find("n_threads 1025 is more than 1024") != std::string::npos;
    }
    CHECK(refused);
    hg::ThreadPool most(hg::ThreadPool::kMaxThreads);
    std::atomic<int> ran{0};
    most.run([&](int, int) { ran++; });
    CHECK(ran.load() == hg::ThreadPool::kMaxThreads);
}

TEST(pool_rethrows_worker_exception_and_stays_usable) {
    hg::ThreadPool pool(3);
    bool caught = false;
    try {
        pool.run([](int ith, int) {
            if (ith == 2) throw std::runtime_error("boom");
        });
    } catch (const std::runtime_error &e) {
        caught = std::string(e.what()) == "boom";
    }
    CHECK(caught);
    std::atomic<int> sum{0};
    pool.run([&](int ith, int) { sum += ith; });
    CHECK(sum.load() == 0 + 1 + 2);
}

// Workers that finish long after the caller (past its spin, so it sleeps) and long before
// it (so it never sleeps), alternately: every job's writes are seen on return, no wake-up
// is lost (a lost one hangs here).
TEST(pool_caller_sleeps_and_wakes) {
    for (int n : {2, 3}) {
        hg::ThreadPool pool(n);
        for (int rep = 0; rep < 200; rep++) {
            std::vector<int> seen(n, 0);
            const bool slow_workers = rep % 2 == 0;
            pool.run([&](int ith, int) {
                if ((ith != 0) == slow_workers) std::this_thread::sleep_for(std::chrono::microseconds(200 + 50 * ith));
                seen[ith] = rep + 1;
            });
            for (int i = 0; i < n; i++) CHECK(seen[i] == rep + 1);
        }
    }
}

TEST(split_range_covers_exactly) {
    for (int64_t n : {0, 1, 7, 64, 1001})
        for (int nth : {1, 2, 3, 8}) {
            int64_t expect = 0;
            for (int i = 0; i < nth; i++) {
                int64_t b, e;
                hg::split_range(n, i, nth, b, e);
                CHECK(b == expect);
                CHECK(e >= b);
                expect = e;
            }
            CHECK(expect == n);
        }
}

namespace {

struct problem {
    int type;
    int64_t rows, k, n;
    std::vector<uint8_t> w;
    std::vector<float> w_deq, x;
};

problem make_problem(int type, int64_t rows, int64_t k, int64_t n, uint32_t seed) {
    problem p{type, rows, k, n, {}, {}, {}};
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> wf(rows * k);
    for (auto &v : wf) v = nd(rng);
    p.x.resize(k * n);
    for (auto &v : p.x) v = nd(rng);
    const size_t row = (size_t)(k / hg_type_block_size(type)) * hg_type_block_bytes(type);
    p.w.resize(row * rows);
    p.w_deq.resize(rows * k);
    for (int64_t r = 0; r < rows; r++) {
        CHECK(hg_quantize_row(type, &wf[r * k], &p.w[r * row], k) == 0);
        CHECK(hg_dequantize_row(type, &p.w[r * row], &p.w_deq[r * k], k) == 0);
    }
    return p;
}

// Activations are quantized to 8 bits per block (q8_0 / q8_1 / q8_K) for quantized weights:
// each x_i moves by at most amax/254, so |error| <= sum_i |w_i| * amax(x) / 127 with margin.
double activation_bound(const problem &p, int64_t r, int64_t c) {
    double wsum = 0, amax = 0;
    for (int64_t i = 0; i < p.k; i++) {
        wsum += std::fabs(p.w_deq[r * p.k + i]);
        amax = std::fmax(amax, std::fabs(p.x[c * p.k + i]));
    }
    switch (p.type) {
    case HG_TYPE_F32: return 1e-4 * wsum * amax;
    case HG_TYPE_F16: return 2e-3 * wsum * amax;  // x rounded to half
    case HG_TYPE_BF16: return 1e-2 * wsum * amax; // x rounded to bfloat16
    default: return wsum * amax / 127.0 + 1e-4;
    }
}

} // namespace

TEST(matmul_matches_reference_at_every_level) {
    // rows past a 16-row block and tiles; column counts that leave every remainder 1..8 over
    // the row-block kernels' 8-column calls (n = 17, 10, 3, 12, 5, 6, 7; 16 = two full calls);
    // short rows that only the plain dot loop sees; one column over enough rows for decode's
    // wider strips (32 rows at 2 threads, 5 rows over); several 64 x 64 panels with partial
    // ones at both edges
    const int64_t shapes[][3] = {{1, 1, 1},  {3, 1, 2},   {17, 2, 1},  {67, 3, 5},  {40, 12, 17},
                                 {5, 1, 33}, {48, 5, 7},  {33, 2, 6},  {517, 2, 1}, {20, 1, 10},
                                 {18, 2, 3}, {35, 3, 12}, {130, 2, 70}};
    uint32_t seed = 1;
    for (int type : kWeightTypes) {
        const int64_t bs = hg_type_block_size(type) == 1 ? 32 : hg_type_block_size(type);
        for (auto &s : shapes) {
            const int64_t rows = s[0], k = s[1] * bs, n = s[2];
            problem p = make_problem(type, rows, k, n, seed++);
            std::vector<float> ref(rows * n), got(rows * n);
            CHECK(hg_matmul_ref(type, p.w.data(), rows, k, p.x.data(), n, ref.data()) == 0);
            // the reference against double precision on the dequantized weights
            for (int64_t c = 0; c < n; c++)
                for (int64_t r = 0; r < rows; r++) {
                    double exact = 0;
                    for (int64_t i = 0; i < k; i++) exact += (double)p.w_deq[r * k + i] * p.x[c * k + i];
                    CHECK_NEAR(ref[c * rows + r], exact, activation_bound(p, r, c));
                }
            for (int isa = HG_ISA_SCALAR; isa <= hg_isa_best(); isa++) {
                CHECK(hg_isa_force(isa) == 0);
                for (int threads : {1, 2, 3}) {
                    hg_pool *pool = hg_pool_create(threads);
                    std::fill(got.begin(), got.end(), NAN);
                    CHECK(hg_matmul(pool, type, p.w.data(), rows, k, p.x.data(), n, got.data()) == 0);
                    hg_pool_free(pool);
                    for (int64_t i = 0; i < rows * n; i++) {
                        double mag = 0; // sum |w x| bounds the reordering error of float sums
                        const int64_t r = i % rows, c = i / rows;
                        for (int64_t j = 0; j < k; j++) mag += std::fabs(p.w_deq[r * k + j] * p.x[c * k + j]);
                        CHECK_NEAR(got[i], ref[i], 1e-5 * mag + 1e-6);
                    }
                }
            }
            hg_isa_force(-1);
        }
    }
}

TEST(matmul_refuses_bad_arguments) {
    hg_pool *pool = hg_pool_create(2);
    std::vector<uint8_t> w(1024);
    std::vector<float> x(256), y(16);
    CHECK(hg_matmul(pool, HG_TYPE_IQ2_XXS, w.data(), 1, 256, x.data(), 1, y.data()) == -1);
    CHECK(std::strstr(hg_last_error(), "iq2_xxs") != nullptr);
    CHECK(hg_matmul(pool, HG_TYPE_Q4_0, w.data(), 1, 33, x.data(), 1, y.data()) == -1);
    CHECK(std::strstr(hg_last_error(), "k=33") != nullptr);
    CHECK(hg_matmul(pool, 99, w.data(), 1, 32, x.data(), 1, y.data()) == -1);
    CHECK(hg_matmul(pool, HG_TYPE_Q4_0, w.data(), 0, 32, x.data(), 1, y.data()) == -1);
    CHECK(hg_matmul(nullptr, HG_TYPE_Q4_0, w.data(), 1, 32, x.data(), 1, y.data()) == -1);
    CHECK(hg_isa_force(7) == -1);
    hg_pool_free(pool);
}

// Packed weights (quant/repack.h) through hg::matmul and MatmulRows, at every level and thread
// count, for row counts with and without a plain tail and column counts from decode's one to
// several panels: q4_0 and the k-quants give the plain layout's very bits (the same
// arithmetic in the same order); q8_0 and f16 sum in another order, so within float
// reordering of the plain result. MatmulRows, range by range, gives hg::matmul's exact-columns
// bits, and refuses ranges that cut a group.
TEST(matmul_packed_weights_match_plain) {
    const int64_t shapes[][3] = {{16, 3, 1}, {37, 2, 1},  {100, 3, 1}, {517, 2, 1},
                                 {48, 5, 7}, {35, 3, 12}, {130, 2, 70}};
    uint32_t seed = 500;
    for (int type : {HG_TYPE_Q4_0, HG_TYPE_Q8_0, HG_TYPE_F16, HG_TYPE_Q4_K, HG_TYPE_Q5_K, HG_TYPE_Q6_K})
        for (auto &s : shapes) {
            const bool k_quant = hg_type_block_size(type) == 256;
            const int64_t rows = s[0], k = s[1] * (k_quant ? 256 : 32), n = s[2];
            problem p = make_problem(type, rows, k, n, seed++);
            std::vector<uint8_t> packed(p.w.size());
            hg::pack_rows(type, p.w.data(), rows, k, 0, rows, packed.data());
            auto same = [&](const std::vector<float> &plain, const std::vector<float> &got, const std::string &what) {
                if (type == HG_TYPE_Q4_0 || k_quant) {
                    CHECK_MSG(std::memcmp(plain.data(), got.data(), got.size() * sizeof(float)) == 0, what);
                    return;
                }
                for (size_t i = 0; i < got.size(); i++) {
                    double mag = 0;
                    const int64_t r = (int64_t)i % rows, c = (int64_t)i / rows;
                    for (int64_t j = 0; j < k; j++) mag += std::fabs(p.w_deq[r * k + j] * p.x[c * k + j]);
                    CHECK_NEAR(got[i], plain[i], 1e-5 * mag + 1e-6);
                }
            };
            for (int isa = HG_ISA_SCALAR; isa <= hg_isa_best(); isa++) {
                CHECK(hg_isa_force(isa) == 0);
                const std::string what = std::string(hg_type_name(type)) + " isa " + std::to_string(isa) + " rows " +
                                         std::to_string(rows) + " n " + std::to_string(n);
                for (int threads : {1, 2, 3}) {
                    hg::ThreadPool pool(threads);
                    std::vector<float> plain(rows * n, NAN), got(rows * n, NAN);
                    hg::matmul(pool, type, p.w.data(), rows, k, p.x.data(), n, plain.data());
                    hg::matmul(pool, hg::packed_type(type), packed.data(), rows, k, p.x.data(), n, got.data());
                    same(plain, got, what);
                }
                {
                    // MatmulRows in strips of 32 rows: hg::matmul's exact-columns bits
                    const hg::MatmulRows mr(hg::packed_type(type), packed.data(), rows, k, p.x.data(), n);
                    std::vector<float> want(rows * n), got(rows * n, NAN);
                    hg::ThreadPool pool(2);
                    hg::matmul(pool, hg::packed_type(type), packed.data(), rows, k, p.x.data(), n, want.data(), true);
                    for (int64_t r0 = 0; r0 < rows; r0 += 32) mr.compute(r0, std::min(rows, r0 + 32), got.data());
                    CHECK_MSG(std::memcmp(want.data(), got.data(), got.size() * sizeof(float)) == 0,
                              what + " MatmulRows");
                    bool refused = false;
                    try {
                        mr.compute(8, 16, got.data());
                    } catch (const hg::Error &) {
                        refused = true;
                    }
                    CHECK(refused);
                }
            }
            hg_isa_force(-1);
        }
}

// With exact_columns, each column of Y = W X is computed as it would be alone: the same bits
// whatever the number of columns n and the column's place among them, at every level, thread
// count and layout (plain and packed). Batched decoding relies on it: a sequence's decode row
// sharing a pass with other sequences' rows, or its prompt cut into other chunks, gives its
// solo logits (native/tests/test_batch.cpp).
TEST(matmul_columns_do_not_depend_on_their_neighbours) {
    uint32_t seed = 900;
    for (int type :
         {HG_TYPE_F32, HG_TYPE_F16, HG_TYPE_BF16, HG_TYPE_Q4_0, HG_TYPE_Q8_0, HG_TYPE_Q4_K, HG_TYPE_Q5_K, HG_TYPE_Q6_K})
        for (int64_t rows : {16, 100, 517}) {
            const bool k_quant = hg_type_block_size(type) == 256;
            const int64_t k = (k_quant ? 256 : 32) * 3, n = 75; // panels of 64 columns, calls of 8, tiles of 4
            problem p = make_problem(type, rows, k, n, seed++);
            std::vector<uint8_t> packed(p.w.size());
            const bool packable = hg::packable(type);
            if (packable) hg::pack_rows(type, p.w.data(), rows, k, 0, rows, packed.data());
            for (int isa = HG_ISA_SCALAR; isa <= hg_isa_best(); isa++) {
                CHECK(hg_isa_force(isa) == 0);
                for (int threads : {1, 3})
                    for (bool pk : {false, true}) {
                        if (pk && !packable) continue;
                        hg::ThreadPool pool(threads);
                        const int t = pk ? hg::packed_type(type) : type;
                        const void *w = pk ? (const void *)packed.data() : (const void *)p.w.data();
                        std::vector<float> all(rows * n, NAN), one(rows, NAN);
                        hg::matmul(pool, t, w, rows, k, p.x.data(), n, all.data(), true);
                        for (int64_t c = 0; c < n; c++) {
                            hg::matmul(pool, t, w, rows, k, p.x.data() + c * k, 1, one.data(), true);
                            CHECK_MSG(std::memcmp(one.data(), &all[c * rows], rows * sizeof(float)) == 0,
                                      std::string(hg_type_name(type)) + (pk ? " packed" : "") + " isa " +
                                          std::to_string(isa) + " rows " + std::to_string(rows) + " threads " +
                                          std::to_string(threads) + ": column " + std::to_string(c) + " of " +
                                          std::to_string(n) + " differs from the column alone");
                            if (std::memcmp(one.data(), &all[c * rows], rows * sizeof(float)) != 0) break;
                        }
                        // a middle slice of columns as a matmul of its own (a prompt cut elsewhere)
                        std::vector<float> mid(rows * 11, NAN);
                        hg::matmul(pool, t, w, rows, k, p.x.data() + 30 * k, 11, mid.data(), true);
                        CHECK_MSG(std::memcmp(mid.data(), &all[30 * rows], mid.size() * sizeof(float)) == 0,
                                  std::string(hg_type_name(type)) + (pk ? " packed" : "") + " isa " +
                                      std::to_string(isa) + ": columns 30..40 differ when run as 11 columns");
                    }
            }
            CHECK(hg_isa_force(hg_isa_best()) == 0);
        }
}

HG_TEST_MAIN()
