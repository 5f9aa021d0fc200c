// Dequantisation of the ggml block formats found in GGUF files. Each format stores a fixed
// number of weights (a block) with one or more shared scales; layouts are summarised in
// docs/file-formats.md. Blocks in a file carry no alignment guarantee, so multi-byte fields are
// read with memcpy.
#include "tc_quant.h"
#include "tc_multiversion.h"
#include <math.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------
// Half precision

// Moves the half's exponent and mantissa into float position; multiplying by 2^112 re-biases the
// exponent (15 -> 127) exactly. Half subnormals (exponent 0) would be float subnormals before
// that multiply, which read as 0 on threads that flush subnormals (DAZ, float_mode.c), so they
// are converted as mantissa * 2^-24 instead: an exact integer conversion and an exact multiply
// whose result is a normal float. Inf/NaN (exponent all ones) are patched separately.
static inline float half_bits_to_float(uint16_t h) {
    uint32_t magnitude = (uint32_t)(h & 0x7fffu);
    uint32_t bits = magnitude << 13;
    float f;
    memcpy(&f, &bits, sizeof f);
    f = magnitude < 0x400u ? (float)magnitude * 0x1p-24f : f * 0x1p112f;
    memcpy(&bits, &f, sizeof bits);
    if (magnitude >= 0x7c00u) bits = (magnitude << 13) | 0x7f800000u;
    bits |= (uint32_t)(h & 0x8000u) << 16;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline float load_half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return half_bits_to_float(h);
}

float tc_f16_to_f32(uint16_t h) { return half_bits_to_float(h); }

uint16_t tc_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) // inf stays inf; NaN stays a (quiet) NaN
        return sign | 0x7c00u | (ax > 0x7f800000u ? (uint16_t)(0x200u | ((ax >> 13) & 0x3ffu)) : 0);
    if (ax >= 0x477ff000u) return sign | 0x7c00u; // >= 65520 rounds past the largest half
    if (ax < 0x38800000u) {
        // Below the smallest normal half: adding 0.5 puts the value in a float whose ulp is the
        // half subnormal step (2^-24), so the float adder does the round-to-nearest-even.
        float a;
        memcpy(&a, &ax, sizeof a);
        a += 0.5f;
        uint32_t bits;
        memcpy(&bits, &a, sizeof bits);
        return sign | (uint16_t)(bits - 0x3f000000u);
    }
    // Normal: re-bias the exponent (127 -> 15) and round the 13 dropped mantissa bits to
    // nearest even (0xfff plus the lowest kept bit); a carry correctly bumps the exponent.
    uint32_t odd = (ax >> 13) & 1u;
    ax += 0xc8000fffu + odd;
    return sign | (uint16_t)(ax >> 13);
}

TC_MULTIVERSION void tc_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = half_bits_to_float(src[i]);
}

void tc_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = tc_f32_to_f16(src[i]);
}

// ---------------------------------------------------------------------------------------------
// Plain types

static void dequant_f32(const uint8_t *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

TC_MULTIVERSION static void dequant_f16(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = load_half(src + 2 * i);
}

// bfloat16 is the upper half of a float32.
TC_MULTIVERSION static void dequant_bf16(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint16_t b;
        memcpy(&b, src + 2 * i, sizeof b);
        uint32_t bits = (uint32_t)b << 16;
        memcpy(dst + i, &bits, sizeof bits);
    }
}

// ---------------------------------------------------------------------------------------------
// 32-weight blocks

// Q8_0 (34 bytes): f16 d, int8 q[32]; w = d * q.
TC_MULTIVERSION static void dequant_q8_0(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, src += 34, dst += 32) {
        float d = load_half(src);
        const int8_t *q = (const int8_t *)(src + 2);
        for (int i = 0; i < 32; i++) dst[i] = d * (float)q[i];
    }
}

// Q4_0 (18 bytes): f16 d, 16 bytes of nibbles. Byte j holds weight j (low nibble) and weight
// j + 16 (high nibble); w = d * (q - 8).
TC_MULTIVERSION static void dequant_q4_0(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, src += 18, dst += 32) {
        float d = load_half(src);
        const uint8_t *q = src + 2;
        for (int j = 0; j < 16; j++) {
            dst[j] = d * (float)((int)(q[j] & 0x0f) - 8);
            dst[j + 16] = d * (float)((int)(q[j] >> 4) - 8);
        }
    }
}

