/* rnnc_kernels.h: the hand-written kernels every generated model library includes.
 *
 * Header-only (static inline) so that each libNAME.so is self-contained: it depends on
 * libc, libm and the OpenMP runtime, nothing else. Compiled with the model, at the
 * model's -march, so the vector width below is the machine's.
 *
 * Conventions (as in the generated code):
 *   M = rows (batch, or batch x time), N = output features, K = input features.
 *   Weights are stored as PyTorch does, W [N, K]; y = x W^T (+ b).
 *   For the product they are packed once, at load time, into panels of RNNC_NR output
 *   columns: packed[(p*K + k)*NR + i] = W[(p*NR + i)*K + k] (zero past N), so the inner
 *   loop reads one contiguous vector of NR weights per k.
 */
#ifndef RNNC_KERNELS_H
#define RNNC_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define RNNC_VEC 16
#elif defined(__AVX__)
#define RNNC_VEC 8
#else
#define RNNC_VEC 4
#endif
/* Tiles of RNNC_MR rows by RNNC_NV vectors of output columns; the accumulators and the
 * weight vectors must fit the vector registers: 16 with AVX2, 32 with AVX-512. */
#if defined(__AVX512F__)
#define RNNC_MR 8
#define RNNC_NV 3
#else
#define RNNC_MR 6
#define RNNC_NV 2
#endif
#define RNNC_NR (RNNC_NV * RNNC_VEC)

/* aligned(4): the vectors are loaded from and stored to plain float arrays. */
typedef float rnnc_vf __attribute__((vector_size(RNNC_VEC * sizeof(float)), aligned(4)));

static inline rnnc_vf rnnc_vload(const float *p) { rnnc_vf v; memcpy(&v, p, sizeof v); return v; }
static inline void rnnc_vstore(float *p, rnnc_vf v) { memcpy(p, &v, sizeof v); }
/* Element by element, not `v + x` on a zero vector: 0 + x is not x when x is -0, so that
 * form costs a scalar add before every broadcast in the product tiles. */
static inline rnnc_vf rnnc_vsplat(float x) {
    rnnc_vf v;
    for (int i = 0; i < RNNC_VEC; i++) v[i] = x;
    return v;
}

/* The first n floats at p (0 <= n <= RNNC_VEC), zero past them; and the first n lanes of
 * v stored to p. They serve a panel's last, partial columns of C: with AVX-512 one masked
 * load or store. Not a copy through a buffer: for a variable length clang calls memcpy,
 * and the full-width reload of the buffer then waits for its stores. That cost 4% of a
 * GRU's training step (H = 512), whose weight gradients have K = 512 columns: 10 panels
 * of 48 and one of 32. */
static inline __attribute__((always_inline)) rnnc_vf rnnc_vload_first(const float *p, int n) {
#if defined(__AVX512F__)
    return (rnnc_vf)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
#else
    rnnc_vf v = rnnc_vsplat(0.0f);
    for (int i = 0; i < n; i++) v[i] = p[i];
    return v;
#endif
}

static inline __attribute__((always_inline)) void rnnc_vstore_first(float *p, rnnc_vf v, int n) {
#if defined(__AVX512F__)
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), (__m512)v);
#else
    for (int i = 0; i < n; i++) p[i] = v[i];
#endif
}

/* acc[v] += columns [0, ncols) of one row of a panel of C (ncols <= nv * RNNC_VEC); the
 * lanes past ncols are left as they are (they are never stored). */
static inline __attribute__((always_inline)) void rnnc_add_row(const float *c, int ncols, int nv, rnnc_vf *acc) {
    for (int v = 0; v < nv; v++) {
        int n = ncols - v * RNNC_VEC;
        if (n >= RNNC_VEC) acc[v] = acc[v] + rnnc_vload(c + v * RNNC_VEC);
        else if (n > 0) acc[v] = acc[v] + rnnc_vload_first(c + v * RNNC_VEC, n);
    }
}

