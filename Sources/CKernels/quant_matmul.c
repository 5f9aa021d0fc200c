// Quantised-weight products for decoding (see tc_quant_matmul.h).
//
// Every supported block format is read as "unsigned integers with a per-lane scale and offset":
// for the 4 weights of lane k (lanes are 4 consecutive weights, the unit of one VNNI dot
// product),  w = scale[k] * u + offset[k]  with u in 0..255. Then for an activation block
// quantised as x ~ dx * q,
//
//   sum_j w_j x_j  ~  sum_k  scale[k] dx dot4(u, q)_k  +  offset[k] dx sum4(q)_k
//
// where the integer dot4 is one byte-multiply-add instruction and dx sum4(q) is computed once
// when the activations are quantised. Q4_0: u = nibble, offset -8 d; Q4_1: offset m; Q8_0:
// u = q + 128, offset -128 d; Q4_K/Q5_K: scale d sc, offset -dmin min; Q6_K: offset -32 d sc.
// Weights are walked in pairs of 32-weight blocks so that one 512-bit register holds 64.
//
// Activation layout, per row, with P = cols rounded up to 64 (zero padded):
//   int8 q[P] | float lane_scale[P / 4] (dx of the lane's block) | float lane_sum[P / 4] (dx sum4(q))
#include "tc_quant_matmul.h"
#include "tc_multiversion.h"
#include "tc_quant.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define TC_HAVE_X86 1
#else
#define TC_HAVE_X86 0
#endif

static int64_t padded_columns(int64_t cols) { return (cols + 63) / 64 * 64; }
static int64_t activation_row_stride(int64_t cols) { return 3 * padded_columns(cols); }

size_t tc_quant_activation_bytes(int64_t n, int64_t cols) {
    return (size_t)(n * activation_row_stride(cols));
}

