// What the CUDA tests share: skipping without a device, and device memory with host copies.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cuda/backend.h"
#include "tests/check.h"

namespace cuda_test {

// GPU tests call this first: without a device they end as skipped, saying why (once in full).
inline void need_device() {
    static const std::string why = [] {
        if (hg::cuda_device_count() > 0) return std::string();
        const std::string status = hg::cuda_status();
        std::printf("skipped: no CUDA device%s%s\n", status.empty() ? "" : " - ", status.c_str());
        return std::string("no CUDA device");
    }();
    if (!why.empty()) SKIP(why);
}

// A device buffer (never empty: a zero-sized one still has an address) filled from or read to the host.
struct Dev {
    hg::DeviceBuffer buf;
    Dev() = default;
    explicit Dev(size_t bytes) : buf(std::max<size_t>(bytes, 4)) {}
    template <class T> static Dev of(const std::vector<T> &v) {
        Dev d(v.size() * sizeof(T));
        hg::cuda_copy_to_device(d.buf.get(), v.data(), v.size() * sizeof(T));
        return d;
    }
    template <class T> T *p() const { return buf.as<T>(); }
    template <class T> std::vector<T> read(size_t n) const {
        hg::cuda_synchronize();
        std::vector<T> v(n);
        hg::cuda_copy_to_host(v.data(), buf.get(), n * sizeof(T));
        return v;
    }
};

} // namespace cuda_test
