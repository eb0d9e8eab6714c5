// The CLIP tower and its projectors on a CUDA device (the ClipDevice of models/clip_device.h).
// Plain C++: compiled into the engine only when the build has the CUDA backend.
#pragma once

#include <memory>

#include "models/clip_device.h"

namespace hg {

class ClipModel;

// Uploads every layer's and both projectors' weights in their file types to device 0 and
// allocates the activations of one image. Throws hg::Error naming what failed: no device, a
// weight type the kernels lack, too little free memory.
std::unique_ptr<ClipDevice> make_clip_cuda(const ClipModel &m);

} // namespace hg
