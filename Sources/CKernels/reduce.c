#include "tc_kernels.h"
#include "tc_multiversion.h"
#include "tc_vector.h"
#include <math.h>

// Sums in float lanes of 16 (vectorisable), folding each 4096-element block into a double so
// that long reductions do not lose precision.
TC_MULTIVERSION double tc_sum(const float *x, size_t n) {
    double total = 0.0;
    size_t i = 0;
    while (i < n) {
        size_t end = i + 4096 < n ? i + 4096 : n;
        float lanes[16] = {0};
        size_t j = i;
        for (; j + 16 <= end; j += 16)
            for (int l = 0; l < 16; l++) lanes[l] += x[j + l];
        float block = 0.f;
        for (int l = 0; l < 16; l++) block += lanes[l];
        for (; j < end; j++) block += x[j];
        total += block;
        i = end;
    }
    return total;
}

TC_MULTIVERSION double tc_dot(const float *a, const float *b, size_t n) {
    double total = 0.0;
    size_t i = 0;
    while (i < n) {
        size_t end = i + 4096 < n ? i + 4096 : n;
        float lanes[16] = {0};
        size_t j = i;
        for (; j + 16 <= end; j += 16)
            for (int l = 0; l < 16; l++) lanes[l] += a[j + l] * b[j + l];
        float block = 0.f;
        for (int l = 0; l < 16; l++) block += lanes[l];
        for (; j < end; j++) block += a[j] * b[j];
        total += block;
        i = end;
    }
    return total;
}

TC_MULTIVERSION float tc_max(const float *x, size_t n) { return tc_max_f(x, n); }

TC_MULTIVERSION void tc_softmax_rows(const float *x, float *out, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = out + r * cols;
        float m = tc_max(xr, cols);
        float s = 0.f;
        for (size_t c = 0; c < cols; c++) {
            yr[c] = expf(xr[c] - m);
            s += yr[c];
        }
        float inv = 1.f / s;
        for (size_t c = 0; c < cols; c++) yr[c] = tc_flush_subnormal_f(yr[c] * inv);
    }
}
