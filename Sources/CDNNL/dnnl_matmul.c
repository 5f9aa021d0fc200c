#include "tc_dnnl.h"
#include <dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dnnl_engine_t engine;
static dnnl_status_t engine_status = dnnl_runtime_error;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void make_engine(void) { engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0); }

static int ready(char *error, size_t size) {
    pthread_once(&engine_once, make_engine);
    if (engine_status != dnnl_success) snprintf(error, size, "oneDNN: no CPU engine (status %d)", (int)engine_status);
    return engine_status == dnnl_success;
}

static dnnl_data_type_t data_type(int type) { return type == TC_DNNL_BF16 ? dnnl_bf16 : dnnl_f32; }

static const char *status_name(dnnl_status_t s) {
    switch (s) {
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented on this CPU";
    default: return "error";
    }
}

// One cached product shape: the matmul, and for bf16 the reorder that converts A.
typedef struct {
    int64_t m, lda, ldc;
    int accumulate;
    dnnl_primitive_t matmul, convert;
    dnnl_memory_desc_t a_f32, a_typed, c;
} shape_entry;

struct tc_dnnl_weights {
    int type, stage;
    int64_t k, n;
    dnnl_memory_desc_t packed_md;
    dnnl_memory_t packed;
    size_t bytes;
    char impl[128];
    pthread_mutex_t lock;
    shape_entry *shapes;
    int count, capacity;
};

static dnnl_status_t matmul_pd(int type, int64_t m, int64_t k, int64_t n, int64_t lda, int64_t ldc, int accumulate,
                               const dnnl_memory_desc_t *weights_md, dnnl_primitive_desc_t *pd) {
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t ad = {m, k}, bd = {k, n}, cd = {m, n};
    dnnl_dims_t as = {lda, 1}, cs = {ldc, 1};
    dnnl_status_t s;
    if ((s = dnnl_memory_desc_init_by_strides(&a, 2, ad, data_type(type), as)) != dnnl_success) return s;
    if (weights_md) b = *weights_md;
    else if ((s = dnnl_memory_desc_init_by_tag(&b, 2, bd, data_type(type), dnnl_format_tag_any)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_strides(&c, 2, cd, dnnl_f32, cs)) != dnnl_success) return s;
    dnnl_matmul_desc_t desc;
    if ((s = dnnl_matmul_desc_init(&desc, &a, &b, NULL, &c)) != dnnl_success) return s;
    dnnl_primitive_attr_t attr = NULL;
    if (accumulate) {
        dnnl_post_ops_t ops;
        if ((s = dnnl_primitive_attr_create(&attr)) != dnnl_success) return s;
        dnnl_post_ops_create(&ops);
        dnnl_post_ops_append_sum(ops, 1.0f);
        dnnl_primitive_attr_set_post_ops(attr, ops);
        dnnl_post_ops_destroy(ops);
    }
    s = dnnl_primitive_desc_create(pd, &desc, attr, engine, NULL);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return s;
}

int tc_dnnl_probe(int type, int64_t m, int64_t k, int64_t n, char *info, size_t info_size) {
    if (!ready(info, info_size)) return 0;
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = matmul_pd(type, m, k, n, k, n, 0, NULL, &pd);
    if (s != dnnl_success) {
        snprintf(info, info_size, "oneDNN %s matmul %s (ISA %s)", type == TC_DNNL_BF16 ? "bf16" : "f32", status_name(s),
                 tc_dnnl_effective_isa());
        return 0;
    }
    const char *impl = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(info, info_size, "%s", impl);
    dnnl_primitive_desc_destroy(pd);
    return 1;
}

// Each calling thread keeps one stream and one staging buffer for its whole life instead of
// creating a stream and allocating the buffer per product. The buffer only grows: a thread keeps
// its largest staged activations (e.g. 2048 x 1536 bf16, 6 MB) until it exits.
typedef struct {
    dnnl_stream_t stream;
    void *staging;
    size_t staging_bytes;
} thread_state;

static pthread_key_t state_key;
static int state_key_made;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;

static void free_state(void *p) {
    thread_state *t = p;
    if (t->stream) dnnl_stream_destroy(t->stream);
    free(t->staging);
    free(t);
}

static void make_state_key(void) { state_key_made = pthread_key_create(&state_key, free_state) == 0; }

static thread_state *state(void) {
    pthread_once(&state_once, make_state_key);
    if (!state_key_made) return NULL;
    thread_state *t = pthread_getspecific(state_key);
    if (t) return t;
    t = calloc(1, sizeof(*t));
    if (t && pthread_setspecific(state_key, t) != 0) { free(t); t = NULL; }
    return t;
}

