// Measures how fast this machine streams memory into the cores: the roofline of decode,
// where every weight byte is read once per token.
#pragma once

#include <cstddef>

#include "core/threadpool.h"

namespace hg {

// GB/s (1e9 bytes per second), median of reps passes over `bytes` bytes.
double read_bandwidth(ThreadPool &pool, size_t bytes, int reps);

} // namespace hg
