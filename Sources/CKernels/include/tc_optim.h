#ifndef THOUGHTCRIME_OPTIM_H
#define THOUGHTCRIME_OPTIM_H
// Optimiser kernels: AdamW's fused update and the sum of squares behind gradient clipping.
#include <stddef.h>

/// One AdamW step over n parameters, in place, with torch.optim.AdamW semantics:
///   p -= lr*weight_decay*p            (decoupled decay, applied before the moment update)
///   m += (1-beta1)*(g - m)            (torch's lerp form)
///   v  = beta2*v + (1-beta2)*g*g
///   p -= step_size * m / (sqrt(v)/bias_correction2_sqrt + eps)
/// The caller computes the scalars in double, as torch does in Python:
///   decay_factor = 1 - lr*weight_decay, step_size = lr/(1-beta1^t),
///   bias_correction2_sqrt = sqrt(1-beta2^t), and 1-beta1, 1-beta2 (1 - 0.999f in float is
///   off by 5e-5 relative, enough to drift from torch).
void tc_adamw_step(float *param, const float *grad, float *m, float *v, size_t n,
                   float one_minus_beta1, float beta2, float one_minus_beta2, float eps,
                   float decay_factor, float step_size, float bias_correction2_sqrt);

/// Sum of x[i]^2, accumulated in double so that millions of small gradients do not lose
/// precision.
double tc_sum_squares(const float *x, size_t n);
#endif
