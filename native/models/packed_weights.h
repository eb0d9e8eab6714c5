// Linear weights regrouped at load for the row-block kernels (quant/repack.h), held in one
// allocation of 2 MiB pages: the weights are streamed whole on every pass, and huge pages
// spare the TLB. Each packed tensor's pages of the file's mapping are given back, so
// resident memory keeps one copy.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/threadpool.h"
#include "gguf/gguf.h"

namespace hg {

class PackedWeights {
  public:
    // Packs every tensor (a matrix: ne[0] the row length, ne[1] the rows) whose type packing
    // pays for here (pack_pays), f16 only when with_f16, and that holds a whole row group.
    // Returns, per tensor, its packed bytes, or null where it stays in the mapping (also for
    // all of them when the memory cannot be had: slower, still correct). Once per object.
    std::vector<const void *> pack(const GGUFFile &f, const std::vector<const GGUFTensor *> &tensors, ThreadPool *pool,
                                   bool with_f16);

  private:
    struct Free {
        void operator()(uint8_t *p) const;
    };
    std::unique_ptr<uint8_t, Free> buf_;
};

} // namespace hg
