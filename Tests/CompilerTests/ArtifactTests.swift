import Compiler
import Foundation
import Runtime
import XCTest

/// The compiled artifact itself: its C compiles without warnings, a plain C program can
/// use it through NAME.h, and a user's GRU cell computes what the built-in gru computes.
final class ArtifactTests: XCTestCase {
    func testGeneratedCIsCleanUnderWallWextra() throws {
        var models = ["char_lstm", "gate_gru", "jordan", "price_rnn", "sentiment_gru"].map { TestSupport.path("models/\($0).rnn") }
        let golden = TestSupport.path("Tests/Golden/models")
        models += try FileManager.default.contentsOfDirectory(atPath: golden).filter { $0.hasSuffix(".rnn") }.sorted().map { "\(golden)/\($0)" }
        for model in models {
            let c = try Compilation(path: model)
            let dir = TestSupport.temporaryDirectory("warn-\(c.libraryName)")
            let (source, header) = c.emitC()
            try source.write(toFile: "\(dir)/\(c.libraryName).c", atomically: true, encoding: .utf8)
            try header.write(toFile: "\(dir)/\(c.libraryName).h", atomically: true, encoding: .utf8)
            for h in ["rnnc_kernels.h", "rnnc_safetensors.h"] {
                try FileManager.default.copyItem(atPath: TestSupport.path("Sources/CKernels/include/\(h)"), toPath: "\(dir)/\(h)")
            }
            var strict = TestSupport.toolchain
            strict.flags = ["-O2", "-fopenmp", "-Wall", "-Wextra"]
            let diagnostics = strict.warnings(source: "\(dir)/\(c.libraryName).c", includeDirectory: dir)
            XCTAssertEqual(diagnostics, "", "\(model):\n\(diagnostics)")
        }
    }

    /// Steps of one product and one fused kernel that reads it in gate blocks (the four
    /// built-in cells and a user's GRU) ask for the gate-aligned split, which drops the
    /// barrier between the two; a cell whose gates come from two products does not.
    func testStepsOfOneProductSplitGateAligned() throws {
        func source(_ call: String, head: String = "") -> String {
            head + "model m {\n    input x: float[time, 8]\n    h = \(call)\n    output h\n}\n"
        }
        let gateGRU = try String(contentsOfFile: TestSupport.path("models/gate_gru.rnn"), encoding: .utf8)
        let cell = String(gateGRU[gateGRU.range(of: "cell gate_gru(")!.lowerBound...])
        let cellText = String(cell[..<cell.range(of: "\n}")!.upperBound]) + "\n\n"
        let aligned = [("lstm", source("lstm(x, hidden=32)"), 4), ("gru", source("gru(x, hidden=32)"), 3),
                       ("rnn", source("rnn(x, hidden=32)"), 1),
                       ("gate_gru", source("gate_gru(x, H=32)", head: cellText), 3)]
        for (name, text, gates) in aligned {
            let (c, _) = try Compilation(path: "\(name).rnn", text: text).emitC()
            XCTAssertTrue(c.contains("rnnc_gates_aligned(B, 32, \(gates), nth,"), name)
            XCTAssertTrue(c.contains("rnnc_gemm_gates_part(step, aligned ? \(gates) : 0, B,"), name)
            XCTAssertTrue(c.contains("if (aligned) rnnc_split_gate_cols(B, 32,"), name)
        }
        // Two products a step: the second reads the first's fused result, across threads.
        let twoProducts = """
        cell two(x: float[I], state h: float[H]) {
            param W: float[H, I]
            param U: float[H, H]
            param V: float[H, H]
            a = tanh(W @ x + U @ h)
            h = tanh(V @ a + h)
        }

        """
        let (c, _) = try Compilation(path: "two.rnn", text: source("two(x, H=32)", head: twoProducts)).emitC()
        XCTAssertFalse(c.contains("rnnc_gates_aligned"))
    }

