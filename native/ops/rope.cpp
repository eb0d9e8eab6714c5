#include "ops/rope.h"

#include <cmath>

namespace hg {

void rope_cos_sin(const int32_t *pos, int64_t n_tokens, int n_rot, float freq_base, float *cos, float *sin) {
    const int half = n_rot / 2;
    for (int64_t t = 0; t < n_tokens; t++)
        for (int i = 0; i < half; i++) {
            const float inv_freq = (float)(1.0 / std::pow((double)freq_base, 2.0 * i / n_rot));
            const float angle = (float)pos[t] * inv_freq;
            cos[t * half + i] = (float)std::cos((double)angle);
            sin[t * half + i] = (float)std::sin((double)angle);
        }
}

void rope_apply(float *x, int64_t n_tokens, int64_t token_stride, int64_t n_heads, int64_t head_dim, int n_rot,
                const float *cos, const float *sin) {
    const int half = n_rot / 2;
    for (int64_t t = 0; t < n_tokens; t++) {
        const float *c = cos + t * half, *s = sin + t * half;
        for (int64_t h = 0; h < n_heads; h++) {
            float *lo = x + t * token_stride + h * head_dim, *hi = lo + half;
            for (int i = 0; i < half; i++) {
                const float a = lo[i], b = hi[i];
                lo[i] = a * c[i] - b * s[i];
                hi[i] = b * c[i] + a * s[i];
            }
        }
    }
}

void rope_ref(float *x, int64_t n_tokens, int64_t token_stride, int64_t n_heads, int64_t head_dim, int n_rot,
              const int32_t *pos, float freq_base) {
    const int half = n_rot / 2;
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t h = 0; h < n_heads; h++) {
            float *head = x + t * token_stride + h * head_dim;
            for (int i = 0; i < half; i++) {
                const double angle = pos[t] * std::pow((double)freq_base, -2.0 * i / n_rot);
                const double a = head[i], b = head[i + half];
                head[i] = (float)(a * std::cos(angle) - b * std::sin(angle));
                head[i + half] = (float)(b * std::cos(angle) + a * std::sin(angle));
            }
        }
}

} // namespace hg
