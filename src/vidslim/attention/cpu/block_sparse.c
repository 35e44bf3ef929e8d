/* Fused block-sparse attention for CPU, float32: one query block and one head at a time, in cache.
 *
 * Compiled on first use by vidslim/attention/cpu/build.py; called through ctypes by cpu/kernel.py (which says why).
 * For each work item (head h, query block r):
 *   1. copy the block's queries and its K key and value rows of head h into small tiles (they stay in L1/L2);
 *   2. S = scale * Q K^T               one BLAS sgemm into a [bq x K] tile
 *   3. S += bias; P = exp(S - rowmax)  (bias: -inf for masked slots, a key bias otherwise)
 *   4. O = P V / rowsum(P)             one BLAS sgemm, rows written straight to their packed output rows
 * The BLAS is the sgemm_ torch itself uses (MKL in Linux x86 wheels), passed in as a function pointer, so nothing
 * here links against torch or BLAS. Work items are numbered h * R + r: consecutive items share a head, so the
 * head's keys and values are reused from cache by the next query blocks.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef void (*sgemm_fn)(const char *transa, const char *transb, const int *m, const int *n, const int *k,
                         const float *alpha, const float *a, const int *lda, const float *b, const int *ldb,
                         const float *beta, float *c, const int *ldc);
typedef int (*set_threads_fn)(int threads);

/* exp(x) for x <= 0 (scores minus their row maximum), 16 at a time in GCC/Clang vector types so that it compiles to
 * SIMD on any target: 2^n * p(r) with n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2] and p the degree-6
 * Taylor polynomial (relative error < 2.5e-7, about two float ulps). Below -87 (and for -inf) it returns 0. */
typedef float floats16 __attribute__((vector_size(64), aligned(4)));
typedef int32_t ints16 __attribute__((vector_size(64), aligned(4)));

static inline floats16 exp_nonpositive(floats16 x) {
    const ints16 live = x >= -87.0f; /* -1 where x >= -87, else 0 (also for -inf and NaN) */
    const floats16 lowest = (floats16){0} - 87.0f;
    const floats16 clamped = (floats16)(((ints16)x & live) | ((ints16)lowest & ~live));
    const ints16 n = __builtin_convertvector(clamped * 1.44269504088896341f - 0.5f, ints16); /* rounds to nearest */
    const floats16 nf = __builtin_convertvector(n, floats16);
    const floats16 r = (clamped - nf * 0.693145751953125f) - nf * 1.428606765330187e-06f;
    floats16 p = r * (1.0f / 720.0f) + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const floats16 two_n = (floats16)((n + 127) << 23);
    return (floats16)((ints16)(p * two_n) & live);
}

/* row[j] = exp(row[j] - top) for j < cols, 16 at a time (the tail through a zero-padded vector). */
static void exp_shifted(float *row, int cols, float top) {
    int j = 0;
    for (; j + 16 <= cols; j += 16) {
        floats16 x;
        memcpy(&x, row + j, sizeof x);
        x = exp_nonpositive(x - top);
        memcpy(row + j, &x, sizeof x);
    }
    if (j < cols) {
        floats16 x = {0};
        memcpy(&x, row + j, (size_t)(cols - j) * sizeof(float));
        x = exp_nonpositive(x - top);
        memcpy(row + j, &x, (size_t)(cols - j) * sizeof(float));
    }
}

/* Row-wise softmax numerators of s [rows x cols] in place (bias added first when given); row sums into sums.
 * As SDPA: a row holding a NaN gets the sum NaN (its output is NaN), a row whose scores are all -inf the sum 0
 * (its output is 0). */
static void softmax_rows(float *restrict s, int rows, int cols, const float *restrict bias, float *restrict sums) {
    for (int i = 0; i < rows; ++i) {
        float *restrict row = s + (int64_t)i * cols;
        if (bias != NULL) {
#pragma omp simd
            for (int j = 0; j < cols; ++j) row[j] += bias[j];
        }
        float top = -INFINITY;
        int nans = 0;
#pragma omp simd reduction(max : top) reduction(+ : nans)
        for (int j = 0; j < cols; ++j) {
            top = row[j] > top ? row[j] : top;
            nans += row[j] != row[j];
        }
        if (nans || top == -INFINITY) {
            if (!nans) memset(row, 0, (size_t)cols * sizeof(float)); /* no -inf into the output sgemm */
            sums[i] = nans ? NAN : 0.0f;
            continue;
        }
        exp_shifted(row, cols, top);
        float total = 0.0f;
#pragma omp simd reduction(+ : total)
        for (int j = 0; j < cols; ++j) total += row[j];
        sums[i] = total;
    }
}

