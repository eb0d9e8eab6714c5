// The two GELU activations of the vision path, each preceded by the bias of the linear
// layer it follows (the matmul writes W x; the bias is added here, in the same pass):
//   quick_gelu(x) = x * sigmoid(1.702 x)          CLIP's MLP (hidden_act "quick_gelu")
//   gelu_erf(x)   = x / 2 * (1 + erf(x / sqrt 2)) the mlp2x_gelu projector (torch nn.GELU())
#pragma once

#include <cstdint>

namespace hg {

// x: n_rows rows of n floats, updated in place to act(x + bias); bias has n floats (null:
// none).
void bias_quick_gelu(float *x, const float *bias, int64_t n, int64_t n_rows);
void bias_gelu_erf(float *x, const float *bias, int64_t n, int64_t n_rows);

// x += bias on every row (the linear layers followed by no activation).
void add_bias(float *x, const float *bias, int64_t n, int64_t n_rows);

// Plain references, one element in double.
double quick_gelu_ref(double x);
double gelu_erf_ref(double x);

} // namespace hg
