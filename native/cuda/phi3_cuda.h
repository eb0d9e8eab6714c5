// The Phi-3 decoder on a CUDA device (the Phi3Device of models/phi3_device.h). Plain C++:
// compiled into the engine only when the build has the CUDA backend (HEALTHGPT_HAVE_CUDA).
#pragma once

#include <cstdint>
#include <memory>

#include "models/phi3_device.h"

namespace hg {

class Phi3Model;

// Uploads the weights of m's first n_layers layers (all of them, and then the output head too,
// when n_layers < 0 or >= the model's) in their file types, allocates their KV cache (kv_type
// f16 or f32, n_ctx positions) and the scratch of a chunk in device memory of device 0.
// Throws hg::Error naming what failed: no device, a weight type the kernels lack, or too
// little free memory (what was needed and what was free).
std::unique_ptr<Phi3Device> make_phi3_cuda(const Phi3Model &m, int kv_type, int64_t n_ctx, int64_t max_chunk,
                                           int64_t n_layers);

} // namespace hg