/* The layout of one packed [rows, heads, dim] tensor: element (r, h, i) is at base[r * row + h * head + i]. */
typedef struct {
    int64_t row;
    int64_t head;
} strides_t;

/* Attend work items [item_lo, item_hi) of R query blocks x heads; returns 0, or -1 when out of memory.
 *
 * q, k, v, out: packed [rows, heads, d] float32 tensors with unit stride along d (strides in elements)
 * q_rows [R, bq]: the packed row of each query slot, -1 for an empty slot (its output is not written);
 *                 NULL when query block r is rows r*bq .. r*bq+bq-1
 * kv_rows [R, K]: the packed rows of the keys and values each query block sees (masked slots: any valid row)
 * bias [R, K]: added to the scores (-inf masks a slot), or NULL
 * sgemm: the Fortran-interface BLAS sgemm_; set_blas_threads: MKL's mkl_set_num_threads_local or NULL. The caller
 *        shares work items out to its threads, so BLAS runs on the calling thread alone (each call is small).
 */
int vidslim_block_sparse_attend(const float *q, strides_t qs, const float *k, strides_t ks, const float *v,
                                strides_t vs, float *out, strides_t os, int dk, int dv, int blocks,
                                int bq, int kk, const int64_t *q_rows, const int64_t *kv_rows, const float *bias,
                                float scale, int64_t item_lo, int64_t item_hi, sgemm_fn sgemm,
                                set_threads_fn set_blas_threads) {
    const size_t floats = (size_t)bq * dk + (size_t)kk * dk + (size_t)kk * dv + (size_t)bq * kk + (size_t)bq * dv + bq;
    float *work = aligned_alloc(64, ((floats * sizeof(float) + 63) / 64) * 64);
    if (work == NULL) return -1;
    const int blas_threads = set_blas_threads != NULL ? set_blas_threads(1) : 0;
    float *q_tile = work;
    float *k_tile = q_tile + (size_t)bq * dk;
    float *v_tile = k_tile + (size_t)kk * dk;
    float *s_tile = v_tile + (size_t)kk * dv;
    float *o_tile = s_tile + (size_t)bq * kk;
    float *sums = o_tile + (size_t)bq * dv;
    const float zero = 0.0f, one = 1.0f;

    for (int64_t item = item_lo; item < item_hi; ++item) {
        const int h = (int)(item / blocks);
        const int64_t r = item % blocks;
        const int64_t *keys = kv_rows + r * kk;
        for (int i = 0; i < bq; ++i) {
            int64_t row = q_rows != NULL ? q_rows[r * bq + i] : r * bq + i;
            if (row < 0) row = 0; /* empty slot: any row, its output is dropped */
            memcpy(q_tile + (size_t)i * dk, q + row * qs.row + h * qs.head, (size_t)dk * sizeof(float));
        }
        for (int j = 0; j < kk; ++j) {
            memcpy(k_tile + (size_t)j * dk, k + keys[j] * ks.row + h * ks.head, (size_t)dk * sizeof(float));
            memcpy(v_tile + (size_t)j * dv, v + keys[j] * vs.row + h * vs.head, (size_t)dv * sizeof(float));
        }
        /* Column-major BLAS on row-major tiles: S^T [K x bq] = K_tile (as [K x dk]) . Q_tile^T */
        sgemm("T", "N", &kk, &bq, &dk, &scale, k_tile, &dk, q_tile, &dk, &zero, s_tile, &kk);
        softmax_rows(s_tile, bq, kk, bias != NULL ? bias + r * kk : NULL, sums);
        /* O^T [dv x bq] = V_tile^T . P^T */
        sgemm("N", "N", &dv, &bq, &kk, &one, v_tile, &dv, s_tile, &kk, &zero, o_tile, &dv);
        for (int i = 0; i < bq; ++i) {
            const int64_t row = q_rows != NULL ? q_rows[r * bq + i] : r * bq + i;
            if (row < 0) continue;
            float *dest = out + row * os.row + h * os.head;
            const float *src = o_tile + (size_t)i * dv;
            const float inv = sums[i] > 0.0f ? 1.0f / sums[i] : sums[i]; /* 0: all masked -> 0; NaN -> NaN */
            for (int c = 0; c < dv; ++c) dest[c] = src[c] * inv;
        }
    }
    if (set_blas_threads != NULL) set_blas_threads(blas_threads);
    free(work);
    return 0;
}