static dnnl_status_t run(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args) {
    thread_state *t = state();
    if (!t) return dnnl_out_of_memory;
    if (!t->stream) {
        dnnl_status_t s = dnnl_stream_create(&t->stream, engine, dnnl_stream_default_flags);
        if (s != dnnl_success) { t->stream = NULL; return s; }
    }
    dnnl_status_t s = dnnl_primitive_execute(p, t->stream, nargs, args);
    if (s == dnnl_success) s = dnnl_stream_wait(t->stream);
    return s;
}

// The calling thread's staging buffer, grown to at least `bytes` (NULL when memory runs out).
static void *staging(size_t bytes) {
    thread_state *t = state();
    if (!t) return NULL;
    if (t->staging_bytes < bytes) {
        void *grown = malloc(bytes);
        if (!grown) return NULL;
        free(t->staging);
        t->staging = grown;
        t->staging_bytes = bytes;
    }
    return t->staging;
}

static dnnl_status_t reorder(const dnnl_memory_desc_t *from_md, void *from, const dnnl_memory_desc_t *to_md, void *to) {
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, from_md, engine, to_md, engine, NULL);
    if (s != dnnl_success) return s;
    dnnl_primitive_t p;
    s = dnnl_primitive_create(&p, pd);
    dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success) return s;
    dnnl_memory_t a, b;
    dnnl_memory_create(&a, from_md, engine, from);
    dnnl_memory_create(&b, to_md, engine, to);
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, a}, {DNNL_ARG_TO, b}};
    s = run(p, 2, args);
    dnnl_memory_destroy(a);
    dnnl_memory_destroy(b);
    dnnl_primitive_destroy(p);
    return s;
}

tc_dnnl_weights *tc_dnnl_weights_create(int type, int64_t k, int64_t n, const float *b, int64_t stride_k,
                                        int64_t stride_n, int64_t m_hint, int stage, char *error, size_t error_size) {
    if (!ready(error, error_size)) return NULL;
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = matmul_pd(type, m_hint, k, n, k, n, 0, NULL, &pd);
    if (s != dnnl_success) {
        snprintf(error, error_size, "oneDNN %s matmul %lld x %lld x %lld: %s (ISA %s)", type == TC_DNNL_BF16 ? "bf16" : "f32",
                 (long long)m_hint, (long long)k, (long long)n, status_name(s), tc_dnnl_effective_isa());
        return NULL;
    }
    tc_dnnl_weights *w = calloc(1, sizeof(*w));
    if (!w) { dnnl_primitive_desc_destroy(pd); snprintf(error, error_size, "out of memory"); return NULL; }
    w->type = type; w->k = k; w->n = n; w->stage = stage || type == TC_DNNL_BF16;
    w->packed_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const char *impl = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(w->impl, sizeof(w->impl), "%s", impl);
    dnnl_primitive_desc_destroy(pd);
    pthread_mutex_init(&w->lock, NULL);
    w->bytes = dnnl_memory_desc_get_size(&w->packed_md);
    if ((s = dnnl_memory_create(&w->packed, &w->packed_md, engine, DNNL_MEMORY_ALLOCATE)) != dnnl_success) {
        snprintf(error, error_size, "oneDNN: cannot allocate %zu bytes of packed weights", w->bytes);
        free(w);
        return NULL;
    }
    dnnl_memory_desc_t plain;
    dnnl_dims_t dims = {k, n}, strides = {stride_k, stride_n};
    dnnl_memory_desc_init_by_strides(&plain, 2, dims, dnnl_f32, strides);
    void *to = NULL;
    dnnl_memory_get_data_handle(w->packed, &to);
    if ((s = reorder(&plain, (void *)b, &w->packed_md, to)) != dnnl_success) {
        snprintf(error, error_size, "oneDNN: packing the weights failed: %s", status_name(s));
        tc_dnnl_weights_destroy(w);
        return NULL;
    }
    return w;
}