TC_MULTIVERSION void tc_quantize_activations(const float *x, int64_t n, int64_t cols, void *activations) {
    int64_t padded = padded_columns(cols), stride = activation_row_stride(cols);
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * cols;
        uint8_t *row = (uint8_t *)activations + i * stride;
        int8_t *q = (int8_t *)row;
        float *lane_scale = (float *)(row + padded), *lane_sum = lane_scale + padded / 4;
        for (int64_t b = 0; b < padded / 32; b++) {
            if (b * 32 >= cols) { // padding block: contributes nothing
                memset(q + 32 * b, 0, 32);
                for (int k = 0; k < 8; k++) lane_scale[8 * b + k] = lane_sum[8 * b + k] = 0;
                continue;
            }
            const float *xb = xi + 32 * b;
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
            float d = amax / 127.0f, inverse = amax > 0 ? 127.0f / amax : 0;
            for (int k = 0; k < 8; k++) {
                int sum = 0;
                for (int j = 4 * k; j < 4 * k + 4; j++) {
                    int v = (int)lrintf(xb[j] * inverse);
                    v = v > 127 ? 127 : (v < -127 ? -127 : v);
                    q[32 * b + j] = (int8_t)v;
                    sum += v;
                }
                lane_scale[8 * b + k] = d;
                lane_sum[8 * b + k] = d * (float)sum;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Block formats as (u, scale, offset); the portable description used by every path.

static int64_t block_size_of(uint32_t type) {
    switch (type) {
    case TC_GGML_Q4_0: case TC_GGML_Q4_1: case TC_GGML_Q8_0: return 32;
    case TC_GGML_Q4_K: case TC_GGML_Q5_K: case TC_GGML_Q6_K: return 256;
    default: return 0;
    }
}

int tc_quant_matmul_is_supported(uint32_t ggml_type) { return block_size_of(ggml_type) != 0; }

static inline float half_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return tc_f16_to_f32(h);
}

static inline void set_lanes(float *scale, float *offset, float s, float o) {
    for (int k = 0; k < 8; k++) { scale[k] = s; offset[k] = o; }
}

// Q4_K/Q5_K's packed 6-bit scale and min of sub-block s (layout in quant.c).
static inline void k_scale_min(const uint8_t *packed, int s, uint8_t *scale, uint8_t *min) {
    if (s < 4) {
        *scale = packed[s] & 0x3f;
        *min = packed[s + 4] & 0x3f;
    } else {
        *scale = (uint8_t)((packed[s + 4] & 0x0f) | ((packed[s - 4] >> 6) << 4));
        *min = (uint8_t)((packed[s + 4] >> 4) | ((packed[s] >> 6) << 4));
    }
}

// Weights 32 b .. 32 b + 31 of a row as u[32], scale[8], offset[8].
static void unpack_block32(uint32_t type, const uint8_t *row, int64_t b, uint8_t *u, float *scale, float *offset) {
    switch (type) {
    case TC_GGML_Q4_0: case TC_GGML_Q4_1: {
        const uint8_t *blk = row + b * (type == TC_GGML_Q4_0 ? 18 : 20);
        float d = half_at(blk);
        float o = type == TC_GGML_Q4_0 ? -8 * d : half_at(blk + 2);
        const uint8_t *q = blk + (type == TC_GGML_Q4_0 ? 2 : 4);
        for (int j = 0; j < 16; j++) { u[j] = q[j] & 0x0f; u[j + 16] = q[j] >> 4; }
        set_lanes(scale, offset, d, o);
        break;
    }
    case TC_GGML_Q8_0: {
        const uint8_t *blk = row + b * 34;
        float d = half_at(blk);
        for (int j = 0; j < 32; j++) u[j] = (uint8_t)(blk[2 + j] ^ 0x80);
        set_lanes(scale, offset, d, -128 * d);
        break;
    }
    case TC_GGML_Q4_K: case TC_GGML_Q5_K: {
        int five = type == TC_GGML_Q5_K;
        const uint8_t *blk = row + (b / 8) * (five ? 176 : 144);
        int s = (int)(b % 8);
        uint8_t sc, mn;
        k_scale_min(blk + 4, s, &sc, &mn);
        const uint8_t *q = blk + (five ? 48 : 16) + 32 * (s / 2);
        int shift = (s % 2) * 4;
        for (int j = 0; j < 32; j++) {
            int v = (q[j] >> shift) & 0x0f;
            if (five) v |= ((blk[16 + j] >> s) & 1) << 4;
            u[j] = (uint8_t)v;
        }
        set_lanes(scale, offset, half_at(blk) * sc, -half_at(blk + 2) * mn);
        break;
    }
    case TC_GGML_Q6_K: {
        const uint8_t *blk = row + (b / 8) * 210;
        int s = (int)(b % 8), h = s / 4, t = s % 4;
        const uint8_t *l = blk + 64 * h + 32 * (t % 2), *hb = blk + 128 + 32 * h;
        const int8_t *sc = (const int8_t *)(blk + 192) + 8 * h + 2 * t;
        float d = half_at(blk + 208);
        for (int j = 0; j < 32; j++)
            u[j] = (uint8_t)(((l[j] >> ((t / 2) * 4)) & 0x0f) | (((hb[j] >> (2 * t)) & 3) << 4));
        for (int k = 0; k < 8; k++) { // scales cover 16 weights: lanes 0-3 and 4-7
            scale[k] = d * sc[k / 4];
            offset[k] = -32 * scale[k];
        }
        break;
    }
    }
}

// ---------------------------------------------------------------------------------------------
// Portable path

TC_MULTIVERSION static void matmul_portable(uint32_t type, const uint8_t *weights, size_t row_bytes, int64_t r0, int64_t r1,
                                            int64_t cols, const uint8_t *act, int64_t n, float *y, int64_t ldy, int accumulate) {
    int64_t padded = padded_columns(cols), stride = activation_row_stride(cols), blocks = cols / 32;
    uint8_t u[32];
    float scale[8], offset[8];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = weights + (size_t)r * row_bytes;
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *a = act + i * stride;
            const int8_t *q = (const int8_t *)a;
            const float *lane_scale = (const float *)(a + padded), *lane_sum = lane_scale + padded / 4;
            float acc = 0;
            for (int64_t b = 0; b < blocks; b++) {
                unpack_block32(type, row, b, u, scale, offset);
                for (int k = 0; k < 8; k++) {
                    int dot = 0;
                    for (int j = 4 * k; j < 4 * k + 4; j++) dot += (int)u[j] * (int)q[32 * b + j];
                    acc += scale[k] * lane_scale[8 * b + k] * (float)dot + offset[k] * lane_sum[8 * b + k];
                }
            }
            y[i * ldy + r] = accumulate ? y[i * ldy + r] + acc : acc;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AVX-512 VNNI path

#if TC_HAVE_X86 && defined(__ELF__)
#define TC_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma")))
#define TC_VNNI_INLINE static inline __attribute__((always_inline)) TC_VNNI_TARGET

TC_VNNI_INLINE float half_vnni(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

// Scale (or offset) vector: a for lanes of the first block, b for the second.
TC_VNNI_INLINE __m512 two_blocks(float a, float b) {
    return _mm512_mask_mov_ps(_mm512_set1_ps(a), 0xFF00, _mm512_set1_ps(b));
}

TC_VNNI_INLINE __m512i join(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// 16 nibble bytes -> 32 bytes: weights 0-15 from the low nibbles, 16-31 from the high ones.
TC_VNNI_INLINE __m256i nibbles(const uint8_t *q) {
    __m128i v = _mm_loadu_si128((const __m128i *)q);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0f));
}

// Blocks 2p and 2p + 1 of a row (2p + 1 < blocks unless `single`) as u, scale, offset.
TC_VNNI_INLINE void unpack_pair_vnni(uint32_t type, const uint8_t *row, int64_t p, int single,
                                     __m512i *u, __m512 *scale, __m512 *offset) {
    if (!single && type == TC_GGML_Q4_1) {
        const uint8_t *b0 = row + 2 * p * 20, *b1 = b0 + 20;
        *u = join(nibbles(b0 + 4), nibbles(b1 + 4));
        *scale = two_blocks(half_vnni(b0), half_vnni(b1));
        *offset = two_blocks(half_vnni(b0 + 2), half_vnni(b1 + 2));
        return;
    }
    if (!single && type == TC_GGML_Q4_0) {
        const uint8_t *b0 = row + 2 * p * 18, *b1 = b0 + 18;
        *u = join(nibbles(b0 + 2), nibbles(b1 + 2));
        *scale = two_blocks(half_vnni(b0), half_vnni(b1));
        *offset = _mm512_mul_ps(*scale, _mm512_set1_ps(-8));
        return;
    }
    if (!single && type == TC_GGML_Q8_0) {
        const uint8_t *b0 = row + 2 * p * 34, *b1 = b0 + 34;
        __m512i q = join(_mm256_loadu_si256((const __m256i *)(b0 + 2)), _mm256_loadu_si256((const __m256i *)(b1 + 2)));
        *u = _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80));
        *scale = two_blocks(half_vnni(b0), half_vnni(b1));
        *offset = _mm512_mul_ps(*scale, _mm512_set1_ps(-128));
        return;
    }
    // K formats and a trailing odd block: through the portable description.
    _Alignas(64) uint8_t ub[64] = {0};
    _Alignas(64) float sb[16] = {0}, ob[16] = {0};
    unpack_block32(type, row, 2 * p, ub, sb, ob);
    if (!single) unpack_block32(type, row, 2 * p + 1, ub + 32, sb + 8, ob + 8);
    *u = _mm512_load_si512(ub);
    *scale = _mm512_load_ps(sb);
    *offset = _mm512_load_ps(ob);
}

// One weight row against NR activation rows.
TC_VNNI_INLINE void row_vnni(uint32_t type, const uint8_t *row, int64_t blocks, const uint8_t *act, int64_t padded,
                             int64_t stride, int nr, float *out) {
    __m512 acc[8];
    for (int i = 0; i < nr; i++) acc[i] = _mm512_setzero_ps();
    int64_t pairs = (blocks + 1) / 2;
    for (int64_t p = 0; p < pairs; p++) {
        __m512i u;
        __m512 scale, offset;
        unpack_pair_vnni(type, row, p, 2 * p + 1 >= blocks, &u, &scale, &offset);
        for (int i = 0; i < nr; i++) {
            const uint8_t *a = act + i * stride;
            __m512i q = _mm512_load_si512(a + 64 * p);
            const float *lane_scale = (const float *)(a + padded) + 16 * p;
            const float *lane_sum = (const float *)(a + padded) + padded / 4 + 16 * p;
            __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, q);
            __m512 s = _mm512_mul_ps(scale, _mm512_load_ps(lane_scale));
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), s, acc[i]);
            acc[i] = _mm512_fmadd_ps(offset, _mm512_load_ps(lane_sum), acc[i]);
        }
    }
    for (int i = 0; i < nr; i++) out[i] = _mm512_reduce_add_ps(acc[i]);
}

