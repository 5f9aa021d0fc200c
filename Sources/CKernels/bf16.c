#include "tc_bf16.h"
#include "tc_kernels.h"
#include <stdio.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

uint16_t tc_bf16_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float tc_bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

size_t tc_bf16_packed_count(int64_t n, int64_t k) {
    return (size_t)((n + 15) / 16) * (size_t)((k + 1) / 2) * 32;
}

// Panel p holds rows 16p..16p+15 of B^T; pair q holds columns 2q, 2q+1: lane l at 2l, 2l+1.
void tc_bf16_pack(const float *src, int64_t n, int64_t k, int64_t stride_n, int64_t stride_k, uint16_t *dst) {
    int64_t pairs = (k + 1) / 2, panels = (n + 15) / 16;
    for (int64_t p = 0; p < panels; p++) {
        for (int64_t q = 0; q < pairs; q++) {
            uint16_t *out = dst + ((size_t)p * pairs + q) * 32;
            for (int64_t l = 0; l < 16; l++) {
                int64_t j = p * 16 + l;
                for (int64_t e = 0; e < 2; e++) {
                    int64_t kk = 2 * q + e;
                    out[2 * l + e] = (j < n && kk < k) ? tc_bf16_from_float(src[j * stride_n + kk * stride_k]) : 0;
                }
            }
        }
    }
}

float tc_bf16_packed_get(const uint16_t *packed, int64_t k, int64_t j, int64_t kk) {
    int64_t pairs = (k + 1) / 2;
    return tc_bf16_to_float(packed[((size_t)(j / 16) * pairs + kk / 2) * 32 + 2 * (j % 16) + kk % 2]);
}

void tc_bf16_convert_rows(const float *a, int64_t m, int64_t k, int64_t lda, uint16_t *dst) {
    int64_t kp = 2 * ((k + 1) / 2);
    for (int64_t i = 0; i < m; i++) {
        const float *row = a + i * lda;
        uint16_t *out = dst + i * kp;
        for (int64_t j = 0; j < k; j++) out[j] = tc_bf16_from_float(row[j]);
        if (kp > k) out[k] = 0;
    }
}

typedef void (*tc_tile_fn)(const uint16_t *, int64_t, int64_t, const uint16_t *, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t, float *, int64_t, int);

#if defined(__x86_64__) && defined(__GNUC__) && (defined(__clang__) || __GNUC__ >= 10)
#define TC_HAVE_BF16_KERNEL 1
#define TC_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// One tile: R rows of A against NP panels (16 columns each) of B, over all k pairs.
#define TC_TILE_BODY(R, NP)                                                                      \
    do {                                                                                         \
        __m512 acc[R][NP];                                                                       \
        for (int r = 0; r < R; r++)                                                              \
            for (int s = 0; s < NP; s++) acc[r][s] = _mm512_setzero_ps();                        \
        const uint16_t *b0 = packed + ((size_t)p * packed_pairs + pair_begin) * 32;              \
        for (int64_t q = 0; q < pairs; q++) {                                                    \
            __m512i b[NP];                                                                       \
            for (int s = 0; s < NP; s++) b[s] = _mm512_loadu_si512(b0 + ((size_t)s * packed_pairs + q) * 32); \
            for (int r = 0; r < R; r++) {                                                        \
                int32_t pair;                                                                    \
                memcpy(&pair, a + (i + r) * kp + 2 * q, 4);                                      \
                __m512i av = _mm512_set1_epi32(pair);                                            \
                for (int s = 0; s < NP; s++)                                                     \
                    acc[r][s] = _mm512_dpbf16_ps(acc[r][s], (__m512bh)av, (__m512bh)b[s]);        \
            }                                                                                    \
        }                                                                                        \
        for (int s = 0; s < NP; s++) {                                                           \
            int64_t col = (p + s) * 16;                                                          \
            int64_t left = n_end - col;                                                          \
            __mmask16 mask = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);     \
            for (int r = 0; r < R; r++) {                                                        \
                float *dst = c + (i + r) * ldc + (col - n_begin);                                \
                __m512 v = acc[r][s];                                                            \
                if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, dst));          \
                _mm512_mask_storeu_ps(dst, mask, v);                                             \
            }                                                                                    \
        }                                                                                        \
    } while (0)

#define TC_TILE_FN(R, NP)                                                                        \
    TC_BF16_TARGET static void tile_##R##_##NP(const uint16_t *a, int64_t i, int64_t kp,         \
                                               const uint16_t *packed, int64_t p, int64_t pairs, \
                                               int64_t packed_pairs, int64_t pair_begin,         \
                                               int64_t n_begin, int64_t n_end, float *c,         \
                                               int64_t ldc, int accumulate) {                    \
        TC_TILE_BODY(R, NP);                                                                     \
    }
TC_TILE_FN(1, 1) TC_TILE_FN(2, 1) TC_TILE_FN(3, 1) TC_TILE_FN(4, 1) TC_TILE_FN(5, 1) TC_TILE_FN(6, 1)
TC_TILE_FN(1, 2) TC_TILE_FN(2, 2) TC_TILE_FN(3, 2) TC_TILE_FN(4, 2) TC_TILE_FN(5, 2) TC_TILE_FN(6, 2)

