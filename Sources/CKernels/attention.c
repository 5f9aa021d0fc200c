#include "tc_kernels.h"
#include "tc_multiversion.h"
#include "tc_vector.h"
#include <math.h>



// The training and prefill attention runs its products per (sequence, head, block of query
// rows) as sgemm calls (Autodiff/Attention.swift); these are the element-wise steps between
// them, on the [rows, cols] score block of query rows first_row ..< first_row + rows against
// keys 0 ..< cols (cols = first_row + rows), query row i seeing keys j <= i.

// s: scaled scores q_i . k_j * scale. Becomes the probabilities p_ij (0 above the diagonal);
// lse[r] = log sum_j<=i exp(s_ij) for the block's row r (i = first_row + r).
TC_MULTIVERSION void tc_causal_softmax_forward(float *s, size_t rows, size_t cols, size_t first_row, float *lse) {
    for (size_t r = 0; r < rows; r++) {
        float *row = s + r * cols;
        size_t seen = first_row + r + 1;
        float m = tc_max_f(row, seen);
        for (size_t j = 0; j < seen; j++) row[j] = tc_exp_f(row[j] - m);
        float sum = tc_sum_f(row, seen);
        float inv = 1.f / sum;
        for (size_t j = 0; j < seen; j++) row[j] = tc_flush_subnormal_f(row[j] * inv);
        for (size_t j = seen; j < cols; j++) row[j] = 0.f;
        lse[r] = m + logf(sum);
    }
}

// s: the scaled scores again, rebuilt into p_ij = exp(s_ij - lse_i) (0 above the diagonal).
// dp: dout_i . v_j, turned into ds_ij * scale = p_ij (dp_ij - delta_i) * scale with
// delta_i = dout_i . out_i (rows of dout and out are D floats at stride ld).
TC_MULTIVERSION void tc_causal_softmax_backward(float *s, float *dp, const float *lse, const float *dout,
                                                const float *out, size_t ld, size_t D, float scale, size_t rows,
                                                size_t cols, size_t first_row) {
    for (size_t r = 0; r < rows; r++) {
        float *p = s + r * cols, *d = dp + r * cols;
        size_t seen = first_row + r + 1;
        float delta = tc_dot_f(dout + r * ld, out + r * ld, D);
        for (size_t j = 0; j < seen; j++) {
            p[j] = tc_exp_f(p[j] - lse[r]);
            d[j] = tc_flush_subnormal_f(p[j] * (d[j] - delta) * scale);
        }
        for (size_t j = seen; j < cols; j++) p[j] = d[j] = 0.f;
    }
}

TC_MULTIVERSION void tc_attention_cached(const float *q, const float *k, const float *v, float *out, size_t n,
                         size_t start, size_t Hq, size_t Hkv, size_t D, float scale,
                         size_t head_begin, size_t head_end, float *scratch) {
    size_t group = Hq / Hkv;
    size_t ldq = Hq * D, ldkv = Hkv * D;
    for (size_t h = head_begin; h < head_end; h++) {
        size_t g = h / group;
        for (size_t t = 0; t < n; t++) {
            size_t last = start + t;
            const float *qt = q + t * ldq + h * D;
            float m = -INFINITY;
            for (size_t j = 0; j <= last; j++) {
                float sc = tc_dot_f(qt, k + j * ldkv + g * D, D) * scale;
                scratch[j] = sc;
                m = sc > m ? sc : m;
            }
            for (size_t j = 0; j <= last; j++) scratch[j] = tc_exp_f(scratch[j] - m);
            float sum = tc_sum_f(scratch, last + 1);
            float inv = 1.f / sum;
            float *ot = out + t * ldq + h * D;
            for (size_t d = 0; d < D; d++) ot[d] = 0.f;
            for (size_t j = 0; j <= last; j++) {
                const float *vj = v + j * ldkv + g * D;
                float p = tc_flush_subnormal_f(scratch[j] * inv);
                for (size_t d = 0; d < D; d++) ot[d] += p * vj[d];
            }
        }
    }
}
