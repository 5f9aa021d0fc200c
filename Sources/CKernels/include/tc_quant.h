#ifndef THOUGHTCRIME_QUANT_H
#define THOUGHTCRIME_QUANT_H
// Dequantisation of ggml tensor data (as stored in GGUF files) and half-precision conversion.
// Block layouts are described in docs/file-formats.md.
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ggml type ids (the values stored in GGUF tensor infos) this file can dequantize.
enum {
    TC_GGML_F32 = 0,
    TC_GGML_F16 = 1,
    TC_GGML_Q4_0 = 2,
    TC_GGML_Q4_1 = 3,
    TC_GGML_Q8_0 = 8,
    TC_GGML_Q4_K = 12,
    TC_GGML_Q5_K = 13,
    TC_GGML_Q6_K = 14,
    TC_GGML_BF16 = 30,
};

// Results of tc_dequantize_row.
enum {
    TC_QUANT_OK = 0,
    TC_QUANT_UNSUPPORTED_TYPE = -1,
    TC_QUANT_PARTIAL_BLOCK = -2, // n is not a multiple of the type's block size
};

// 1 when tc_dequantize_row handles `ggml_type`, else 0.
int tc_quant_is_supported(uint32_t ggml_type);

// Converts `n` consecutive elements of type `ggml_type` starting at `src` (the start of a
// block) into `dst`. `n` must be a multiple of the block size; `src` need not be aligned.
int tc_dequantize_row(uint32_t ggml_type, const void *src, float *dst, int64_t n);

// Encodes `n` floats (a multiple of 32) as Q8_0 or Q4_0 blocks at `dst`, as llama.cpp's
// reference quantisers do. Returns 0, or -1 for another type or a partial block.
int tc_quantize_row(uint32_t ggml_type, const float *src, void *dst, int64_t n);

// IEEE binary16 <-> binary32; float -> half rounds to nearest even, keeps inf and NaN.
float tc_f16_to_f32(uint16_t h);
uint16_t tc_f32_to_f16(float f);
void tc_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n);
void tc_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
