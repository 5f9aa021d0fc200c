#include "tc_kernels.h"
#include "tc_multiversion.h"

// SplitMix64 finaliser over (seed, element index): each element's keep decision depends only
// on the seed and its index, so the backward pass regenerates the forward mask exactly and
// threads can split the range anywhere.
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

TC_MULTIVERSION void tc_dropout(const float *x, float *y, size_t n, uint64_t offset, uint64_t seed, float p,
                int accumulate) {
    float keep_scale = 1.f / (1.f - p);
    uint64_t key = mix64(seed + 0x9e3779b97f4a7c15ULL);
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = mix64(key ^ ((offset + i) * 0x9e3779b97f4a7c15ULL));
        float u = (float)(bits >> 40) * (1.0f / 16777216.0f); // 24 random bits in [0, 1)
        float v = u >= p ? x[i] * keep_scale : 0.f;
        if (accumulate) y[i] += v; else y[i] = v;
    }
}
