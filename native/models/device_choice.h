// Where a model runs (hg_gpu), decided alike for the language model, CLIP and the VQGAN.
//
//   std::string why = cuda_unavailable();
//   if (why.empty()) try { <make the device>; return; } catch (const Error &e) { if (gpu == HG_GPU_CUDA) throw; why = e.what(); }
//   backend_ = cpu_backend(gpu, "clip: ", why);
#pragma once

#include <string>

#include "core/error.h"
#include "healthgpt.h"
#ifdef HEALTHGPT_HAVE_CUDA
#include "cuda/backend.h"
#endif

namespace hg {

// Why the CUDA backend cannot take a model here, or "" when a device is present.
inline std::string cuda_unavailable() {
#ifdef HEALTHGPT_HAVE_CUDA
    if (cuda_device_count() > 0) return "";
    const std::string s = cuda_status();
    return "no CUDA device" + (s.empty() ? std::string() : ": " + s);
#else
    return "this engine was built without the CUDA backend";
#endif
}

// The backend string of a model left on the CPU for why: gpu HG_GPU_CUDA makes it a load error
// (what, e.g. "clip: ", names the model), HG_GPU_AUTO says why.
inline std::string cpu_backend(int gpu, const std::string &what, const std::string &why) {
    if (gpu == HG_GPU_CUDA) fail(HG_ERR_UNSUPPORTED, what + "gpu 'cuda': " + why);
    return "cpu (" + why + ")";
}

} // namespace hg