void tc_dnnl_weights_destroy(tc_dnnl_weights *w) {
    if (!w) return;
    for (int i = 0; i < w->count; i++) {
        dnnl_primitive_destroy(w->shapes[i].matmul);
        if (w->shapes[i].convert) dnnl_primitive_destroy(w->shapes[i].convert);
    }
    free(w->shapes);
    dnnl_memory_destroy(w->packed);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

size_t tc_dnnl_weights_bytes(const tc_dnnl_weights *w) { return w->bytes; }
const char *tc_dnnl_weights_impl(const tc_dnnl_weights *w) { return w->impl; }

// The cached primitives for one shape, made on first use (caller holds the lock).
static shape_entry *shape(tc_dnnl_weights *w, int64_t m, int64_t lda, int64_t ldc, int accumulate, dnnl_status_t *status) {
    for (int i = 0; i < w->count; i++) {
        shape_entry *e = &w->shapes[i];
        if (e->m == m && e->lda == lda && e->ldc == ldc && e->accumulate == accumulate) return e;
    }
    if (w->count == w->capacity) {
        int capacity = w->capacity ? 2 * w->capacity : 8;
        shape_entry *grown = realloc(w->shapes, (size_t)capacity * sizeof(shape_entry));
        if (!grown) { *status = dnnl_out_of_memory; return NULL; }
        w->shapes = grown; w->capacity = capacity;
    }
    shape_entry e;
    memset(&e, 0, sizeof(e));
    e.m = m; e.lda = lda; e.ldc = ldc; e.accumulate = accumulate;
    // Staged activations sit in a dense [m, k] buffer, so the matmul reads lda = k.
    int64_t matmul_lda = w->stage ? w->k : lda;
    dnnl_primitive_desc_t pd;
    if ((*status = matmul_pd(w->type, m, w->k, w->n, matmul_lda, ldc, accumulate, &w->packed_md, &pd)) != dnnl_success) return NULL;
    *status = dnnl_primitive_create(&e.matmul, pd);
    dnnl_primitive_desc_destroy(pd);
    if (*status != dnnl_success) return NULL;
    dnnl_dims_t ad = {m, w->k}, as = {lda, 1}, cd = {m, w->n}, cs = {ldc, 1};
    dnnl_memory_desc_init_by_strides(&e.a_f32, 2, ad, dnnl_f32, as);
    dnnl_memory_desc_init_by_tag(&e.a_typed, 2, ad, data_type(w->type), dnnl_ab);
    dnnl_memory_desc_init_by_strides(&e.c, 2, cd, dnnl_f32, cs);
    if (w->stage) {
        dnnl_primitive_desc_t rpd;
        if ((*status = dnnl_reorder_primitive_desc_create(&rpd, &e.a_f32, engine, &e.a_typed, engine, NULL)) != dnnl_success) {
            dnnl_primitive_destroy(e.matmul);
            return NULL;
        }
        *status = dnnl_primitive_create(&e.convert, rpd);
        dnnl_primitive_desc_destroy(rpd);
        if (*status != dnnl_success) { dnnl_primitive_destroy(e.matmul); return NULL; }
    }
    w->shapes[w->count] = e;
    return &w->shapes[w->count++];
}

int tc_dnnl_matmul(tc_dnnl_weights *w, const float *a, int64_t m, int64_t lda, float *c, int64_t ldc, int accumulate,
                   char *error, size_t error_size) {
    if (m <= 0) return 0;
    dnnl_status_t s = dnnl_success;
    pthread_mutex_lock(&w->lock);
    shape_entry *e = shape(w, m, lda, ldc, accumulate, &s);
    pthread_mutex_unlock(&w->lock);
    if (!e) {
        snprintf(error, error_size, "oneDNN matmul %lld x %lld x %lld: %s", (long long)m, (long long)w->k, (long long)w->n, status_name(s));
        return (int)s;
    }
    dnnl_memory_t am = NULL, typed = NULL, cm = NULL;
    dnnl_memory_create(&am, &e->a_f32, engine, (void *)a);
    dnnl_memory_create(&cm, &e->c, engine, c);
    dnnl_memory_t source = am;
    if (e->convert) {
        void *buffer = staging((size_t)m * (size_t)w->k * (w->type == TC_DNNL_BF16 ? 2 : 4));
        if (!buffer) { s = dnnl_out_of_memory; goto done; }
        dnnl_memory_create(&typed, &e->a_typed, engine, buffer);
        dnnl_exec_arg_t convert_args[2] = {{DNNL_ARG_FROM, am}, {DNNL_ARG_TO, typed}};
        if ((s = run(e->convert, 2, convert_args)) != dnnl_success) goto done;
        source = typed;
    }
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, source}, {DNNL_ARG_WEIGHTS, w->packed}, {DNNL_ARG_DST, cm}};
    s = run(e->matmul, 3, args);
done:
    if (s != dnnl_success) snprintf(error, error_size, "oneDNN matmul failed: %s", status_name(s));
    if (typed) dnnl_memory_destroy(typed);
    dnnl_memory_destroy(am);
    dnnl_memory_destroy(cm);
    return (int)s;
}

int tc_dnnl_weights_read(const tc_dnnl_weights *w, float *dst) {
    dnnl_memory_desc_t plain;
    dnnl_dims_t dims = {w->k, w->n};
    dnnl_memory_desc_init_by_tag(&plain, 2, dims, dnnl_f32, dnnl_ab);
    void *from = NULL;
    dnnl_memory_get_data_handle(w->packed, &from);
    return (int)reorder(&w->packed_md, from, &plain, dst);
}

const char *tc_dnnl_effective_isa(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    default: return "other";
    }
}

int tc_dnnl_version(void) {
    const dnnl_version_t *v = dnnl_version();
    return v->major * 10000 + v->minor * 100 + v->patch;
}
