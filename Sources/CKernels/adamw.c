#include "tc_optim.h"
#include "tc_multiversion.h"
#include <math.h>

TC_MULTIVERSION void tc_adamw_step(float *param, const float *grad, float *m, float *v, size_t n,
                                   float one_minus_beta1, float beta2, float one_minus_beta2, float eps,
                                   float decay_factor, float step_size, float bias_correction2_sqrt) {
    for (size_t i = 0; i < n; i++) {
        const float g = grad[i];
        const float p = param[i] * decay_factor;
        const float mi = m[i] + one_minus_beta1 * (g - m[i]);
        const float vi = beta2 * v[i] + one_minus_beta2 * g * g;
        const float denom = sqrtf(vi) / bias_correction2_sqrt + eps;
        m[i] = mi;
        v[i] = vi;
        param[i] = p - step_size * (mi / denom);
    }
}

// Four independent double accumulators: the compiler may not reorder a single floating-point
// sum (no -ffast-math), so the lanes give it parallel work to vectorise.
TC_MULTIVERSION double tc_sum_squares(const float *x, size_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)x[i] * x[i];
        s1 += (double)x[i + 1] * x[i + 1];
        s2 += (double)x[i + 2] * x[i + 2];
        s3 += (double)x[i + 3] * x[i + 3];
    }
    for (; i < n; i++) s0 += (double)x[i] * x[i];
    return (s0 + s1) + (s2 + s3);
}
