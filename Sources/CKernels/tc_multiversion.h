#ifndef THOUGHTCRIME_MULTIVERSION_H
#define THOUGHTCRIME_MULTIVERSION_H
// Hot kernels are compiled several times, for AVX-512, AVX2+FMA and baseline x86-64; the
// loader picks the widest the running CPU supports (ifunc). The binary stays portable while
// the loops get the vector width of the machine.
#if defined(__x86_64__) && defined(__ELF__) && !defined(TC_NO_MULTIVERSION)
#define TC_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TC_MULTIVERSION
#endif
#endif
