#ifndef THOUGHTCRIME_KERNELS_H
#define THOUGHTCRIME_KERNELS_H
// Hand-written C kernels for the work OpenBLAS does not cover. Every kernel takes plain
// pointers and a row or element range so the Swift side can split work across threads.
// Layouts are row-major Float32; shapes are given in the comments as [rows, cols].
#include <stddef.h>
#include <stdint.h>

// ---- CPU identification (cpu.c) ----
typedef struct {
    int is_intel, is_amd;
    int family, model, stepping;
    int sse3, ssse3, sse4_1, sse4_2, avx, avx2, fma, f16c;
    int avx512f, avx512bw, avx512vl, avx512dq, avx512cd, avx512_bf16, avx512_vnni;
    int amx_tile, amx_bf16, amx_int8;
    int os_saves_avx, os_saves_avx512;
} tc_cpu_info;
void tc_cpu_detect(tc_cpu_info *info);

// ---- floating-point mode (float_mode.c) ----
// Subnormal results flushed to zero and subnormal operands read as zero (x86 MXCSR FTZ and DAZ,
// AArch64 FPCR.FZ) on the calling thread; threads it creates afterwards inherit the mode.
void tc_set_subnormal_flushing(int on);
// 1 when the calling thread flushes subnormals (both FTZ and DAZ on x86).
int tc_subnormal_flushing(void);
// Stops OpenBLAS's server threads (started before main, without the mode); its next threaded
// product restarts them from the calling thread. 0 when this OpenBLAS has no such threads.
int tc_openblas_restart_threads(void);
// Runs one OpenMP parallel region on libgomp's default team from the calling thread. Returns how
// many team threads flush subnormals and stores the team size in *threads; -1 when no OpenMP
// runtime is loaded.
int tc_openmp_subnormal_flushing(int *threads);

// ---- hashing (hash.c) ----
// Continues a 64-bit FNV-1a-style hash over n bytes, eight bytes per step.
uint64_t tc_hash_bytes(uint64_t state, const void *bytes, size_t n);

// ---- elementwise (elementwise.c); n elements ----
void tc_add(const float *a, const float *b, float *out, size_t n);        // out = a + b
void tc_mul(const float *a, const float *b, float *out, size_t n);        // out = a * b
void tc_scale(const float *x, float s, float *out, size_t n);             // out = s * x
void tc_axpy(float alpha, const float *x, float *y, size_t n);            // y += alpha * x
void tc_mul_accumulate(const float *a, const float *b, float *y, size_t n); // y += a * b
void tc_fill(float *x, float value, size_t n);

// ---- reductions and softmax (reduce.c) ----
double tc_sum(const float *x, size_t n);
float tc_max(const float *x, size_t n);
double tc_dot(const float *a, const float *b, size_t n);
// x, out: [rows, cols]; out may alias x
void tc_softmax_rows(const float *x, float *out, size_t rows, size_t cols);

// ---- RMSNorm (rmsnorm.c); x, y, dx, dy: [rows, d]; w, dw: [d]; rstd: [rows] ----
void tc_rmsnorm_forward(const float *x, const float *w, float *y, float *rstd,
                        size_t row_begin, size_t row_end, size_t d, float eps);
// dx += ..., dw_partial += ... over rows [row_begin, row_end); either output may be NULL.
void tc_rmsnorm_backward(const float *dy, const float *x, const float *w, const float *rstd,
                         float *dx, float *dw_partial, size_t row_begin, size_t row_end, size_t d);

// ---- rotary position embedding (rope.c); x, y: [tokens, heads, head_dim] ----
// interleaved != 0 rotates pairs (2i, 2i+1) (GGUF / llama.cpp layout); otherwise pairs
// (i, i + head_dim/2) (Hugging Face half rotation). direction = +1 forward, -1 inverse.
// accumulate != 0 adds into y instead of writing it. y may alias x when accumulate == 0.
void tc_rope(const float *x, float *y, const int32_t *positions, size_t token_begin,
             size_t token_end, size_t heads, size_t head_dim, float theta_base, int interleaved,
             int direction, int accumulate);