// Specialised per (type, number of activation rows) so the accumulators live in registers.
#define TC_ROWS_CASES(TYPE)                                                                              \
    switch (nr) {                                                                                        \
    case 1: row_vnni(TYPE, row, blocks, act, padded, stride, 1, out); break;                             \
    case 2: row_vnni(TYPE, row, blocks, act, padded, stride, 2, out); break;                             \
    case 3: row_vnni(TYPE, row, blocks, act, padded, stride, 3, out); break;                             \
    case 4: row_vnni(TYPE, row, blocks, act, padded, stride, 4, out); break;                             \
    case 5: row_vnni(TYPE, row, blocks, act, padded, stride, 5, out); break;                             \
    case 6: row_vnni(TYPE, row, blocks, act, padded, stride, 6, out); break;                             \
    case 7: row_vnni(TYPE, row, blocks, act, padded, stride, 7, out); break;                             \
    default: row_vnni(TYPE, row, blocks, act, padded, stride, 8, out); break;                            \
    }

TC_VNNI_TARGET static void rows_vnni(uint32_t type, const uint8_t *row, int64_t blocks, const uint8_t *act,
                                     int64_t padded, int64_t stride, int nr, float *out) {
    switch (type) {
    case TC_GGML_Q4_0: TC_ROWS_CASES(TC_GGML_Q4_0) break;
    case TC_GGML_Q4_1: TC_ROWS_CASES(TC_GGML_Q4_1) break;
    case TC_GGML_Q8_0: TC_ROWS_CASES(TC_GGML_Q8_0) break;
    case TC_GGML_Q4_K: TC_ROWS_CASES(TC_GGML_Q4_K) break;
    case TC_GGML_Q5_K: TC_ROWS_CASES(TC_GGML_Q5_K) break;
    case TC_GGML_Q6_K: TC_ROWS_CASES(TC_GGML_Q6_K) break;
    }
}

TC_VNNI_TARGET static void matmul_vnni(uint32_t type, const uint8_t *weights, size_t row_bytes, int64_t r0, int64_t r1,
                                       int64_t cols, const uint8_t *act, int64_t n, float *y, int64_t ldy, int accumulate) {
    int64_t padded = padded_columns(cols), stride = activation_row_stride(cols), blocks = cols / 32;
    float out[8];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = weights + (size_t)r * row_bytes;
        // Activation rows in groups of 8; later groups find the row's blocks in L1.
        for (int64_t i0 = 0; i0 < n; i0 += 8) {
            int nr = (int)(n - i0 < 8 ? n - i0 : 8);
            rows_vnni(type, row, blocks, act + i0 * stride, padded, stride, nr, out);
            for (int i = 0; i < nr; i++) {
                float *dst = y + (i0 + i) * ldy + r;
                *dst = accumulate ? *dst + out[i] : out[i];
            }
        }
    }
}
#define TC_HAVE_VNNI_PATH 1
#else
#define TC_HAVE_VNNI_PATH 0
#endif

// ---------------------------------------------------------------------------------------------
// Dispatch

typedef void (*matmul_fn)(uint32_t, const uint8_t *, size_t, int64_t, int64_t, int64_t, const uint8_t *, int64_t,
                          float *, int64_t, int);

static int use_vnni(void) {
    // Decided once; concurrent first calls compute the same answer, so the race is benign.
    static volatile int decided = -1;
    if (decided >= 0) return decided;
    int vnni = 0;
#if TC_HAVE_VNNI_PATH
    __builtin_cpu_init();
    vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
    decided = vnni;
    return vnni;
}

const char *tc_quant_matmul_implementation(void) { return use_vnni() ? "avx512-vnni" : "portable"; }

int tc_quant_matmul(uint32_t ggml_type, const void *weights, size_t row_bytes, int64_t row_begin, int64_t row_end,
                    int64_t cols, const void *activations, int64_t n, float *y, int64_t ldy, int accumulate) {
    int64_t block = block_size_of(ggml_type);
    if (block == 0) return TC_QMATMUL_UNSUPPORTED_TYPE;
    if (cols <= 0 || cols % block != 0) return TC_QMATMUL_PARTIAL_BLOCK;
    matmul_fn fn = matmul_portable;
#if TC_HAVE_VNNI_PATH
    if (use_vnni()) fn = matmul_vnni;
#endif
    fn(ggml_type, (const uint8_t *)weights, row_bytes, row_begin, row_end, cols, (const uint8_t *)activations, n, y, ldy,
       accumulate);
    return TC_QMATMUL_OK;
}

int tc_quant_matmul_portable(uint32_t ggml_type, const void *weights, size_t row_bytes, int64_t row_begin,
                             int64_t row_end, int64_t cols, const void *activations, int64_t n, float *y,
                             int64_t ldy, int accumulate) {
    int64_t block = block_size_of(ggml_type);
    if (block == 0) return TC_QMATMUL_UNSUPPORTED_TYPE;
    if (cols <= 0 || cols % block != 0) return TC_QMATMUL_PARTIAL_BLOCK;
    matmul_portable(ggml_type, (const uint8_t *)weights, row_bytes, row_begin, row_end, cols,
                    (const uint8_t *)activations, n, y, ldy, accumulate);
    return TC_QMATMUL_OK;
}

// ---------------------------------------------------------------------------------------------
// Float32 activations (exact path)

enum { F32_TILE_ROWS = 4, F32_CHUNK = 1024, F32_GROUP = 16 };

