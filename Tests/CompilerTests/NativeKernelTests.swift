import Foundation
import XCTest

/// The kernels as model libraries build them: at the machine's -march (AVX-512 here, where
/// the tests of RuntimeTests see the portable build of CKernels). Each check is a plain
/// loop in C beside the kernel, built into a library and called.
final class NativeKernelTests: XCTestCase {
    /// Returns the failures the C checks report (an empty string when all hold).
    private func runChecks(_ body: String) throws -> String {
        // Any compiled model's directory holds the kernel headers.
        let build = try TestSupport.compile(modelText: """
        model native_probe {
            input  x: float[time, 4]
            h = rnn(x, hidden=4)
            output h
        }
        """, name: "native_probe")
        let dir = TestSupport.temporaryDirectory("native-kernels")
        let source = "\(dir)/checks.c"
        try ("#include <stdio.h>\n#include \"rnnc_kernels.h\"\n" + body).write(toFile: source, atomically: true, encoding: .utf8)
        try TestSupport.toolchain.buildSharedLibrary(source: source, output: "\(dir)/libchecks.so", includeDirectory: build)
        guard let handle = dlopen("\(dir)/libchecks.so", RTLD_NOW | RTLD_LOCAL) else { throw XCTSkip("dlopen failed") }
        defer { dlclose(handle) }
        typealias Check = @convention(c) (UnsafeMutablePointer<CChar>, Int32) -> Int32
        let check = unsafeBitCast(dlsym(handle, "run_checks"), to: Check.self)
        var report = [CChar](repeating: 0, count: 4096)
        _ = check(&report, Int32(report.count))
        return String(decoding: report.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Packing is a layout: packed[(p*K + k)*NR + i] = W[(p*NR + i)*K + k], zero past N,
    /// bit for bit, for shapes with and without whole 16 x 16 blocks (the AVX-512
    /// transpose) and partial panels.
    func testPackingLaysOutThePanelsForEveryShape() throws {
        let failures = try runChecks("""
        int run_checks(char *report, int size) {
            int shapes[][2] = {{1, 1}, {7, 13}, {16, 16}, {33, 17}, {48, 32}, {64, 1024}, {100, 250}, {1024, 256}, {20, 1040}};
            int at = 0;
            report[0] = 0;
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                int N = shapes[s][0], K = shapes[s][1];
                float *W = rnnc_alloc_floats((size_t)N * K), *packed = rnnc_alloc_floats(rnnc_packed_size(N, K));
                for (int i = 0; i < N * K; i++) W[i] = (float)(i % 1009) - 500.0f;
                rnnc_pack_weights(W, N, K, packed);
                int bad = 0, panels = (N + RNNC_NR - 1) / RNNC_NR;
                for (int p = 0; p < panels; p++)
                    for (int k = 0; k < K; k++)
                        for (int i = 0; i < RNNC_NR; i++) {
                            int n = p * RNNC_NR + i;
                            float want = n < N ? W[(size_t)n * K + k] : 0.0f;
                            bad += packed[((size_t)p * K + k) * RNNC_NR + i] != want;
                        }
                if (bad && at < size - 64) at += snprintf(report + at, size - at, "%dx%d: %d wrong; ", N, K, bad);
                free(W);
                free(packed);
            }
            return at;
        }
        """)
        XCTAssertEqual(failures, "")
    }

    /// Products that sum into C (weight and input gradients) load and store a panel's
    /// partial columns with masked moves: the columns past N stay untouched, the others get
    /// C + A W^T, for widths that leave 0 to 47 columns in the last panel.
    func testSummingProductsTouchOnlyTheirColumns() throws {
        let failures = try runChecks("""
        int run_checks(char *report, int size) {
            int at = 0;
            report[0] = 0;
            for (int N = 1; N <= 100; N += 3) {
                for (int M = 1; M <= 17; M += 4) {
                    int K = 9, ldc = N + 5;
                    float *A = rnnc_alloc_floats((size_t)M * K), *W = rnnc_alloc_floats((size_t)N * K);
                    float *packed = rnnc_alloc_floats(rnnc_packed_size(N, K)), *C = rnnc_alloc_floats((size_t)M * ldc);
                    for (int i = 0; i < M * K; i++) A[i] = (float)(i % 7) - 3.0f;
                    for (int i = 0; i < N * K; i++) W[i] = (float)(i % 5) - 2.0f;
                    for (int i = 0; i < M * ldc; i++) C[i] = (float)(i % 11);
                    rnnc_pack_weights(W, N, K, packed);
                    rnnc_gemm_ex(M, N, K, A, K, packed, NULL, C, ldc, 1, 1);
                    int bad = 0;
                    for (int m = 0; m < M; m++)
                        for (int j = 0; j < ldc; j++) {
                            double want = (double)(((size_t)m * ldc + j) % 11);
                            if (j < N) for (int k = 0; k < K; k++) want += (double)A[m * K + k] * W[j * K + k];
                            bad += C[(size_t)m * ldc + j] != (float)want;
                        }
                    if (bad && at < size - 64) at += snprintf(report + at, size - at, "M=%d N=%d: %d wrong; ", M, N, bad);
                    free(A);
                    free(W);
                    free(packed);
                    free(C);
                }
            }
            return at;
        }
        """)
        XCTAssertEqual(failures, "")
    }

    /// A recurrent step's product reads a thread's panels last to first on odd steps (so
    /// the panels read last are still in cache): every output is the same bits as the
    /// product in order, for each thread's share at 1 to 5 threads, batch 1 to 9, and
    /// widths with a partial last panel.
    func testAStepsProductIsTheSameBitsInEitherOrder() throws {
        let failures = try runChecks("""
        int run_checks(char *report, int size) {
            int at = 0;
            report[0] = 0;
            int widths[] = {16, 100, 1024}, Ks[] = {7, 256};
            for (int w = 0; w < 3; w++)
                for (int kk = 0; kk < 2; kk++)
                    for (int M = 1; M <= 9; M += 4)
                        for (int nth = 1; nth <= 5; nth++) {
                            int N = widths[w], K = Ks[kk];
                            float *A = rnnc_alloc_floats((size_t)M * K), *W = rnnc_alloc_floats((size_t)N * K);
                            float *packed = rnnc_alloc_floats(rnnc_packed_size(N, K));
                            float *even = rnnc_alloc_floats((size_t)M * N), *odd = rnnc_alloc_floats((size_t)M * N);
                            for (int i = 0; i < M * K; i++) A[i] = (float)(i % 13) * 0.37f - 2.0f;
                            for (int i = 0; i < N * K; i++) W[i] = (float)(i % 17) * 0.11f - 0.9f;
                            rnnc_pack_weights(W, N, K, packed);
                            for (int tid = 0; tid < nth; tid++) {
                                rnnc_gemm_part(M, N, K, A, K, packed, NULL, even, N, 0, tid, nth);
                                rnnc_gemm_step_part(1, M, N, K, A, K, packed, NULL, odd, N, 0, tid, nth);
                            }
                            int bad = memcmp(even, odd, sizeof(float) * (size_t)M * N) != 0;
                            if (bad && at < size - 64) at += snprintf(report + at, size - at, "M=%d N=%d K=%d nth=%d differ; ", M, N, K, nth);
                            free(A);
                            free(W);
                            free(packed);
                            free(even);
                            free(odd);
                        }
            return at;
        }
        """)
        XCTAssertEqual(failures, "")
    }

    /// A gate-aligned step product (rnnc_gemm_gates_part: each thread the same panels of
    /// every gate block, hidden block by hidden block, backwards on odd steps) computes
    /// every column, and the same bits as the plain product, for 1 to 5 threads (balanced
    /// or not), 1 to 4 blocks, 1 to 17 rows and both orders, with blocks of whole panels and,
    /// at batch 1, blocks of whole vectors that are not whole panels (runs of vectors that
    /// cross panels). The fused kernel's columns (rnnc_split_gate_cols) are those of the
    /// thread's panels (or vectors) in every block.
    func testGateAlignedStepsAreTheSameBitsAsPlainOnes() throws {
        let failures = try runChecks("""
        int run_checks(char *report, int size) {
            int at = 0;
            report[0] = 0;
            /* block widths in vectors: whole panels, and (batch 1 only) vectors that are not */
            int blocks[] = {1, 3, 4}, widths[] = {2 * RNNC_NV, 5 * RNNC_NV, 5 * RNNC_NV + 1, 2 * RNNC_NV + 2};
            int Ks[] = {7, 256}, Ms[] = {1, 6, 17};
            for (int g = 0; g < 3; g++) for (int w = 0; w < 4; w++) for (int kk = 0; kk < 2; kk++)
            for (int mm = 0; mm < 3; mm++) for (int nth = 1; nth <= 5; nth++) for (int step = 0; step < 2; step++) {
                int gates = blocks[g], W = widths[w] * RNNC_VEC, N = gates * W, K = Ks[kk], M = Ms[mm];
                if (rnnc_gate_unit(M, W) == 0) continue;
                float *A = rnnc_alloc_floats((size_t)M * K), *Wt = rnnc_alloc_floats((size_t)N * K);
                float *packed = rnnc_alloc_floats(rnnc_packed_size(N, K)), *bias = rnnc_alloc_floats(N);
                float *plain = rnnc_alloc_floats((size_t)M * N), *aligned = rnnc_alloc_floats((size_t)M * N);
                for (int i = 0; i < M * K; i++) A[i] = (float)(i % 13) * 0.37f - 2.0f;
                for (int i = 0; i < N * K; i++) Wt[i] = (float)(i % 17) * 0.11f - 0.9f;
                for (int i = 0; i < N; i++) bias[i] = (float)(i % 5) * 0.3f - 0.5f;
                for (int i = 0; i < M * N; i++) aligned[i] = -12345.0f;
                rnnc_pack_weights(Wt, N, K, packed);
                rnnc_gemm_ex(M, N, K, A, K, packed, bias, plain, N, 0, 1);
                int cols = 0;
                for (int tid = 0; tid < nth; tid++) {
                    rnnc_gemm_gates_part(step, gates, M, N, K, A, K, packed, bias, aligned, N, 0, tid, nth);
                    int b0, b1, j0, j1;
                    rnnc_split_gate_cols(M, W, tid, nth, &b0, &b1, &j0, &j1);
                    if ((b0 != 0 || b1 != M || j0 != cols) && at < size - 64) at += snprintf(report + at, size - at, "split W=%d nth=%d tid=%d; ", W, nth, tid);
                    cols = j1;
                }
                if (cols != W && at < size - 64) at += snprintf(report + at, size - at, "columns W=%d nth=%d; ", W, nth);
                if (memcmp(plain, aligned, sizeof(float) * (size_t)M * N) != 0 && at < size - 64)
                    at += snprintf(report + at, size - at, "gates=%d W=%d K=%d M=%d nth=%d step=%d differ; ", gates, W, K, M, nth, step);
                free(A); free(Wt); free(packed); free(bias); free(plain); free(aligned);
                if (at >= size - 64) return at;
            }
            return at;
        }
        """)
        XCTAssertEqual(failures, "")
    }

    /// At batch 1 a recurrence computes its input projection a block of steps ahead,
    /// interleaved with each step's product (rnnc_gemv_ahead_part): the projection's rows
    /// and every step's product are the same bits as the projection over all steps before
    /// the loop and rnnc_gemm_step_part, for 1 to 3 threads, whole panels and gate-aligned
    /// blocks (of panels, or of vectors that are not whole panels), partial panels, input widths below the block's 8 rows (slices with no
    /// columns) and sequences that leave rows past the last whole block.
    func testProjectionsAheadAreTheSameBitsAsHoisted() throws {
        let failures = try runChecks("""
        int run_checks(char *report, int size) {
            int at = 0;
            report[0] = 0;
            int shapes[][4] = {{16, 7, 3, 16}, {100, 9, 13, 37}, {150, 50, 13, 24}, {160, 40, 50, 37}, {1024, 256, 256, 20}, {320, 11, 5, 30}};
            for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
                for (int nth = 1; nth <= 3; nth++)
                for (int gates = 0; gates <= 4; gates += 4) {
                    int N = shapes[c][0], K = shapes[c][1], KP = shapes[c][2], T = shapes[c][3];
                    if (gates && (N % gates != 0 || rnnc_gate_unit(1, N / gates) == 0)) continue;
                    float *W = rnnc_alloc_floats((size_t)N * K), *U = rnnc_alloc_floats((size_t)N * KP);
                    float *pk = rnnc_alloc_floats(rnnc_packed_size(N, K)), *pkU = rnnc_alloc_floats(rnnc_packed_size(N, KP));
                    float *X = rnnc_alloc_floats((size_t)T * KP), *bias = rnnc_alloc_floats(N), *h = rnnc_alloc_floats(K);
                    float *P1 = rnnc_alloc_floats((size_t)T * N), *P2 = rnnc_alloc_floats((size_t)T * N);
                    float *c1 = rnnc_alloc_floats((size_t)T * N), *c2 = rnnc_alloc_floats((size_t)T * N);
                    for (int i = 0; i < N * K; i++) W[i] = (float)(i % 17) * 0.11f - 0.9f;
                    for (int i = 0; i < N * KP; i++) U[i] = (float)(i % 19) * 0.07f - 0.6f;
                    for (int i = 0; i < T * KP; i++) X[i] = (float)(i % 13) * 0.37f - 2.0f;
                    for (int i = 0; i < N; i++) bias[i] = (float)(i % 5) * 0.3f - 0.5f;
                    for (int i = 0; i < K; i++) h[i] = (float)(i % 7) * 0.21f - 0.6f;
                    rnnc_pack_weights(W, N, K, pk);
                    rnnc_pack_weights(U, N, KP, pkU);
                    rnnc_gemm(T, N, KP, X, KP, pkU, bias, P1, N, 1);
                    for (int t = 0; t < T; t++)
                        for (int tid = 0; tid < nth; tid++)
                            rnnc_gemm_step_part(t, 1, N, K, h, K, pk, NULL, c1 + (size_t)t * N, N, 0, tid, nth);
                    rnnc_project_ahead_start(T, N, KP, X, pkU, bias, P2, nth);
                    for (int t = 0; t < T; t++) {
                        size_t next = (size_t)(t / RNNC_AHEAD_ROWS + 1) * RNNC_AHEAD_ROWS;
                        for (int tid = 0; tid < nth; tid++) {
                            if (t / RNNC_AHEAD_ROWS + 1 < T / RNNC_AHEAD_ROWS)
                                rnnc_gemv_ahead_part(t, gates, N, K, h, pk, c2 + (size_t)t * N, KP, X + next * KP, pkU, bias, P2 + next * N, tid, nth);
                            else
                                rnnc_gemm_step_part(t, 1, N, K, h, K, pk, NULL, c2 + (size_t)t * N, N, 0, tid, nth);
                        }
                    }
                    int bad = memcmp(P1, P2, sizeof(float) * (size_t)T * N) != 0 || memcmp(c1, c2, sizeof(float) * (size_t)T * N) != 0;
                    if (bad && at < size - 64) at += snprintf(report + at, size - at, "N=%d K=%d KP=%d T=%d nth=%d gates=%d differ; ", N, K, KP, T, nth, gates);
                    free(W); free(U); free(pk); free(pkU); free(X); free(bias); free(h); free(P1); free(P2); free(c1); free(c2);
                }
            return at;
        }
        """)
        XCTAssertEqual(failures, "")
    }

    /// A weight gradient's threads split the row tiles of dW (a dW of one 8-tile block
    /// used to leave all threads but one idle): dW is the same bits for 1 to 5 threads, and
    /// equal to a plain sum of products, for heights of dW from 1 to 3 blocks.
    func testWeightGradientsAreTheSameBitsForAnySplit() throws {
        let failures = try runChecks("""
        int run_checks(char *report, int size) {
            int at = 0;
            report[0] = 0;
            int Ns[] = {5, 64, 100, 192}, M = 300, K = 37;
            for (int s = 0; s < 4; s++) {
                int N = Ns[s];
                float *dY = rnnc_alloc_floats((size_t)M * N), *X = rnnc_alloc_floats((size_t)M * K);
                float *xt = rnnc_alloc_floats(rnnc_packed_rows_size(M, K));
                float *one = rnnc_alloc_floats((size_t)N * K), *many = rnnc_alloc_floats((size_t)N * K);
                for (int i = 0; i < M * N; i++) dY[i] = (float)(i % 7) - 3.0f;
                for (int i = 0; i < M * K; i++) X[i] = (float)(i % 5) - 2.0f;
                rnnc_pack_rows_part(M, K, X, K, 0, 0, xt, 0, 1);
                memset(one, 0, sizeof(float) * (size_t)N * K);
                rnnc_weight_gradient_part(M, N, K, dY, N, xt, one, 0, 1);
                int wrong = 0;
                for (int n = 0; n < N; n++)
                    for (int k = 0; k < K; k++) {
                        double want = 0.0;
                        for (int m = 0; m < M; m++) want += (double)dY[(size_t)m * N + n] * X[(size_t)m * K + k];
                        wrong += one[(size_t)n * K + k] != (float)want;
                    }
                if (wrong && at < size - 64) at += snprintf(report + at, size - at, "N=%d: %d wrong; ", N, wrong);
                for (int nth = 2; nth <= 5; nth++) {
                    memset(many, 0, sizeof(float) * (size_t)N * K);
                    for (int tid = 0; tid < nth; tid++) rnnc_weight_gradient_part(M, N, K, dY, N, xt, many, tid, nth);
                    if (memcmp(one, many, sizeof(float) * (size_t)N * K) && at < size - 64)
                        at += snprintf(report + at, size - at, "N=%d nth=%d differs; ", N, nth);
                }
                free(dY);
                free(X);
                free(xt);
                free(one);
                free(many);
            }
            return at;
        }
        """)
        XCTAssertEqual(failures, "")
    }

    /// Softmax and the cross-entropy loss read their rows by vector lanes (the maximum and
    /// the sums): against double-precision loops, for widths with and without a partial
    /// last vector, with a large logit in each row; softmax in place gives the bits of
    /// softmax into another buffer; the loss's gradient is softmax minus the one-hot label,
    /// over the row count (within 1e-5 of |g| + 0.01).
    func testSoftmaxAndCrossEntropyMatchDoublePrecisionLoops() throws {
        let failures = try runChecks("""
        #include <math.h>
        int run_checks(char *report, int size) {
            int at = 0;
            report[0] = 0;
            int widths[] = {1, 3, 15, 16, 17, 33, 100, 1000, 10000};
            for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
                int n = widths[w], rows = 5;
                float *x = rnnc_alloc_floats((size_t)rows * n), *y = rnnc_alloc_floats((size_t)rows * n);
                float *dz = rnnc_alloc_floats((size_t)rows * n);
                int32_t labels[5];
                for (int i = 0; i < rows * n; i++) x[i] = (float)sin(i * 1.7) * 8.0f + (i % 13 == 5 ? 30.0f : 0.0f);
                for (int r = 0; r < rows; r++) labels[r] = (r * 7919) % n;
                rnnc_softmax_rows(rows, n, x, n, y, n, 1);
                double loss = rnnc_cross_entropy_loss(rows, n, x, labels, NULL, dz), want_loss = 0.0;
                double worst = 0.0, worst_dz = 0.0;
                for (int r = 0; r < rows; r++) {
                    const float *xr = x + (size_t)r * n;
                    double m = xr[0], s = 0.0;
                    for (int j = 1; j < n; j++) m = xr[j] > m ? xr[j] : m;
                    for (int j = 0; j < n; j++) s += exp((double)xr[j] - m);
                    want_loss += (log(s) + m - xr[labels[r]]) / rows;
                    for (int j = 0; j < n; j++) {
                        double p = exp((double)xr[j] - m) / s;
                        double g = (p - (j == labels[r] ? 1.0 : 0.0)) / rows;
                        double e = fabs(y[(size_t)r * n + j] - p) / (p > 1e-30 ? p : 1e-30);
                        if (p > 1e-30 && e > worst) worst = e;
                        /* near the label p is close to 1, and p - 1 cancels: float's p is good
                         * to 6e-8, hence the absolute term (allclose's atol) */
                        double eg = fabs(dz[(size_t)r * n + j] - g) / (fabs(g) + 1e-2);
                        if (eg > worst_dz) worst_dz = eg;
                    }
                }
                if (worst > 1e-5 && at < size - 64) at += snprintf(report + at, size - at, "softmax n=%d: %.3g; ", n, worst);
                if (worst_dz > 1e-5 && at < size - 64) at += snprintf(report + at, size - at, "dz n=%d: %.3g; ", n, worst_dz);
                if (fabs(loss - want_loss) > 1e-6 * fabs(want_loss) && at < size - 64)
                    at += snprintf(report + at, size - at, "loss n=%d: %.9g vs %.9g; ", n, loss, want_loss);
                rnnc_softmax_rows(rows, n, x, n, x, n, 1);
                if (memcmp(x, y, sizeof(float) * (size_t)rows * n) != 0 && at < size - 64)
                    at += snprintf(report + at, size - at, "in place n=%d differs; ", n);
                free(x);
                free(y);
                free(dz);
            }
            return at;
        }
        """)
        XCTAssertEqual(failures, "")
    }

    /// The dense layer with its softmax fused row tile by row tile (rnnc_dense_softmax) gives
    /// the logits and the probabilities of rnnc_gemm then rnnc_softmax_rows, to the bit: at
    /// products whose threads split panels (M <= 128) and rows, with partial row tiles and
    /// panels, on 1 and 2 threads (the fused part called for each thread in turn).
    func testDenseSoftmaxGivesTheBitsOfTheProductThenTheSoftmax() throws {
        let failures = try runChecks("""
        int run_checks(char *report, int size) {
            int at = 0;
            report[0] = 0;
            int Ms[] = {5, 129, 403}, Ns[] = {10, 100, 1001}, Ks[] = {7, 64};
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    for (int c = 0; c < 2; c++) {
                        int M = Ms[a], N = Ns[b], K = Ks[c];
                        float *A = rnnc_alloc_floats((size_t)M * K), *W = rnnc_alloc_floats((size_t)N * K);
                        float *bias = rnnc_alloc_floats(N), *packed = rnnc_alloc_floats(rnnc_packed_size(N, K));
                        float *Z0 = rnnc_alloc_floats((size_t)M * N), *Y0 = rnnc_alloc_floats((size_t)M * N);
                        float *Z1 = rnnc_alloc_floats((size_t)M * N), *Y1 = rnnc_alloc_floats((size_t)M * N);
                        for (int i = 0; i < M * K; i++) A[i] = (float)(i % 13) * 0.37f - 2.0f;
                        for (int i = 0; i < N * K; i++) W[i] = (float)(i % 17) * 0.11f - 0.9f;
                        for (int i = 0; i < N; i++) bias[i] = (float)(i % 5) * 0.3f;
                        rnnc_pack_weights(W, N, K, packed);
                        rnnc_gemm(M, N, K, A, K, packed, bias, Z0, N, 1);
                        rnnc_softmax_rows(M, N, Z0, N, Y0, N, 1);
                        for (int nth = 1; nth <= 2; nth++) {
                            memset(Z1, 0, sizeof(float) * (size_t)M * N);
                            memset(Y1, 0, sizeof(float) * (size_t)M * N);
                            if (M <= 128) rnnc_dense_softmax(M, N, K, A, K, packed, bias, Z1, Y1, nth);
                            else for (int tid = 0; tid < nth; tid++) rnnc_dense_softmax_part(M, N, K, A, K, packed, bias, Z1, Y1, tid, nth);
                            if ((memcmp(Z0, Z1, sizeof(float) * (size_t)M * N) || memcmp(Y0, Y1, sizeof(float) * (size_t)M * N)) && at < size - 64)
                                at += snprintf(report + at, size - at, "M=%d N=%d K=%d nth=%d differ; ", M, N, K, nth);
                        }
                        free(A); free(W); free(bias); free(packed); free(Z0); free(Y0); free(Z1); free(Y1);
                    }
            return at;
        }
        """)
        XCTAssertEqual(failures, "")
    }
}
