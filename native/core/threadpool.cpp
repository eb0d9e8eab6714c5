#include "core/threadpool.h"

#include <chrono>
#include <string>
#include <system_error>

#include "core/error.h"

namespace hg {

// How long an idle worker spins before it sleeps: long enough to cover the gap between
// two matmuls of a decode step, short enough not to burn a core when the engine is idle.
static constexpr auto kSpin = std::chrono::microseconds(300);
// How long the caller spins for the workers to finish before it sleeps.
static constexpr auto kCallerSpin = std::chrono::microseconds(50);

ThreadPool::ThreadPool(int n_threads) {
    if (n_threads <= 0) n_threads = (int)std::thread::hardware_concurrency();
    if (n_threads <= 0) n_threads = 1;
    // tens of thousands of threads would not fail: they would take the machine's process slots
    if (n_threads > kMaxThreads)
        throw Error("n_threads " + std::to_string(n_threads) + " is more than " + std::to_string(kMaxThreads));
    n_threads_ = n_threads;
    threads_.reserve(n_threads - 1);
    try {
        for (int i = 1; i < n_threads; i++) threads_.emplace_back([this, i] { worker(i); });
    } catch (const std::system_error &e) {
        // the ones started must be joined before the pool goes, or the process terminates
        const size_t started = threads_.size();
        {
            std::lock_guard<std::mutex> lk(mutex_);
            stop_.store(true);
            generation_.fetch_add(1);
        }
        wake_.notify_all();
        for (auto &t : threads_) t.join();
        throw Error("cannot start thread " + std::to_string(started + 1) + " of " + std::to_string(n_threads) + ": " +
                    e.what());
    }
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lk(mutex_);
        stop_.store(true);
        generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto &t : threads_) t.join();
}

void ThreadPool::run_job(int ith) {
    try {
        (*job_)(ith, n_threads_);
    } catch (...) {
        std::lock_guard<std::mutex> lk(error_mutex_);
        if (!error_) error_ = std::current_exception();
    }
}

void ThreadPool::run(const std::function<void(int, int)> &fn) {
    if (n_threads_ == 1) {
        fn(0, 1);
        return;
    }
    job_ = &fn;
    error_ = nullptr;
    pending_.store(n_threads_ - 1);
    generation_.fetch_add(1); // seq_cst: pairs with the sleepers_ check in worker()
    if (sleepers_.load() > 0) {
        std::lock_guard<std::mutex> lk(mutex_);
        wake_.notify_all();
    }
    run_job(0);
    wait_done();
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
}

// The caller waits for the workers: spinning first (a balanced job ends within microseconds
// of the caller's share), then asleep. On a machine with more runnable threads than cores a
// worker can be descheduled mid-job for a whole time slice, and a caller that spins through
// it takes the core that worker (or another process) needs: measured on 2 shared cores, a
// decode sweep with 2 threads kept 0.5 cores busy in all and ran slower than 1 thread.
void ThreadPool::wait_done() {
    const auto until = std::chrono::steady_clock::now() + kCallerSpin;
    int spins = 0;
    while (pending_.load(std::memory_order_acquire) > 0) {
        cpu_relax();
        if (++spins % 256 == 0 && std::chrono::steady_clock::now() > until) {
            std::unique_lock<std::mutex> lk(mutex_);
            caller_waiting_.store(true); // seq_cst: pairs with the pending_ decrement in worker()
            done_.wait(lk, [&] { return pending_.load() == 0; });
            caller_waiting_.store(false);
            return;
        }
    }
}

void ThreadPool::worker(int ith) {
    uint64_t seen = 0;
    for (;;) {
        // spin a little, then sleep until the generation moves
        auto until = std::chrono::steady_clock::now() + kSpin;
        int spins = 0;
        while (generation_.load(std::memory_order_acquire) == seen) {
            cpu_relax();
            if (++spins % 256 == 0 && std::chrono::steady_clock::now() > until) {
                std::unique_lock<std::mutex> lk(mutex_);
                sleepers_.fetch_add(1);
                wake_.wait(lk, [&] { return generation_.load() != seen; });
                sleepers_.fetch_sub(1);
                break;
            }
        }
        seen = generation_.load(std::memory_order_acquire);
        if (stop_.load()) return;
        run_job(ith);
        // the last one out wakes a caller that went to sleep (both seq_cst: either the caller
        // sees pending_ at 0 before it sleeps, or this sees caller_waiting_ and notifies under
        // the mutex, which the caller holds from its check until it sleeps)
        if (pending_.fetch_sub(1) == 1 && caller_waiting_.load()) {
            std::lock_guard<std::mutex> lk(mutex_);
            done_.notify_one();
        }
    }
}

} // namespace hg