// out[k] += x . w_k over len (a multiple of 16) for four weight rows. The sixteen independent
// partial sums per row let the compiler vectorise without reassociating a single sum.
TC_MULTIVERSION static void dot4_f32(const float *x, const float *w0, const float *w1, const float *w2,
                                     const float *w3, int64_t len, float *out) {
    float a0[16] = {0}, a1[16] = {0}, a2[16] = {0}, a3[16] = {0};
    for (int64_t c = 0; c < len; c += 16) {
        for (int l = 0; l < 16; l++) {
            float xv = x[c + l];
            a0[l] += xv * w0[c + l];
            a1[l] += xv * w1[c + l];
            a2[l] += xv * w2[c + l];
            a3[l] += xv * w3[c + l];
        }
    }
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int l = 0; l < 16; l++) { s0 += a0[l]; s1 += a1[l]; s2 += a2[l]; s3 += a3[l]; }
    out[0] += s0; out[1] += s1; out[2] += s2; out[3] += s3;
}

// Expands `len` weights (whole blocks) of a row for the tiles. The common 32-weight formats
// get explicit AVX-512 code: the compiler's version of the generic loops in quant.c keeps the
// nibble shuffles scalar and would dominate decoding time.
#if TC_HAVE_VNNI_PATH
#define TC_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma")))

TC_AVX512_TARGET static void expand_avx512(uint32_t type, const uint8_t *src, float *dst, int64_t len) {
    const __m128i low4 = _mm_set1_epi8(0x0f);
    for (int64_t b = 0; b < len / 32; b++, dst += 32) {
        uint16_t h;
        switch (type) {
        case TC_GGML_Q4_0: case TC_GGML_Q4_1: {
            int q41 = type == TC_GGML_Q4_1;
            const uint8_t *blk = src + b * (q41 ? 20 : 18);
            memcpy(&h, blk, 2);
            __m512 d = _mm512_set1_ps(_cvtsh_ss(h)), m;
            if (q41) {
                memcpy(&h, blk + 2, 2);
                m = _mm512_set1_ps(_cvtsh_ss(h));
            } else {
                m = _mm512_mul_ps(d, _mm512_set1_ps(-8));
            }
            __m128i q = _mm_loadu_si128((const __m128i *)(blk + (q41 ? 4 : 2)));
            __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(q, low4)));
            __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(q, 4), low4)));
            _mm512_store_ps(dst, _mm512_fmadd_ps(d, lo, m));
            _mm512_store_ps(dst + 16, _mm512_fmadd_ps(d, hi, m));
            break;
        }
        case TC_GGML_Q8_0: {
            const uint8_t *blk = src + b * 34;
            memcpy(&h, blk, 2);
            __m512 d = _mm512_set1_ps(_cvtsh_ss(h));
            __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2))));
            __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18))));
            _mm512_store_ps(dst, _mm512_mul_ps(d, lo));
            _mm512_store_ps(dst + 16, _mm512_mul_ps(d, hi));
            break;
        }
        }
    }
}

static int has_avx512(void) {
    static volatile int decided = -1;
    if (decided < 0) {
        __builtin_cpu_init();
        decided = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl");
    }
    return decided;
}
#endif

static void expand(uint32_t type, const uint8_t *src, float *dst, int64_t len) {
#if TC_HAVE_VNNI_PATH
    if ((type == TC_GGML_Q4_0 || type == TC_GGML_Q4_1 || type == TC_GGML_Q8_0) && has_avx512()) {
        expand_avx512(type, src, dst, len);
        return;
    }
#endif
    tc_dequantize_row(type, src, dst, len);
}

int tc_quant_matmul_f32(uint32_t ggml_type, const void *weights, size_t row_bytes, int64_t row_begin, int64_t row_end,
                        int64_t cols, const float *x, int64_t n, float *y, int64_t ldy, int accumulate) {
    if (ggml_type == TC_GGML_F32 || !tc_quant_is_supported(ggml_type)) return TC_QMATMUL_UNSUPPORTED_TYPE;
    int64_t block = 1;
    switch (ggml_type) {
    case TC_GGML_Q4_0: case TC_GGML_Q4_1: case TC_GGML_Q8_0: block = 32; break;
    case TC_GGML_Q4_K: case TC_GGML_Q5_K: case TC_GGML_Q6_K: block = 256; break;
    default: block = 1; break;
    }
    if (cols <= 0 || cols % block != 0 || cols % 16 != 0) return TC_QMATMUL_PARTIAL_BLOCK;
    size_t block_bytes = row_bytes / (size_t)(cols / block);
    int64_t chunk = cols < F32_CHUNK ? cols : F32_CHUNK; // F32_CHUNK is a multiple of every block size
    _Alignas(64) float tile[F32_TILE_ROWS][F32_CHUNK];
    float sums[F32_GROUP][F32_TILE_ROWS];
    const uint8_t *w = (const uint8_t *)weights;
    for (int64_t r = row_begin; r < row_end; r += F32_TILE_ROWS) {
        int rows = (int)(row_end - r < F32_TILE_ROWS ? row_end - r : F32_TILE_ROWS);
        for (int64_t i0 = 0; i0 < n; i0 += F32_GROUP) {
            int group = (int)(n - i0 < F32_GROUP ? n - i0 : F32_GROUP);
            memset(sums, 0, sizeof sums);
            for (int64_t c0 = 0; c0 < cols; c0 += chunk) {
                int64_t len = cols - c0 < chunk ? cols - c0 : chunk;
                for (int k = 0; k < rows; k++)
                    expand(ggml_type, w + (size_t)(r + k) * row_bytes + (size_t)(c0 / block) * block_bytes, tile[k], len);
                // missing rows of a short tile repeat row 0; their sums are dropped
                const float *t1 = tile[rows > 1 ? 1 : 0], *t2 = tile[rows > 2 ? 2 : 0], *t3 = tile[rows > 3 ? 3 : 0];
                for (int i = 0; i < group; i++)
                    dot4_f32(x + (i0 + i) * cols + c0, tile[0], t1, t2, t3, len, sums[i]);
            }
            for (int i = 0; i < group; i++)
                for (int k = 0; k < rows; k++) {
                    float *dst = y + (i0 + i) * ldy + r + k;
                    *dst = accumulate ? *dst + sums[i][k] : sums[i][k];
                }
        }
    }
    return TC_QMATMUL_OK;
}

// ---------------------------------------------------------------------------------------------
// Row-interleaved (x16) layout

