#include "tc_kernels.h"
#include <math.h>

// y[r] = x[r] * rstd[r] * w, rstd[r] = 1 / sqrt(mean(x[r]^2) + eps)
void tc_rmsnorm_forward(const float *x, const float *w, float *y, float *rstd,
                        size_t row_begin, size_t row_end, size_t d, float eps) {
    for (size_t r = row_begin; r < row_end; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        float ss = 0.f;
        for (size_t i = 0; i < d; i++) ss += xr[i] * xr[i];
        float s = 1.0f / sqrtf(ss / (float)d + eps);
        if (rstd) rstd[r] = s;
        for (size_t i = 0; i < d; i++) yr[i] = (xr[i] * s) * w[i];
    }
}

// With xhat = x * rstd and g = dy * w:
//   dx = rstd * (g - xhat * mean(g * xhat)),   dw = sum over rows of dy * xhat
void tc_rmsnorm_backward(const float *dy, const float *x, const float *w, const float *rstd,
                         float *dx, float *dw_partial, size_t row_begin, size_t row_end,
                         size_t d) {
    for (size_t r = row_begin; r < row_end; r++) {
        const float *xr = x + r * d, *dyr = dy + r * d;
        float s = rstd[r];
        if (dw_partial)
            for (size_t i = 0; i < d; i++) dw_partial[i] += dyr[i] * xr[i] * s;
        if (dx) {
            float dot = 0.f;
            for (size_t i = 0; i < d; i++) dot += dyr[i] * w[i] * xr[i] * s;
            float mean = dot / (float)d;
            float *dxr = dx + r * d;
            for (size_t i = 0; i < d; i++)
                dxr[i] += s * (dyr[i] * w[i] - xr[i] * s * mean);
        }
    }
}
