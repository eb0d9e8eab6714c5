// The VQGAN decoder on a CUDA device (the VqganDevice of models/vqgan_device.h). Plain C++:
// compiled into the engine only when the build has the CUDA backend.
#pragma once

#include <memory>

#include "models/vqgan_device.h"

namespace hg {

class VqganModel;

// Uploads the codebook and the decoder's weights (f32 or f16, as the file holds them; 3x3
// convs in conv2d's reordered rows) to device 0 and allocates the activations of one decode.
// Throws hg::Error naming what failed (no device, too little free memory).
std::unique_ptr<VqganDevice> make_vqgan_cuda(const VqganModel &m);

} // namespace hg
