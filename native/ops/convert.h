// Row-wise conversion between tensor types (the quantize command and the converter).
#pragma once

#include <cstdint>

#include "core/threadpool.h"

namespace hg {

// Dequantizes each row of src to f32 and re-quantizes it with dst's reference quantizer.
void convert_rows(ThreadPool &pool, int src_type, const void *src, int dst_type, void *dst, int64_t n_rows,
                  int64_t row_len);

} // namespace hg
