#include "tc_kernels.h"
#include "tc_multiversion.h"
#include <math.h>

TC_MULTIVERSION void tc_ce_logsumexp_update(const float *logits, size_t rows, size_t cols, size_t ld,
                            float *row_max, float *row_sum) {
    for (size_t r = 0; r < rows; r++) {
        const float *lr = logits + r * ld;
        float m = row_max[r];
        float chunk_max = -INFINITY;
        for (size_t c = 0; c < cols; c++) chunk_max = lr[c] > chunk_max ? lr[c] : chunk_max;
        float new_max = chunk_max > m ? chunk_max : m;
        float s = (m == -INFINITY) ? 0.f : row_sum[r] * expf(m - new_max);
        for (size_t c = 0; c < cols; c++) s += expf(lr[c] - new_max);
        row_max[r] = new_max;
        row_sum[r] = s;
    }
}

TC_MULTIVERSION void tc_ce_gradient_chunk(float *logits, size_t rows, size_t cols, size_t ld, const float *lse,
                          const int32_t *target_local, float scale, const float *row_scales) {
    for (size_t r = 0; r < rows; r++) {
        float *lr = logits + r * ld;
        float l = lse[r];
        if (row_scales) scale = row_scales[r];
        for (size_t c = 0; c < cols; c++) lr[c] = expf(lr[c] - l) * scale;
        int32_t t = target_local[r];
        if (t >= 0 && (size_t)t < cols) lr[t] -= scale;
    }
}
