#include "tc_kernels.h"
#include "tc_multiversion.h"
#include <math.h>

// out = silu(gate) * up, silu(g) = g * sigmoid(g)
TC_MULTIVERSION void tc_swiglu_forward(const float *gate, const float *up, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        float sig = 1.f / (1.f + expf(-g));
        out[i] = g * sig * up[i];
    }
}

// d silu(g)/dg = sig * (1 + g * (1 - sig))
TC_MULTIVERSION void tc_swiglu_backward(const float *gate, const float *up, const float *dout, float *dgate,
                        float *dup, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        float sig = 1.f / (1.f + expf(-g));
        if (dgate) dgate[i] += dout[i] * up[i] * sig * (1.f + g * (1.f - sig));
        if (dup) dup[i] += dout[i] * g * sig;
    }
}