// ---- causal attention (attention.c): the steps between the sgemm calls of Autodiff's
// attention, on a block of query rows [first_row, first_row + rows) of one packed sequence
// against its first cols = first_row + rows keys (query row i sees keys j <= i) ----
// s: scaled scores [rows, cols] -> probabilities (0 above the diagonal); lse: [rows].
void tc_causal_softmax_forward(float *s, size_t rows, size_t cols, size_t first_row, float *lse);
// s: scaled scores -> probabilities from lse; dp: dout_i . v_j -> scale * p (dp - delta_i), with
// delta_i = dout_i . out_i over rows of D floats at stride ld (dout and out at the block's first row).
void tc_causal_softmax_backward(float *s, float *dp, const float *lse, const float *dout,
                                const float *out, size_t ld, size_t D, float scale, size_t rows, size_t cols,
                                size_t first_row);

// Attention of n new tokens at positions [start, start+n) against a KV cache holding positions
// [0, start+n) of the same sequence (inference; no backward). q, out: [n, Hq*D];
// k, v: [start+n, Hkv*D]; scratch: start+n floats.
void tc_attention_cached(const float *q, const float *k, const float *v, float *out, size_t n,
                         size_t start, size_t Hq, size_t Hkv, size_t D, float scale,
                         size_t head_begin, size_t head_end, float *scratch);

// ---- SwiGLU (swiglu.c); gate, up, out, dgate, dup, dout: n elements ----
void tc_swiglu_forward(const float *gate, const float *up, float *out, size_t n);
// dgate and dup accumulate; either may be NULL.
void tc_swiglu_backward(const float *gate, const float *up, const float *dout, float *dgate,
                        float *dup, size_t n);
// The same gradients when dout may be overwritten: dup is written over dout_to_dup (not NULL),
// and dgate (NULL when gate needs none) is added into when accumulate_gate is set, else written.
// dout_to_dup and dgate must not overlap each other, gate or up; gate and up may be the same.
void tc_swiglu_backward_in_place(const float *gate, const float *up, float *dout_to_dup, float *dgate,
                                 int accumulate_gate, size_t n);

// ---- dropout (dropout.c): counter-based mask, so forward and backward agree without storing it
// y (+)= x * keep(seed, offset + i) / (1 - p) for i in [0, n)
void tc_dropout(const float *x, float *y, size_t n, uint64_t offset, uint64_t seed, float p,
                int accumulate);

// ---- cross-entropy over vocabulary chunks (crossentropy.c) ----
// logits: [rows, cols] with leading dimension ld; row_max, row_sum: [rows] running state.
void tc_ce_logsumexp_update(const float *logits, size_t rows, size_t cols, size_t ld,
                            float *row_max, float *row_sum);
// logits := (softmax(logits) - onehot(target_local)) * scale, using the final lse per row;
// target_local[r] < 0 or >= cols means the row's target lies in another chunk. With row_scales
// (may be NULL) row r uses row_scales[r] instead of scale: per-token upstream gradients.
void tc_ce_gradient_chunk(float *logits, size_t rows, size_t cols, size_t ld, const float *lse,
                          const int32_t *target_local, float scale, const float *row_scales);
// Fixes glibc's mmap threshold (mallopt M_MMAP_THRESHOLD); returns 1 on success, 0 elsewhere.
int tc_set_mmap_threshold(int bytes);
// Asks the kernel to SIGKILL this process when its parent exits (PR_SET_PDEATHSIG, Linux).
// Returns 0, 1 when the parent is no longer `expected_parent` (it died before the request),
// or -1 when the request failed.
int tc_die_with_parent(int expected_parent);
// SIGINT noted in a flag instead of ending the process (arm), restored (disarm), and read.
void tc_reply_interrupt_arm(void);
void tc_reply_interrupt_disarm(void);
int tc_reply_interrupt_raised(void);
#endif
