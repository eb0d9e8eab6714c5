#include "ops/bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "core/error.h"

namespace hg {

// Eight independent accumulators so the loop is bound by loads, not by the add latency.
static uint64_t sum_words(const uint64_t *p, size_t n) {
    uint64_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) a[j] += p[i + j];
    for (; i < n; i++) a[0] += p[i];
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

double read_bandwidth(ThreadPool &pool, size_t bytes, int reps) {
    if (bytes < (1u << 20) || reps <= 0) fail("read_bandwidth: needs at least 1 MiB and one pass");
    const size_t words = bytes / 8;
    std::vector<uint64_t> buf(words);
    for (size_t i = 0; i < words; i++) buf[i] = i; // touch every page before timing
    std::vector<double> seconds;
    volatile uint64_t sink = 0;
    for (int rep = 0; rep < reps; rep++) {
        std::vector<uint64_t> partial(pool.size());
        const auto t0 = std::chrono::steady_clock::now();
        pool.run([&](int ith, int nth) {
            int64_t b, e;
            split_range((int64_t)words, ith, nth, b, e);
            partial[ith] = sum_words(buf.data() + b, (size_t)(e - b));
        });
        const auto t1 = std::chrono::steady_clock::now();
        for (uint64_t v : partial) sink = sink + v;
        seconds.push_back(std::chrono::duration<double>(t1 - t0).count());
    }
    std::sort(seconds.begin(), seconds.end());
    return (double)(words * 8) / seconds[seconds.size() / 2] / 1e9;
}

} // namespace hg
