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
#endif