static size_t x16_block_bytes(uint32_t type) {
    switch (type) {
    case TC_GGML_Q4_0: return 18;
    case TC_GGML_Q4_1: return 20;
    case TC_GGML_Q8_0: return 34;
    default: return 0;
    }
}

int tc_x16_is_supported(uint32_t ggml_type) { return x16_block_bytes(ggml_type) != 0; }

// Where the packed weights (after the scales) of a group-block start.
static size_t x16_scales_bytes(uint32_t type) { return type == TC_GGML_Q4_1 ? 64 : 32; }

int tc_x16_pack(uint32_t ggml_type, const void *ggml_rows, size_t row_bytes, int64_t rows, int64_t cols, void *packed) {
    size_t bb = x16_block_bytes(ggml_type);
    if (bb == 0) return TC_QMATMUL_UNSUPPORTED_TYPE;
    if (cols <= 0 || cols % 32 != 0 || rows % 16 != 0) return TC_QMATMUL_PARTIAL_BLOCK;
    int64_t blocks = cols / 32;
    const uint8_t *src = (const uint8_t *)ggml_rows;
    uint8_t *dst = (uint8_t *)packed;
    for (int64_t g = 0; g < rows / 16; g++) {
        for (int64_t b = 0; b < blocks; b++) {
            uint8_t *gb = dst + (size_t)(g * blocks + b) * 16 * bb;
            uint8_t *words = gb + x16_scales_bytes(ggml_type);
            for (int r = 0; r < 16; r++) {
                const uint8_t *blk = src + (size_t)(16 * g + r) * row_bytes + (size_t)b * bb;
                memcpy(gb + 2 * r, blk, 2);
                if (ggml_type == TC_GGML_Q4_1) memcpy(gb + 32 + 2 * r, blk + 2, 2);
                if (ggml_type == TC_GGML_Q8_0) {
                    for (int k = 0; k < 8; k++) memcpy(words + 4 * (16 * k + r), blk + 2 + 4 * k, 4);
                } else {
                    const uint8_t *q = blk + (ggml_type == TC_GGML_Q4_1 ? 4 : 2);
                    uint8_t u[32];
                    for (int j = 0; j < 16; j++) { u[j] = q[j] & 0x0f; u[j + 16] = q[j] >> 4; }
                    for (int k = 0; k < 4; k++) {
                        uint32_t word = 0;
                        for (int c = 0; c < 8; c++) word |= (uint32_t)u[8 * k + c] << (4 * c);
                        memcpy(words + 4 * (16 * k + r), &word, 4);
                    }
                }
            }
        }
    }
    return TC_QMATMUL_OK;
}

TC_MULTIVERSION int tc_x16_dequantize_row(uint32_t ggml_type, const void *packed, int64_t cols, int64_t row, float *dst) {
    size_t bb = x16_block_bytes(ggml_type);
    if (bb == 0) return TC_QMATMUL_UNSUPPORTED_TYPE;
    if (cols <= 0 || cols % 32 != 0) return TC_QMATMUL_PARTIAL_BLOCK;
    int64_t blocks = cols / 32, g = row / 16;
    int r = (int)(row % 16);
    for (int64_t b = 0; b < blocks; b++, dst += 32) {
        const uint8_t *gb = (const uint8_t *)packed + (size_t)(g * blocks + b) * 16 * bb;
        const uint8_t *words = gb + x16_scales_bytes(ggml_type);
        float d = half_at(gb + 2 * r);
        if (ggml_type == TC_GGML_Q8_0) {
            for (int k = 0; k < 8; k++)
                for (int c = 0; c < 4; c++) dst[4 * k + c] = d * (float)(int8_t)words[4 * (16 * k + r) + c];
        } else {
            float m = ggml_type == TC_GGML_Q4_1 ? half_at(gb + 32 + 2 * r) : -8 * d;
            for (int k = 0; k < 4; k++) {
                uint32_t word;
                memcpy(&word, words + 4 * (16 * k + r), 4);
                for (int c = 0; c < 8; c++) dst[8 * k + c] = d * (float)((word >> (4 * c)) & 0x0f) + m;
            }
        }
    }
    return TC_QMATMUL_OK;
}

static void x16_matmul_portable(uint32_t type, const uint8_t *packed, int64_t g0, int64_t g1, int64_t cols,
                                const float *x, int64_t n, float *y, int64_t ldy, int accumulate) {
    float *w = (float *)malloc((size_t)cols * sizeof(float));
    if (!w) return;
    for (int64_t r = 16 * g0; r < 16 * g1; r++) {
        tc_x16_dequantize_row(type, packed, cols, r, w);
        for (int64_t i = 0; i < n; i++) {
            float acc = 0;
            for (int64_t c = 0; c < cols; c++) acc += w[c] * x[i * cols + c];
            y[i * ldy + r] = accumulate ? y[i * ldy + r] + acc : acc;
        }
    }
    free(w);
}

int tc_x16_matmul_portable(uint32_t ggml_type, const void *packed, int64_t group_begin, int64_t group_end,
                           int64_t cols, const float *x, int64_t n, float *y, int64_t ldy, int accumulate) {
    if (x16_block_bytes(ggml_type) == 0) return TC_QMATMUL_UNSUPPORTED_TYPE;
    if (cols <= 0 || cols % 32 != 0) return TC_QMATMUL_PARTIAL_BLOCK;
    x16_matmul_portable(ggml_type, (const uint8_t *)packed, group_begin, group_end, cols, x, n, y, ldy, accumulate);
    return TC_QMATMUL_OK;
}

