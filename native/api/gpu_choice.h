// The hg_gpu value every loader takes (model, CLIP, VQGAN), checked in one place.
#pragma once

#include <string>

#include "core/error.h"
#include "healthgpt.h"

namespace hg {

// Fails with fn named unless gpu is HG_GPU_OFF, HG_GPU_AUTO or HG_GPU_CUDA.
inline int checked_gpu(int gpu, const char *fn) {
    if (gpu != HG_GPU_OFF && gpu != HG_GPU_AUTO && gpu != HG_GPU_CUDA)
        fail(HG_ERR_INVALID_ARG, std::string(fn) + ": gpu " + std::to_string(gpu) + " (0 off, 1 auto, 2 cuda)");
    return gpu;
}

} // namespace hg