    func testACProgramUsesTheGeneratedHeader() throws {
        // The golden jordan case: weights from the golden formula, PyTorch's output to match.
        let golden = try GoldenTests.loadCase("jordan")
        let dir = try TestSupport.compile(TestSupport.path("models/jordan.rnn"))
        let work = TestSupport.temporaryDirectory("capi")
        try GoldenTests.writeWeights(golden, to: "\(work)/w.safetensors")
        let x = try Npy.read(path: TestSupport.path("Tests/Golden/cases/jordan/in_x.npy"))
        let want = try Npy.read(path: TestSupport.path("Tests/Golden/cases/jordan/out_y.npy"))
        let (b, t) = (x.shape[0], x.shape[1])
        // The program reads raw floats from a file and prints every output value.
        let program = """
        #include <stdio.h>
        #include <stdlib.h>
        #include "jordan_net.h"

        int main(int argc, char **argv) {
            if (argc != 3) return 2;
            float x[\(b * t * 8)];
            FILE *f = fopen(argv[2], "rb");
            if (!f || fread(x, sizeof(float), \(b * t * 8), f) != \(b * t * 8)) return 3;
            fclose(f);
            jordan_net_model *m = jordan_net_create(argv[1]);
            if (!m) { fprintf(stderr, "%s\\n", jordan_net_last_error()); return 4; }
            jordan_net_set_threads(m, 2);
            if (jordan_net_run(m, \(b), \(t), x, NULL) != 0) { fprintf(stderr, "%s\\n", jordan_net_last_error()); return 5; }
            const float *y = jordan_net_output_y(m);
            for (int i = 0; i < \(b * t * 4); i++) printf("%.9g\\n", y[i]);
            /* Errors come back as values, never abort(): a bad batch size. */
            if (jordan_net_run(m, 0, \(t), x, NULL) == 0) return 6;
            fprintf(stderr, "%s\\n", jordan_net_last_error());
            jordan_net_destroy(m);
            if (jordan_net_create("/nonexistent.safetensors") != NULL) return 7;
            fprintf(stderr, "%s\\n", jordan_net_last_error());
            return 0;
        }
        """
        try program.write(toFile: "\(work)/main.c", atomically: true, encoding: .utf8)
        let raw = x.asFloats().withUnsafeBytes { Array($0) }
        try AtomicFile.write(raw, to: "\(work)/x.bin")
        let tc = TestSupport.toolchain
        let build = Toolchain.run(tc.compiler, tc.openmpFlags + ["-std=c11", "-Wall", "-Wextra", "-I", dir, "\(work)/main.c", "-o", "\(work)/main",
                                                                "-L", dir, "-ljordan_net", "-Wl,-rpath,\(dir)"])
        XCTAssertEqual(build.status, 0, build.output)
        let run = Toolchain.run("\(work)/main", ["\(work)/w.safetensors", "\(work)/x.bin"])
        XCTAssertEqual(run.status, 0, run.output)
        let numbers = run.output.split(separator: "\n").compactMap { Float($0) }
        XCTAssertEqual(numbers.count, b * t * 4, run.output)
        if numbers.count == b * t * 4 {
            XCTAssertLessThanOrEqual(TestSupport.maxAbsDifference(numbers, want.asFloats()), 1e-5)
        }
        XCTAssertTrue(run.output.contains("batch (0) and time"), run.output)
        XCTAssertTrue(run.output.contains("/nonexistent.safetensors"), run.output)
    }

    func testGateGRUEqualsTheBuiltInGRU() throws {
        let gateModel = TestSupport.path("models/gate_gru.rnn")
        let work = TestSupport.temporaryDirectory("gru-eq")
        let builtinModel = "\(work)/builtin.rnn"
        try """
        model gru_lm {
            input  chars: int[time]
            emb    = embedding(chars, vocab=256, dim=64)
            hidden = gru(emb, hidden=256)
            logits = dense(hidden, units=256)
            output probs = softmax(logits)
        }
        """.write(toFile: builtinModel, atomically: true, encoding: .utf8)
        // Built-in weights: PyTorch's packed layout, gates (r, z, n) stacked by rows.
        let H = 256, I = 64
        func t(_ name: String, _ shape: [Int]) -> Tensor { TestSupport.goldenTensor(name: name, shape: shape, scale: 0.1) }
        let wih = t("wih", [3 * H, I]), whh = t("whh", [3 * H, H]), bih = t("bih", [3 * H]), bhh = t("bhh", [3 * H])
        let shared: [(String, Tensor)] = [("emb.weight", t("emb", [256, 64])), ("logits.weight", t("lw", [256, 256])), ("logits.bias", t("lb", [256]))]
        let builtin = shared + [("hidden.weight_ih_l0", wih), ("hidden.weight_hh_l0", whh), ("hidden.bias_ih_l0", bih), ("hidden.bias_hh_l0", bhh)]
        func rows(_ w: Tensor, _ k: Int) -> Tensor {
            let cols = w.shape.count == 2 ? w.shape[1] : 1
            let n = w.shape[0] / 3
            return Tensor(shape: w.shape.count == 2 ? [n, cols] : [n], data: Array(w.data[(k * n * cols)..<((k + 1) * n * cols)]))
        }
        var gate = shared
        for (k, g) in ["r", "z", "n"].enumerated() {
            gate += [("hidden.W_i\(g)", rows(wih, k)), ("hidden.W_h\(g)", rows(whh, k)),
                     ("hidden.b_i\(g)", rows(bih, k)), ("hidden.b_h\(g)", rows(bhh, k))]
        }
        try Safetensors.write(builtin, metadata: [:], to: "\(work)/builtin.safetensors")
        try Safetensors.write(gate, metadata: [:], to: "\(work)/gate.safetensors")
        let a = try CompiledModel(directory: TestSupport.compile(builtinModel), weights: "\(work)/builtin.safetensors")
        let b = try CompiledModel(directory: TestSupport.compile(gateModel), weights: "\(work)/gate.safetensors")
        let (B, T) = (3, 9)
        let ids = (0..<(B * T)).map { Int32(($0 * 37 + 11) % 256) }
        let lengths: [Int32] = [9, 4, 1]
        let ya = try a.run(batch: B, time: T, inputs: [.ints(ids)], lengths: lengths)[0]
        let yb = try b.run(batch: B, time: T, inputs: [.ints(ids)], lengths: lengths)[0]
        XCTAssertEqual(ya.shape, [B, T, 256])
        XCTAssertLessThanOrEqual(TestSupport.maxAbsDifference(ya.values, yb.values), 1e-6)
    }
}
