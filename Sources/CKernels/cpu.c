#include "tc_kernels.h"
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

void tc_cpu_detect(tc_cpu_info *info) {
    memset(info, 0, sizeof(*info));
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return;
    unsigned int max_leaf = eax;
    char vendor[13];
    memcpy(vendor, &ebx, 4); memcpy(vendor + 4, &edx, 4); memcpy(vendor + 8, &ecx, 4);
    vendor[12] = 0;
    info->is_intel = strcmp(vendor, "GenuineIntel") == 0;
    info->is_amd = strcmp(vendor, "AuthenticAMD") == 0;

    __get_cpuid(1, &eax, &ebx, &ecx, &edx);
    unsigned int base_family = (eax >> 8) & 0xf, base_model = (eax >> 4) & 0xf;
    unsigned int ext_family = (eax >> 20) & 0xff, ext_model = (eax >> 16) & 0xf;
    info->family = (int)(base_family == 0xf ? base_family + ext_family : base_family);
    info->model = (int)((base_family == 0x6 || base_family == 0xf) ? (ext_model << 4) | base_model
                                                                     : base_model);
    info->stepping = (int)(eax & 0xf);
    info->sse3 = (ecx >> 0) & 1;
    info->ssse3 = (ecx >> 9) & 1;
    info->fma = (ecx >> 12) & 1;
    info->sse4_1 = (ecx >> 19) & 1;
    info->sse4_2 = (ecx >> 20) & 1;
    int osxsave = (ecx >> 27) & 1;
    info->avx = (ecx >> 28) & 1;
    info->f16c = (ecx >> 29) & 1;
    if (osxsave) {
        unsigned long long xcr0 = read_xcr0();
        info->os_saves_avx = (xcr0 & 0x6) == 0x6;
        info->os_saves_avx512 = (xcr0 & 0xe6) == 0xe6;
    }
    if (max_leaf >= 7) {
        __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx);
        info->avx2 = (ebx >> 5) & 1;
        info->avx512f = (ebx >> 16) & 1;
        info->avx512dq = (ebx >> 17) & 1;
        info->avx512cd = (ebx >> 28) & 1;
        info->avx512bw = (ebx >> 30) & 1;
        info->avx512vl = (ebx >> 31) & 1;
        info->avx512_vnni = (ecx >> 11) & 1;
        info->amx_bf16 = (edx >> 22) & 1;
        info->amx_tile = (edx >> 24) & 1;
        info->amx_int8 = (edx >> 25) & 1;
        __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx);
        info->avx512_bf16 = (eax >> 5) & 1;
    }
}
#else
void tc_cpu_detect(tc_cpu_info *info) { memset(info, 0, sizeof(*info)); }
#endif
