// C API: compute backends. Built into every engine; without the CUDA backend
// (HEALTHGPT_HAVE_CUDA undefined) it reports no devices.
#include "healthgpt.h"

#ifdef HEALTHGPT_HAVE_CUDA
#include "cuda/backend.h"
#endif

extern "C" {

int hg_cuda_devices(void) {
#ifdef HEALTHGPT_HAVE_CUDA
    return hg::cuda_device_count(); // noexcept: 0 when no driver or no GPU
#else
    return 0;
#endif
}

} // extern "C"
