#ifndef THOUGHTCRIME_BF16_H
#define THOUGHTCRIME_BF16_H
// bfloat16 matrix products for frozen weights: the weight is packed once (rounded to bf16,
// laid out for the AVX512_BF16 dot-product instruction, which the AVX2 and plain C kernels
// read too), activations are rounded to bf16 on the fly, products accumulate in float32.
#include <stddef.h>
#include <stdint.h>

/// Round-to-nearest-even float32 -> bfloat16 bits (NaN stays NaN).
uint16_t tc_bf16_from_float(float x);
float tc_bf16_to_float(uint16_t h);

/// Number of uint16 elements of a packed [n, k] operand: panels of 16 rows of n, each holding
/// ceil(k/2) pairs of 16 lanes x 2 values (zero padded).
size_t tc_bf16_packed_count(int64_t n, int64_t k);

/// Packs B^T [n, k], element (j, kk) at src[j * stride_n + kk * stride_k], for C = A B^T.
void tc_bf16_pack(const float *src, int64_t n, int64_t k, int64_t stride_n, int64_t stride_k, uint16_t *dst);

/// Element (j, kk) of a packed operand, as float.
float tc_bf16_packed_get(const uint16_t *packed, int64_t k, int64_t j, int64_t kk);

/// Rounds rows of A [m, k] (row stride lda) to bf16 rows of 2 * ceil(k/2) values (zero padded).
void tc_bf16_convert_rows(const float *a, int64_t m, int64_t k, int64_t lda, uint16_t *dst);

/// The kernels behind tc_bf16_gemm. All three compute the same float32 sums in the same order
/// (per pair of k, the odd element's product first, as vdpbf16ps does); they differ only in
/// denormals, which vdpbf16ps flushes to zero.
enum {
    TC_BF16_KERNEL_AVX512BF16 = 1,  ///< vdpbf16ps, 6 rows x 32 columns per tile
    TC_BF16_KERNEL_AVX2 = 2,        ///< AVX2 + FMA emulation: bf16 widened by a shift, 4 rows x 16 columns
    TC_BF16_KERNEL_PORTABLE = 3,    ///< plain C, any CPU
};

/// C (=|+=) A B^T over a window of a packed operand B^T [n, k]: A [m, 2 * a_pairs] as written
/// by tc_bf16_convert_rows is multiplied with pairs [pair_begin, pair_begin + a_pairs) of k,
/// for the columns j of panels [panel_begin, panel_end) (16 columns each) with
/// n_begin <= j < n_end; column j goes to C[i, j - n_begin]. packed_pairs = ceil(k / 2).
/// The caller checks tc_bf16_kernel_supported(kernel) first; an unknown or absent kernel
/// returns 0 without touching C.
int tc_bf16_gemm(int kernel, const uint16_t *a, int64_t m, int64_t a_pairs, const uint16_t *packed, int64_t packed_pairs,
                 int64_t pair_begin, int64_t n_begin, int64_t n_end, float *c, int64_t ldc, int accumulate,
                 int64_t panel_begin, int64_t panel_end);

/// 1 when this build has `kernel` and the CPU and OS can run it.
int tc_bf16_kernel_supported(int kernel);

/// AMX: 1 when cpuid reports AMX-TILE and AMX-BF16, the OS enables tile state in XCR0 and the
/// kernel grants this process permission for tile data (arch_prctl ARCH_REQ_XCOMP_PERM,
/// XFEATURE_XTILEDATA = 18). Without that request the first tile instruction raises SIGILL.
/// `reason` receives a short explanation when the answer is 0.
int tc_amx_request(char *reason, size_t reason_size);

#endif
