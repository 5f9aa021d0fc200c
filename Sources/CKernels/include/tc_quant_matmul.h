#ifndef THOUGHTCRIME_QUANT_MATMUL_H
#define THOUGHTCRIME_QUANT_MATMUL_H
// Products of a few activation rows with a weight matrix kept in ggml blocks, for decoding:
//
//   y[i, r] = x[i, :] . W[r, :]     for i < n (small, 1..16) and r in [row_begin, row_end)
//
// The activations are first quantised to 8 bits per 32-element block (as llama.cpp's q8
// activations), so each weight block meets them in an integer dot product (AVX-512 VNNI
// when the CPU has it, portable C otherwise); every weight block is read once per call for
// all n activation rows, so a batch of sequences shares one pass over the weights.
//
// Accuracy: the weights are used exactly; the activations carry a rounding error of at most
// half a step (amax / 254) per 32-element block, so a result differs from the exact product
// with dequantised weights by well under 1e-2 of |x| |w| (tested per type).
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Results of tc_quant_matmul.
enum {
    TC_QMATMUL_OK = 0,
    TC_QMATMUL_UNSUPPORTED_TYPE = -1,
    TC_QMATMUL_PARTIAL_BLOCK = -2, // cols is not a multiple of the type's block size
    TC_QMATMUL_UNSUPPORTED_CPU = -3, // the requested vector path needs instructions this CPU lacks
};

// 1 when tc_quant_matmul handles ggml type `ggml_type` (Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K).
int tc_quant_matmul_is_supported(uint32_t ggml_type);

// Bytes of the buffer tc_quantize_activations fills for n rows of `cols` (a multiple of 32).
size_t tc_quant_activation_bytes(int64_t n, int64_t cols);

// Quantises x [n, cols] (row-major, cols a multiple of 32) into `activations`
// (tc_quant_activation_bytes(n, cols) bytes, 64-byte aligned).
void tc_quantize_activations(const float *x, int64_t n, int64_t cols, void *activations);

// y[i * ldy + r] (+)= x_i . W_r for i < n, r in [row_begin, row_end). `weights` points at row 0
// of W, whose rows are `row_bytes` apart; `activations` was filled by tc_quantize_activations
// with the same n and cols. Rows are independent: disjoint row ranges may run concurrently.
int tc_quant_matmul(uint32_t ggml_type, const void *weights, size_t row_bytes, int64_t row_begin,
                    int64_t row_end, int64_t cols, const void *activations, int64_t n, float *y,
                    int64_t ldy, int accumulate);

// tc_quant_matmul on the portable C path whatever the CPU, so tests can check it against the
// vector path on machines that have one.
int tc_quant_matmul_portable(uint32_t ggml_type, const void *weights, size_t row_bytes, int64_t row_begin,
                             int64_t row_end, int64_t cols, const void *activations, int64_t n, float *y,
                             int64_t ldy, int accumulate);

// The same product without rounding the activations: y[i * ldy + r] (+)= x[i * cols ..] . W_r
// with Float32 x [n, cols]. Tiles of 4 weight rows are expanded to Float32 in L1-sized column
// chunks and met by every activation row, so weights are still read once per call; the result
// equals the product with dequantised weights up to Float32 summation order. Supports every
// type tc_dequantize_row does except F32 (cols a multiple of the block size).
int tc_quant_matmul_f32(uint32_t ggml_type, const void *weights, size_t row_bytes, int64_t row_begin,
                        int64_t row_end, int64_t cols, const float *x, int64_t n, float *y, int64_t ldy,
                        int accumulate);

// ---------------------------------------------------------------------------------------------
// Row-interleaved ("x16") layout for decoding Q4_0, Q4_1 and Q8_0 matrices.
//
// Groups of 16 rows are stored block by block so that one 512-bit register holds the same
// columns of 16 rows: each SIMD lane accumulates a different output row, scales of 16 rows
// convert with one instruction, and no horizontal sums are needed. Per group and 32-column
// block b (16 x the ggml block size, so the matrix keeps its size):
//   Q4_0: f16 d[16] | uint32 nibbles[4][16]      Q4_1: f16 d[16] | f16 m[16] | uint32 nibbles[4][16]
//   Q8_0: f16 d[16] | uint32 bytes[8][16]
// where nibbles[k][r] holds columns 8k..8k+7 of row r (column 8k + c in bits 4c..4c+3) and
// bytes[k][r] holds columns 4k..4k+3 (column 4k + c in bits 8c..8c+7).

// 1 when `ggml_type` has an x16 layout (Q4_0, Q4_1, Q8_0).
int tc_x16_is_supported(uint32_t ggml_type);

// 1 when tc_x16_matmul has a vector implementation on this CPU (AVX-512, or AVX2 with FMA and
// F16C); without one the row-wise tc_quant_matmul_f32 is the faster choice.
int tc_x16_is_fast(void);

// Repacks `rows` (a multiple of 16) ggml rows of `cols` weights, `row_bytes` apart, into the x16
// layout at `packed` (rows * row_bytes bytes).
int tc_x16_pack(uint32_t ggml_type, const void *ggml_rows, size_t row_bytes, int64_t rows, int64_t cols, void *packed);

// Row `row` of an x16 matrix with `cols` columns, expanded to Float32.
int tc_x16_dequantize_row(uint32_t ggml_type, const void *packed, int64_t cols, int64_t row, float *dst);

// y[i * ldy + r] (+)= x[i * cols ..] . W_r for i < n and rows r of groups [group_begin,
// group_end) (rows 16 g .. 16 g + 15), with Float32 activations: the weights are expanded in
// registers and the result equals the product with dequantised weights up to Float32
// summation order. Each group is read once for all n rows.
int tc_x16_matmul(uint32_t ggml_type, const void *packed, int64_t group_begin, int64_t group_end, int64_t cols,
                  const float *x, int64_t n, float *y, int64_t ldy, int accumulate);

// tc_x16_matmul on the portable C path whatever the CPU (for testing it).
int tc_x16_matmul_portable(uint32_t ggml_type, const void *packed, int64_t group_begin, int64_t group_end,
                           int64_t cols, const float *x, int64_t n, float *y, int64_t ldy, int accumulate);

// tc_x16_matmul on the AVX2 path whatever wider vectors the CPU has (for testing it);
// TC_QMATMUL_UNSUPPORTED_CPU on a CPU without AVX2, FMA and F16C.
int tc_x16_matmul_avx2(uint32_t ggml_type, const void *packed, int64_t group_begin, int64_t group_end,
                       int64_t cols, const float *x, int64_t n, float *y, int64_t ldy, int accumulate);

// Which implementation tc_quant_matmul runs on this CPU: "avx512-vnni" or "portable".
const char *tc_quant_matmul_implementation(void);

#ifdef __cplusplus
}
#endif
#endif