#if TC_HAVE_VNNI_PATH
// One group of 16 rows against NR activation rows; out[i] holds the 16 rows' results for x_i.
// The per-block partial sums use several independent chains when NR is small, so one row of x
// does not wait on FMA latency.
TC_AVX512_TARGET static inline __attribute__((always_inline)) void
x16_group_avx512(uint32_t type, const uint8_t *group, int64_t blocks, size_t group_block_bytes, const float *x,
                 int64_t cols, const float *x_sums, int nr, __m512 *out) {
    enum { CHAINS_MAX = 4 };
    const int chains = nr == 1 ? 4 : (nr <= 3 ? 2 : 1);
    __m512 acc[8];
    for (int i = 0; i < nr; i++) acc[i] = _mm512_setzero_ps();
    const __m512 nibble_values = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int64_t b = 0; b < blocks; b++) {
        const uint8_t *gb = group + (size_t)b * group_block_bytes;
        __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)gb));
        __m512 part[8][CHAINS_MAX];
        for (int i = 0; i < nr; i++)
            for (int h = 0; h < chains; h++) part[i][h] = _mm512_setzero_ps();
        const float *xb = x + 32 * b;
        if (type == TC_GGML_Q8_0) {
            const uint8_t *words = gb + 32;
            for (int k = 0; k < 8; k++) {
                __m512i v = _mm512_loadu_si512(words + 64 * k);
                for (int c = 0; c < 4; c++) {
                    __m512i s;
                    switch (c) { // sign-extend byte c of every lane
                    case 0: s = _mm512_srai_epi32(_mm512_slli_epi32(v, 24), 24); break;
                    case 1: s = _mm512_srai_epi32(_mm512_slli_epi32(v, 16), 24); break;
                    case 2: s = _mm512_srai_epi32(_mm512_slli_epi32(v, 8), 24); break;
                    default: s = _mm512_srai_epi32(v, 24); break;
                    }
                    __m512 q = _mm512_cvtepi32_ps(s);
                    for (int i = 0; i < nr; i++)
                        part[i][k % chains] = _mm512_fmadd_ps(q, _mm512_set1_ps(xb[i * cols + 4 * k + c]), part[i][k % chains]);
                }
            }
            for (int i = 0; i < nr; i++) {
                __m512 sum = part[i][0];
                for (int h = 1; h < chains; h++) sum = _mm512_add_ps(sum, part[i][h]);
                acc[i] = _mm512_fmadd_ps(d, sum, acc[i]);
            }
        } else {
            int q41 = type == TC_GGML_Q4_1;
            __m512 m = q41 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(gb + 32))) : _mm512_mul_ps(d, _mm512_set1_ps(-8));
            const uint8_t *words = gb + (q41 ? 64 : 32);
            for (int k = 0; k < 4; k++) {
                __m512i v = _mm512_loadu_si512(words + 64 * k);
                for (int c = 0; c < 8; c++) {
                    // vpermps reads only the low 4 bits of each index: the nibble selects its own
                    // value, replacing a mask and an int->float conversion (15% faster at n = 1)
                    __m512 q = _mm512_permutexvar_ps(c == 0 ? v : _mm512_srli_epi32(v, 4 * c), nibble_values);
                    for (int i = 0; i < nr; i++)
                        part[i][k % chains] = _mm512_fmadd_ps(q, _mm512_set1_ps(xb[i * cols + 8 * k + c]), part[i][k % chains]);
                }
            }
            for (int i = 0; i < nr; i++) {
                __m512 sum = part[i][0];
                for (int h = 1; h < chains; h++) sum = _mm512_add_ps(sum, part[i][h]);
                acc[i] = _mm512_fmadd_ps(d, sum, acc[i]);
                acc[i] = _mm512_fmadd_ps(m, _mm512_set1_ps(x_sums[i * blocks + b]), acc[i]);
            }
        }
    }
    for (int i = 0; i < nr; i++) out[i] = acc[i];
}

#define TC_X16_CASES(TYPE)                                                                                  \
    switch (nr) {                                                                                           \
    case 1: x16_group_avx512(TYPE, group, blocks, gbb, x, cols, x_sums, 1, out); break;                     \
    case 2: x16_group_avx512(TYPE, group, blocks, gbb, x, cols, x_sums, 2, out); break;                     \
    case 3: x16_group_avx512(TYPE, group, blocks, gbb, x, cols, x_sums, 3, out); break;                     \
    case 4: x16_group_avx512(TYPE, group, blocks, gbb, x, cols, x_sums, 4, out); break;                     \
    case 5: x16_group_avx512(TYPE, group, blocks, gbb, x, cols, x_sums, 5, out); break;                     \
    case 6: x16_group_avx512(TYPE, group, blocks, gbb, x, cols, x_sums, 6, out); break;                     \
    case 7: x16_group_avx512(TYPE, group, blocks, gbb, x, cols, x_sums, 7, out); break;                     \
    default: x16_group_avx512(TYPE, group, blocks, gbb, x, cols, x_sums, 8, out); break;                    \
    }

TC_AVX512_TARGET static void x16_groups_avx512(uint32_t type, const uint8_t *group, int64_t blocks, size_t gbb,
                                               const float *x, int64_t cols, const float *x_sums, int nr, __m512 *out) {
    switch (type) {
    case TC_GGML_Q4_0: TC_X16_CASES(TC_GGML_Q4_0) break;
    case TC_GGML_Q4_1: TC_X16_CASES(TC_GGML_Q4_1) break;
    case TC_GGML_Q8_0: TC_X16_CASES(TC_GGML_Q8_0) break;
    }
}

TC_AVX512_TARGET static void x16_matmul_avx512(uint32_t type, const uint8_t *packed, int64_t g0, int64_t g1, int64_t cols,
                                               const float *x, int64_t n, float *y, int64_t ldy, int accumulate) {
    int64_t blocks = cols / 32;
    size_t gbb = 16 * x16_block_bytes(type);
    // Sums of x over each 32-column block, for the Q4 offsets (m sum x). Vectorised: a scalar
    // chain of 32 dependent adds per block cost as much as the product itself at n = 1.
    float *x_sums = NULL;
    if (type != TC_GGML_Q8_0) {
        x_sums = (float *)malloc((size_t)(n * blocks) * sizeof(float));
        if (!x_sums) return;
        for (int64_t i = 0; i < n; i++)
            for (int64_t b = 0; b < blocks; b++) {
                const float *xb = x + i * cols + 32 * b;
                x_sums[i * blocks + b] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_loadu_ps(xb), _mm512_loadu_ps(xb + 16)));
            }
    }
    __m512 out[8];
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *group = packed + (size_t)(g * blocks) * gbb;
        if (g + 1 < g1) _mm_prefetch((const char *)(group + (size_t)blocks * gbb), _MM_HINT_T0);
        for (int64_t i0 = 0; i0 < n; i0 += 8) {
            int nr = (int)(n - i0 < 8 ? n - i0 : 8);
            x16_groups_avx512(type, group, blocks, gbb, x + i0 * cols, cols, x_sums ? x_sums + i0 * blocks : NULL, nr, out);
            for (int i = 0; i < nr; i++) {
                float *dst = y + (i0 + i) * ldy + 16 * g;
                __m512 v = accumulate ? _mm512_add_ps(_mm512_loadu_ps(dst), out[i]) : out[i];
                _mm512_storeu_ps(dst, v);
            }
        }
    }
    free(x_sums);
}
#endif

