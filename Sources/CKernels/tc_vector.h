#ifndef THOUGHTCRIME_VECTOR_H
#define THOUGHTCRIME_VECTOR_H
#include <stddef.h>

// Sixteen independent partial sums let the compiler vectorise without reassociating floats.
static inline float tc_dot_f(const float *a, const float *b, size_t n) {
    float lanes[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) lanes[l] += a[i + l] * b[i + l];
    float s = 0.f;
    for (; i < n; i++) s += a[i] * b[i];
    for (int l = 0; l < 16; l++) s += lanes[l];
    return s;
}

static inline float tc_sum_f(const float *a, size_t n) {
    float lanes[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) lanes[l] += a[i + l];
    float s = 0.f;
    for (; i < n; i++) s += a[i];
    for (int l = 0; l < 16; l++) s += lanes[l];
    return s;
}

// Largest element (-inf for n = 0; NaNs are skipped, as a running `>` comparison skips them).
// The maximum does not depend on order, so sixteen lanes give the same result as one.
static inline float tc_max_f(const float *a, size_t n) {
    float lanes[16];
    for (int l = 0; l < 16; l++) lanes[l] = -__builtin_inff();
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) lanes[l] = a[i + l] > lanes[l] ? a[i + l] : lanes[l];
    float m = -__builtin_inff();
    for (; i < n; i++) m = a[i] > m ? a[i] : m;
    for (int l = 0; l < 16; l++) m = lanes[l] > m ? lanes[l] : m;
    return m;
}

// e^x with Cephes' expf polynomial (about 1 ulp over the range softmax uses). Written without
// calls or branches so loops over it vectorise; libm's expf is a call per element, which was
// 3.5% of a training step inside attention's softmax. Below -87.3 the result would be under
// FLT_MIN, a subnormal that stalls Intel cores in every product that reads it (float_mode.c),
// so it is an exact 0 there.
static inline float tc_exp_f(float x) {
    float underflows = x < -87.3f;
    x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
    float k = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - k * 0.693359375f + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { unsigned int u; float f; } scale = { (unsigned int)((int)k + 127) << 23 };
    return underflows ? 0.f : p * scale.f;
}

// x, or an exact 0 when x is subnormal (|x| < FLT_MIN): for values that can underflow after a
// division or scaling (probabilities, their gradients), whatever the thread's FTZ mode.
static inline float tc_flush_subnormal_f(float x) { return __builtin_fabsf(x) < 1.17549435e-38f ? 0.f : x; }
#endif
