// The engine's own thread pool: persistent workers that run one job at a time on every
// thread (the caller is thread 0). Workers spin briefly between jobs, because a decode step
// issues hundreds of small jobs back to back, then sleep so an idle engine costs no CPU.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hg {

class ThreadPool {
  public:
    static constexpr int kMaxThreads = 1024;
    // n_threads <= 0: one per hardware thread; more than kMaxThreads, or a thread the system
    // will not start, throws hg::Error
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool &) = delete;
    ThreadPool &operator=(const ThreadPool &) = delete;

    int size() const { return n_threads_; }

    // Calls fn(ith, nth) on every thread and returns when all are done. The first exception
    // thrown by any thread is rethrown here. Not reentrant: one job at a time per pool.
    void run(const std::function<void(int ith, int nth)> &fn);

  private:
    void worker(int ith);
    void run_job(int ith);
    void wait_done();

    int n_threads_;
    std::vector<std::thread> threads_;
    const std::function<void(int, int)> *job_ = nullptr;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<int> sleepers_{0};
    std::atomic<bool> caller_waiting_{false};
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_; // the caller, asleep until pending_ reaches 0
    std::mutex error_mutex_;
    std::exception_ptr error_;
};

// A spin-wait's pause: frees the core's shared resources for its sibling while waiting.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

// Static split of [0, n) among nth threads: the half-open range of thread ith.
inline void split_range(int64_t n, int ith, int nth, int64_t &begin, int64_t &end) {
    const int64_t per = n / nth, extra = n % nth;
    begin = ith * per + (ith < extra ? ith : extra);
    end = begin + per + (ith < extra ? 1 : 0);
}

} // namespace hg
