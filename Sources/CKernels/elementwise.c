#include "tc_kernels.h"
#include "tc_multiversion.h"

TC_MULTIVERSION void tc_add(const float *a, const float *b, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
TC_MULTIVERSION void tc_mul(const float *a, const float *b, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}
TC_MULTIVERSION void tc_scale(const float *x, float s, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = s * x[i];
}
TC_MULTIVERSION void tc_axpy(float alpha, const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
}
TC_MULTIVERSION void tc_mul_accumulate(const float *a, const float *b, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += a[i] * b[i];
}
TC_MULTIVERSION void tc_fill(float *x, float value, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = value;
}
