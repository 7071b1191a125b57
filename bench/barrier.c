/* barrier.c: what one barrier crossing costs a team, libomp's against rnnc_barrier.
 *
 * Each round crosses `#pragma omp barrier` 100,000 times in one parallel region, then
 * rnnc_barrier (rnnc_kernels.h) as many times, and prints ns per crossing for both.
 *
 *   clang -O2 -fopenmp -I Sources/CKernels/include bench/barrier.c -o barrier
 *   (with Debian's libomp, add -isystem for the folder of its omp.h and -L and -Wl,-rpath for
 *   the folder of its libomp.so: `dpkg -L libomp-14-dev` lists both)
 *   ./barrier [THREADS] [ROUNDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "rnnc_kernels.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2, rounds = argc > 2 ? atoi(argv[2]) : 10;
    const int crossings = 100000;
    if (threads < 1 || rounds < 1) { fprintf(stderr, "usage: %s [THREADS] [ROUNDS]\n", argv[0]); return 2; }
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        #pragma omp parallel num_threads(threads)
        {
            for (int i = 0; i < crossings; i++) {
                #pragma omp barrier
            }
        }
        double t1 = now();
        rnnc_team_barrier team = {0, 0};
        #pragma omp parallel num_threads(threads)
        {
            int sense = 0, nth = rnnc_thread_count();
            for (int i = 0; i < crossings; i++) rnnc_barrier(&team, nth, &sense);
        }
        double t2 = now();
        printf("%d threads: omp barrier %.0f ns, rnnc_barrier %.0f ns\n", threads, (t1 - t0) / crossings * 1e9,
               (t2 - t1) / crossings * 1e9);
    }
    return 0;
}