// Q4_1 (20 bytes): f16 d, f16 m, nibbles as in Q4_0; w = d * q + m.
TC_MULTIVERSION static void dequant_q4_1(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, src += 20, dst += 32) {
        float d = load_half(src), m = load_half(src + 2);
        const uint8_t *q = src + 4;
        for (int j = 0; j < 16; j++) {
            dst[j] = d * (float)(q[j] & 0x0f) + m;
            dst[j + 16] = d * (float)(q[j] >> 4) + m;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 256-weight "K" super-blocks

// Q4_K and Q5_K share 12 bytes holding eight 6-bit scales and eight 6-bit mins, one pair per
// 32-weight sub-block. Sub-blocks 0-3 use the low 6 bits of bytes 0-3 (scale) and 4-7 (min);
// sub-blocks 4-7 take their low 4 bits from bytes 8-11 (scale: low nibble, min: high nibble)
// and their top 2 bits from the spare top bits of bytes 0-3 (scale) and 4-7 (min).
static inline void unpack_k_scales(const uint8_t *packed, uint8_t scale[8], uint8_t min[8]) {
    for (int j = 0; j < 4; j++) {
        scale[j] = packed[j] & 0x3f;
        min[j] = packed[j + 4] & 0x3f;
        scale[j + 4] = (uint8_t)((packed[j + 8] & 0x0f) | ((packed[j] >> 6) << 4));
        min[j + 4] = (uint8_t)((packed[j + 8] >> 4) | ((packed[j + 4] >> 6) << 4));
    }
}

// Q4_K (144 bytes): f16 d, f16 dmin, 12 bytes scales/mins, 128 bytes nibbles. Byte chunk c
// (32 bytes) holds sub-block 2c in its low nibbles and 2c+1 in its high nibbles.
// w = d * scale[s] * q - dmin * min[s].
TC_MULTIVERSION static void dequant_q4_k(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t b = 0; b < n / 256; b++, src += 144, dst += 256) {
        float d = load_half(src), dmin = load_half(src + 2);
        uint8_t scale[8], min[8];
        unpack_k_scales(src + 4, scale, min);
        const uint8_t *q = src + 16;
        for (int c = 0; c < 4; c++) {
            float d_lo = d * scale[2 * c], m_lo = dmin * min[2 * c];
            float d_hi = d * scale[2 * c + 1], m_hi = dmin * min[2 * c + 1];
            float *out = dst + 64 * c;
            const uint8_t *qc = q + 32 * c;
            for (int j = 0; j < 32; j++) {
                out[j] = d_lo * (float)(qc[j] & 0x0f) - m_lo;
                out[j + 32] = d_hi * (float)(qc[j] >> 4) - m_hi;
            }
        }
    }
}

// Q5_K (176 bytes): as Q4_K plus 32 bytes qh before the nibbles; bit s of qh[j] is the fifth
// bit of weight j of sub-block s.
TC_MULTIVERSION static void dequant_q5_k(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t b = 0; b < n / 256; b++, src += 176, dst += 256) {
        float d = load_half(src), dmin = load_half(src + 2);
        uint8_t scale[8], min[8];
        unpack_k_scales(src + 4, scale, min);
        const uint8_t *qh = src + 16;
        const uint8_t *q = src + 48;
        for (int c = 0; c < 4; c++) {
            int s_lo = 2 * c, s_hi = 2 * c + 1;
            float d_lo = d * scale[s_lo], m_lo = dmin * min[s_lo];
            float d_hi = d * scale[s_hi], m_hi = dmin * min[s_hi];
            float *out = dst + 64 * c;
            const uint8_t *qc = q + 32 * c;
            for (int j = 0; j < 32; j++) {
                int lo = (qc[j] & 0x0f) | (((qh[j] >> s_lo) & 1) << 4);
                int hi = (qc[j] >> 4) | (((qh[j] >> s_hi) & 1) << 4);
                out[j] = d_lo * (float)lo - m_lo;
                out[j + 32] = d_hi * (float)hi - m_hi;
            }
        }
    }
}

