// The backend boundary of the CLIP tower (as models/phi3_device.h is the decoder's): a device
// that holds the tower's and the projectors' weights and runs encode / project with memory of
// its own (the CUDA backend: cuda/clip_cuda.h). ClipModel keeps the file and the
// hyper-parameters, checks every call, and hands it over in place of its CPU pass.
#pragma once

#include <cstdint>
#include <string>

namespace hg {

struct ClipProjector;

class ClipDevice {
  public:
    virtual ~ClipDevice() = default;
    // e.g. "cuda: NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)"
    virtual std::string describe() const = 0;
    // ClipModel::encode: pixels and out are host memory (checked by the caller).
    virtual void encode(const float *pixels, int64_t hidden_state, float *out) = 0;
    // ClipModel::project: n host rows in, n host rows of the projector's n_out out.
    virtual void project(int kind, const float *in, int64_t n, float *out) = 0;
    // encode then project without the features leaving the device: the projected rows (host,
    // n_patches x n_out) are all that is copied back.
    virtual void encode_project(const float *pixels, int64_t hidden_state, int kind, float *out) = 0;
    // ClipModel::use_projector: projector `kind` replaced by pj (its weights in their file
    // types, in a mapping the model keeps); on a failure the old one stays.
    virtual void use_projector(int kind, const ClipProjector &pj) = 0;
};

} // namespace hg
