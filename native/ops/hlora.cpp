#include "ops/hlora.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "ops/matmul.h"
#include "quant/quant.h"

namespace hg {

static void check_tensor(const std::string &name, const char *what, const std::vector<float> &t,
                         int64_t rows, int64_t cols) {
    if ((int64_t)t.size() != rows * cols)
        fail(name + "." + what + ": " + std::to_string(t.size()) + " values, expected " +
             std::to_string(rows) + " x " + std::to_string(cols));
    for (size_t i = 0; i < t.size(); i++)
        if (!std::isfinite(t[i])) fail(name + "." + what + ": non-finite value at index " + std::to_string(i));
}

HLoraAdapter HLoraAdapter::make(const std::string &name, int64_t in, int64_t out, int64_t rank,
                                int64_t n_experts, float alpha, const std::vector<float> &router,
                                const std::vector<float> &lora_a, const std::vector<float> &lora_b) {
    if (in <= 0 || out <= 0 || rank <= 0 || n_experts <= 0)
        fail(name + ": in, out, rank and experts must be positive");
    if (rank % n_experts != 0)
        fail(name + ": rank " + std::to_string(rank) + " is not divisible by " + std::to_string(n_experts) + " experts");
    if (!std::isfinite(alpha)) fail(name + ": alpha is not finite");
    check_tensor(name, "router", router, n_experts, in);
    check_tensor(name, "lora_A", lora_a, rank, in);
    check_tensor(name, "lora_B", lora_b, out, rank);
    HLoraAdapter ad;
    ad.in = in, ad.out = out, ad.rank = rank, ad.n_experts = n_experts, ad.alpha = alpha;
    ad.router_lora_a = router;
    ad.router_lora_a.insert(ad.router_lora_a.end(), lora_a.begin(), lora_a.end());
    ad.lora_b = lora_b;
    return ad;
}

// route = softmax(logits[0..n)); g[k] = a[k] * s * route[k / (r / n)], in place over a.
static void route_and_scale(const HLoraAdapter &ad, const float *logits, float *g) {
    const int64_t n = ad.n_experts, per = ad.rank / n;
    float route[64];
    std::vector<float> big;
    float *p = route;
    if (n > 64) {
        big.resize(n);
        p = big.data();
    }
    float mx = logits[0];
    for (int64_t j = 1; j < n; j++) mx = std::max(mx, logits[j]);
    float sum = 0;
    for (int64_t j = 0; j < n; j++) sum += p[j] = std::exp(logits[j] - mx);
    const float s = ad.scale() / sum;
    for (int64_t k = 0; k < ad.rank; k++) g[k] = logits[n + k] * s * p[k / per];
}

void hlora_linear(ThreadPool &pool, const HLoraAdapter &ad, int w_type, const void *w,
                  const float *x, int64_t n_tokens, float *y) {
    const int64_t n = ad.n_experts, r = ad.rank, ra = n + r;
    matmul(pool, w_type, w, ad.out, ad.in, x, n_tokens, y);
    // router logits and A x for every token in one pass over x
    std::vector<float> t((size_t)(ra * n_tokens));
    matmul(pool, HG_TYPE_F32, ad.router_lora_a.data(), ra, ad.in, x, n_tokens, t.data());
    std::vector<float> g((size_t)(r * n_tokens));
    for (int64_t c = 0; c < n_tokens; c++) route_and_scale(ad, &t[c * ra], &g[c * r]);
    std::vector<float> bg((size_t)(ad.out * n_tokens));
    matmul(pool, HG_TYPE_F32, ad.lora_b.data(), ad.out, r, g.data(), n_tokens, bg.data());
    for (size_t i = 0; i < bg.size(); i++) y[i] += bg[i];
}

void hlora_linear_ref(const HLoraAdapter &ad, int w_type, const void *w, const float *x,
                      int64_t n_tokens, float *y) {
    const type_info *ti = type_traits(w_type);
    if (!ti || !ti->to_float) fail("hlora: cannot read weight type " + std::to_string(w_type));
    const size_t row = row_bytes(w_type, ad.in);
    std::vector<float> wrow((size_t)ad.in);
    const int64_t n = ad.n_experts, r = ad.rank, per = r / n;
    const float *R = ad.router_lora_a.data(), *A = R + n * ad.in;
    for (int64_t c = 0; c < n_tokens; c++) {
        const float *xc = x + c * ad.in;
        auto dot = [&](const float *a) {
            double s = 0;
            for (int64_t i = 0; i < ad.in; i++) s += (double)a[i] * xc[i];
            return s;
        };
        std::vector<double> route(n), g(r);
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n; j++) mx = std::max(mx, route[j] = dot(R + j * ad.in));
        for (int64_t j = 0; j < n; j++) sum += route[j] = std::exp(route[j] - mx);
        for (int64_t j = 0; j < n; j++) route[j] /= sum;
        for (int64_t k = 0; k < r; k++) g[k] = dot(A + k * ad.in) * ad.scale() * route[k / per];
        for (int64_t o = 0; o < ad.out; o++) {
            ti->to_float(static_cast<const uint8_t *>(w) + o * row, wrow.data(), ad.in);
            double v = dot(wrow.data());
            for (int64_t k = 0; k < r; k++) v += (double)ad.lora_b[o * r + k] * g[k];
            y[c * ad.out + o] = (float)v;
        }
    }
}

} // namespace hg