#if TC_HAVE_X86 && defined(__ELF__)
// ---------------------------------------------------------------------------------------------
// x16 on AVX2: a group's 16 rows are two 8-lane registers. Nibbles become floats by mask and
// conversion (vpermps looks up only 8 values here, not 16).
#define TC_AVX2_TARGET __attribute__((target("avx2,fma,f16c")))
#define TC_X16_AVX2_ROWS 4

static int has_avx2(void) {
    static volatile int decided = -1;
    if (decided < 0) {
        __builtin_cpu_init();
        decided = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
    return decided;
}

// One group of 16 rows against nr (<= TC_X16_AVX2_ROWS) activation rows; out[2i], out[2i+1]
// hold rows 0-7 and 8-15 of x_i's results. With one activation row the blocks alternate
// between two sets of partial sums, so consecutive FMAs do not wait on each other.
TC_AVX2_TARGET static inline __attribute__((always_inline)) void
x16_group_avx2(uint32_t type, const uint8_t *group, int64_t blocks, size_t group_block_bytes, const float *x,
               int64_t cols, const float *x_sums, int nr, __m256 *out) {
    const int chains = nr == 1 ? 2 : 1;
    __m256 acc[TC_X16_AVX2_ROWS][2];
    for (int i = 0; i < nr; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi32(0x0f);
    for (int64_t b = 0; b < blocks; b++) {
        const uint8_t *gb = group + (size_t)b * group_block_bytes;
        __m256 d0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)gb));
        __m256 d1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(gb + 16)));
        __m256 part[TC_X16_AVX2_ROWS][2][2];
        for (int i = 0; i < nr; i++)
            for (int h = 0; h < chains; h++) part[i][h][0] = part[i][h][1] = _mm256_setzero_ps();
        const float *xb = x + 32 * b;
        if (type == TC_GGML_Q8_0) {
            const uint8_t *words = gb + 32;
            for (int k = 0; k < 8; k++) {
                __m256i v0 = _mm256_loadu_si256((const __m256i *)(words + 64 * k));
                __m256i v1 = _mm256_loadu_si256((const __m256i *)(words + 64 * k + 32));
                for (int c = 0; c < 4; c++) {
                    __m256i s0, s1; // sign-extend byte c of every lane
                    switch (c) {
                    case 0: s0 = _mm256_srai_epi32(_mm256_slli_epi32(v0, 24), 24); s1 = _mm256_srai_epi32(_mm256_slli_epi32(v1, 24), 24); break;
                    case 1: s0 = _mm256_srai_epi32(_mm256_slli_epi32(v0, 16), 24); s1 = _mm256_srai_epi32(_mm256_slli_epi32(v1, 16), 24); break;
                    case 2: s0 = _mm256_srai_epi32(_mm256_slli_epi32(v0, 8), 24); s1 = _mm256_srai_epi32(_mm256_slli_epi32(v1, 8), 24); break;
                    default: s0 = _mm256_srai_epi32(v0, 24); s1 = _mm256_srai_epi32(v1, 24); break;
                    }
                    __m256 q0 = _mm256_cvtepi32_ps(s0), q1 = _mm256_cvtepi32_ps(s1);
                    for (int i = 0; i < nr; i++) {
                        __m256 xv = _mm256_set1_ps(xb[i * cols + 4 * k + c]);
                        part[i][k % chains][0] = _mm256_fmadd_ps(q0, xv, part[i][k % chains][0]);
                        part[i][k % chains][1] = _mm256_fmadd_ps(q1, xv, part[i][k % chains][1]);
                    }
                }
            }
            for (int i = 0; i < nr; i++) {
                __m256 s0 = part[i][0][0], s1 = part[i][0][1];
                if (chains == 2) { s0 = _mm256_add_ps(s0, part[i][1][0]); s1 = _mm256_add_ps(s1, part[i][1][1]); }
                acc[i][0] = _mm256_fmadd_ps(d0, s0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(d1, s1, acc[i][1]);
            }
        } else {
            int q41 = type == TC_GGML_Q4_1;
            __m256 m0, m1;
            if (q41) {
                m0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(gb + 32)));
                m1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(gb + 48)));
            } else {
                m0 = _mm256_mul_ps(d0, _mm256_set1_ps(-8));
                m1 = _mm256_mul_ps(d1, _mm256_set1_ps(-8));
            }
            const uint8_t *words = gb + (q41 ? 64 : 32);
            for (int k = 0; k < 4; k++) {
                __m256i v0 = _mm256_loadu_si256((const __m256i *)(words + 64 * k));
                __m256i v1 = _mm256_loadu_si256((const __m256i *)(words + 64 * k + 32));
                for (int c = 0; c < 8; c++) {
                    __m256 q0 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(v0, 4 * c), low4));
                    __m256 q1 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(v1, 4 * c), low4));
                    for (int i = 0; i < nr; i++) {
                        __m256 xv = _mm256_set1_ps(xb[i * cols + 8 * k + c]);
                        part[i][k % chains][0] = _mm256_fmadd_ps(q0, xv, part[i][k % chains][0]);
                        part[i][k % chains][1] = _mm256_fmadd_ps(q1, xv, part[i][k % chains][1]);
                    }
                }
            }
            for (int i = 0; i < nr; i++) {
                __m256 s0 = part[i][0][0], s1 = part[i][0][1];
                if (chains == 2) { s0 = _mm256_add_ps(s0, part[i][1][0]); s1 = _mm256_add_ps(s1, part[i][1][1]); }
                __m256 xs = _mm256_set1_ps(x_sums[i * blocks + b]);
                acc[i][0] = _mm256_fmadd_ps(m0, xs, _mm256_fmadd_ps(d0, s0, acc[i][0]));
                acc[i][1] = _mm256_fmadd_ps(m1, xs, _mm256_fmadd_ps(d1, s1, acc[i][1]));
            }
        }
    }
    for (int i = 0; i < nr; i++) { out[2 * i] = acc[i][0]; out[2 * i + 1] = acc[i][1]; }
}

