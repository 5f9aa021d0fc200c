#ifndef THOUGHTCRIME_DNNL_H
#define THOUGHTCRIME_DNNL_H
// Frozen-weight products through oneDNN's matmul primitive (Debian's libdnnl, linked directly:
// no pkg-config file ships). A weight is converted and reordered once, at load, into the
// layout the primitive prefers (format_tag_any), so no call repacks it; activations are
// converted per call by a oneDNN reorder; the destination is Float32.
#include <stddef.h>
#include <stdint.h>

/// Element type of the weights and activations of a product (the destination is always f32).
enum { TC_DNNL_F32 = 0, TC_DNNL_BF16 = 1 };

typedef struct tc_dnnl_weights tc_dnnl_weights;

/// 1 when oneDNN implements an m x k x n matmul of `type` on this CPU (and the ISA cap in
/// ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA); `info` receives the implementation string
/// (e.g. "brg:avx512_core_amx_bf16"), or the reason when the answer is 0.
int tc_dnnl_probe(int type, int64_t m, int64_t k, int64_t n, char *info, size_t info_size);

/// B [k, n], element (kk, j) at b[kk * stride_k + j * stride_n], converted to `type` and
/// packed for products with `m_hint` rows. Activations are staged (reordered into a dense
/// buffer of `type`) before each product when `type` is bf16, or when `stage` is set: that
/// lets an f32 product run the bf16 path's staging on CPUs without bf16. NULL (with `error`
/// filled) when oneDNN has no such primitive or memory runs out.
tc_dnnl_weights *tc_dnnl_weights_create(int type, int64_t k, int64_t n, const float *b, int64_t stride_k,
                                        int64_t stride_n, int64_t m_hint, int stage, char *error, size_t error_size);
void tc_dnnl_weights_destroy(tc_dnnl_weights *w);

/// Bytes of the packed weights.
size_t tc_dnnl_weights_bytes(const tc_dnnl_weights *w);

/// The implementation string of the primitive the weights were packed for.
const char *tc_dnnl_weights_impl(const tc_dnnl_weights *w);

/// C [m, n] (row stride ldc) (=|+=) A [m, k] (row stride lda, Float32) . B. Primitives are
/// made once per (m, lda, ldc, accumulate) and kept. Returns 0 on success, else a oneDNN
/// status with `error` filled.
int tc_dnnl_matmul(tc_dnnl_weights *w, const float *a, int64_t m, int64_t lda, float *c, int64_t ldc, int accumulate,
                   char *error, size_t error_size);

/// B back as Float32 [k, n] row-major (for reading rows of a frozen matrix).
int tc_dnnl_weights_read(const tc_dnnl_weights *w, float *dst);

/// The ISA oneDNN dispatches to (dnnl_get_effective_cpu_isa), as a short name.
const char *tc_dnnl_effective_isa(void);

/// oneDNN's version as major * 10000 + minor * 100 + patch.
int tc_dnnl_version(void);

#endif
