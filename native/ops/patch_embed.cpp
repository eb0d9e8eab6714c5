#include "ops/patch_embed.h"

#include <vector>

#include "core/error.h"
#include "ops/matmul.h"

namespace hg {

void patch_im2col(const float *pixels, int64_t channels, int64_t height, int64_t width, int64_t patch, float *cols) {
    const int64_t gy = height / patch, gx = width / patch, k = channels * patch * patch;
    for (int64_t py = 0; py < gy; py++)
        for (int64_t px = 0; px < gx; px++) {
            float *col = cols + (py * gx + px) * k;
            for (int64_t c = 0; c < channels; c++)
                for (int64_t ky = 0; ky < patch; ky++) {
                    const float *src = pixels + (c * height + py * patch + ky) * width + px * patch;
                    for (int64_t kx = 0; kx < patch; kx++) *col++ = src[kx];
                }
        }
}

void patch_embed(ThreadPool &pool, int type, const void *weight, int64_t n_embd, const float *pixels, int64_t channels,
                 int64_t height, int64_t width, int64_t patch, float *out) {
    if (patch <= 0 || height % patch != 0 || width % patch != 0)
        fail("patch_embed: image " + std::to_string(height) + "x" + std::to_string(width) +
             " is not a whole number of " + std::to_string(patch) + " px patches");
    const int64_t n_patches = (height / patch) * (width / patch), k = channels * patch * patch;
    std::vector<float> cols((size_t)(n_patches * k));
    patch_im2col(pixels, channels, height, width, patch, cols.data());
    matmul(pool, type, weight, n_embd, k, cols.data(), n_patches, out);
}

void patch_embed_ref(const float *weight, int64_t n_embd, const float *pixels, int64_t channels, int64_t height,
                     int64_t width, int64_t patch, float *out) {
    const int64_t gy = height / patch, gx = width / patch;
    for (int64_t py = 0; py < gy; py++)
        for (int64_t px = 0; px < gx; px++)
            for (int64_t e = 0; e < n_embd; e++) {
                double sum = 0;
                for (int64_t c = 0; c < channels; c++)
                    for (int64_t ky = 0; ky < patch; ky++)
                        for (int64_t kx = 0; kx < patch; kx++)
                            sum += (double)weight[((e * channels + c) * patch + ky) * patch + kx] *
                                   pixels[(c * height + py * patch + ky) * width + px * patch + kx];
                out[(py * gx + px) * n_embd + e] = (float)sum;
            }
}

} // namespace hg
