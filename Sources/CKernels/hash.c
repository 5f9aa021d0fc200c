#include "tc_kernels.h"
#include <string.h>

uint64_t tc_hash_bytes(uint64_t state, const void *bytes, size_t n) {
    const unsigned char *p = (const unsigned char *)bytes;
    const uint64_t prime = 0x00000100000001B3ULL;
    size_t words = n / 8;
    for (size_t w = 0; w < words; w++) {
        uint64_t v;
        memcpy(&v, p + w * 8, 8);
        state = (state ^ v) * prime;
    }
    for (size_t i = words * 8; i < n; i++) state = (state ^ p[i]) * prime;
    return state;
}
