/* pair.c: two builds of one model, side by side in one process.
 *
 * Loads libNAME.so from two compiled model directories (say, the previous commit's rnnc
 * and this one's) and alternates their training steps (or runs, with INFER=1), so both
 * see the same moments of a noisy machine. Prints each build's median and minimum, and
 * the median of the per-step ratios B / A (and, for training, whether the last losses are
 * equal bits): changes of a few percent that separate runs of
 * `rnnc bench` cannot resolve on a shared 2-core machine show up here.
 *
 *   cc -O2 -o pair bench/pair.c -ldl
 *   rnnc compile model.rnn -o A     (with the old rnnc)
 *   rnnc compile model.rnn -o B     (with the new one)
 *   rnnc init model.rnn -o w.safetensors
 *   ./pair A B NAME w.safetensors BATCH TIME IN_FEATURES TARGET_FEATURES STEPS [THREADS]
 *
 * The model takes one input x [B, T, IN_FEATURES] and one target [B, T, TARGET_FEATURES]
 * of floats, or with INTS=1 one int input and one int target [B, T] of byte ids (a byte
 * language model such as models/char_lstm.rnn). Adam (lr 1e-3), clip 5.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct { int kind; float lr, beta1, beta2, eps, weight_decay, momentum, clip_norm; } optimizer;
typedef void *(*create_fn)(const char *);
typedef int (*step_fn)(void *, int, int, const void *const *, const void *const *, const void *, const optimizer *, double *);
typedef int (*run_fn)(void *, int, int, const void *const *, const void *);
typedef void (*threads_fn)(void *, int);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 10) {
        fprintf(stderr, "usage: %s DIR_A DIR_B NAME WEIGHTS BATCH TIME IN TARGET STEPS [THREADS]\n", argv[0]);
        return 2;
    }
    const int B = atoi(argv[5]), T = atoi(argv[6]), I = atoi(argv[7]), O = atoi(argv[8]), R = atoi(argv[9]);
    const int threads = argc > 10 ? atoi(argv[10]) : 1, infer = getenv("INFER") != NULL;
    if (B < 1 || T < 1 || I < 1 || O < 1 || R < 1) { fprintf(stderr, "sizes and steps must be positive\n"); return 2; }
    float *x = malloc(sizeof(float) * B * T * I), *y = malloc(sizeof(float) * B * T * O);
    int *xi = malloc(sizeof(int) * B * T), *yi = malloc(sizeof(int) * B * T);
    double *t[2] = {malloc(sizeof(double) * R), malloc(sizeof(double) * R)}, *ratio = malloc(sizeof(double) * R);
    if (!x || !y || !xi || !yi || !t[0] || !t[1] || !ratio) { fprintf(stderr, "out of memory\n"); return 1; }
    for (long i = 0; i < (long)B * T * I; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (long i = 0; i < (long)B * T * O; i++) y[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    for (long i = 0; i < (long)B * T; i++) { xi[i] = (int)((i * 7919) % 256); yi[i] = (int)((i * 104729) % 256); }
    const int ints = getenv("INTS") != NULL;
    const void *in[1] = {ints ? (const void *)xi : x}, *tg[1] = {ints ? (const void *)yi : y};
    const optimizer opt = {1, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0.0f, 5.0f};

    void *model[2];
    step_fn step[2];
    run_fn run[2];
    for (int k = 0; k < 2; k++) {
        char path[1024], sym[256];
        snprintf(path, sizeof path, "%s/lib%s.so", argv[1 + k], argv[3]);
        void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 1; }
        snprintf(sym, sizeof sym, "%s_create", argv[3]);
        create_fn create = (create_fn)dlsym(lib, sym);
        snprintf(sym, sizeof sym, "%s_train_step_v", argv[3]);
        step[k] = (step_fn)dlsym(lib, sym);
        snprintf(sym, sizeof sym, "%s_run_v", argv[3]);
        run[k] = (run_fn)dlsym(lib, sym);
        snprintf(sym, sizeof sym, "%s_set_threads", argv[3]);
        threads_fn set_threads = (threads_fn)dlsym(lib, sym);
        if (!create || !step[k] || !run[k] || !set_threads) { fprintf(stderr, "%s: missing symbols\n", path); return 1; }
        if (!(model[k] = create(argv[4]))) { fprintf(stderr, "%s: cannot load %s\n", path, argv[4]); return 1; }
        set_threads(model[k], threads);
    }
    /* Two warm-up rounds, then R timed ones; the order within a round alternates. */
    double loss = 0.0, last[2] = {0, 0};   /* inference runs leave loss alone */
    for (int i = -2; i < R; i++)
        for (int j = 0; j < 2; j++) {
            int k = (i & 1) ? 1 - j : j;
            double start = now();
            int rc = infer ? run[k](model[k], B, T, in, NULL) : step[k](model[k], B, T, in, tg, NULL, &opt, &loss);
            if (rc != 0) { fprintf(stderr, "build %c failed\n", 'A' + k); return 1; }
            last[k] = loss;
            if (i >= 0) t[k][i] = (now() - start) * 1e3;
        }
    int faster = 0;
    for (int i = 0; i < R; i++) {
        ratio[i] = t[1][i] / t[0][i];
        faster += t[1][i] < t[0][i];
    }
    qsort(ratio, R, sizeof(double), by_value);
    qsort(t[0], R, sizeof(double), by_value);
    qsort(t[1], R, sizeof(double), by_value);
    printf("A median %.3f ms min %.3f | B median %.3f ms min %.3f | B/A median ratio %.4f, B faster in %d of %d\n",
           t[0][R / 2], t[0][0], t[1][R / 2], t[1][0], ratio[R / 2], faster, R);
    /* Both builds took the same steps from the same weights: a change meant to keep the
     * arithmetic leaves the last losses equal to the bit. */
    if (!infer) printf("last losses: A %.17g, B %.17g (%s)\n", last[0], last[1], last[0] == last[1] ? "equal" : "differ");
    return 0;
}
