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

typedef void (*tc_tile_fn)(const uint16_t *, int64_t, int64_t, const uint16_t *, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t, float *, int64_t, int);
static const tc_tile_fn tiles[2][7] = {
    {0, tile_1_1, tile_2_1, tile_3_1, tile_4_1, tile_5_1, tile_6_1},
    {0, tile_1_2, tile_2_2, tile_3_2, tile_4_2, tile_5_2, tile_6_2},
};
#endif

int tc_bf16_kernel_available(void) {
#ifdef TC_HAVE_BF16_KERNEL
    tc_cpu_info info;
    tc_cpu_detect(&info);
    return info.avx512f && info.avx512bw && info.avx512vl && info.os_saves_avx512 && info.avx512_bf16;
#else
    return 0;
#endif
}

int tc_bf16_gemm(const uint16_t *a, int64_t m, int64_t a_pairs, const uint16_t *packed, int64_t packed_pairs,
                 int64_t pair_begin, int64_t n_begin, int64_t n_end, float *c, int64_t ldc, int accumulate,
                 int64_t panel_begin, int64_t panel_end) {
#ifdef TC_HAVE_BF16_KERNEL
    int64_t pairs = a_pairs, kp = 2 * pairs;
    // Column panels outermost: one pair of B panels (2 x 16 columns x k) stays in cache while
    // every row tile of A streams past it.
    for (int64_t p = panel_begin; p < panel_end; p += 2) {
        int np = panel_end - p >= 2 ? 2 : 1;
        for (int64_t i = 0; i < m; i += 6) {
            int r = m - i >= 6 ? 6 : (int)(m - i);
            tiles[np - 1][r](a, i, kp, packed, p, pairs, packed_pairs, pair_begin, n_begin, n_end, c, ldc, accumulate);
        }
    }
    return 1;
#else
    (void)a; (void)m; (void)a_pairs; (void)packed; (void)packed_pairs; (void)pair_begin; (void)n_begin;
    (void)n_end; (void)c; (void)ldc; (void)accumulate; (void)panel_begin; (void)panel_end;
    return 0;
#endif
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
