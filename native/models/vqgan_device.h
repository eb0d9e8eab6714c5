// The backend boundary of the VQGAN decoder (as models/phi3_device.h is the language model's):
// a device with the decoder's weights and its own activation memory (the CUDA backend:
// cuda/vqgan_cuda.h). VqganModel keeps the file, checks the indices, and hands decode over.
#pragma once

#include <cstdint>
#include <string>

namespace hg {

class VqganDevice {
  public:
    virtual ~VqganDevice() = default;
    virtual std::string describe() const = 0;
    // VqganModel::decode: latent^2 indices already checked against the codebook (host memory)
    // -> out_ch x resolution x resolution floats (host, CHW); only that image leaves the device.
    virtual void decode(const int32_t *indices, float *image_chw) = 0;
};

} // namespace hg