static const tc_tile_fn tiles[2][7] = {
    {0, tile_1_1, tile_2_1, tile_3_1, tile_4_1, tile_5_1, tile_6_1},
    {0, tile_1_2, tile_2_2, tile_3_2, tile_4_2, tile_5_2, tile_6_2},
};
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define TC_HAVE_BF16_AVX2 1
#define TC_AVX2_TARGET __attribute__((target("avx2,fma")))

// The AVX2 emulation: one tile is R rows of A against one panel (16 columns, two vectors of 8)
// of B. A bf16 value becomes a float by a 16-bit shift, and the product of two bf16 values is
// exact in float32, so each FMA rounds once, as vdpbf16ps does; the odd element of a pair is
// added before the even one, in vdpbf16ps's order, so both kernels give the same sums.
#define TC_AVX2_TILE_FN(R)                                                                       \
    TC_AVX2_TARGET static void avx2_tile_##R(const uint16_t *a, int64_t i, int64_t kp,           \
                                             const uint16_t *packed, int64_t p, int64_t pairs,   \
                                             int64_t packed_pairs, int64_t pair_begin,           \
                                             int64_t n_begin, int64_t n_end, float *c,           \
                                             int64_t ldc, int accumulate) {                      \
        __m256 acc[R][2];                                                                        \
        for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();                 \
        const __m256i high = _mm256_set1_epi32((int)0xffff0000u);                                \
        const uint16_t *b0 = packed + ((size_t)p * packed_pairs + pair_begin) * 32;              \
        for (int64_t q = 0; q < pairs; q++) {                                                    \
            __m256i raw0 = _mm256_loadu_si256((const __m256i *)(b0 + (size_t)q * 32));          \
            __m256i raw1 = _mm256_loadu_si256((const __m256i *)(b0 + (size_t)q * 32 + 16));      \
            __m256 odd0 = _mm256_castsi256_ps(_mm256_and_si256(raw0, high));                     \
            __m256 even0 = _mm256_castsi256_ps(_mm256_slli_epi32(raw0, 16));                     \
            __m256 odd1 = _mm256_castsi256_ps(_mm256_and_si256(raw1, high));                     \
            __m256 even1 = _mm256_castsi256_ps(_mm256_slli_epi32(raw1, 16));                     \
            for (int r = 0; r < R; r++) {                                                        \
                uint32_t pair, bits_odd, bits_even;                                              \
                memcpy(&pair, a + (i + r) * kp + 2 * q, 4);                                      \
                bits_odd = pair & 0xffff0000u;                                                   \
                bits_even = pair << 16;                                                          \
                float ao, ae;                                                                    \
                memcpy(&ao, &bits_odd, 4);                                                       \
                memcpy(&ae, &bits_even, 4);                                                      \
                __m256 vo = _mm256_set1_ps(ao), ve = _mm256_set1_ps(ae);                         \
                acc[r][0] = _mm256_fmadd_ps(ve, even0, _mm256_fmadd_ps(vo, odd0, acc[r][0]));    \
                acc[r][1] = _mm256_fmadd_ps(ve, even1, _mm256_fmadd_ps(vo, odd1, acc[r][1]));    \
            }                                                                                    \
        }                                                                                        \
        int64_t col = p * 16, left = n_end - col;                                                \
        for (int r = 0; r < R; r++) {                                                            \
            float *dst = c + (i + r) * ldc + (col - n_begin);                                    \
            if (left >= 16) {                                                                    \
                __m256 v0 = acc[r][0], v1 = acc[r][1];                                           \
                if (accumulate) {                                                                \
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(dst));                                \
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(dst + 8));                            \
                }                                                                                \
                _mm256_storeu_ps(dst, v0);                                                       \
                _mm256_storeu_ps(dst + 8, v1);                                                   \
            } else {                                                                             \
                float tmp[16];                                                                   \
                _mm256_storeu_ps(tmp, acc[r][0]);                                                \
                _mm256_storeu_ps(tmp + 8, acc[r][1]);                                            \
                for (int64_t j = 0; j < left; j++) dst[j] = accumulate ? tmp[j] + dst[j] : tmp[j]; \
            }                                                                                    \
        }                                                                                        \
    }
TC_AVX2_TILE_FN(1) TC_AVX2_TILE_FN(2) TC_AVX2_TILE_FN(3) TC_AVX2_TILE_FN(4)
static const tc_tile_fn avx2_tiles[5] = {0, avx2_tile_1, avx2_tile_2, avx2_tile_3, avx2_tile_4};
#endif

