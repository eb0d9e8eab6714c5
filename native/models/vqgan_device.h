// The backend boundary of the VQGAN decoder (as models/phi3_device.h is the language model's):
// a device with the decoder's weights and its own activation memory (the CUDA backend:
// cuda/vqgan_cuda.h). VqganModel keeps the file, checks the inputs, and hands decode and
// encode over.
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
    // Whether the encoder's weights are on the device (the file has an encoder).
    virtual bool has_encoder() const = 0;
    // VqganModel::encode: in_channels x resolution^2 floats (host, CHW, checked finite) ->
    // latent^2 indices (host), and the logits (host, may be null) when asked for.
    virtual void encode(const float *image_chw, int32_t *indices, float *logits) = 0;
};

} // namespace hg
