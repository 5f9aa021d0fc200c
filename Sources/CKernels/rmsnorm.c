#include "tc_kernels.h"
#include "tc_multiversion.h"
#include "tc_vector.h"
#include <math.h>

// y[r] = x[r] * rstd[r] * w, rstd[r] = 1 / sqrt(mean(x[r]^2) + eps)
TC_MULTIVERSION void tc_rmsnorm_forward(const float *x, const float *w, float *y, float *rstd,
                        size_t row_begin, size_t row_end, size_t d, float eps) {
    for (size_t r = row_begin; r < row_end; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        float ss = tc_dot_f(xr, xr, d);
        float s = 1.0f / sqrtf(ss / (float)d + eps);
        if (rstd) rstd[r] = s;
        for (size_t i = 0; i < d; i++) yr[i] = (xr[i] * s) * w[i];
    }
}

// With xhat = x * rstd and g = dy * w:
//   dx = rstd * (g - xhat * mean(g * xhat)),   dw = sum over rows of dy * xhat
TC_MULTIVERSION void tc_rmsnorm_backward(const float *dy, const float *x, const float *w, const float *rstd,
                         float *dx, float *dw_partial, size_t row_begin, size_t row_end,
                         size_t d) {
    for (size_t r = row_begin; r < row_end; r++) {
        const float *xr = x + r * d, *dyr = dy + r * d;
        float s = rstd[r];
        if (dw_partial)
            for (size_t i = 0; i < d; i++) dw_partial[i] += dyr[i] * xr[i] * s;
        if (dx) {
            float lanes[16] = {0};
            size_t i = 0;
            for (; i + 16 <= d; i += 16)
                for (int l = 0; l < 16; l++) lanes[l] += dyr[i + l] * w[i + l] * xr[i + l];
            float dot = 0.f;
            for (; i < d; i++) dot += dyr[i] * w[i] * xr[i];
            for (int l = 0; l < 16; l++) dot += lanes[l];
            float mean = dot * s / (float)d;
            float *dxr = dx + r * d;
            for (size_t i = 0; i < d; i++)
                dxr[i] += s * (dyr[i] * w[i] - xr[i] * s * mean);
        }
    }
}
