#include "tc_kernels.h"
#include "tc_multiversion.h"
#include <math.h>

// Frequencies follow Hugging Face: inv_freq[i] = 1 / base^(2i / head_dim) in float32 and
// angle = position * inv_freq in float32, so logits line up with transformers' rounding.
TC_MULTIVERSION void tc_rope(const float *x, float *y, const int32_t *positions, size_t token_begin,
             size_t token_end, size_t heads, size_t head_dim, float theta_base, int interleaved,
             int direction, int accumulate) {
    size_t half = head_dim / 2;
    float cosv[512], sinv[512];
    float inv_freq[512];
    for (size_t i = 0; i < half && i < 512; i++)
        inv_freq[i] = (float)(1.0 / pow((double)theta_base, (double)(2 * i) / (double)head_dim));
    for (size_t t = token_begin; t < token_end; t++) {
        float pos = (float)positions[t];
        for (size_t i = 0; i < half; i++) {
            float angle = pos * inv_freq[i];
            cosv[i] = cosf(angle);
            sinv[i] = (float)direction * sinf(angle);
        }
        for (size_t h = 0; h < heads; h++) {
            const float *xr = x + (t * heads + h) * head_dim;
            float *yr = y + (t * heads + h) * head_dim;
            for (size_t i = 0; i < half; i++) {
                size_t a = interleaved ? 2 * i : i;
                size_t b = interleaved ? 2 * i + 1 : i + half;
                float x0 = xr[a], x1 = xr[b];
                float r0 = x0 * cosv[i] - x1 * sinv[i];
                float r1 = x0 * sinv[i] + x1 * cosv[i];
                if (accumulate) { yr[a] += r0; yr[b] += r1; }
                else { yr[a] = r0; yr[b] = r1; }
            }
        }
    }
}