/* Columns [0, ncols) of one row of a panel of C = acc. */
static inline __attribute__((always_inline)) void rnnc_store_row(float *c, int ncols, int nv, const rnnc_vf *acc) {
    for (int v = 0; v < nv; v++) {
        int n = ncols - v * RNNC_VEC;
        if (n >= RNNC_VEC) rnnc_vstore(c + v * RNNC_VEC, acc[v]);
        else if (n > 0) rnnc_vstore_first(c + v * RNNC_VEC, acc[v], n);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Memory                                                                               */

/* 64-byte aligned allocation (cache line and AVX-512 vector); NULL on failure. */
static inline float *rnnc_alloc_floats(size_t count) {
    size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
    if (bytes == 0) bytes = 64;
    return (float *)aligned_alloc(64, bytes);
}

/* ------------------------------------------------------------------------------------ */
/* Teams: work shared inside one parallel region                                          */

/* A time loop runs inside one parallel region (no fork and join per step): each kernel
 * of a step has a `_part` form that does thread `tid`'s share of `nth`, decided from the
 * sizes alone, so a thread gets the same share at every step (and keeps its slice of the
 * weights in its own cache) and results do not depend on timing. */
static inline int rnnc_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
static inline int rnnc_thread_count(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* The barrier between the kernels of a time loop's steps: one shared counter and one
 * shared flag, each on its own cache line, and a sense each thread keeps (it flips at every
 * barrier). The last thread to arrive resets the counter and flips the flag; the others
 * spin on it. Its release and acquire order every write before the barrier, in any thread,
 * before every read after it, as `omp barrier` does.
 *
 * Why not `omp barrier`: on this project's 2-core machine libomp's barrier takes 190 to
 * 230 ns a crossing and this one 45 to 80 ns (bench/barrier.c, 2 threads). A batch-1 step
 * on 2 threads is 5 to 12 us with one to three barriers. In pairs (bench/pair.c, 2 threads,
 * T = 100, I = H = 256, both orders): batch-1 inference 0.96x to 0.98x the time (LSTM) and
 * 0.97x to 0.99x (GRU), 0.94x in a slow period of the machine; batch-1 training steps 0.95x
 * and 0.97x; a GRU at B = 8, T = 20, H = 64 0.945x (inference) and 0.950x (training); the
 * LSTM at B = 32 0.994x and 0.996x.
 *
 * A thread that waits long (a team larger than the cores it runs on) yields its core after
 * 2^14 spins instead of spinning through others' time: 420 to 515 us of pauses on Zen 4. */
typedef struct {
    _Alignas(64) int arrived;
    _Alignas(64) int flag;
} rnnc_team_barrier;

static inline void rnnc_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* One round of waiting for another thread: a pause, or after 2^14 rounds the core given up
 * (rnnc_barrier, rnnc_await_step). */
static inline void rnnc_wait_round(unsigned rounds) {
    if (rounds < (1u << 14)) rnnc_cpu_relax();
    else sched_yield();
}

static inline void rnnc_barrier(rnnc_team_barrier *b, int nth, int *sense) {
    if (nth < 2) return;
    int s = !*sense;
    *sense = s;
    if (__atomic_fetch_add(&b->arrived, 1, __ATOMIC_ACQ_REL) == nth - 1) {
        __atomic_store_n(&b->arrived, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->flag, s, __ATOMIC_RELEASE);
        return;
    }
    for (unsigned spins = 0; __atomic_load_n(&b->flag, __ATOMIC_ACQUIRE) != s; spins++) rnnc_wait_round(spins);
}

/* [lo, hi): thread tid's contiguous share of n items (the first n % nth get one more). */
static inline void rnnc_split(int n, int tid, int nth, int *lo, int *hi) {
    int base = n / nth, extra = n % nth;
    *lo = tid * base + (tid < extra ? tid : extra);
    *hi = *lo + base + (tid < extra ? 1 : 0);
}

/* Thread tid's block of an element-wise pass over rows x width: whole rows when there
 * are at least as many rows as threads, else all rows and a slice of the columns (in
 * 16-float steps: whole cache lines, whole vectors). */
static inline void rnnc_split_rows_cols(int rows, int width, int tid, int nth, int *b0, int *b1, int *j0, int *j1) {
    if (rows >= nth) {
        rnnc_split(rows, tid, nth, b0, b1);
        *j0 = 0;
        *j1 = width;
        return;
    }
    int lo, hi;
    rnnc_split((width + 15) / 16, tid, nth, &lo, &hi);
    *b0 = 0;
    *b1 = rows;
    *j0 = lo * 16 < width ? lo * 16 : width;
    *j1 = hi * 16 < width ? hi * 16 : width;
}

/* Threads worth waking for `madds` multiply-adds (per step, in a time loop): below 64K, a
 * fork or a barrier costs more than the arithmetic it would share. */
static inline int rnnc_team_size(int threads, double madds) { return madds < 65536.0 || threads < 1 ? 1 : threads; }

/* Threads worth a parallel region of its own for one product of `madds` multiply-adds
 * outside a time loop (a hoisted projection, a weight gradient): below 1M (about 20 us on
 * one core) the fork and join, a few us on the 2-core machine, take much of what the
 * split would save. A 2-layer ReLU RNN at H = 50 (models/price_rnn.rnn's shape), training
 * steps on 2 threads, with this and no one-thread regions against 64K (bench/pair.c):
 * 0.942 at batch 1, 0.983 at 8, 1.011 at 32; on 1 thread 0.989 to 0.996. */
static inline int rnnc_product_team(int threads, double madds) { return madds < 1048576.0 || threads < 1 ? 1 : threads; }

/* Whether two independent recurrences of B examples (the directions of a bidirectional
 * layer: ConcurrentRecurrences.swift) run side by side, each on its share of `threads`
 * (rnnc_branch_threads), rather than one after the other on all of them. On 2 threads
 * each then has a core to itself: no barrier in its time loop, and the core reads only its
 * own direction's weights. Bidirectional LSTM, T = 100, I = H = 256, 2 threads, inference,
 * side by side / in turn (bench/pair.c): 0.894 at B = 2, 0.935 at 4, 0.927 at 8, 0.943 at
 * 16, 0.956 at 32; GRU 0.834 at 2, 0.717 at 8, 0.863 at 32. At batch 1 1.03 and 1.03
 * (slower: in turn, each core holds half of a direction's weights in its L2 and the step
 * is split by vectors), so batch 1 stays in turn. Training steps with the backward side by
 * side too, against the forward alone: LSTM 0.98 at B = 2, 0.87 at 8, 0.86 at 32; GRU
 * 0.88, 0.85, 0.90 (over a model input); over an embedding, whose gradient both directions
 * add into, LSTM 0.95 at B = 4, 0.92 at 8, 0.96 at 32, GRU 0.93, 0.94, 0.95. With more
 * threads each branch would need a nested team, which OpenMP runs on one thread unless
 * the caller allows nesting; not measured, so not done. */
static inline int rnnc_branches(int threads, int B) { return threads == 2 && B >= 2; }

/* Branch `branch` (0 or 1)'s share of `threads` when two recurrences run side by side. */
static inline int rnnc_branch_threads(int threads, int branch) {
    int first = (threads + 1) / 2;
    return branch == 0 ? first : (threads - first > 0 ? threads - first : 1);
}

/* Floats needed for W [N, K] packed into panels. */
static inline size_t rnnc_packed_size(int N, int K) {
    size_t panels = (size_t)(N + RNNC_NR - 1) / RNNC_NR;
    return panels * (size_t)RNNC_NR * (size_t)K;
}

#if defined(__AVX512F__)
/* dst[j * ldd + i] = src[i * lds + j] for a 16 x 16 block: four rounds of shuffles in
 * registers (pairs of floats, pairs of pairs, then 128-bit lanes twice), 16 loads and 16
 * stores instead of 256 scattered single-float stores. */
static inline __attribute__((always_inline)) void rnnc_transpose16(const float *restrict src, size_t lds,
                                                                   float *restrict dst, size_t ldd) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    for (int i = 0; i < 8; i++) {
        int a = i / 4 * 8 + i % 4, b = a + 4;
        t[a] = _mm512_shuffle_f32x4(r[a], r[b], 0x88);
        t[b] = _mm512_shuffle_f32x4(r[a], r[b], 0xdd);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
    for (int j = 0; j < 16; j++) _mm512_storeu_ps(dst + j * ldd, r[j]);
}
#endif

/* Packs W [N, K] (row-major, PyTorch layout) into NR-column panels, zero-padded. Training
 * repacks the weights after every step, so this is on the step's path: with AVX-512 the
 * panels' whole 16 x 16 blocks are transposed in registers (1024 x 256: 31 instead of 129
 * us), and the rest is written row by row, each row of W read front to back (165 to 122 us
 * against reading the panel's rows side by side). The layout is the same either way. */
static inline void rnnc_pack_weights(const float *restrict W, int N, int K, float *restrict packed) {
    int panels = (N + RNNC_NR - 1) / RNNC_NR;
    for (int p = 0; p < panels; p++) {
        float *restrict dst = packed + (size_t)p * K * RNNC_NR;
        int n0 = p * RNNC_NR, cols = N - n0 < RNNC_NR ? N - n0 : RNNC_NR;
        int rows16 = 0, k16 = 0;   /* the panel's columns and W's columns done in blocks */
#if defined(__AVX512F__)
        rows16 = cols / 16 * 16;
        k16 = K / 16 * 16;
        for (int i0 = 0; i0 < rows16; i0 += 16)
            for (int k0 = 0; k0 < k16; k0 += 16)
                rnnc_transpose16(W + (size_t)(n0 + i0) * K + k0, (size_t)K, dst + (size_t)k0 * RNNC_NR + i0, RNNC_NR);
#endif
        for (int i = 0; i < cols; i++) {
            const float *restrict row = W + (size_t)(n0 + i) * K;
            for (int k = i < rows16 ? k16 : 0; k < K; k++) dst[(size_t)k * RNNC_NR + i] = row[k];
        }
        for (int i = cols; i < RNNC_NR; i++)
            for (int k = 0; k < K; k++) dst[(size_t)k * RNNC_NR + i] = 0.0f;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Matrix products: C [M, N] = A [M, K] W^T (+ bias [N]), W packed                       */

/* Software prefetch for the products whose weights come from memory. A recurrence reads
 * each of its weight matrices once per step, and two or three of them (4 MB each for an
 * LSTM at H = 512) are more than the L3 share a core keeps on a busy server: the first
 * tile of each panel then waits on memory, which the hardware prefetcher does not run far
 * enough ahead to hide. So while the tiles of one panel compute, they fetch the next
 * panel, each tile its own share of it (rnnc_gemm_block_strided): tile j of n fetches the
 * rows [j K / n, (j + 1) K / n) of the next panel, one row per step of its k loop
 * (row k * scale >> 16, scale = 65536 / n; `pf` already points at its first row). Rows
 * come from memory well before they are read, few at a time. On a Zen 3 core with the
 * weights cycled through memory (16 matrices): M = 32, N = 2048, K = 512 from 76-79 to
 * 88-90 GFLOP/s; M = 16 from 65 to 78; M = 32, N = 512, K = 2048 from 76 to 84; with the
 * weights in cache, unchanged (92-97). A prefetch never faults and never changes a result.
 * Weights that stay in the cache only pay for the extra loads: products of 1 MB of weights
 * (an LSTM at H = 256, shape B) took 1% to 2.7% longer in pairs, 4 MB ones (H = 512,
 * shape C) 10% to 16% less on 1 thread. Hence the threshold, RNNC_PREFETCH_MIN_BYTES.
 * Products of few rows are different: a panel's few tiles take too little time to hide a
 * trip to memory, the weights stream as fast as the memory delivers them, and prefetches
 * only compete with the loads. With 4 MB of weights, paired: 8 rows 1.09 to 1.37 times
 * slower on 2 threads (0.97 on 1), 16 rows 1.008 and 1.032, 12 rows 1.00; from 32 rows on
 * it pays (char_lstm, shape C). Hence RNNC_PREFETCH_MIN_ROWS as well: 24, four tiles of 6,
 * between the 16 measured not to pay and the 32 measured to pay (24 itself not measured).
 * (Measured with AVX2; with AVX-512 a row of a panel is 3 lines, 3 prefetches. On Zen 4
 * with AVX-512, turning it off at shape C made inference 1.080x (LSTM) and 1.038x (GRU) as
 * long, in pairs.) Only products whose threads split the panels prefetch: a row-split
 * product's blocks do not (rnnc_gemm_block says why).
 *
 * Intel's server cores want it sooner. On an Intel Xeon (family 6 model 207: 2 MB of L2
 * per core; the L3 a mesh shared with many other cores, slower to feed one core than
 * AMD's), paired against the rule above (the same bits and losses):
 * - shape D (an LSTM of 2 layers, H = 512, 4 MB a matrix, 16 rows): inference 0.83 (1
 *   thread) and 0.84 (2), a training step 0.90 and 0.94; 8 rows 0.99, 4 rows 1.00;
 * - shape B (H = 256, 32 rows), 1 thread: the LSTM (1 MB a matrix, two streamed per step)
 *   0.91, the GRU (768 KB) 0.94; on 2 threads, each thread's half in its L2, 1.006 and
 *   1.02 (no gain).
 * So on Intel cores a product prefetches from 16 rows when a thread's share of its weights
 * is more than a quarter of the core's L2 (the step streams another matrix beside it);
 * elsewhere the rule above holds. The vendor comes from the compiler's CPU model (cpuid).
 * Defining RNNC_PREFETCH_MIN_ROWS at build time keeps the rule above on every core, with
 * that many rows.
 * rnnc_l2_bytes is defined below, before the products that call this. */
#ifndef RNNC_PREFETCH_MIN_BYTES
#define RNNC_PREFETCH_MIN_BYTES (2u << 20)
#endif
#if defined(RNNC_PREFETCH_MIN_ROWS) || !(defined(__x86_64__) || defined(__i386__)) || \
    !(defined(__clang__) || defined(__GNUC__))
#define RNNC_PREFETCH_INTEL_RULE 0
#else
#define RNNC_PREFETCH_INTEL_RULE 1
#endif
#ifndef RNNC_PREFETCH_MIN_ROWS
#define RNNC_PREFETCH_MIN_ROWS 24
#endif
static inline long rnnc_l2_bytes(void);

static inline int rnnc_prefetch_panels(int M, int N, int K, int nth) {
    const size_t bytes = (size_t)N * (size_t)K * sizeof(float);
#if RNNC_PREFETCH_INTEL_RULE
    const long l2 = rnnc_l2_bytes();
    if (l2 > 0 && __builtin_cpu_is("intel")) return M >= 16 && bytes / (size_t)(nth > 1 ? nth : 1) * 4 > (size_t)l2;
#endif
    (void)nth;
    return M >= RNNC_PREFETCH_MIN_ROWS && bytes >= (size_t)RNNC_PREFETCH_MIN_BYTES;
}

/* One row of the next panel, or nothing when pf is NULL. Callers pass a literal NULL for
 * products that do not prefetch, so the test folds away (rnnc_gemm_block_strided). */
static inline __attribute__((always_inline)) void rnnc_prefetch_row(const float *pf, unsigned scale, int k) {
    if (!pf) return;
    const float *row = pf + (((size_t)k * scale) >> 16) * RNNC_NR;
    for (int l = 0; l < RNNC_NR; l += 64 / (int)sizeof(float)) __builtin_prefetch(row + l, 0, 3);
}

/* One full tile: RNNC_MR rows of A by one panel of NR columns. The weights of the panel
 * are read once per k and used for every row; each row's A value is broadcast once. */
static inline __attribute__((always_inline)) void rnnc_gemm_tile_full(int K, const float *restrict A, int lda, size_t ska,
                                                                      const float *restrict panel,
                                                                      const float *restrict bias_panel, float *restrict C,
                                                                      int ldc, int ncols, int accumulate, const float *pf,
                                                                      unsigned scale) {
    rnnc_vf acc[RNNC_MR][RNNC_NV];
    for (int i = 0; i < RNNC_MR; i++)
        for (int v = 0; v < RNNC_NV; v++) acc[i][v] = rnnc_vload(bias_panel + v * RNNC_VEC);
    if (accumulate) {
        /* C += A W^T: start from C (a gradient being summed). A weight gradient's C is
         * larger than the L2 (2048 x 512 for char_lstm's LSTM) and is summed window by
         * window, so each tile's rows come from far away: ask for the next tile's rows
         * below while this one computes. Training steps 1.1% to 2.4% faster in pairs
         * (char_lstm, LSTM at shapes A and C; prefetches never fault past the end). */
        for (int i = 0; i < RNNC_MR; i++) rnnc_add_row(C + (size_t)i * ldc, ncols, RNNC_NV, acc[i]);
        for (int i = 0; i < RNNC_MR; i++)
            for (int v = 0; v < RNNC_NV; v++) __builtin_prefetch(C + (size_t)(RNNC_MR + i) * ldc + v * RNNC_VEC, 0, 3);
    }
    for (int k = 0; k < K; k++) {
        rnnc_vf w[RNNC_NV];
        rnnc_prefetch_row(pf, scale, k);
        for (int v = 0; v < RNNC_NV; v++) w[v] = rnnc_vload(panel + (size_t)k * RNNC_NR + v * RNNC_VEC);
        for (int i = 0; i < RNNC_MR; i++) {
            rnnc_vf a = rnnc_vsplat(A[(size_t)i * lda + (size_t)k * ska]);
            for (int v = 0; v < RNNC_NV; v++) acc[i][v] = acc[i][v] + a * w[v];
        }
    }
    for (int i = 0; i < RNNC_MR; i++) rnnc_store_row(C + (size_t)i * ldc, ncols, RNNC_NV, acc[i]);
}

/* A full-height tile of the last panel when it holds at most one vector of columns
 * (N = 1024 with 48-column panels leaves 16): one vector of accumulators per row instead
 * of RNNC_NV, so the padding is not computed. */
static inline __attribute__((always_inline)) void rnnc_gemm_tile_narrow(int K, const float *restrict A, int lda, size_t ska,
                                                                        const float *restrict panel,
                                                                        const float *restrict bias_panel, float *restrict C,
                                                                        int ldc, int ncols, int accumulate, const float *pf,
                                                                        unsigned scale) {
    rnnc_vf acc[RNNC_MR];
    for (int i = 0; i < RNNC_MR; i++) acc[i] = rnnc_vload(bias_panel);
    if (accumulate)
        for (int i = 0; i < RNNC_MR; i++) rnnc_add_row(C + (size_t)i * ldc, ncols, 1, &acc[i]);
    for (int k = 0; k < K; k++) {
        rnnc_prefetch_row(pf, scale, k);
        rnnc_vf w = rnnc_vload(panel + (size_t)k * RNNC_NR);
        for (int i = 0; i < RNNC_MR; i++) acc[i] = acc[i] + rnnc_vsplat(A[(size_t)i * lda + (size_t)k * ska]) * w;
    }
    for (int i = 0; i < RNNC_MR; i++) rnnc_store_row(C + (size_t)i * ldc, ncols, 1, &acc[i]);
}

/* Fewer than RNNC_MR rows (a small batch, or the last rows of A): the tile of
 * rnnc_gemm_tile_full for `rows` rows. Called with a constant `rows` (the switch in
 * rnnc_gemm_tile_edge), so each count gets its own fully unrolled, register-held copy
 * and the panel is read once for all rows, not once per row. */
static inline __attribute__((always_inline)) void rnnc_gemm_tile_rows(int rows, int K, const float *restrict A, int lda,
                                                                      size_t ska, const float *restrict panel,
                                                                      const float *restrict bias_panel,
                                                                      float *restrict C, int ldc, int ncols,
                                                                      int accumulate, const float *pf,
                                                                      unsigned scale) {
    rnnc_vf acc[RNNC_MR][RNNC_NV];
    for (int i = 0; i < rows; i++)
        for (int v = 0; v < RNNC_NV; v++) acc[i][v] = rnnc_vload(bias_panel + v * RNNC_VEC);
    if (accumulate)
        for (int i = 0; i < rows; i++) rnnc_add_row(C + (size_t)i * ldc, ncols, RNNC_NV, acc[i]);
    for (int k = 0; k < K; k++) {
        rnnc_vf w[RNNC_NV];
        rnnc_prefetch_row(pf, scale, k);
        for (int v = 0; v < RNNC_NV; v++) w[v] = rnnc_vload(panel + (size_t)k * RNNC_NR + v * RNNC_VEC);
        for (int i = 0; i < rows; i++) {
            rnnc_vf a = rnnc_vsplat(A[(size_t)i * lda + (size_t)k * ska]);
            for (int v = 0; v < RNNC_NV; v++) acc[i][v] = acc[i][v] + a * w[v];
        }
    }
    for (int i = 0; i < rows; i++) rnnc_store_row(C + (size_t)i * ldc, ncols, RNNC_NV, acc[i]);
}

/* k and k + 1 of a one-row product over the panel's first nv vectors: k into the even
 * sums, k + 1 into the odd. */
static inline __attribute__((always_inline)) void rnnc_gemv_pair(int nv, int k, const float *restrict a, size_t ska,
                                                                 const float *restrict panel, rnnc_vf *even,
                                                                 rnnc_vf *odd) {
    rnnc_vf a0 = rnnc_vsplat(a[(size_t)k * ska]), a1 = rnnc_vsplat(a[(size_t)(k + 1) * ska]);
    for (int v = 0; v < nv; v++) {
        even[v] = even[v] + a0 * rnnc_vload(panel + (size_t)k * RNNC_NR + v * RNNC_VEC);
        odd[v] = odd[v] + a1 * rnnc_vload(panel + (size_t)(k + 1) * RNNC_NR + v * RNNC_VEC);
    }
}

/* One row (batch 1: the recurrent product is a matrix-vector product), over the panel's
 * first nv vectors. With a single row the tile has only RNNC_NV accumulators, too few to
 * cover the latency of the FMAs, so even and odd k go to separate sums (added at the
 * end): twice the independent chains, and the loop runs at the speed the panel streams
 * from cache. */
static inline __attribute__((always_inline)) void rnnc_gemv_tile_nv(int nv, int K, const float *restrict a, size_t ska,
                                                                    const float *restrict panel,
                                                                    const float *restrict bias_panel, float *restrict c,
                                                                    int ncols, int accumulate) {
    rnnc_vf even[RNNC_NV], odd[RNNC_NV];
    for (int v = 0; v < nv; v++) {
        even[v] = rnnc_vload(bias_panel + v * RNNC_VEC);
        odd[v] = rnnc_vsplat(0.0f);
    }
    if (accumulate) rnnc_add_row(c, ncols, nv, even);
    int k = 0;
    for (; k + 2 <= K; k += 2) rnnc_gemv_pair(nv, k, a, ska, panel, even, odd);
    if (k < K) {
        rnnc_vf a0 = rnnc_vsplat(a[(size_t)k * ska]);
        for (int v = 0; v < nv; v++) even[v] = even[v] + a0 * rnnc_vload(panel + (size_t)k * RNNC_NR + v * RNNC_VEC);
    }
    for (int v = 0; v < nv; v++) even[v] = even[v] + odd[v];
    rnnc_store_row(c, ncols, nv, even);
}

/* Vectors of a panel that hold some of its ncols columns: RNNC_NV but in the last panel
 * of a product whose N is not a multiple of RNNC_NR. */
static inline int rnnc_panel_vectors(int ncols) {
    int nv = (ncols + RNNC_VEC - 1) / RNNC_VEC;
    return nv < RNNC_NV ? nv : RNNC_NV;
}

/* rnnc_gemv_tile_nv over the vectors that hold columns: a product's partial last panel is
 * padded with zeros to RNNC_NR columns, and at batch 1 reading the padding costs as much
 * as reading weights. An LSTM's W_hh at H = 256 (N = 1024) is 21 panels of 48 columns
 * and one of 16: two thirds of that last panel, 32 KB of the 1056 KB a step streams, are
 * zeros. The backward's product by W_hh^T (N = 256) streams 288 columns for 256. Each
 * column's sum is the same either way (the same bits). */
static inline __attribute__((always_inline)) void rnnc_gemv_tile(int K, const float *restrict a, size_t ska,
                                                                 const float *restrict panel,
                                                                 const float *restrict bias_panel, float *restrict c,
                                                                 int ncols, int accumulate) {
    switch (rnnc_panel_vectors(ncols)) {
    case 1: rnnc_gemv_tile_nv(1, K, a, ska, panel, bias_panel, c, ncols, accumulate); return;
#if RNNC_NV > 2
    case 2: rnnc_gemv_tile_nv(2, K, a, ska, panel, bias_panel, c, ncols, accumulate); return;
#endif
    default: rnnc_gemv_tile_nv(RNNC_NV, K, a, ska, panel, bias_panel, c, ncols, accumulate); return;
    }
}

/* The last rows of A when M is not a multiple of RNNC_MR (all of them when M < RNNC_MR). */
static inline __attribute__((always_inline)) void rnnc_gemm_tile_edge(int rows, int K, const float *restrict A, int lda,
                                                                      size_t ska, const float *restrict panel,
                                                                      const float *restrict bias_panel, float *restrict C,
                                                                      int ldc, int ncols, int accumulate, const float *pf,
                                                                      unsigned scale) {
    switch (rows) {
    case 1: rnnc_gemv_tile(K, A, ska, panel, bias_panel, C, ncols, accumulate); return;
    case 2: rnnc_gemm_tile_rows(2, K, A, lda, ska, panel, bias_panel, C, ldc, ncols, accumulate, pf, scale); return;
    case 3: rnnc_gemm_tile_rows(3, K, A, lda, ska, panel, bias_panel, C, ldc, ncols, accumulate, pf, scale); return;
    case 4: rnnc_gemm_tile_rows(4, K, A, lda, ska, panel, bias_panel, C, ldc, ncols, accumulate, pf, scale); return;
    case 5: rnnc_gemm_tile_rows(5, K, A, lda, ska, panel, bias_panel, C, ldc, ncols, accumulate, pf, scale); return;
    case 6: rnnc_gemm_tile_rows(6, K, A, lda, ska, panel, bias_panel, C, ldc, ncols, accumulate, pf, scale); return;
#if RNNC_MR > 7
    case 7: rnnc_gemm_tile_rows(7, K, A, lda, ska, panel, bias_panel, C, ldc, ncols, accumulate, pf, scale); return;
#endif
    default:
        for (int i = 0; i < rows; i++)
            rnnc_gemv_tile(K, A + (size_t)i * lda, ska, panel, bias_panel, C + (size_t)i * ldc, ncols, accumulate);
    }
}

/* The bias of one panel's columns, zero past ncols or without a bias. Written as branches
 * around plain loops on purpose: as one select, `bias && j < ncols ? bias[n0 + j] : 0`,
 * clang vectorizes it into masked loads that still address bias + n0 when bias is NULL.
 * The masked-off lanes then point into page 0, and AMD Zen 4 handles such a load with a
 * microcode assist: it cost 17% of an LSTM's time at batch 1 (perf annotate, this line). */
static inline __attribute__((always_inline)) void rnnc_bias_panel(const float *restrict bias, int n0, int ncols,
                                                                  float *restrict out) {
    if (bias && ncols == RNNC_NR) {
        for (int j = 0; j < RNNC_NR; j++) out[j] = bias[n0 + j];
        return;
    }
    for (int j = 0; j < RNNC_NR; j++) out[j] = 0.0f;
    if (bias)
        for (int j = 0; j < ncols; j++) out[j] = bias[n0 + j];
}

/* One tile of `rows` rows: the full tile, the narrow one for a last panel of at most one
 * vector of columns, or the edge tile for fewer rows. */
static inline __attribute__((always_inline)) void rnnc_gemm_tile(int rows, int K, const float *restrict A, int lda,
                                                                 size_t ska, const float *restrict panel,
                                                                 const float *restrict bias_panel, float *restrict C,
                                                                 int ldc, int ncols, int accumulate, const float *pf,
                                                                 unsigned scale) {
    if (rows < RNNC_MR)
        rnnc_gemm_tile_edge(rows, K, A, lda, ska, panel, bias_panel, C, ldc, ncols, accumulate, pf, scale);
    else if (ncols <= RNNC_VEC && RNNC_NV > 1)
        rnnc_gemm_tile_narrow(K, A, lda, ska, panel, bias_panel, C, ldc, ncols, accumulate, pf, scale);
    else
        rnnc_gemm_tile_full(K, A, lda, ska, panel, bias_panel, C, ldc, ncols, accumulate, pf, scale);
}

/* Independent sums a core needs in flight to keep its FMA units busy: 4 cycles of latency
 * times 2 units on the x86 cores this targets. A tile of r rows has r * RNNC_NV of them. */
#define RNNC_FMA_CHAINS 8

/* Row tiles of an M-row product: ceil(M / RNNC_MR) of them, all RNNC_MR rows but the last,
 * except where that last tile would have too few sums in flight (2 rows: 4 sums with AVX2,
 * at half the FMA rate). Then the last two tiles share their RNNC_MR + r rows evenly (4
 * and 4, 5 and 4; 5 and 5 with AVX-512). At M = 32 on AVX2, 6 x 6 + 2 became 4 x 6 + 4 + 4:
 * products 3% to 8% faster at M = 8, 20 and 32 (1 thread, K and N of 512 to 2048). A
 * single last row is left alone: it is the one-row tile, whose even and odd sums round
 * differently, and every other tile computes each output alike (bias, then C, then the K
 * products in order), so the new layout gives the same bits as the old. Every tile's
 * rows depend on M and the tile's index only, never on how threads share the tiles. */
static inline int rnnc_row_tiles(int M) { return (M + RNNC_MR - 1) / RNNC_MR; }

static inline void rnnc_row_tile(int M, int tile, int *r0, int *r1) {
    int tiles = rnnc_row_tiles(M), r = M % RNNC_MR;
    *r0 = tile * RNNC_MR;
    *r1 = *r0 + RNNC_MR < M ? *r0 + RNNC_MR : M;
    if (r >= 2 && r * RNNC_NV < RNNC_FMA_CHAINS && tiles >= 2 && tile >= tiles - 2) {
        int base = (tiles - 2) * RNNC_MR, first = (RNNC_MR + r + 1) / 2;
        *r0 = tile == tiles - 2 ? base : base + first;
        *r1 = tile == tiles - 2 ? base + first : M;
    }
}

/* The r-th panel a thread reads of its share, panels [lo, hi) of each of `gates` blocks of
 * `per_gate` panels: hidden block by hidden block (panel lo of every block, then lo + 1 of
 * every block, ...; rnnc_gemm_gates_part), or with gates <= 1 simply panel lo + r. */
static inline int rnnc_share_panel(int r, int gates, int per_gate, int lo) {
    return gates > 1 ? (r % gates) * per_gate + lo + r / gates : lo + r;
}

/* Computes row tiles [t0, t1) of an M-row product (rnnc_row_tile) for panels [p0, p1),
 * last panel first when `backwards` (see rnnc_gemm_step_part; every panel's tiles are the
 * same either way). With `gates` > 1, panels [p0, p1) of each of `gates` blocks of
 * `per_gate` panels, in rnnc_share_panel's order. Element (i, k) of A is
 * A[i * lda + k * ska]: ska = 1 for a row-major A, and lda = 1, ska = the row stride for
 * the transpose of a row-major matrix (a weight gradient's dY^T, read without copying).
 * With `prefetch`, the tiles of each panel fetch the next one (rnnc_prefetch_row). */
static inline __attribute__((always_inline)) void rnnc_gemm_block_strided(int t0, int t1, int M, int p0, int p1,
                                                                          int gates, int per_gate, int N, int K,
                                                                          const float *restrict A, int lda, size_t ska,
                                                                          const float *restrict packed,
                                                                          const float *restrict bias, float *restrict C,
                                                                          int ldc, int accumulate, int backwards,
                                                                          int prefetch) {
    const int shares = t1 - t0 > 0 ? t1 - t0 : 1;
    const unsigned scale = 65536u / (unsigned)shares;
    const int count = (gates > 1 ? gates : 1) * (p1 - p0);
    for (int q = 0; q < count; q++) {
        const int r = backwards ? count - 1 - q : q, rn = backwards ? r - 1 : r + 1;
        const int p = rnnc_share_panel(r, gates, per_gate, p0);
        const float *restrict panel = packed + (size_t)p * K * RNNC_NR;
        const float *next =
            prefetch && q + 1 < count ? packed + (size_t)rnnc_share_panel(rn, gates, per_gate, p0) * K * RNNC_NR : NULL;
        int n0 = p * RNNC_NR;
        int ncols = N - n0 < RNNC_NR ? N - n0 : RNNC_NR;
        float bias_panel[RNNC_NR];
        rnnc_bias_panel(bias, n0, ncols, bias_panel);
        for (int t = t0; t < t1; t++) {
            int m, m1;
            rnnc_row_tile(M, t, &m, &m1);
            const float *restrict a = A + (size_t)m * lda;
            float *restrict c = C + (size_t)m * ldc + n0;
            /* Two copies of the tile: one that prefetches, and one whose k loop carries no
             * prefetch pointer at all. With the pointer tested inside the loop, AVX-512's
             * 8 x 48 tile ran 10% slower with the prefetch off (LSTM at B = 32, H = 256, Zen 4,
             * bench/pair.c, 59 of 60 runs), the common case. */
            if (next)
                rnnc_gemm_tile(m1 - m, K, a, lda, ska, panel, bias_panel, c, ldc, ncols, accumulate,
                               next + (size_t)((long)(t - t0) * K / shares) * RNNC_NR, scale);
            else
                rnnc_gemm_tile(m1 - m, K, a, lda, ska, panel, bias_panel, c, ldc, ncols, accumulate, NULL, 0);
        }
    }
}

/* Row-major A: the one copy of the tile code for ordinary products, with no prefetch.
 * Its callers are a row-split product's blocks (rnnc_gemm_part_ordered: a hoisted input
 * projection, a dense layer over every step, a backward product over a window) and a
 * single panel's tiles (rnnc_gemm_part_tiles, where there is no next panel to fetch).
 * There the copy of the 8 x 48 tile that prefetches (it carries the prefetch pointer and
 * scale through its k loop) ran out of registers: it spilled its sums to the stack at
 * every k, and one reload took 36% of the product's samples (perf annotate, Zen 4). With
 * the prefetch off here, that copy is not compiled into the row path at all. Zen 4,
 * AVX-512, 1 thread, weights of 2 MB or more (the prefetch threshold), GFLOP/s with and
 * without the prefetch (a harness timing rnnc_gemm_part):
 * M = 200, N = 1536, K = 512 74 and 110; M = 3200, N = 2048, K = 512 48 and 97;
 * M = 200, N = 4096, K = 1024 46 and 89; on 2 threads 74 and 142, 99 and 191. An LSTM at
 * T = 100, B = 2, I = 512, H = 384, whose projection is hoisted below 4 examples, ran
 * 0.81x ONNX Runtime's speed on 1 thread and 0.47x on 2 with it (bench/compare.py). */
static inline void rnnc_gemm_block(int t0, int t1, int M, int p0, int p1, int N, int K, const float *restrict A, int lda,
                                   const float *restrict packed, const float *restrict bias, float *restrict C, int ldc,
                                   int accumulate) {
    rnnc_gemm_block_strided(t0, t1, M, p0, p1, 1, 0, N, K, A, lda, 1, packed, bias, C, ldc, accumulate, 0, 0);
}

/* Batches from which a recurrence computes its hoisted input projection step by step,
 * reading each step's rows from the cache, instead of once for all steps before its time
 * loop (see StreamedProjection.swift for the measurements behind 4). */
#ifndef RNNC_STREAM_MIN_BATCH
#define RNNC_STREAM_MIN_BATCH 4
#endif

/* Whether two stacked recurrences (the upper one's streamed input projection reads the
 * lower one's output, and nothing else of it: ConcurrentRecurrences.swift) run as a
 * pipeline: on 2 threads, each on its own core, the upper one at step t as soon as the
 * lower one has committed its row t (rnnc_step_done, rnnc_await_step), with no barrier in
 * either time loop and each core reading only its own layer's weights. From
 * RNNC_STREAM_MIN_BATCH examples (the upper projection is then computed step by step),
 * with `lower` and `upper` the multiply-adds of each one's step for the whole batch.
 *
 * Two layers at a time are as fast as the slower of them, against half their sum and a
 * barrier or two a step for a team splitting each step. Measured (bench/pair.c, 2 threads,
 * inference, T = 100, pipeline / team, two stacked layers; steps in multiply-adds):
 * - small steps, even uneven: ReLU RNNs at H = 50, I = 1 (88K and 166K at B = 32) 0.64
 *   at B = 4 to 0.68 at B = 32; GRUs at H = 64, I = 8, B = 32 (442K and 786K) 0.58;
 *   GRUs at H = I = 128, B = 8 (786K each) 0.57; LSTMs at H = I = 128, B = 4 (524K) 0.84;
 *   LSTMs at H = I = 64, B = 16 (524K) 0.93;
 * - larger even steps: LSTMs at H = I = 256, B = 8 (4.2M each) 0.956;
 * - larger uneven steps, where the pipeline waits for its slower layer: LSTMs at H = 256,
 *   I = 16, B = 8 (2.2M and 4.2M) 1.11; shape D, H = 512, I = 64, B = 16 (19M and 34M) 1.12.
 * Hence: both steps under 1M multiply-adds, or under 8M and within 1.25x of each other.
 * -DRNNC_PIPELINES=0 turns it off (to measure against). */
#ifndef RNNC_PIPELINES
#define RNNC_PIPELINES 1
#endif
static inline int rnnc_pipelines(int threads, int B, double lower, double upper) {
    if (!RNNC_PIPELINES || threads != 2 || B < RNNC_STREAM_MIN_BATCH) return 0;
    double most = lower > upper ? lower : upper, least = lower > upper ? upper : lower;
    return most < 1048576.0 || (most < 8388608.0 && 4.0 * most <= 5.0 * least);
}

/* The lower recurrence of a pipeline has committed `steps` steps (every thread of its team:
 * called after the step's last barrier). */
static inline void rnnc_step_done(int *done, int steps) { __atomic_store_n(done, steps, __ATOMIC_RELEASE); }

/* The upper recurrence waits until the lower one has committed `steps` steps. Run one after
 * the other, the lower one has committed them all before the upper one starts. */
static inline void rnnc_await_step(const int *done, int steps) {
    for (unsigned spins = 0; __atomic_load_n(done, __ATOMIC_ACQUIRE) < steps; spins++) rnnc_wait_round(spins);
}

/* One core's L2 cache in bytes, as the C library reports it (glibc reads cpuid); 0 where
 * it does not say. Read once; the threads of a time loop's team may ask at the same time
 * (rnnc_gates_aligned), hence the atomic load and store of the one value they all find. */
static inline long rnnc_l2_bytes(void) {
#if defined(_SC_LEVEL2_CACHE_SIZE)
    static long bytes = -1;
    long known = __atomic_load_n(&bytes, __ATOMIC_RELAXED);
    if (known < 0) {
        long b = sysconf(_SC_LEVEL2_CACHE_SIZE);
        known = b > 0 ? b : 0;
        __atomic_store_n(&bytes, known, __ATOMIC_RELAXED);
    }
    return known;
#else
    return 0;
#endif
}

/* Whether a recurrence runs as shares of its examples, one share per thread, each thread
 * running the whole time loop on its own rows with no barrier at all (inference), rather
 * than every thread taking a slice of every step's columns with a barrier between steps.
 * Each share has at least RNNC_STREAM_MIN_BATCH rows (and 2: one row takes the
 * matrix-vector tile, whose sums run in two chains), so it takes the same paths (and gives
 * the same bits) as the whole batch: a step's rows are computed alike whatever their count
 * from there. Each thread then reads all of the recurrence's weights
 * (`weight_bytes`: the recurrent weights and those of the input projections computed step
 * by step) at every step, where a slice of columns stays in its own L2: so the threads'
 * copies together must fit in 16 L2s (16 MB here, half of this machine's L3; the L3 size
 * glibc reports in this VM, 320 MB, is not the cache's). Measured on 2 Zen 4 threads (1 MB
 * of L2 each, 32 MB of L3), inference, bench/pair.c, split / barriers: an LSTM with I = H =
 * 64 at B = 8 0.87, I = H = 128 at B = 8 and 16 0.91 and 0.90, GRU 0.91, RNN at H = 256
 * 0.95; past the L2 too: LSTM at H = 192 0.97, at H = 256 (2 MB) 0.98 at B = 8 and 0.83 at
 * B = 32, GRU 0.93 and 0.98, at I = H = 512 (8 MB) 0.98 at B = 16 and 1.00 at B = 64 (GRU
 * 1.00, RNN 0.99). More threads
 * were not measured: the bound is what keeps 16 threads' copies of a large layer out of
 * the L3 (at 16 threads, layers up to 1 MB split). */
static inline int rnnc_batch_split(int threads, int B, size_t weight_bytes) {
    long l2 = rnnc_l2_bytes();
    const int rows = RNNC_STREAM_MIN_BATCH > 2 ? RNNC_STREAM_MIN_BATCH : 2;  /* batch 1 has paths of its own */
    return threads > 1 && B >= rows * threads && l2 > 0 &&
           (size_t)threads * weight_bytes <= 16 * (size_t)l2;
}

/* Whether splitting whole panels leaves threads idle for long: the busiest thread gets
 * ceil(panels / nth) panels, 25% or more above the mean. At 16 threads a 1024-wide
 * product has 22 panels of 48 columns: 6 threads get 2, 10 get 1. Splitting its row tiles
 * too made the RNN at shape E 1.14x faster and at C 1.24x on 16 cores (medians of 3
 * alternating runs). An LSTM's 86 panels (6 for the busiest thread, 5.4 on average) did not
 * gain: the panels that two threads share are read twice, which costs what the balance
 * saves, hence the 25%. */
static inline int rnnc_panels_unbalanced(int panels, int nth) {
    int most = (panels + nth - 1) / nth;
    return 4 * most * nth >= 5 * panels;
}

/* Whether a panel-split product of `tiles` row tiles splits its (panel, row tile) pairs
 * instead of whole panels (rnnc_gemm_part_tiles). Always when whole panels leave the
 * busiest thread 25% above the mean (rnnc_panels_unbalanced). Below that, when the pairs
 * give the busiest thread at least 1/16 fewer tiles and the panels it then touches (one
 * more than whole panels at most) fit its core's L2: a panel shared by two threads is
 * then read from each one's L2, as a tile reads it anyway (a panel of K rows is larger
 * than L1), so the balance is a pure gain. Odd panel counts on 2 threads are the usual
 * case: an LSTM at H = 100 (9 panels of 48 columns) split 5 and 4 took 1.10x as long
 * (T = 25, B = 64, I = 300: inference 0.906, bench/pair.c), at H = 128 (11 panels,
 * B = 32) 1.05x. Where the panels exceed the L2 (the LSTM at shape E on 16 threads: 7
 * panels of 196 KB) the 25% rule alone holds, as measured there.
 * Not inlined: code added to rnnc_gemm_part_ordered changes the tile's registers. */
static inline __attribute__((noinline)) int rnnc_splits_row_tiles(int panels, int tiles, int K, int nth) {
    if (tiles < 2 || nth < 2) return 0;
    if (rnnc_panels_unbalanced(panels, nth)) return 1;
    int most = (panels + nth - 1) / nth;
    long whole = (long)most * tiles, pairs = ((long)panels * tiles + nth - 1) / nth;
    long l2 = rnnc_l2_bytes();
    size_t touched = (size_t)(most + 1) * (size_t)K * RNNC_NR * sizeof(float);
    return 16 * pairs <= 15 * whole && l2 > 0 && touched <= (size_t)l2;
}

/* Whether an M-row product's threads split its panels (a recurrent step's few rows, each
 * thread keeping its slice of the weights in its cache) rather than its rows. */
static inline int rnnc_splits_panels(int M) { return M <= 4 * RNNC_MR * 4; }

/* Thread tid's share of a small-M product split by (panel, row tile) pairs, panel by
 * panel: each thread gets the same number of tiles, and a panel is read by at most the
 * two threads whose ranges meet in it. The threads share whole row tiles (rnnc_row_tile),
 * so every output is computed by the same tile code as with whole panels: the same bits. */
static inline void rnnc_gemm_part_tiles(int M, int N, int K, const float *restrict A, int lda,
                                        const float *restrict packed, const float *restrict bias, float *restrict C,
                                        int ldc, int accumulate, int tid, int nth) {
    int panels = (N + RNNC_NR - 1) / RNNC_NR, tiles = rnnc_row_tiles(M);
    int lo, hi;
    rnnc_split(panels * tiles, tid, nth, &lo, &hi);
    for (int u = lo; u < hi;) {
        int p = u / tiles, r0 = u % tiles;
        int r1 = r0 + (hi - u) < tiles ? r0 + (hi - u) : tiles;
        rnnc_gemm_block(r0, r1, M, p, p + 1, N, K, A, lda, packed, bias, C, ldc, accumulate);
        u += r1 - r0;
    }
}

/* Thread tid's share of C [M, N] = A [M, K] W^T + bias (or C += A W^T when accumulate).
 * Small M (a recurrent step): threads split the panels, so each keeps its slice of the
 * weights in its own cache from step to step. Large M (a hoisted projection over all
 * steps): threads split the rows, and each row block reuses every panel. `backwards`
 * reverses the order of a thread's whole panels (rnnc_gemm_step_part).
 * The tiles are inlined here, and clang's register allocation of the 8 x 48 tile depends
 * on what else this function holds: a 20-line helper inlined here (a column-weighted panel
 * split, 2026-12-07) made the tile spill its sums to the stack at every k, and char_lstm's
 * 2-thread step took 1.5x as long (pairs). Measure any code added here. */
static inline void rnnc_gemm_part_ordered(int M, int N, int K, const float *restrict A, int lda,
                                          const float *restrict packed, const float *restrict bias, float *restrict C,
                                          int ldc, int accumulate, int backwards, int tid, int nth) {
    if (M <= 0 || N <= 0) return;
    int panels = (N + RNNC_NR - 1) / RNNC_NR;
    int lo, hi;
    if (rnnc_splits_panels(M)) {
        int tiles = rnnc_row_tiles(M);
        if (rnnc_splits_row_tiles(panels, tiles, K, nth)) {
            rnnc_gemm_part_tiles(M, N, K, A, lda, packed, bias, C, ldc, accumulate, tid, nth);
            return;
        }
        rnnc_split(panels, tid, nth, &lo, &hi);
        if (lo < hi)
            rnnc_gemm_block_strided(0, rnnc_row_tiles(M), M, lo, hi, 1, 0, N, K, A, lda, 1, packed, bias, C, ldc, accumulate,
                                    backwards, rnnc_prefetch_panels(M, N, K, nth));
        return;
    }
    /* Row blocks of MC tiles, each against groups of NC panels (a few hundred KB, in L2).
     * Threads split the row tiles evenly and cut their own into blocks: split by whole
     * blocks, 25 tiles (M = 200) went 16 and 9 to 2 threads, 50 (M = 400) 32 and 18. */
    const int MC = 8;
    const int NC = 8;
    rnnc_split(rnnc_row_tiles(M), tid, nth, &lo, &hi);
    for (int t0 = lo; t0 < hi; t0 += MC) {
        int t1 = t0 + MC < hi ? t0 + MC : hi;
        for (int p0 = 0; p0 < panels; p0 += NC) {
            int p1 = p0 + NC < panels ? p0 + NC : panels;
            rnnc_gemm_block(t0, t1, M, p0, p1, N, K, A, lda, packed, bias, C, ldc, accumulate);
        }
    }
}

static inline void rnnc_gemm_part(int M, int N, int K, const float *restrict A, int lda, const float *restrict packed,
                                  const float *restrict bias, float *restrict C, int ldc, int accumulate, int tid,
                                  int nth) {
    rnnc_gemm_part_ordered(M, N, K, A, lda, packed, bias, C, ldc, accumulate, 0, tid, nth);
}

/* rnnc_gemm_part for the product of time step `step` of a recurrence, which reads the
 * same weights at every step: on odd steps each thread reads its panels last to first.
 * The panels it read last are then read first, while they are still in its L2. Read in
 * the same order every step, a slice of weights larger than the L2 (an LSTM's W_hh at
 * H=256 is 1 MB, this machine's L2 1 MB) is evicted just before it is needed, panel by
 * panel, and streams from L3. Each panel's tiles are computed as before: the same bits.
 * LSTM at batch 1, H=256, 1 thread: 5% faster, GRU 2% (bench/pair.c, 400 paired runs). */
static inline void rnnc_gemm_step_part(int step, int M, int N, int K, const float *restrict A, int lda,
                                       const float *restrict packed, const float *restrict bias, float *restrict C,
                                       int ldc, int accumulate, int tid, int nth) {
    rnnc_gemm_part_ordered(M, N, K, A, lda, packed, bias, C, ldc, accumulate, step & 1, tid, nth);
}

/* The columns a gate-aligned split hands out whole, for blocks `width` wide: whole panels
 * where the blocks are made of them; at batch 1 (M = 1) whole vectors where they are not,
 * for the one-row tile's sums are independent vector by vector (rnnc_gemv_vectors); 0
 * where neither holds. With AVX-512's 48-column panels no power-of-two H is whole panels
 * (H = 256 is 5 1/3): by vectors, the LSTM and GRU at batch 1, H = 256, run gate-aligned
 * there too (docs/PERFORMANCE.md, "Gate-aligned by vectors"). */
static inline int rnnc_gate_unit(int M, int width) {
    if (width > 0 && width % RNNC_NR == 0) return RNNC_NR;
    if (M == 1 && width > 0 && width % RNNC_VEC == 0) return RNNC_VEC;
    return 0;
}

/* Gate-aligned steps. A step's product computes `gates` blocks of `width` columns (an
 * LSTM's i, f, g and o for H = width hidden units) and its fused kernel reads, for hidden
 * unit j, column j of each block. Split by whole panels, one thread computes the i and f
 * blocks and the other g and o, and the fused kernel must wait at a barrier for both.
 * Split gate-aligned, each thread takes the same hidden panels [lo, hi) of every block:
 * the fused kernel's columns [lo NR, hi NR) then need only what the same thread just
 * computed, and the barrier between the product and the fused kernel goes. Each output is
 * computed by the same tile code either way: the same bits.
 *
 * A thread reads its panels hidden block by hidden block: 16 units of i, of f, of g, of o,
 * then the next 16. Read gate block by gate block instead, the batch-1 LSTM at H = 256 on
 * 2 threads took 1.05x as long as with whole panels (likely the hardware prefetcher's
 * stream breaking at every block); in this order it is 0.97x to 0.99x (bench/pair.c,
 * Zen 3).
 *
 * Whether a step of M rows, with blocks `width` wide and `recurrent_floats` of weights,
 * runs so on nth threads: a panel split (rnnc_splits_panels), blocks made of whole panels
 * (or at batch 1 of whole vectors: rnnc_gate_unit), those units balanced between the
 * threads (rnnc_panels_unbalanced), and each thread's
 * share of the weights no larger than its L2 (when the C library says how large). Measured
 * on Zen 3 (512 KB of L2), 2 threads, as the time against whole panels: LSTM and GRU at
 * H = 256 (512 and 384 KB a thread) 0.98 at B = 32, 0.99 and 0.97 at batch 1; the LSTM at
 * shape D (H = 512, B = 16; 2 MB a thread, from L3) 1.01 to 1.03, likely because four
 * streams of weights a thread reads at once are prefetched worse than one.
 *
 * From 4 rows the busiest thread must also carry no more panels than under whole panels
 * (`gates` blocks of per_gate panels: ceil(per_gate / nth) x gates against
 * ceil(gates x per_gate / nth)). An odd per_gate on 2 threads leaves one thread a panel of
 * every gate more than the other, and the barrier saved does not pay for that: LSTM,
 * 2 threads, aligned with 3 and 2 panels a gate (H = 240) against whole panels (10 and
 * 10, or balanced row tiles: rnnc_splits_row_tiles), bench/pair.c, whole / aligned:
 * inference 0.89 at B = 4, 0.88 at B = 8, 0.81 at B = 32, training 0.94 at B = 32; H = 336
 * (4 and 3) 0.90 at B = 4 and 8, 0.87 at B = 32. Below 4 rows a step is short and the
 * barrier weighs more: at B = 2 (H = 240) 1.00, at batch 1 1.12 to 1.15 (H = 240) and 0.91
 * (H = 336), so the old rule stays there. */
static inline int rnnc_gates_aligned(int M, int width, int gates, int nth, size_t recurrent_floats) {
    int unit = rnnc_gate_unit(M, width);
    if (nth < 2 || !rnnc_splits_panels(M) || unit == 0 || gates < 1) return 0;
    long l2 = rnnc_l2_bytes();
    if (l2 > 0 && recurrent_floats * sizeof(float) / (size_t)nth > (size_t)l2) return 0;
    int per_gate = width / unit;
    if (per_gate < nth || rnnc_panels_unbalanced(per_gate, nth)) return 0;
    if (M < 4) return 1;
    int most = (per_gate + nth - 1) / nth;
    return most * gates <= (gates * per_gate + nth - 1) / nth;
}

/* Thread tid's panels of an N-column product split into `gates` aligned blocks: panels
 * [lo, hi) of each block's `per_gate`; with gates = 0, plain whole panels (one block). */
static inline void rnnc_gate_panels(int N, int gates, int tid, int nth, int *per_gate, int *lo, int *hi) {
    int panels = (N + RNNC_NR - 1) / RNNC_NR;
    *per_gate = gates > 0 ? panels / gates : panels;
    rnnc_split(*per_gate, tid, nth, lo, hi);
}

/* The fused kernel's block under a gate-aligned split: every row, the hidden columns of
 * the thread's panels (or vectors: rnnc_gate_unit). */
static inline void rnnc_split_gate_cols(int rows, int width, int tid, int nth, int *b0, int *b1, int *j0, int *j1) {
    int lo, hi, unit = rnnc_gate_unit(rows, width);
    rnnc_split(width / unit, tid, nth, &lo, &hi);
    *b0 = 0;
    *b1 = rows;
    *j0 = lo * unit;
    *j1 = hi * unit;
}

/* Gate-aligned by vectors (rnnc_gate_unit, batch 1). Column vector gv of a packed product
 * (columns [gv VEC, gv VEC + VEC)) is vector gv % NV of panel gv / NV; its rows are NR
 * floats apart, like the panel's. */
static inline __attribute__((always_inline)) const float *rnnc_packed_vector(const float *packed, int K, int gv) {
    return packed + (size_t)(gv / RNNC_NV) * (size_t)K * RNNC_NR + (size_t)(gv % RNNC_NV) * RNNC_VEC;
}

/* k and k + 1 of a one-row product over S column vectors at w[s] (rnnc_gemv_pair's sums). */
static inline __attribute__((always_inline)) void rnnc_gemv_vectors_pair(int S, int k, const float *restrict a,
                                                                         const float *restrict const *w, rnnc_vf *even,
                                                                         rnnc_vf *odd) {
    rnnc_vf a0 = rnnc_vsplat(a[k]), a1 = rnnc_vsplat(a[k + 1]);
    for (int s = 0; s < S; s++) {
        even[s] = even[s] + a0 * rnnc_vload(w[s] + (size_t)k * RNNC_NR);
        odd[s] = odd[s] + a1 * rnnc_vload(w[s] + (size_t)(k + 1) * RNNC_NR);
    }
}

/* c [1, S VEC] (+)= a [1, K] times column vectors [gv, gv + S) of the packed weights, plus
 * their bias: rnnc_gemv_tile's arithmetic for each vector (bias, then c, then even and odd
 * k apart, added at the end), so each output is the same bits as the whole panel's. The
 * S <= RNNC_NV vectors may lie in two panels. Called with a constant S (rnnc_gemv_run). */
static inline __attribute__((always_inline)) void rnnc_gemv_vectors(int S, int K, const float *restrict a,
                                                                    const float *restrict packed, int gv,
                                                                    const float *restrict bias, float *restrict c,
                                                                    int accumulate) {
    const float *restrict w[RNNC_NV];
    rnnc_vf even[RNNC_NV], odd[RNNC_NV];
    for (int s = 0; s < S; s++) {
        w[s] = rnnc_packed_vector(packed, K, gv + s);
        even[s] = bias ? rnnc_vload(bias + (size_t)(gv + s) * RNNC_VEC) : rnnc_vsplat(0.0f);
        odd[s] = rnnc_vsplat(0.0f);
        if (accumulate) even[s] = even[s] + rnnc_vload(c + s * RNNC_VEC);
    }
    int k = 0;
    for (; k + 2 <= K; k += 2) rnnc_gemv_vectors_pair(S, k, a, w, even, odd);
    if (k < K) {
        rnnc_vf a0 = rnnc_vsplat(a[k]);
        for (int s = 0; s < S; s++) even[s] = even[s] + a0 * rnnc_vload(w[s] + (size_t)k * RNNC_NR);
    }
    for (int s = 0; s < S; s++) rnnc_vstore(c + s * RNNC_VEC, even[s] + odd[s]);
}

/* rnnc_gemv_vectors for a run of 1 to RNNC_NV vectors, each count its own unrolled copy. */
static inline void rnnc_gemv_run(int S, int K, const float *restrict a, const float *restrict packed, int gv,
                                 const float *restrict bias, float *restrict c, int accumulate) {
    switch (S) {
    case 1: rnnc_gemv_vectors(1, K, a, packed, gv, bias, c, accumulate); return;
    case 2: rnnc_gemv_vectors(2, K, a, packed, gv, bias, c, accumulate); return;
#if RNNC_NV > 2
    case 3: rnnc_gemv_vectors(3, K, a, packed, gv, bias, c, accumulate); return;
#endif
    default: return;
    }
}

/* A thread's share of a vector-aligned step: its hidden vectors [lo, hi) of each of
 * `gates` blocks of `per_gate` vectors, cut into `cuts` runs of at most RNNC_NV vectors as
 * even as they go (8 vectors: 2, 3 and 3; 4: 2 and 2, not 3 and 1, for a run of one
 * vector has only two sums in flight), taken hidden run by hidden run (the i, f, g and o
 * of its first run, then of the next). */
typedef struct {
    int lo, hi, per_gate, gates, cuts, runs;
} rnnc_vector_share;

static inline rnnc_vector_share rnnc_vector_share_of(int N, int gates, int tid, int nth) {
    rnnc_vector_share v = {0, 0, N / gates / RNNC_VEC, gates, 0, 0};
    rnnc_split(v.per_gate, tid, nth, &v.lo, &v.hi);
    v.cuts = v.hi > v.lo ? (v.hi - v.lo + RNNC_NV - 1) / RNNC_NV : 0;
    v.runs = v.cuts * gates;
    return v;
}

/* Run r of a share: vectors [*gv, *gv + *S). */
static inline void rnnc_vector_run(const rnnc_vector_share *v, int r, int *gv, int *S) {
    int cut = r / v->gates, n = v->hi - v->lo;
    int j0 = v->lo + cut * n / v->cuts, j1 = v->lo + (cut + 1) * n / v->cuts;
    *gv = r % v->gates * v->per_gate + j0;
    *S = j1 - j0;
}

/* rnnc_gemm_step_part split gate-aligned into `gates` blocks (rnnc_gates_aligned), or,
 * with gates = 0, rnnc_gemm_step_part itself. A thread reads its panels (or at batch 1
 * its runs of vectors: rnnc_gate_unit) hidden block by hidden block (i, f, g, o of its
 * first 16 units, then of the next 16), last to first on odd steps. */
static inline void rnnc_gemm_gates_part(int step, int gates, int M, int N, int K, const float *restrict A, int lda,
                                        const float *restrict packed, const float *restrict bias, float *restrict C,
                                        int ldc, int accumulate, int tid, int nth) {
    if (gates <= 0) {
        rnnc_gemm_step_part(step, M, N, K, A, lda, packed, bias, C, ldc, accumulate, tid, nth);
        return;
    }
    if (M <= 0 || N <= 0) return;
    if (rnnc_gate_unit(M, N / gates) == RNNC_VEC) {
        rnnc_vector_share v = rnnc_vector_share_of(N, gates, tid, nth);
        for (int q = 0; q < v.runs; q++) {
            int gv, S;
            rnnc_vector_run(&v, (step & 1) ? v.runs - 1 - q : q, &gv, &S);
            rnnc_gemv_run(S, K, A, packed, gv, bias, C + (size_t)gv * RNNC_VEC, accumulate);
        }
        return;
    }
    int per_gate, lo, hi;
    rnnc_gate_panels(N, gates, tid, nth, &per_gate, &lo, &hi);
    if (lo >= hi) return;
    rnnc_gemm_block_strided(0, rnnc_row_tiles(M), M, lo, hi, gates, per_gate, N, K, A, lda, 1, packed, bias, C, ldc,
                            accumulate, step & 1, rnnc_prefetch_panels(M, N, K, nth));
}

/* The whole product on `threads` threads (a parallel region of its own). */
static inline void rnnc_gemm_ex(int M, int N, int K, const float *restrict A, int lda, const float *restrict packed,
                                const float *restrict bias, float *restrict C, int ldc, int accumulate, int threads) {
    if (M <= 0 || N <= 0) return;
    int nt = rnnc_product_team(threads, (double)M * N * K);
    if (nt == 1) {
        rnnc_gemm_part(M, N, K, A, lda, packed, bias, C, ldc, accumulate, 0, 1);
        return;
    }
    #pragma omp parallel num_threads(nt)
    rnnc_gemm_part(M, N, K, A, lda, packed, bias, C, ldc, accumulate, rnnc_thread_id(), rnnc_thread_count());
}

static inline void rnnc_gemm(int M, int N, int K, const float *restrict A, int lda, const float *restrict packed,
                             const float *restrict bias, float *restrict C, int ldc, int threads) {
    rnnc_gemm_ex(M, N, K, A, lda, packed, bias, C, ldc, 0, threads);
}

/* Batch 1: a recurrence's hoisted input projection, computed a block of steps ahead
 * inside the time loop instead of all at once before it.
 *
 * At batch 1 the step's recurrent product is a matrix-vector product bound by how fast
 * the weights stream from the cache (loads), while the input projection over all steps
 * is a matrix product bound by the FMA units. Run one after the other they add up; run
 * interleaved in one loop, the core does the projection's FMAs while it waits for the
 * recurrent weights. Step t of block b (steps [R b, R b + R), R = RNNC_AHEAD_ROWS) does,
 * besides its own product, slice t % R of the K columns of the projection of block b + 1:
 * after R steps those R rows are complete, before block b + 1 starts.
 *
 * Every element's arithmetic is that of rnnc_gemm_tile_full and rnnc_gemv_tile (the
 * projection starts from the bias and adds its K products in order; a partial sum is
 * stored and reloaded between slices, which does not round), so the results are the
 * same bits as the hoisted product and rnnc_gemm_step_part. */
#ifndef RNNC_AHEAD_ROWS
#define RNNC_AHEAD_ROWS RNNC_MR
#endif

/* Whether a recurrence of B examples and T steps on `threads` threads, whose step product
 * reads `recurrent_floats` of weights, computes its projection ahead: batch 1 (from 2
 * examples on the step's product has rows of its own to hide loads behind) where the
 * projection is not streamed (a build with RNNC_STREAM_MIN_BATCH 1 streams it and gives
 * it no rows), two blocks at least, 1 or 2 threads, and each thread's share of the
 * recurrent weights no larger than its core's L2 (when the C library says how large).
 * Measured (LSTM and GRU at T = 100, I = H = 256; docs/PERFORMANCE.md, "Batch 1"), as the
 * time against both products one after the other:
 * - Zen 4, 1 MB of L2: 0.92 and 0.88 on 1 thread, 1.01 and 0.92 on 2;
 * - Zen 3, 512 KB of L2: 1.13 and 1.13 on 1 thread, where 1 MB (LSTM) and 768 KB (GRU) of
 *   recurrent weights come from the L3 at every step and the projection's weights would
 *   stream beside them; 0.98 and 0.96 on 2, each core holding 512 and 384 KB.
 * More threads are not measured. */
static inline int rnnc_project_ahead(int B, int T, int threads, size_t recurrent_floats) {
    long l2 = rnnc_l2_bytes();
    int fits = l2 == 0 || recurrent_floats * sizeof(float) / (size_t)(threads > 0 ? threads : 1) <= (size_t)l2;
    return B == 1 && B < RNNC_STREAM_MIN_BATCH && T >= 2 * RNNC_AHEAD_ROWS && threads <= 2 && fits;
}

/* The rows a recurrence computes before its time loop when it projects ahead: block 0 and
 * the last rows past the last whole block. */
static inline void rnnc_project_ahead_start(int T, int N, int K, const float *restrict U, const float *restrict packed,
                                            const float *restrict bias, float *restrict P, int threads) {
    int whole = T / RNNC_AHEAD_ROWS * RNNC_AHEAD_ROWS;
    rnnc_gemm_ex(RNNC_AHEAD_ROWS, N, K, U, K, packed, bias, P, N, 0, threads);
    if (whole < T)
        rnnc_gemm_ex(T - whole, N, K, U + (size_t)whole * K, K, packed, bias, P + (size_t)whole * N, N, 0, threads);
}

/* k of the projection's RNNC_AHEAD_ROWS x S-vector tile, vectors at wp[s]. */
static inline __attribute__((always_inline)) void rnnc_ahead_vectors_k(int S, int k, int KP, const float *restrict U,
                                                                       const float *restrict const *wp,
                                                                       rnnc_vf acc[RNNC_AHEAD_ROWS][RNNC_NV]) {
    rnnc_vf w[RNNC_NV];
    for (int s = 0; s < S; s++) w[s] = rnnc_vload(wp[s] + (size_t)k * RNNC_NR);
    for (int i = 0; i < RNNC_AHEAD_ROWS; i++) {
        rnnc_vf u = rnnc_vsplat(U[(size_t)i * KP + k]);
        for (int s = 0; s < S; s++) acc[i][s] = acc[i][s] + u * w[s];
    }
}

/* k of the projection's RNNC_AHEAD_ROWS x NR tile over the panel's first nv vectors:
 * acc[i] += U[i][k] * panel row k. rnnc_ahead_vectors_k with the panel's own vectors, written out: called through it (an
 * array of three pointers into the panel), the batch-1 LSTM at H = 256 on 1 thread took
 * 1.03x as long (bench/pair.c, both orders), though the arithmetic is the same. */
static inline __attribute__((always_inline)) void rnnc_ahead_tile_k(int nv, int k, int KP, const float *restrict U,
                                                                    const float *restrict ppanel,
                                                                    rnnc_vf acc[RNNC_AHEAD_ROWS][RNNC_NV]) {
    rnnc_vf w[RNNC_NV];
    for (int v = 0; v < nv; v++) w[v] = rnnc_vload(ppanel + (size_t)k * RNNC_NR + v * RNNC_VEC);
    for (int i = 0; i < RNNC_AHEAD_ROWS; i++) {
        rnnc_vf u = rnnc_vsplat(U[(size_t)i * KP + k]);
        for (int v = 0; v < nv; v++) acc[i][v] = acc[i][v] + u * w[v];
    }
}

/* One panel, its first nv vectors: c [1, ncols] = a [1, K] panel (rnnc_gemv_tile's even
 * and odd sums, no bias), and, interleaved with it, k in [k0, k1) of the RNNC_AHEAD_ROWS x
 * ncols tile P = U Wp^T + bias (first slice from the bias, later ones from P). */
static inline __attribute__((always_inline)) void rnnc_gemv_ahead_panel(int nv, int K, const float *restrict a,
                                                                        const float *restrict panel, float *restrict c,
                                                                        int ncols, int KP, int k0, int k1,
                                                                        const float *restrict U,
                                                                        const float *restrict ppanel,
                                                                        const float *restrict bias_panel,
                                                                        float *restrict P, int ldp) {
    rnnc_vf even[RNNC_NV], odd[RNNC_NV], acc[RNNC_AHEAD_ROWS][RNNC_NV];
    for (int v = 0; v < nv; v++) {
        even[v] = rnnc_vsplat(0.0f);
        odd[v] = rnnc_vsplat(0.0f);
    }
    for (int i = 0; i < RNNC_AHEAD_ROWS; i++)
        for (int v = 0; v < nv; v++) {
            int n = ncols - v * RNNC_VEC;
            if (k0 == 0) acc[i][v] = rnnc_vload(bias_panel + v * RNNC_VEC);
            else if (n >= RNNC_VEC) acc[i][v] = rnnc_vload(P + (size_t)i * ldp + v * RNNC_VEC);
            else if (n > 0) acc[i][v] = rnnc_vload_first(P + (size_t)i * ldp + v * RNNC_VEC, n);
            else acc[i][v] = rnnc_vsplat(0.0f);
        }
    /* One k of the tile after every `per` pairs of the product's k (4 when K = KP = 256). */
    int pairs = K / 2, slice = k1 - k0;
    int per = slice > 0 && pairs / slice > 0 ? pairs / slice : 1;
    int k = 0, kp = k0;
    for (; kp < k1 && k + 2 * per <= K; kp++) {
        for (int j = 0; j < per; j++, k += 2) rnnc_gemv_pair(nv, k, a, 1, panel, even, odd);
        rnnc_ahead_tile_k(nv, kp, KP, U, ppanel, acc);
    }
    for (; k + 2 <= K; k += 2) rnnc_gemv_pair(nv, k, a, 1, panel, even, odd);
    if (k < K) {
        rnnc_vf a0 = rnnc_vsplat(a[k]);
        for (int v = 0; v < nv; v++) even[v] = even[v] + a0 * rnnc_vload(panel + (size_t)k * RNNC_NR + v * RNNC_VEC);
    }
    for (; kp < k1; kp++) rnnc_ahead_tile_k(nv, kp, KP, U, ppanel, acc);
    for (int v = 0; v < nv; v++) even[v] = even[v] + odd[v];
    rnnc_store_row(c, ncols, nv, even);
    for (int i = 0; i < RNNC_AHEAD_ROWS; i++) rnnc_store_row(P + (size_t)i * ldp, ncols, nv, acc[i]);
}

/* rnnc_gemv_ahead_panel for column vectors [gv, gv + S) (a gate-aligned step split by
 * vectors, rnnc_gate_unit): c [1, S VEC] = a [1, K] times those vectors of the packed
 * weights, and k in [k0, k1) of the same vectors of P = U Wp^T + bias, each vector's
 * arithmetic that of the whole panel (the same bits). Called with a constant S. */
static inline __attribute__((always_inline)) void rnnc_gemv_ahead_vectors(int S, int K, const float *restrict a,
                                                                          const float *restrict packed, int gv,
                                                                          float *restrict c, int KP, int k0, int k1,
                                                                          const float *restrict U,
                                                                          const float *restrict ppacked,
                                                                          const float *restrict bias,
                                                                          float *restrict P, int ldp) {
    const float *restrict w[RNNC_NV];
    const float *restrict wp[RNNC_NV];
    rnnc_vf even[RNNC_NV], odd[RNNC_NV], acc[RNNC_AHEAD_ROWS][RNNC_NV];
    for (int s = 0; s < S; s++) {
        w[s] = rnnc_packed_vector(packed, K, gv + s);
        wp[s] = rnnc_packed_vector(ppacked, KP, gv + s);
        even[s] = rnnc_vsplat(0.0f);
        odd[s] = rnnc_vsplat(0.0f);
        for (int i = 0; i < RNNC_AHEAD_ROWS; i++) {
            if (k0 > 0) acc[i][s] = rnnc_vload(P + (size_t)i * ldp + s * RNNC_VEC);
            else if (bias) acc[i][s] = rnnc_vload(bias + (size_t)(gv + s) * RNNC_VEC);
            else acc[i][s] = rnnc_vsplat(0.0f);
        }
    }
    /* One k of the tile after every `per` pairs of the product's k, as the panel does. */
    int pairs = K / 2, slice = k1 - k0;
    int per = slice > 0 && pairs / slice > 0 ? pairs / slice : 1;
    int k = 0, kp = k0;
    for (; kp < k1 && k + 2 * per <= K; kp++) {
        for (int j = 0; j < per; j++, k += 2) rnnc_gemv_vectors_pair(S, k, a, w, even, odd);
        rnnc_ahead_vectors_k(S, kp, KP, U, wp, acc);
    }
    for (; k + 2 <= K; k += 2) rnnc_gemv_vectors_pair(S, k, a, w, even, odd);
    if (k < K) {
        rnnc_vf a0 = rnnc_vsplat(a[k]);
        for (int s = 0; s < S; s++) even[s] = even[s] + a0 * rnnc_vload(w[s] + (size_t)k * RNNC_NR);
    }
    for (; kp < k1; kp++) rnnc_ahead_vectors_k(S, kp, KP, U, wp, acc);
    for (int s = 0; s < S; s++) {
        rnnc_vstore(c + s * RNNC_VEC, even[s] + odd[s]);
        for (int i = 0; i < RNNC_AHEAD_ROWS; i++) rnnc_vstore(P + (size_t)i * ldp + s * RNNC_VEC, acc[i][s]);
    }
}

/* rnnc_gemv_ahead_vectors for a run of 1 to RNNC_NV vectors, each count its own copy. */
static inline void rnnc_gemv_ahead_run(int S, int K, const float *restrict a, const float *restrict packed, int gv,
                                       float *restrict c, int KP, int k0, int k1, const float *restrict U,
                                       const float *restrict ppacked, const float *restrict bias, float *restrict P,
                                       int ldp) {
    switch (S) {
    case 1: rnnc_gemv_ahead_vectors(1, K, a, packed, gv, c, KP, k0, k1, U, ppacked, bias, P, ldp); return;
    case 2: rnnc_gemv_ahead_vectors(2, K, a, packed, gv, c, KP, k0, k1, U, ppacked, bias, P, ldp); return;
#if RNNC_NV > 2
    case 3: rnnc_gemv_ahead_vectors(3, K, a, packed, gv, c, KP, k0, k1, U, ppacked, bias, P, ldp); return;
#endif
    default: return;
    }
}

/* Thread tid's share of step `step` of a batch-1 recurrence that projects ahead:
 * c [1, N] = a [1, K] W^T as rnnc_gemm_gates_part computes it (the same panels per thread,
 * in the same order: `gates` aligned blocks, or with 0 whole panels), and slice step % R
 * of the projection of the next block's rows, P [R, N] = U [R, KP] Wp^T + bias (row
 * stride of U is KP, of P N). W and Wp have the same N and are packed alike: each
 * thread's projection panels are its product's. */
static inline void rnnc_gemv_ahead_part(int step, int gates, int N, int K, const float *restrict a,
                                        const float *restrict packed, float *restrict c, int KP,
                                        const float *restrict U, const float *restrict ppacked,
                                        const float *restrict bias, float *restrict P, int tid, int nth) {
    int s = step % RNNC_AHEAD_ROWS;
    int k0 = (int)((long)s * KP / RNNC_AHEAD_ROWS), k1 = (int)((long)(s + 1) * KP / RNNC_AHEAD_ROWS);
    if (gates > 0 && rnnc_gate_unit(1, N / gates) == RNNC_VEC) {
        rnnc_vector_share v = rnnc_vector_share_of(N, gates, tid, nth);
        for (int q = 0; q < v.runs; q++) {
            int gv, S;
            rnnc_vector_run(&v, (step & 1) ? v.runs - 1 - q : q, &gv, &S);
            size_t n0 = (size_t)gv * RNNC_VEC;
            rnnc_gemv_ahead_run(S, K, a, packed, gv, c + n0, KP, k0, k1, U, ppacked, bias, P + n0, N);
        }
        return;
    }
    int per_gate, lo, hi;
    rnnc_gate_panels(N, gates, tid, nth, &per_gate, &lo, &hi);
    const int count = (gates > 1 ? gates : 1) * (hi - lo);
    for (int q = 0; q < count; q++) {
        const int p = rnnc_share_panel((step & 1) ? count - 1 - q : q, gates, per_gate, lo);
        int n0 = p * RNNC_NR;
        int ncols = N - n0 < RNNC_NR ? N - n0 : RNNC_NR;
        float bias_panel[RNNC_NR];
        rnnc_bias_panel(bias, n0, ncols, bias_panel);
        const float *w = packed + (size_t)p * K * RNNC_NR, *wp = ppacked + (size_t)p * KP * RNNC_NR;
        /* a partial last panel reads only its vectors that hold columns (rnnc_gemv_tile) */
        switch (rnnc_panel_vectors(ncols)) {
        case 1: rnnc_gemv_ahead_panel(1, K, a, w, c + n0, ncols, KP, k0, k1, U, wp, bias_panel, P + n0, N); break;
#if RNNC_NV > 2
        case 2: rnnc_gemv_ahead_panel(2, K, a, w, c + n0, ncols, KP, k0, k1, U, wp, bias_panel, P + n0, N); break;
#endif
        default: rnnc_gemv_ahead_panel(RNNC_NV, K, a, w, c + n0, ncols, KP, k0, k1, U, wp, bias_panel, P + n0, N);
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Backward products                                                                    */

/* Packs W^T for W [N, K], i.e. the [K, N] matrix, so that dX = dY W runs as a forward
 * product: dX [M, K] = dY [M, N] (W^T)^T. */
static inline void rnnc_pack_weights_transposed(const float *restrict W, int N, int K, float *restrict packed) {
    int panels = (K + RNNC_NR - 1) / RNNC_NR;
    for (int p = 0; p < panels; p++) {
        float *restrict dst = packed + (size_t)p * N * RNNC_NR;
        for (int n = 0; n < N; n++) {
            for (int i = 0; i < RNNC_NR; i++) {
                int k = p * RNNC_NR + i;
                dst[(size_t)n * RNNC_NR + i] = k < K ? W[(size_t)n * K + k] : 0.0f;
            }
        }
    }
}

/* dW [N, K] += dY^T X for small products, row by row (threads split the rows of dW). */
static inline void rnnc_weight_gradient_rows(int M, int N, int K, const float *restrict dY, int ldy, const float *restrict X,
                                             int ldx, float *restrict dW, int threads) {
    #pragma omp parallel for num_threads(threads) schedule(static) if (rnnc_product_team(threads, (double)M * N * K) > 1)
    for (int n0 = 0; n0 < N; n0 += 4) {
        int n1 = n0 + 4 < N ? n0 + 4 : N;
        for (int m = 0; m < M; m++) {
            const float *restrict x = X + (size_t)m * ldx;
            for (int n = n0; n < n1; n++) {
                float g = dY[(size_t)m * ldy + n];
                if (g == 0.0f) continue;
                float *restrict w = dW + (size_t)n * K;
                for (int k = 0; k < K; k++) w[k] += g * x[k];
            }
        }
    }
}

/* Rows of X (steps x examples) per chunk of a weight gradient's sum. dY is read down its
 * columns, a new row (and with wide rows a new page) at every step of the sum: chunks of
 * 256 rows keep the pages of a chunk in the TLB while every tile of dW sums over it. */
#ifndef RNNC_WG_CHUNK
#define RNNC_WG_CHUNK 256
#endif

/* Tiles of dW whose rows of dY^T rnnc_weight_gradient_part packs together (on the stack:
 * 24 KB with AVX2, 32 KB with AVX-512). */
#define RNNC_WG_TILES 4

/* Thread tid's share of dW [N, K] += dY^T X, with X packed chunk by chunk as the
 * "weights" of the product (chunk c: panels of its rows' columns, as rnnc_pack_weights
 * lays out a [K, rows] matrix). Threads split the row tiles of dW evenly and each goes
 * through its own in blocks of RNNC_WG_TILES tiles, summing over the chunks in order.
 * Splitting whole blocks instead left a thread idle when dW has fewer blocks than threads:
 * an RNN at H=64 has one, and its weight gradients ran on one of 2 threads. Every tile
 * starts at a multiple of RNNC_MR either way, so the bits do not depend on the split.
 *
 * A block's columns of dY (its tiles' rows of dY^T) are copied first, tile by tile, into
 * RNNC_MR floats per row of the chunk. Read in place, each step of the sum reads a new row
 * of dY, ldy floats on: with ldy = 1024 (an LSTM at H=256) every such row falls into the
 * same set of the L1 cache, and a tile's 256 rows evict each other. The copy makes the
 * tiles' reads sequential: 6% to 15% faster on a Zen 3 core (1 thread, N = 1024 to 1536,
 * K = 256 to 512, 256 rows), and the same bits: every tile sums the same products in the
 * same order. */
static inline void rnnc_weight_gradient_part(int M, int N, int K, const float *restrict dY, int ldy,
                                             const float *restrict xt, float *restrict dW, int tid, int nth) {
    const int NC = 8;
    int panels = (K + RNNC_NR - 1) / RNNC_NR;
    int lo, hi;
    float block[RNNC_WG_TILES * RNNC_MR * RNNC_WG_CHUNK] __attribute__((aligned(64)));
    rnnc_split((N + RNNC_MR - 1) / RNNC_MR, tid, nth, &lo, &hi);
    for (int m0 = 0; m0 < M; m0 += RNNC_WG_CHUNK) {
        int rows = M - m0 < RNNC_WG_CHUNK ? M - m0 : RNNC_WG_CHUNK;
        const float *chunk = xt + (size_t)m0 * panels * RNNC_NR;
        for (int t0 = lo; t0 < hi; t0 += RNNC_WG_TILES) {
            int t1 = t0 + RNNC_WG_TILES < hi ? t0 + RNNC_WG_TILES : hi;
            for (int u = t0; u < t1; u++) {
                float *restrict dst = block + (size_t)(u - t0) * RNNC_MR * rows;
                int n0 = u * RNNC_MR, nn = N - n0 < RNNC_MR ? N - n0 : RNNC_MR;
                for (int m = 0; m < rows; m++) {
                    const float *restrict src = dY + (size_t)(m0 + m) * ldy + n0;
                    for (int i = 0; i < RNNC_MR; i++) dst[(size_t)m * RNNC_MR + i] = i < nn ? src[i] : 0.0f;
                }
            }
            for (int p0 = 0; p0 < panels; p0 += NC) {
                int p1 = p0 + NC < panels ? p0 + NC : panels;
                for (int u = t0; u < t1; u++) {
                    int n0 = u * RNNC_MR, n1 = n0 + RNNC_MR < N ? n0 + RNNC_MR : N;
                    rnnc_gemm_block_strided(0, 1, n1 - n0, p0, p1, 1, 0, K, rows, block + (size_t)(u - t0) * RNNC_MR * rows,
                                            1, RNNC_MR, chunk, NULL, dW + (size_t)n0 * K, K, 1, 0, 0);
                }
            }
        }
    }
}

/* Steps per window of a recurrence's backward pass: the weight gradients of its products
 * are summed window by window (about RNNC_WG_CHUNK rows each), so only one window of the
 * products' output gradients is kept, not one per step of the whole sequence. Never more
 * steps than the sequence has: at batch 1 a 256-step window for 100 steps held 156 rows
 * nobody writes (1.4 MB of an LSTM's 15.4 at H=256). */
static inline int rnnc_window_steps(int B, int T) {
    int steps = B >= RNNC_WG_CHUNK ? 1 : RNNC_WG_CHUNK / B;
    return steps < T ? steps : (T > 0 ? T : 1);
}

/* Floats of X^T packed for rnnc_weight_gradient_part: M rows of K columns. */
static inline size_t rnnc_packed_rows_size(int M, int K) {
    return (size_t)M * (size_t)((K + RNNC_NR - 1) / RNNC_NR) * RNNC_NR;
}

/* Thread tid's share of packing X [M, K] (row stride ldx) as the transposed operand of
 * rnnc_weight_gradient_part: chunk by chunk of RNNC_WG_CHUNK rows, in chunk c panel p holds
 * columns p*NR.. of the chunk's rows (zero past K). Threads split the rows, and each row
 * is read once, front to back, into every panel of its chunk: panel by panel instead,
 * each panel read one cache line from each of 256 rows 2 KB or more apart, and packing
 * took 1.4x to 1.9x as long (M = 3200, K = 512: 0.66 against 0.48 ms; M = 6400, K = 1024:
 * 4.8 against 2.6 ms; a Zen 3 core). With seq_b > 0, row r is step r / seq_b of example
 * r % seq_b of a batch-first sequence ([seq_b, seq_t, ldx], X pointing at the first
 * step): a window of steps of a model input. */
static inline void rnnc_pack_rows_part(int M, int K, const float *restrict X, int ldx, int seq_b, int seq_t,
                                       float *restrict xt, int tid, int nth) {
    int panels = (K + RNNC_NR - 1) / RNNC_NR, full = K / RNNC_NR;
    int lo, hi;
    rnnc_split(M, tid, nth, &lo, &hi);
    for (int r = lo; r < hi; r++) {
        int m0 = r / RNNC_WG_CHUNK * RNNC_WG_CHUNK;
        int rows = M - m0 < RNNC_WG_CHUNK ? M - m0 : RNNC_WG_CHUNK;
        const float *restrict x = X + (seq_b > 0 ? ((size_t)(r % seq_b) * seq_t + r / seq_b) : (size_t)r) * ldx;
        float *restrict dst = xt + (size_t)m0 * panels * RNNC_NR + (size_t)(r - m0) * RNNC_NR;
        for (int p = 0; p < full; p++)
            for (int v = 0; v < RNNC_NV; v++)
                rnnc_vstore(dst + (size_t)p * rows * RNNC_NR + v * RNNC_VEC, rnnc_vload(x + p * RNNC_NR + v * RNNC_VEC));
        for (int p = full; p < panels; p++)
            for (int i = 0; i < RNNC_NR; i++) {
                int k = p * RNNC_NR + i;
                dst[(size_t)p * rows * RNNC_NR + i] = k < K ? x[k] : 0.0f;
            }
    }
}

/* Thread tid's share of dW [N, K] += dY^T X inside a team (every thread calls it): packs X
 * (rows as rnnc_pack_rows_part reads them) into `xt` (room for rnnc_packed_rows_size(M, K)),
 * then sums. No allocation; the barrier pairs up because every thread of the team passes it. */
static inline void rnnc_weight_gradient_team(int M, int N, int K, const float *restrict dY, int ldy,
                                             const float *restrict X, int ldx, int seq_b, int seq_t, float *restrict xt,
                                             float *restrict dW, int tid, int nth) {
    rnnc_pack_rows_part(M, K, X, ldx, seq_b, seq_t, xt, tid, nth);
    #pragma omp barrier
    rnnc_weight_gradient_part(M, N, K, dY, ldy, xt, dW, tid, nth);
}

/* dW [N, K] += dY^T X, summed over M rows: the weight gradient of y = x W^T for every row
 * (every step of a sequence) at once. Large ones run on the forward product's tiles, with
 * dY read in place as the transposed left operand and X packed once as the [K, M]
 * "weights": dW = dY^T (X^T)^T, one register-blocked product per call (per weight and
 * training step), not one per time step. */
static inline void rnnc_weight_gradient(int M, int N, int K, const float *restrict dY, int ldy, const float *restrict X,
                                        int ldx, float *restrict dW, int threads) {
    if ((double)M * N * K < 4.0e6) { rnnc_weight_gradient_rows(M, N, K, dY, ldy, X, ldx, dW, threads); return; }
    float *xt = rnnc_alloc_floats(rnnc_packed_rows_size(M, K));
    if (!xt) {
        rnnc_weight_gradient_rows(M, N, K, dY, ldy, X, ldx, dW, threads);
        return;
    }
    #pragma omp parallel num_threads(threads) if (threads > 1)
    rnnc_weight_gradient_team(M, N, K, dY, ldy, X, ldx, 0, 0, xt, dW, rnnc_thread_id(), rnnc_thread_count());
    free(xt);
}

/* db [N] += column sums of dY [M, N]. */
static inline void rnnc_bias_gradient(int M, int N, const float *restrict dY, size_t ldy, float *restrict db) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) db[n] += dY[(size_t)m * ldy + n];
}

/* Thread tid's columns of db [N] += column sums of dY [M, N], inside a team (every thread
 * calls it, after the rows are written). Each column is summed down the rows in order, so
 * the bits do not depend on the split. */
static inline void rnnc_bias_gradient_team(int M, int N, const float *restrict dY, size_t ldy, float *restrict db,
                                           int tid, int nth) {
    int c0, c1;
    rnnc_split(N, tid, nth, &c0, &c1);
    rnnc_bias_gradient(M, c1 - c0, dY + c0, ldy, db + c0);
}

/* ------------------------------------------------------------------------------------ */
/* Losses: value and gradient of the prediction, as PyTorch's F.mse_loss and             */
/* F.cross_entropy with mean reduction. `valid` (or NULL) marks the rows that count; the */
/* gradient is not written when its pointer is NULL (a loss for evaluation).             */

/* The loss's mask of rows (b, t) of a [B, T] sequence within their example's length. */
static inline void rnnc_length_mask(int B, int T, const int32_t *restrict lengths, unsigned char *restrict valid) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) valid[(size_t)b * T + t] = t < lengths[b];
}

/* mean((y - t)^2) over the valid rows' elements; dy = 2 (y - t) / count. dy may be y
 * (a training step writes the gradient over a prediction nothing else reads). */
static inline double rnnc_mse_loss(int rows, int n, const float *y, const float *restrict t,
                                   const unsigned char *restrict valid, float *dy) {
    size_t count = 0;
    for (int r = 0; r < rows; r++) if (!valid || valid[r]) count += (size_t)n;
    /* Row by row, each row's sum in vector lanes of doubles: the same bits for any thread
     * count (the order depends on n only). The gradient's scale is one multiply, not a
     * division per element: the loop was scalar and took 7.6% of an RNN's training step
     * (B=256, T=10, H=64) on 2 threads. */
    const double scale = count ? 2.0 / (double)count : 0.0;
    double sum = 0.0;
    for (int r = 0; r < rows; r++) {
        const float *yr = y + (size_t)r * n;
        const float *restrict tr = t + (size_t)r * n;
        float *dr = dy ? dy + (size_t)r * n : NULL;
        if (valid && !valid[r]) {
            if (dr) memset(dr, 0, (size_t)n * sizeof(float));
            continue;
        }
        double s = 0.0;
        if (dr) {
            #pragma omp simd reduction(+ : s)
            for (int j = 0; j < n; j++) {
                double d = (double)yr[j] - (double)tr[j];
                s += d * d;
                dr[j] = (float)(d * scale);
            }
        } else {
            #pragma omp simd reduction(+ : s)
            for (int j = 0; j < n; j++) {
                double d = (double)yr[j] - (double)tr[j];
                s += d * d;
            }
        }
        sum += s;
    }
    return count ? sum / (double)count : 0.0;
}

static inline float rnnc_expf(float x);

/* The largest of x[0..n), n >= 1, as `x[j] > m ? x[j] : m` from m = x[0] finds it (the
 * result is exact, so the order does not matter): RNNC_VEC running maxima, one per lane,
 * which clang turns into one vector max per RNNC_VEC floats, then the lanes and the tail.
 * Written as one running maximum, the loop stays scalar: clang does not reorder a select
 * chain by itself. */
static inline float rnnc_row_max(int n, const float *x) {
    int full = n / RNNC_VEC * RNNC_VEC;
    float m = x[0];
    if (full > 0) {
        float lane[RNNC_VEC];
        for (int l = 0; l < RNNC_VEC; l++) lane[l] = x[l];
        for (int j = RNNC_VEC; j < full; j += RNNC_VEC)
            for (int l = 0; l < RNNC_VEC; l++) lane[l] = x[j + l] > lane[l] ? x[j + l] : lane[l];
        for (int l = 0; l < RNNC_VEC; l++) m = lane[l] > m ? lane[l] : m;
    }
    for (int j = full; j < n; j++) m = x[j] > m ? x[j] : m;
    return m;
}

/* mean over valid rows of -log softmax(z)[label]; dz = (softmax(z) - onehot) / count.
 * The exponentials are rnnc_expf's (2 ulp, vectorized; libm's double exp cost 2 calls per
 * element, 10 ms a step for 4096 rows of 256 classes); each row's sum is kept in double.
 * dz may be z (the gradient written over logits nothing else reads): each element is read
 * before it is written, and `omp simd` says so to the vectorizer. */
static inline double rnnc_cross_entropy_loss(int rows, int n, const float *z, const int32_t *restrict labels,
                                             const unsigned char *restrict valid, float *dz) {
    size_t count = 0;
    for (int r = 0; r < rows; r++) if (!valid || valid[r]) count++;
    double sum = 0.0;
    for (int r = 0; r < rows; r++) {
        const float *zr = z + (size_t)r * n;
        float *dr = dz ? dz + (size_t)r * n : NULL;
        if ((valid && !valid[r]) || count == 0) { if (dr) memset(dr, 0, (size_t)n * sizeof(float)); continue; }
        const float mx = rnnc_row_max(n, zr);
        const float label_logit = zr[labels[r]];   /* read before dz, which may be z, is written */
        /* the sum of the exponentials in double, in 8 lanes (lane l adds the terms j with
         * j % 8 == l) that vectorize, added lane by lane, then the tail */
        double lane[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0}, s = 0.0;
        int j = 0, full = n / 8 * 8;
        if (dr) {
            #pragma omp simd
            for (j = 0; j < n; j++) dr[j] = rnnc_expf(zr[j] - mx);
            for (j = 0; j < full; j += 8)
                for (int l = 0; l < 8; l++) lane[l] += (double)dr[j + l];
            for (int l = 0; l < 8; l++) s += lane[l];
            for (j = full; j < n; j++) s += (double)dr[j];
        } else {
            for (j = 0; j < full; j += 8)
                for (int l = 0; l < 8; l++) lane[l] += (double)rnnc_expf(zr[j + l] - mx);
            for (int l = 0; l < 8; l++) s += lane[l];
            for (j = full; j < n; j++) s += (double)rnnc_expf(zr[j] - mx);
        }
        sum += log(s) + (double)mx - (double)label_logit;
        if (!dr) continue;
        const float scale = (float)(1.0 / (s * (double)count));
        #pragma omp simd
        for (j = 0; j < n; j++) dr[j] *= scale;
        dr[labels[r]] -= (float)(1.0 / (double)count);
    }
    return count ? sum / (double)count : 0.0;
}

/* ------------------------------------------------------------------------------------ */
/* Element-wise functions used by fused kernels                                         */

/* exp, tanh and sigmoid without calls into libm, written so that the compiler vectorizes
 * the loops of fused kernels around them (a libm call per element does not vectorize and
 * cost half of an LSTM's time). Accuracy: exp and sigmoid within 2 ulp of the correctly
 * rounded result over the ranges that matter, tanh within 6.4 ulp (3.8e-7), all far inside
 * the 1e-5 that outputs are held to.
 *
 * e^x = 2^n e^r with n = round(x / ln 2) and |r| <= ln(2)/2; ln 2 is split in two
 * constants (Cody and Waite) so r is exact; e^r - 1 comes from its Taylor series to r^7,
 * whose remainder (< 6e-9) is below float precision, and 2^n (e^r - 1) + 2^n is e^x. */
static inline float rnnc_bits_to_float(int32_t i) { float f; memcpy(&f, &i, sizeof f); return f; }

/* e^x for x in [-87, 88] (clamped there), with no special cases. */
static inline float rnnc_exp_core(float x) {
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    float xc = x > 88.0f ? 88.0f : (x < -87.0f ? -87.0f : x);
    float n = floorf(xc * log2e + 0.5f);
    float r = (xc - n * ln2_hi) - n * ln2_lo;
    float p = r * (1.0f + r * (0.5f + r * (1.6666667e-1f + r * (4.1666668e-2f + r * (8.3333338e-3f
              + r * (1.3888889e-3f + r * 1.9841270e-4f))))));
    float scale = rnnc_bits_to_float(((int32_t)n + 127) << 23);
    return scale * p + scale;
}

static inline float rnnc_expf(float x) {
    float y = rnnc_exp_core(x);
    y = x > 88.7228391f ? INFINITY : y;   /* overflow, as expf */
    y = x < -87.0f ? 0.0f : y;           /* below the smallest normal float: flush */
    return x != x ? x : y;               /* NaN stays NaN */
}

/* tanh(x) = x P(x^2) / Q(x^2) on [-9, 9], P and Q of degree 4, x clamped there. The
 * coefficients are a least-squares fit of the relative error, reweighted toward its
 * maximum; of those rounds, the one best in float arithmetic (scripts/fit_tanh.py, numpy
 * only). 2.1e-8 in exact arithmetic; in float, with the roundings of P, Q, the product and
 * the division, at most 5.2 ulp, 3.1e-7 absolute, with FMA (as compiled models are built,
 * -march=native), and 6.4 ulp, 3.8e-7, without (every third float in [0, 10), against
 * double tanh). This replaced sign(x) expm1(2|x|) / (expm1(2|x|) + 2) on the exponential's
 * polynomial, within 2 ulp but twice the instructions and a division of its own: the LSTM
 * cell took 10.3 cycles an element with it and 7.6 with this (B = 32, H = 256, a Zen 3
 * core), the GRU cell 7.6 and 5.2. Outputs stay 30 times inside the 1e-5 held to PyTorch.
 * The result is rounded to 1 from the last float below it, 1 - 6e-8 (1 ulp; tanh(x)
 * itself rounds to 1 from x = 9.01): so |tanh| <= 1 (the backward pass forms 1 - tanh^2),
 * and a saturated unit is exactly 1, as in PyTorch, though P / Q at the clamp falls on
 * 1 - 6e-8. NaN goes through every comparison and stays NaN; -0 stays -0. */
static inline float rnnc_tanhf(float x) {
    const float p0 = 1.0f, p1 = 0.133808061f, p2 = 0.00349532859f, p3 = 2.06048662e-05f, p4 = 1.33489948e-08f;
    const float q1 = 0.467141211f, q2 = 0.0258759931f, q3 = 0.000328521215f, q4 = 7.77419757e-07f;
    float xc = x > 9.0f ? 9.0f : (x < -9.0f ? -9.0f : x);
    float s = xc * xc;
    float p = (((p4 * s + p3) * s + p2) * s + p1) * s + p0;
    float q = (((q4 * s + q3) * s + q2) * s + q1) * s + 1.0f;
    float t = xc * p / q;
    return t > 0.99999988f ? 1.0f : (t < -0.99999988f ? -1.0f : t);
}

/* 1 / (1 + e^-x) on rnnc_exp_core directly, without rnnc_expf's three selects for
 * overflow, underflow and NaN: they cost 18 of the LSTM cell's ~250 instructions a
 * vector: the cell took 12.4 cycles an element with them and 10.3 without (B = 32,
 * H = 256, a Zen 3 core). The core's clamps already give the same value everywhere but
 * x < -88.7, where e^-x overflowed to infinity and the sigmoid was 0; it is now
 * 1 / (1 + e^88), 6e-39, nearer the true value (below 3e-39). NaN stays NaN through the
 * arithmetic. */
static inline float rnnc_sigmoidf(float x) { return 1.0f / (1.0f + rnnc_exp_core(-x)); }

/* Put before the column loop of a fused element-wise kernel: two vectors of columns in
 * flight. An LSTM cell's body is one dependent chain of about 130 cycles per vector (three
 * sigmoids and two tanh, each a polynomial and a division) in about 250 instructions, and
 * clang's vectorizer, short of registers, runs one vector at a time: the out-of-order
 * window (256 entries on Zen 3) then holds barely one iteration and the core waits on
 * the chain. Two interleaved: 16.5 to 13.2 cycles per element on Zen 3 (the LSTM cell at
 * B = 32, H = 256, alone). Each element's operations are the same: the same bits. Other
 * compilers (RNNC_CC=gcc) get nothing. */
#if defined(__clang__)
#define RNNC_ELEMENTWISE_LOOP _Pragma("clang loop interleave_count(2)")
#else
#define RNNC_ELEMENTWISE_LOOP
#endif
static inline float rnnc_reluf(float x) { return x > 0.0f ? x : 0.0f; }

/* Softmax of one row of width n (y may equal x), as PyTorch's CPU kernel computes it: the
 * row maximum subtracted first, so large logits do not overflow, then e^(x - max), their
 * sum, and a multiply by 1 / sum (ATen's _vec_softmax_lastdim multiplies by the
 * reciprocal; a division per element also cost a third of the time of the exponentials).
 * Every pass vectorizes: the maximum by lanes (rnnc_row_max); the exponentials with their
 * sum in the same loop, in RNNC_VEC lane sums (lane l adds elements l, l + VEC, ...: they
 * vectorize without reassociating anything; one running sum is a chain of dependent
 * scalar adds, 4 cycles a float) added lane by lane, then the tail, so the bits are the
 * same on every run and thread count. `omp
 * simd` because x and y may be one buffer, read and written at the same index, which
 * clang's own overlap check would send to the scalar loop. A 10000-word vocabulary's
 * softmax over 400 rows took 14 ms on one Zen 4 core, as long as the product that made
 * the logits, when the sum and the maximum ran one float at a time; 2.6 ms with the sum
 * over the stored exponentials and a division, 2.3 ms like this (rows in memory). */
static inline void rnnc_softmax_row(int n, const float *x, float *y) {
    const float mx = rnnc_row_max(n, x);
    const int full = n / RNNC_VEC * RNNC_VEC;
    float lane[RNNC_VEC], sum = 0.0f;
    for (int l = 0; l < RNNC_VEC; l++) lane[l] = 0.0f;
    for (int j = 0; j < full; j += RNNC_VEC) {
        #pragma omp simd
        for (int l = 0; l < RNNC_VEC; l++) {
            const float e = rnnc_expf(x[j + l] - mx);
            y[j + l] = e;
            lane[l] += e;
        }
    }
    for (int l = 0; l < RNNC_VEC; l++) sum += lane[l];
    for (int j = full; j < n; j++) {
        const float e = rnnc_expf(x[j] - mx);
        y[j] = e;
        sum += e;
    }
    const float inverse = 1.0f / sum;
    #pragma omp simd
    for (int j = 0; j < n; j++) y[j] *= inverse;
}

/* Softmax over rows of width n (row strides sx, sy; y may equal x): rnnc_softmax_row. */
static inline void rnnc_softmax_rows(int rows, int n, const float *x, size_t sx, float *y, size_t sy, int threads) {
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && (size_t)rows * n > 16384)
    for (int r = 0; r < rows; r++) rnnc_softmax_row(n, x + (size_t)r * sx, y + (size_t)r * sy);
}

/* Thread tid's share of a dense layer whose output goes straight into a softmax:
 * Z [M, N] = A [M, K] W^T + bias, then Y = softmax of Z's rows, one row tile (8 rows) at a
 * time: its product over every panel, then its rows' softmax while they are still in this
 * core's L2 (8 rows of a 10000-word vocabulary are 320 KB of logits and as much of
 * probabilities). Run after the whole product, the softmax read the logits back from L3
 * or memory. The tiles are rnnc_gemm's (a tile's rows depend on M and its index only)
 * and each row is rnnc_softmax_row's, so Z and Y have the bits of the two kernels run one
 * after the other. Y must not be A's buffer (DenseSoftmax.swift fuses only where the
 * memory plan gave them two; char_lstm, whose plan puts its probabilities over the dense
 * layer's input, was level in pairs either way). The row tile's product reads every panel of
 * W, which therefore streams from L3 once per 8 rows; measured on one Zen 4 core for
 * M = 400, N = 10000, K = 200 (word_lm's output layer), that product alone ran at 101
 * GFLOP/s by single row tiles against 93 in rnnc_gemm's blocks of 64 rows (a harness,
 * paired runs; likely because 64 output rows written in turn, each 40 KB from the next, are
 * more streams than the prefetchers follow: not measured). With K = 1024 and 16 MB of
 * weights (M = 200, N = 4096) single row tiles were 16% slower, so rnnc_gemm keeps its
 * blocks.
 *
 * Where the L2 holds more, a group of row tiles shares each pass over W: as many tiles as
 * half the L2 holds the logits of (rnnc_softmax_group_tiles: 1 on Zen 4's 1 MB, 3 on a 2 MB
 * L2), and the group's panels are prefetched where rnnc_prefetch_panels says so for its
 * rows. On an Intel Xeon (2 MB of L2, an L3 slower to feed one core than Zen 4's), word_lm's
 * inference, paired against one tile at a time: 2 tiles 0.86, the prefetch alone 0.99, both
 * 0.78 (1 thread) and 0.79 (2), 3 tiles with it 0.96 of 2, 4 tiles 0.94 of 2. Every tile is
 * computed as before: the same bits. */
static inline int rnnc_softmax_group_tiles(int N) {
    const long l2 = rnnc_l2_bytes();
    const size_t tile = (size_t)N * RNNC_MR * sizeof(float);
    const size_t group = l2 > 0 ? (size_t)l2 / 2 / tile : 1;
    return group < 1 ? 1 : (group > 64 ? 64 : (int)group);
}

static inline void rnnc_dense_softmax_part(int M, int N, int K, const float *restrict A, int lda,
                                           const float *restrict packed, const float *restrict bias, float *restrict Z,
                                           float *restrict Y, int tid, int nth) {
    const int panels = (N + RNNC_NR - 1) / RNNC_NR, group = rnnc_softmax_group_tiles(N);
    int lo, hi;
    rnnc_split(rnnc_row_tiles(M), tid, nth, &lo, &hi);
    for (int t = lo; t < hi; t += group) {
        const int t1 = t + group < hi ? t + group : hi;
        int r0, r1, e0, e1;
        rnnc_row_tile(M, t, &r0, &r1);
        rnnc_row_tile(M, t1 - 1, &e0, &e1);
        rnnc_gemm_block_strided(t, t1, M, 0, panels, 1, 0, N, K, A, lda, 1, packed, bias, Z, N, 0, 0,
                                rnnc_prefetch_panels(e1 - r0, N, K, 1));
        for (int r = r0; r < e1; r++) rnnc_softmax_row(N, Z + (size_t)r * N, Y + (size_t)r * N);
    }
}

/* Y = softmax(A W^T + bias) with Z = A W^T + bias kept (the loss reads the logits): the
 * fused row tiles above where threads split the product's rows (rnnc_splits_panels is
 * false); a few rows' product splits its panels between threads instead, and there the two
 * kernels run one after the other. */
static inline void rnnc_dense_softmax(int M, int N, int K, const float *restrict A, int lda,
                                      const float *restrict packed, const float *restrict bias, float *restrict Z,
                                      float *restrict Y, int threads) {
    if (M <= 0 || N <= 0) return;
    if (rnnc_splits_panels(M)) {
        rnnc_gemm(M, N, K, A, lda, packed, bias, Z, N, threads);
        rnnc_softmax_rows(M, N, Z, N, Y, N, threads);
        return;
    }
    const int nt = rnnc_product_team(threads, (double)M * N * K);
    if (nt == 1) {
        rnnc_dense_softmax_part(M, N, K, A, lda, packed, bias, Z, Y, 0, 1);
        return;
    }
    #pragma omp parallel num_threads(nt)
    rnnc_dense_softmax_part(M, N, K, A, lda, packed, bias, Z, Y, rnnc_thread_id(), rnnc_thread_count());
}

/* ------------------------------------------------------------------------------------ */
/* Data movement                                                                        */

/* Sizes in the arena are rounded to 16 floats so every buffer starts on a cache line. */
static inline size_t rnnc_round16(size_t n) { return (n + 15) / 16 * 16; }
static inline size_t rnnc_max_size(size_t a, size_t b) { return a > b ? a : b; }

/* out [B, T, D] = rows of table [V, D] picked by ids [B, T]; steps past an example's
 * length are zero (their ids are ignored). The ids were checked against V beforehand. */
static inline void rnnc_embedding(int B, int T, int D, const float *restrict table, const int32_t *restrict ids,
                                  const int32_t *restrict lengths, float *restrict out, int threads) {
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && (size_t)B * T * D > 65536)
    for (int b = 0; b < B; b++) {
        int len = lengths ? lengths[b] : T;
        for (int t = 0; t < T; t++) {
            float *restrict dst = out + ((size_t)b * T + t) * D;
            if (t < len) memcpy(dst, table + (size_t)ids[(size_t)b * T + t] * D, (size_t)D * sizeof(float));
            else memset(dst, 0, (size_t)D * sizeof(float));
        }
    }
}

/* A projected embedding (ProjectedEmbedding.swift): an embedding read only by a
 * recurrence's input projection, x[b, t] = W E[id] + bias. From RNNC_STREAM_MIN_BATCH
 * examples, when the batch holds at least as many rows (B x T) as the table has (V), the
 * projection is taken once per vocabulary row, table [V, N] = E W^T + bias, and each step
 * copies its rows; the backward sums each step's gradient into its id's row of dtable,
 * then takes W's and E's gradients from dtable's V rows instead of B x T. Every element
 * of the table is summed over k as the step's own product would sum it. At B x T = V the
 * two cost the same (char_lstm, paired: 1.012 and 1.002 the other way); at 2V the table is
 * 1.3% of the step faster, at 16V (B = 32, T = 128) 3% to 4% (docs/PERFORMANCE.md). */
static inline int rnnc_table_pays(int B, int T, int V) {
    return B >= RNNC_STREAM_MIN_BATCH && (size_t)B * (size_t)T >= (size_t)V;
}

/* C [M, N] = the rows of table [V, N] at ids[b * ids_stride] (row b), or the bias (zero
 * when NULL) for examples past their length at step t, as the product of a zero row gives.
 * The thread's share: with `gates` aligned blocks, the hidden columns the fused kernel
 * reads on this thread (rnnc_split_gate_cols, no barrier between); else its rows (a
 * barrier follows before anything reads them). */
static inline void rnnc_table_rows_part(int gates, int M, int N, const float *restrict table,
                                        const int32_t *restrict ids, size_t ids_stride,
                                        const int32_t *restrict lengths, int t, const float *restrict bias,
                                        float *restrict C, int ldc, int tid, int nth) {
    int b0, b1, j0 = 0, j1 = N, blocks = 1, width = N;
    if (gates > 0) {
        blocks = gates;
        width = N / gates;
        rnnc_split_gate_cols(M, width, tid, nth, &b0, &b1, &j0, &j1);
    } else {
        rnnc_split(M, tid, nth, &b0, &b1);
    }
    if (j1 <= j0) return;
    for (int b = b0; b < b1; b++) {
        int past = lengths && t >= lengths[b];
        const float *src = past ? bias : table + (size_t)ids[(size_t)b * ids_stride] * N;
        float *dst = C + (size_t)b * ldc;
        for (int g = 0; g < blocks; g++) {
            size_t c = (size_t)g * width + j0, n = (size_t)(j1 - j0);
            if (src) memcpy(dst + c, src + c, n * sizeof(float));
            else memset(dst + c, 0, n * sizeof(float));
        }
    }
}

/* dtable [V, N] += the gradients of a window's rows: g row (s * B + b) belongs to step
 * t0 + s of example b and adds to row ids[b * T + t0 + s]; rows past an example's length
 * are skipped. The thread's share is a block of columns, so no two threads add to one
 * element, and each element's sum runs in the same order for any thread count. */
static inline void rnnc_table_gradient_team(int steps, int B, int T, int t0, int N, const float *restrict g,
                                            const int32_t *restrict ids, const int32_t *restrict lengths,
                                            float *restrict dtable, int tid, int nth) {
    int v0, v1;
    rnnc_split((N + RNNC_VEC - 1) / RNNC_VEC, tid, nth, &v0, &v1);
    int c0 = v0 * RNNC_VEC, c1 = v1 * RNNC_VEC < N ? v1 * RNNC_VEC : N;
    if (c1 <= c0) return;
    for (int s = 0; s < steps; s++) {
        int t = t0 + s;
        for (int b = 0; b < B; b++) {
            if (lengths && t >= lengths[b]) continue;
            const float *restrict src = g + ((size_t)s * B + b) * N;
            float *restrict dst = dtable + (size_t)ids[(size_t)b * T + t] * N;
            #pragma omp simd
            for (int j = c0; j < c1; j++) dst[j] += src[j];
        }
    }
}

/* out [B, F] = seq [B, T, F] at each example's last valid step. */
static inline void rnnc_last_step(int B, int T, int F, const float *restrict seq, const int32_t *restrict lengths,
                                  float *restrict out) {
    for (int b = 0; b < B; b++) {
        int t = (lengths ? lengths[b] : T) - 1;
        memcpy(out + (size_t)b * F, seq + ((size_t)b * T + t) * F, (size_t)F * sizeof(float));
    }
}

/* out [rows, fa + fb] = [a | b] along the last axis. */
static inline void rnnc_concat_rows(int rows, const float *restrict a, size_t sa, int fa, const float *restrict b,
                                    size_t sb, int fb, float *restrict out, size_t so) {
    for (int r = 0; r < rows; r++) {
        memcpy(out + (size_t)r * so, a + (size_t)r * sa, (size_t)fa * sizeof(float));
        memcpy(out + (size_t)r * so + fa, b + (size_t)r * sb, (size_t)fb * sizeof(float));
    }
}

/* ------------------------------------------------------------------------------------ */
/* Dropout (training only)                                                               */

/* y = x * scale where scale is 0 with probability `rate` and 1 / (1 - rate) otherwise (the
 * inverted dropout of nn.Dropout); the scales are kept for the backward pass. The random
 * numbers come from a xorshift64* generator whose state the model keeps and checkpoints. */
static inline void rnnc_dropout_forward(size_t n, const float *restrict x, float *restrict y, float *restrict scale,
                                        float rate, uint64_t *state) {
    uint64_t s = *state ? *state : 0x9E3779B97F4A7C15ull;
    float keep = 1.0f / (1.0f - rate);
    for (size_t i = 0; i < n; i++) {
        s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
        float u = (float)((s * 0x2545F4914F6CDD1Dull) >> 40) * (1.0f / 16777216.0f);
        scale[i] = u < rate ? 0.0f : keep;
        y[i] = x[i] * scale[i];
    }
    *state = s;
}

/* ------------------------------------------------------------------------------------ */
/* Optimizers, as torch.optim's single-tensor (foreach=False) loops                      */

/* Settings of one training step (also declared, identically, in every NAME.h).
 * kind: 0 SGD, 1 Adam, 2 AdamW. clip_norm <= 0 means no clipping. */
#ifndef RNNC_OPTIMIZER_DEFINED
#define RNNC_OPTIMIZER_DEFINED
typedef struct rnnc_optimizer {
    int kind;
    float lr, beta1, beta2, eps, weight_decay, momentum, clip_norm;
} rnnc_optimizer;
#endif
enum { RNNC_SGD = 0, RNNC_ADAM = 1, RNNC_ADAMW = 2 };

/* torch.nn.utils.clip_grad_norm_: scale every gradient by max_norm / (norm + 1e-6) when
 * that is below 1, the norm being the 2-norm over all parameters together. Returns the
 * norm before clipping. */
static inline double rnnc_clip_grad_norm(float *restrict g, size_t n, float max_norm) {
    /* Eight partial sums, added in a fixed order at the end: one chain of dependent double
     * additions took 4 cycles per element; eight independent ones vectorize. */
    double part[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) part[k] += (double)g[i + k] * (double)g[i + k];
    double sum = 0.0;
    for (; i < n; i++) sum += (double)g[i] * (double)g[i];
    for (int k = 0; k < 8; k++) sum += part[k];
    double norm = sqrt(sum);
    double coef = (double)max_norm / (norm + 1e-6);
    if (coef < 1.0) {
        float c = (float)coef;
        for (size_t i = 0; i < n; i++) g[i] *= c;
    }
    return norm;
}

/* Adam's update, element by element; called with constant flags, so each variant is a loop
 * without branches whose settings live in registers (read through the optimizer struct,
 * they were reloaded at every element: the stores to p, m and v might have changed them). */
static inline __attribute__((always_inline)) void rnnc_adam_loop(float *restrict p, const float *restrict g,
                                                                 float *restrict m, float *restrict v, size_t n,
                                                                 int decoupled, int coupled, float decay, float wd,
                                                                 float beta1, float beta2, float eps, float step_size,
                                                                 float bias2_sqrt) {
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (decoupled) p[i] *= decay;
        else if (coupled) gi += wd * p[i];
        m[i] += (1.0f - beta1) * (gi - m[i]);
        v[i] = v[i] * beta2 + (1.0f - beta2) * gi * gi;
        float denom = sqrtf(v[i]) / bias2_sqrt + eps;
        p[i] -= step_size * m[i] / denom;
    }
}

/* One optimizer step over n parameters. `m` and `v` hold the moments (momentum buffer in
 * m for SGD); `step` counts from 1. Follows torch.optim: Adam adds weight_decay * p to the
 * gradient, AdamW decays the weights by lr * weight_decay first; SGD's momentum buffer
 * starts as the first gradient. */
static inline void rnnc_optimizer_step(const rnnc_optimizer *o, float *restrict p, const float *restrict g,
                                       float *restrict m, float *restrict v, size_t n, long step) {
    if (o->kind == RNNC_SGD) {
        for (size_t i = 0; i < n; i++) {
            float d = g[i];
            if (o->weight_decay != 0.0f) d += o->weight_decay * p[i];
            if (o->momentum != 0.0f) {
                m[i] = step == 1 ? d : o->momentum * m[i] + d;
                d = m[i];
            }
            p[i] -= o->lr * d;
        }
        return;
    }
    double bias1 = 1.0 - pow((double)o->beta1, (double)step);
    double bias2 = 1.0 - pow((double)o->beta2, (double)step);
    const float step_size = (float)((double)o->lr / bias1);
    const float bias2_sqrt = (float)sqrt(bias2);
    if (o->kind == RNNC_ADAMW) rnnc_adam_loop(p, g, m, v, n, 1, 0, 1.0f - o->lr * o->weight_decay, 0.0f, o->beta1, o->beta2, o->eps, step_size, bias2_sqrt);
    else if (o->weight_decay != 0.0f) rnnc_adam_loop(p, g, m, v, n, 0, 1, 1.0f, o->weight_decay, o->beta1, o->beta2, o->eps, step_size, bias2_sqrt);
    else rnnc_adam_loop(p, g, m, v, n, 0, 0, 1.0f, 0.0f, o->beta1, o->beta2, o->eps, step_size, bias2_sqrt);
}

#endif /* RNNC_KERNELS_H */
