#include "tc_kernels.h"
#include "tc_multiversion.h"
#include "tc_vector.h"
#include <math.h>

// The exponentials use tc_exp_f and sixteen partial sums so the loops over a vocabulary chunk
// vectorise: libm's expf is one call per logit, and a single running sum cannot be reordered.

TC_MULTIVERSION void tc_ce_logsumexp_update(const float *logits, size_t rows, size_t cols, size_t ld,
                            float *row_max, float *row_sum) {
    for (size_t r = 0; r < rows; r++) {
        const float *lr = logits + r * ld;
        float m = row_max[r];
        float chunk_max = tc_max_f(lr, cols);
        float new_max = chunk_max > m ? chunk_max : m;
        float s = (m == -INFINITY) ? 0.f : row_sum[r] * tc_exp_f(m - new_max);
        float lanes[16] = {0};
        size_t c = 0;
        for (; c + 16 <= cols; c += 16)
            for (int l = 0; l < 16; l++) lanes[l] += tc_exp_f(lr[c + l] - new_max);
        for (; c < cols; c++) s += tc_exp_f(lr[c] - new_max);
        for (int l = 0; l < 16; l++) s += lanes[l];
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
        for (size_t c = 0; c < cols; c++) lr[c] = tc_flush_subnormal_f(tc_exp_f(lr[c] - l) * scale);
        int32_t t = target_local[r];
        if (t >= 0 && (size_t)t < cols) lr[t] -= scale;
    }
}