// The reference kernel in plain C, for any CPU: the same sums in the same order as the vector
// kernels (per pair, odd element first), one column at a time.
static void portable_gemm(const uint16_t *a, int64_t m, int64_t pairs, const uint16_t *packed, int64_t packed_pairs,
                          int64_t pair_begin, int64_t n_begin, int64_t n_end, float *c, int64_t ldc, int accumulate,
                          int64_t panel_begin, int64_t panel_end) {
    int64_t kp = 2 * pairs;
    for (int64_t p = panel_begin; p < panel_end; p++) {
        const uint16_t *b0 = packed + ((size_t)p * packed_pairs + pair_begin) * 32;
        for (int64_t i = 0; i < m; i++) {
            const uint16_t *row = a + i * kp;
            for (int64_t l = 0; l < 16 && p * 16 + l < n_end; l++) {
                float acc = 0;
                for (int64_t q = 0; q < pairs; q++) {
                    const uint16_t *b = b0 + (size_t)q * 32 + 2 * l;
                    acc += tc_bf16_to_float(row[2 * q + 1]) * tc_bf16_to_float(b[1]);
                    acc += tc_bf16_to_float(row[2 * q]) * tc_bf16_to_float(b[0]);
                }
                float *dst = c + i * ldc + (p * 16 + l - n_begin);
                *dst = accumulate ? acc + *dst : acc;
            }
        }
    }
}

int tc_bf16_kernel_supported(int kernel) {
    tc_cpu_info info;
    tc_cpu_detect(&info);
    switch (kernel) {
    case TC_BF16_KERNEL_AVX512BF16:
#ifdef TC_HAVE_BF16_KERNEL
        return info.avx512f && info.avx512bw && info.avx512vl && info.os_saves_avx512 && info.avx512_bf16;
#else
        return 0;
#endif
    case TC_BF16_KERNEL_AVX2:
#ifdef TC_HAVE_BF16_AVX2
        return info.avx2 && info.fma && info.os_saves_avx;
#else
        return 0;
#endif
    case TC_BF16_KERNEL_PORTABLE:
        return 1;
    default:
        return 0;
    }
}

int tc_bf16_gemm(int kernel, const uint16_t *a, int64_t m, int64_t a_pairs, const uint16_t *packed, int64_t packed_pairs,
                 int64_t pair_begin, int64_t n_begin, int64_t n_end, float *c, int64_t ldc, int accumulate,
                 int64_t panel_begin, int64_t panel_end) {
    int64_t pairs = a_pairs, kp = 2 * pairs;
    switch (kernel) {
#ifdef TC_HAVE_BF16_KERNEL
    case TC_BF16_KERNEL_AVX512BF16:
        // Column panels outermost: one pair of B panels (2 x 16 columns x k) stays in cache
        // while every row tile of A streams past it.
        for (int64_t p = panel_begin; p < panel_end; p += 2) {
            int np = panel_end - p >= 2 ? 2 : 1;
            for (int64_t i = 0; i < m; i += 6) {
                int r = m - i >= 6 ? 6 : (int)(m - i);
                tiles[np - 1][r](a, i, kp, packed, p, pairs, packed_pairs, pair_begin, n_begin, n_end, c, ldc, accumulate);
            }
        }
        return 1;
#endif
#ifdef TC_HAVE_BF16_AVX2
    case TC_BF16_KERNEL_AVX2:
        for (int64_t p = panel_begin; p < panel_end; p++) {
            for (int64_t i = 0; i < m; i += 4) {
                int r = m - i >= 4 ? 4 : (int)(m - i);
                avx2_tiles[r](a, i, kp, packed, p, pairs, packed_pairs, pair_begin, n_begin, n_end, c, ldc, accumulate);
            }
        }
        return 1;
#endif
    case TC_BF16_KERNEL_PORTABLE:
        portable_gemm(a, m, pairs, packed, packed_pairs, pair_begin, n_begin, n_end, c, ldc, accumulate, panel_begin, panel_end);
        return 1;
    default:
        return 0;
    }
}

int tc_amx_request(char *reason, size_t reason_size) {
#if defined(__x86_64__) && defined(__linux__)
    unsigned int eax, ebx, ecx, edx;
    if (__get_cpuid_max(0, NULL) < 7) { snprintf(reason, reason_size, "cpuid has no leaf 7"); return 0; }
    __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx);
    int tile = (edx >> 24) & 1, bf16 = (edx >> 22) & 1;
    if (!tile || !bf16) { snprintf(reason, reason_size, "the CPU reports no AMX-TILE/AMX-BF16"); return 0; }
    __get_cpuid(1, &eax, &ebx, &ecx, &edx);
    if (!((ecx >> 27) & 1)) { snprintf(reason, reason_size, "the OS does not enable XSAVE"); return 0; }
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    unsigned long long xcr0 = ((unsigned long long)hi << 32) | lo;
    if ((xcr0 & (3ull << 17)) != (3ull << 17)) { snprintf(reason, reason_size, "the OS does not enable AMX tile state (XCR0)"); return 0; }
    const long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) {
        snprintf(reason, reason_size, "the kernel refused arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)");
        return 0;
    }
    return 1;
#else
    snprintf(reason, reason_size, "AMX needs x86-64 Linux");
    return 0;
#endif
}