// Q6_K (210 bytes): 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), int8 scales[16] (one
// per 16 weights), f16 d. Each half h (128 weights) uses ql[64h..], qh[32h..]; weight
// 128h + 32t + j takes the nibble (t / 2 ? high : low) of ql[64h + 32(t % 2) + j] and bits
// 2t..2t+1 of qh[32h + j]; w = d * scale * (q - 32).
TC_MULTIVERSION static void dequant_q6_k(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t b = 0; b < n / 256; b++, src += 210, dst += 256) {
        const uint8_t *ql = src, *qh = src + 128;
        const int8_t *scales = (const int8_t *)(src + 192);
        float d = load_half(src + 208);
        for (int h = 0; h < 2; h++) {
            const uint8_t *l = ql + 64 * h, *hb = qh + 32 * h;
            float *out = dst + 128 * h;
            const int8_t *sc = scales + 8 * h;
            for (int t = 0; t < 4; t++) {
                const uint8_t *lt = l + 32 * (t % 2);
                int shift = (t / 2) * 4;
                for (int j = 0; j < 32; j++) {
                    int q = ((lt[j] >> shift) & 0x0f) | (((hb[j] >> (2 * t)) & 3) << 4);
                    out[32 * t + j] = d * (float)sc[2 * t + j / 16] * (float)(q - 32);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

static int64_t block_size_of(uint32_t type) {
    switch (type) {
    case TC_GGML_F32: case TC_GGML_F16: case TC_GGML_BF16: return 1;
    case TC_GGML_Q4_0: case TC_GGML_Q4_1: case TC_GGML_Q8_0: return 32;
    case TC_GGML_Q4_K: case TC_GGML_Q5_K: case TC_GGML_Q6_K: return 256;
    default: return 0;
    }
}

int tc_quant_is_supported(uint32_t ggml_type) { return block_size_of(ggml_type) != 0; }

int tc_dequantize_row(uint32_t ggml_type, const void *src, float *dst, int64_t n) {
    int64_t block = block_size_of(ggml_type);
    if (block == 0) return TC_QUANT_UNSUPPORTED_TYPE;
    if (n < 0 || n % block != 0) return TC_QUANT_PARTIAL_BLOCK;
    const uint8_t *s = (const uint8_t *)src;
    switch (ggml_type) {
    case TC_GGML_F32: dequant_f32(s, dst, n); break;
    case TC_GGML_F16: dequant_f16(s, dst, n); break;
    case TC_GGML_BF16: dequant_bf16(s, dst, n); break;
    case TC_GGML_Q8_0: dequant_q8_0(s, dst, n); break;
    case TC_GGML_Q4_0: dequant_q4_0(s, dst, n); break;
    case TC_GGML_Q4_1: dequant_q4_1(s, dst, n); break;
    case TC_GGML_Q4_K: dequant_q4_k(s, dst, n); break;
    case TC_GGML_Q5_K: dequant_q5_k(s, dst, n); break;
    case TC_GGML_Q6_K: dequant_q6_k(s, dst, n); break;
    }
    return TC_QUANT_OK;
}

// ---------------------------------------------------------------------------------------------
// Quantisation (merged GGUF exports), as llama.cpp's reference quantize_row_*_ref does it, so a
// file written here holds the blocks llama-quantize would write from the same F32 values.

static void store_half(uint8_t *dst, float f) {
    uint16_t h = tc_f32_to_f16(f);
    dst[0] = (uint8_t)(h & 0xff);
    dst[1] = (uint8_t)(h >> 8);
}

// Q8_0: d = max|x| / 127, q = round(x / d).
static void quant_q8_0(const float *src, uint8_t *dst, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, src += 32, dst += 34) {
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(src[i]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_half(dst, d);
        int8_t *q = (int8_t *)(dst + 2);
        for (int i = 0; i < 32; i++) q[i] = (int8_t)roundf(src[i] * id);
    }
}

// Q4_0: d = (the value of largest magnitude, sign kept) / -8, q = min(15, trunc(x / d + 8.5)),
// weight j in the low nibble of byte j and weight j + 16 in its high nibble.
static void quant_q4_0(const float *src, uint8_t *dst, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, src += 32, dst += 18) {
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < 32; i++) {
            if (amax < fabsf(src[i])) { amax = fabsf(src[i]); max = src[i]; }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_half(dst, d);
        uint8_t *q = dst + 2;
        for (int j = 0; j < 16; j++) {
            const int8_t lo = (int8_t)(src[j] * id + 8.5f), hi = (int8_t)(src[j + 16] * id + 8.5f);
            const uint8_t x0 = (uint8_t)(lo < 15 ? lo : 15), x1 = (uint8_t)(hi < 15 ? hi : 15);
            q[j] = (uint8_t)(x0 | (x1 << 4));
        }
    }
}

int tc_quantize_row(uint32_t ggml_type, const float *src, void *dst, int64_t n) {
    if (n % 32 != 0) return -1;
    switch (ggml_type) {
    case TC_GGML_Q8_0: quant_q8_0(src, (uint8_t *)dst, n); return 0;
    case TC_GGML_Q4_0: quant_q4_0(src, (uint8_t *)dst, n); return 0;
    default: return -1;
    }
}
