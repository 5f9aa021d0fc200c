#include "tc_kernels.h"
#include "tc_multiversion.h"
#include "tc_vector.h"
#include <math.h>

// sigmoid goes through tc_exp_f so the loops vectorise; libm's expf is a call per element.
// For gate values below about -88 sigmoid underflows: it is flushed to an exact 0 (tc_vector.h),
// so silu and both gradients are exact zeros there. The products themselves are not flushed:
// a product of normal values that underflows is left to the thread's FTZ mode (flushing it here
// too measured 10% slower SwiGLU backward passes on a Zen 3).
static inline float sigmoid(float g) { return tc_flush_subnormal_f(1.f / (1.f + tc_exp_f(-g))); }

// out = silu(gate) * up, silu(g) = g * sigmoid(g)
TC_MULTIVERSION void tc_swiglu_forward(const float *gate, const float *up, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        float sig = sigmoid(g);
        out[i] = g * sig * up[i];
    }
}

// d silu(g)/dg = sig * (1 + g * (1 - sig))
TC_MULTIVERSION void tc_swiglu_backward(const float *gate, const float *up, const float *dout, float *dgate,
                        float *dup, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        float sig = sigmoid(g);
        if (dgate) dgate[i] += dout[i] * up[i] * sig * (1.f + g * (1.f - sig));
        if (dup) dup[i] += dout[i] * g * sig;
    }
}

TC_MULTIVERSION void tc_swiglu_backward_in_place(const float *restrict gate, const float *restrict up,
                                                 float *restrict dout_to_dup, float *restrict dgate,
                                                 int accumulate_gate, size_t n) {
    float *restrict d = dout_to_dup;
    if (!dgate) {
        for (size_t i = 0; i < n; i++) {
            float g = gate[i];
            float sig = sigmoid(g);
            d[i] = d[i] * g * sig;
        }
    } else if (accumulate_gate) {
        for (size_t i = 0; i < n; i++) {
            float g = gate[i], dy = d[i];
            float sig = sigmoid(g);
            dgate[i] += dy * up[i] * sig * (1.f + g * (1.f - sig));
            d[i] = dy * g * sig;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float g = gate[i], dy = d[i];
            float sig = sigmoid(g);
            dgate[i] = dy * up[i] * sig * (1.f + g * (1.f - sig));
            d[i] = dy * g * sig;
        }
    }
}