#define TC_X16_AVX2_CASES(TYPE)                                                                             \
    switch (nr) {                                                                                           \
    case 1: x16_group_avx2(TYPE, group, blocks, gbb, x, cols, x_sums, 1, out); break;                       \
    case 2: x16_group_avx2(TYPE, group, blocks, gbb, x, cols, x_sums, 2, out); break;                       \
    case 3: x16_group_avx2(TYPE, group, blocks, gbb, x, cols, x_sums, 3, out); break;                       \
    default: x16_group_avx2(TYPE, group, blocks, gbb, x, cols, x_sums, 4, out); break;                      \
    }

TC_AVX2_TARGET static void x16_groups_avx2(uint32_t type, const uint8_t *group, int64_t blocks, size_t gbb,
                                           const float *x, int64_t cols, const float *x_sums, int nr, __m256 *out) {
    switch (type) {
    case TC_GGML_Q4_0: TC_X16_AVX2_CASES(TC_GGML_Q4_0) break;
    case TC_GGML_Q4_1: TC_X16_AVX2_CASES(TC_GGML_Q4_1) break;
    case TC_GGML_Q8_0: TC_X16_AVX2_CASES(TC_GGML_Q8_0) break;
    }
}

TC_AVX2_TARGET static void x16_matmul_avx2(uint32_t type, const uint8_t *packed, int64_t g0, int64_t g1, int64_t cols,
                                           const float *x, int64_t n, float *y, int64_t ldy, int accumulate) {
    int64_t blocks = cols / 32;
    size_t gbb = 16 * x16_block_bytes(type);
    float *x_sums = NULL;
    if (type != TC_GGML_Q8_0) {
        x_sums = (float *)malloc((size_t)(n * blocks) * sizeof(float));
        if (!x_sums) return;
        for (int64_t i = 0; i < n; i++)
            for (int64_t b = 0; b < blocks; b++) {
                const float *xb = x + i * cols + 32 * b;
                __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(xb), _mm256_loadu_ps(xb + 8)),
                                         _mm256_add_ps(_mm256_loadu_ps(xb + 16), _mm256_loadu_ps(xb + 24)));
                __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
                h = _mm_add_ps(h, _mm_movehl_ps(h, h));
                h = _mm_add_ss(h, _mm_movehdup_ps(h));
                x_sums[i * blocks + b] = _mm_cvtss_f32(h);
            }
    }
    __m256 out[2 * TC_X16_AVX2_ROWS];
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *group = packed + (size_t)(g * blocks) * gbb;
        if (g + 1 < g1) _mm_prefetch((const char *)(group + (size_t)blocks * gbb), _MM_HINT_T0);
        for (int64_t i0 = 0; i0 < n; i0 += TC_X16_AVX2_ROWS) {
            int nr = (int)(n - i0 < TC_X16_AVX2_ROWS ? n - i0 : TC_X16_AVX2_ROWS);
            x16_groups_avx2(type, group, blocks, gbb, x + i0 * cols, cols, x_sums ? x_sums + i0 * blocks : NULL, nr, out);
            for (int i = 0; i < nr; i++) {
                float *dst = y + (i0 + i) * ldy + 16 * g;
                __m256 lo = out[2 * i], hi = out[2 * i + 1];
                if (accumulate) {
                    lo = _mm256_add_ps(_mm256_loadu_ps(dst), lo);
                    hi = _mm256_add_ps(_mm256_loadu_ps(dst + 8), hi);
                }
                _mm256_storeu_ps(dst, lo);
                _mm256_storeu_ps(dst + 8, hi);
            }
        }
    }
    free(x_sums);
}
#define TC_HAVE_X16_AVX2 1
#else
#define TC_HAVE_X16_AVX2 0
#endif

int tc_x16_matmul_avx2(uint32_t ggml_type, const void *packed, int64_t group_begin, int64_t group_end,
                       int64_t cols, const float *x, int64_t n, float *y, int64_t ldy, int accumulate) {
    if (x16_block_bytes(ggml_type) == 0) return TC_QMATMUL_UNSUPPORTED_TYPE;
    if (cols <= 0 || cols % 32 != 0) return TC_QMATMUL_PARTIAL_BLOCK;
#if TC_HAVE_X16_AVX2
    if (has_avx2()) {
        x16_matmul_avx2(ggml_type, (const uint8_t *)packed, group_begin, group_end, cols, x, n, y, ldy, accumulate);
        return TC_QMATMUL_OK;
    }
#endif
    return TC_QMATMUL_UNSUPPORTED_CPU;
}

int tc_x16_is_fast(void) {
#if TC_HAVE_VNNI_PATH
    if (has_avx512()) return 1;
#endif
#if TC_HAVE_X16_AVX2
    if (has_avx2()) return 1;
#endif
    return 0;
}

int tc_x16_matmul(uint32_t ggml_type, const void *packed, int64_t group_begin, int64_t group_end, int64_t cols,
                  const float *x, int64_t n, float *y, int64_t ldy, int accumulate) {
    if (x16_block_bytes(ggml_type) == 0) return TC_QMATMUL_UNSUPPORTED_TYPE;
    if (cols <= 0 || cols % 32 != 0) return TC_QMATMUL_PARTIAL_BLOCK;
#if TC_HAVE_VNNI_PATH
    if (has_avx512()) {
        x16_matmul_avx512(ggml_type, (const uint8_t *)packed, group_begin, group_end, cols, x, n, y, ldy, accumulate);
        return TC_QMATMUL_OK;
    }
#endif
#if TC_HAVE_X16_AVX2
    if (has_avx2()) {
        x16_matmul_avx2(ggml_type, (const uint8_t *)packed, group_begin, group_end, cols, x, n, y, ldy, accumulate);
        return TC_QMATMUL_OK;
    }
#endif
    x16_matmul_portable(ggml_type, (const uint8_t *)packed, group_begin, group_end, cols, x, n, y, ldy, accumulate);
    return TC_QMATMUL_OK;
}
