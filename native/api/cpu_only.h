// The backend of an engine object that has no CUDA implementation yet (CLIP, the VQGAN):
// the same hg_gpu choice the language model takes, answered with the CPU or a clear error.
#pragma once

#include <string>

#include "core/error.h"
#include "healthgpt.h"

namespace hg {

// "cpu" for HG_GPU_OFF; "cpu (<what> on CUDA is not implemented yet)" for HG_GPU_AUTO (the
// reason *_backend() gives, as hg_model_backend() does); HG_GPU_CUDA and unknown values fail
// with fn named.
inline std::string cpu_only_backend(int gpu, const char *fn, const char *what) {
    const std::string not_yet = std::string(what) + " on CUDA is not implemented yet";
    switch (gpu) {
    case HG_GPU_OFF: return "cpu";
    case HG_GPU_AUTO: return "cpu (" + not_yet + ")";
    case HG_GPU_CUDA: fail(HG_ERR_UNSUPPORTED, std::string(fn) + ": " + not_yet + "; gpu auto runs it on the CPU");
    default: fail(HG_ERR_INVALID_ARG, std::string(fn) + ": gpu " + std::to_string(gpu) + " (0 off, 1 auto, 2 cuda)");
    }
}

} // namespace hg
