#include "tc_kernels.h"
#include "tc_multiversion.h"
#include "tc_vector.h"
#include <math.h>



// For query head h (kv head h / (Hq/Hkv)) and token i, attends to j in [seg_start[i], i]:
//   p_j = softmax_j(scale * q_i . k_j),  out_i = sum_j p_j v_j,  lse[h, i] = log sum_j exp(...)
// Only lse is kept for the backward pass; probabilities are recomputed there.
TC_MULTIVERSION void tc_attention_forward(const float *q, const float *k, const float *v,
                          const int32_t *seg_start, float *out, float *lse, size_t T, size_t Hq,
                          size_t Hkv, size_t D, float scale, size_t head_begin, size_t head_end,
                          float *scratch) {
    size_t group = Hq / Hkv;
    size_t ldq = Hq * D, ldkv = Hkv * D;
    for (size_t h = head_begin; h < head_end; h++) {
        size_t g = h / group;
        for (size_t i = 0; i < T; i++) {
            size_t s = (size_t)seg_start[i];
            const float *qi = q + i * ldq + h * D;
            float m = -INFINITY;
            for (size_t j = s; j <= i; j++) {
                float sc = tc_dot_f(qi, k + j * ldkv + g * D, D) * scale;
                scratch[j] = sc;
                m = sc > m ? sc : m;
            }
            float sum = 0.f;
            for (size_t j = s; j <= i; j++) {
                scratch[j] = expf(scratch[j] - m);
                sum += scratch[j];
            }
            float inv = 1.f / sum;
            float *oi = out + i * ldq + h * D;
            for (size_t d = 0; d < D; d++) oi[d] = 0.f;
            for (size_t j = s; j <= i; j++) {
                const float *vj = v + j * ldkv + g * D;
                float p = scratch[j] * inv;
                for (size_t d = 0; d < D; d++) oi[d] += p * vj[d];
            }
            lse[h * T + i] = m + logf(sum);
        }
    }
}

// With p recomputed from lse, dp_j = dout_i . v_j and delta_i = dout_i . out_i:
//   ds_j = p_j (dp_j - delta_i);  dq_i += scale sum_j ds_j k_j;
//   dk_j += scale ds_j q_i;       dv_j += p_j dout_i
// One call owns kv head kv_head and all query heads that read it, so calls for different
// kv heads never write the same memory.
TC_MULTIVERSION void tc_attention_backward(const float *q, const float *k, const float *v,
                           const int32_t *seg_start, const float *out, const float *lse,
                           const float *dout, float *dq, float *dk, float *dv, size_t T,
                           size_t Hq, size_t Hkv, size_t D, float scale, size_t kv_head,
                           float *scratch) {
    size_t group = Hq / Hkv;
    size_t ldq = Hq * D, ldkv = Hkv * D;
    float *p = scratch, *ds = scratch + T;
    for (size_t h = kv_head * group; h < (kv_head + 1) * group; h++) {
        for (size_t i = 0; i < T; i++) {
            size_t s = (size_t)seg_start[i];
            const float *qi = q + i * ldq + h * D;
            const float *doi = dout + i * ldq + h * D;
            float l = lse[h * T + i];
            float delta = tc_dot_f(doi, out + i * ldq + h * D, D);
            for (size_t j = s; j <= i; j++) {
                const float *kj = k + j * ldkv + kv_head * D;
                const float *vj = v + j * ldkv + kv_head * D;
                p[j] = expf(tc_dot_f(qi, kj, D) * scale - l);
                ds[j] = p[j] * (tc_dot_f(doi, vj, D) - delta) * scale;
            }
            if (dq) {
                float *dqi = dq + i * ldq + h * D;
                for (size_t j = s; j <= i; j++) {
                    const float *kj = k + j * ldkv + kv_head * D;
                    for (size_t d = 0; d < D; d++) dqi[d] += ds[j] * kj[d];
                }
            }
            for (size_t j = s; j <= i; j++) {
                if (dk) {
                    float *dkj = dk + j * ldkv + kv_head * D;
                    for (size_t d = 0; d < D; d++) dkj[d] += ds[j] * qi[d];
                }
                if (dv) {
                    float *dvj = dv + j * ldkv + kv_head * D;
                    for (size_t d = 0; d < D; d++) dvj[d] += p[j] * doi[d];
                }
            }
        }
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
            float sum = 0.f;
            for (size_t j = 0; j <= last; j++) {
                scratch[j] = expf(scratch[j] - m);
                sum += scratch[j];
            }
            float inv = 1.f / sum;
            float *ot = out + t * ldq + h * D;
            for (size_t d = 0; d < D; d++) ot[d] = 0.f;
            for (size_t j = 0; j <= last; j++) {
                const float *vj = v + j * ldkv + g * D;
                float p = scratch[j] * inv;
                for (size_t d = 0; d < D; d++) ot[d] += p * vj[d];
            }
        }
    }
}
