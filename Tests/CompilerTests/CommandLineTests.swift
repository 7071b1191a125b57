import Compiler
import Foundation
import Runtime
import XCTest

/// `rnnc compile / init / run` as a user runs them, including every bad-input class:
/// a clear message, a non-zero exit, and no output file left behind.
final class CommandLineTests: XCTestCase {
    /// A small model with an embedding (vocab 10), lengths and a dense layer.
    static let tokenModel = """
    model tok {
        input ids: int[time]
        e = embedding(ids, vocab=10, dim=4)
        h = gru(e, hidden=3)
        y = dense(last(h), units=2)
        output y
    }
    """

    var work = ""

    override func setUp() {
        work = TestSupport.temporaryDirectory("cli")
    }

    func write(_ name: String, _ text: String) -> String {
        let p = "\(work)/\(name)"
        try! text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    func writeNpy(_ name: String, _ a: NpyArray) -> String {
        let p = "\(work)/\(name)"
        try! Npy.write(a, to: p)
        return p
    }

    func initWeights(_ model: String, seed: Int = 1) -> String {
        let w = "\(work)/w\(seed).safetensors"
        let r = TestSupport.runCLI(["init", model, "--seed", "\(seed)", "-o", w])
        XCTAssertEqual(r.status, 0, r.err)
        return w
    }

    /// Asserts a failing run: exit status 1, the message fragments on stderr, no crash
    /// trace, and no file written into the output directory.
    func assertFails(_ args: [String], _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        let out = "\(work)/out-\(UUID().uuidString.prefix(6))"
        let r = TestSupport.runCLI(args + ["--out", out])
        XCTAssertEqual(r.status, 1, "exit status; stderr: \(r.err)", file: file, line: line)
        for f in fragments { XCTAssertTrue(r.err.contains(f), "expected '\(f)' in: \(r.err)", file: file, line: line) }
        XCTAssertFalse(r.err.contains("Fatal error") || r.err.contains("Stack dump"), r.err, file: file, line: line)
        let written = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
        XCTAssertEqual(written, [], "partial output", file: file, line: line)
    }

    func testCompileWritesTheArtifact() throws {
        let dir = "\(work)/jordan"
        let r = TestSupport.runCLI(["compile", TestSupport.path("models/jordan.rnn"), "-o", dir])
        XCTAssertEqual(r.status, 0, r.err)
        for f in ["jordan_net.c", "jordan_net.h", "jordan_net.json", "libjordan_net.so"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/\(f)"), f)
        }
        let c = try String(contentsOfFile: "\(dir)/jordan_net.c", encoding: .utf8)
        XCTAssertTrue(c.contains("line 10: h = tanh(W_x @ x + W_y @ y + b_h)"), "kernels name their .rnn line")
        XCTAssertTrue(c.contains("restrict"))
        XCTAssertTrue(c.contains("#pragma omp parallel num_threads(team)"), "time loops run on a team")
    }

    func testInitIsReproducibleForASeed() throws {
        let model = TestSupport.path("models/price_rnn.rnn")
        let a = initWeights(model, seed: 7)
        let b = "\(work)/again.safetensors"
        XCTAssertEqual(TestSupport.runCLI(["init", model, "--seed", "7", "-o", b]).status, 0)
        XCTAssertEqual(try FileBytes.read(a), try FileBytes.read(b))
        let other = initWeights(model, seed: 8)
        XCTAssertNotEqual(try FileBytes.read(a), try FileBytes.read(other))
        let w = try Safetensors.read(path: a)
        XCTAssertEqual(w.names, ["h1.weight_ih_l0", "h1.weight_hh_l0", "h1.bias_ih_l0", "h1.bias_hh_l0",
                                 "h2.weight_ih_l0", "h2.weight_hh_l0", "h2.bias_ih_l0", "h2.bias_hh_l0", "y.weight", "y.bias"])
        // nn.RNN's default: U(-1/sqrt(H), 1/sqrt(H)), H = 50.
        let bound = Float(1 / 50.0.squareRoot())
        XCTAssertTrue(w["h1.weight_hh_l0"]!.data.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(w["h1.weight_hh_l0"]!.data.map(abs).max()!, bound * 0.9)
    }

    func testRunMatchesTheGoldenOutputAndReusesTheCache() throws {
        let golden = try GoldenTests.loadCase("jordan")
        let weights = "\(work)/jordan.safetensors"
        try GoldenTests.writeWeights(golden, to: weights)
        let input = TestSupport.path("Tests/Golden/cases/jordan/in_x.npy")
        let model = TestSupport.path("models/jordan.rnn")
        for _ in 0..<2 {
            let r = TestSupport.runCLI(["run", model, "--weights", weights, "--input", "x=\(input)", "--out", work, "--threads", "2"])
            XCTAssertEqual(r.status, 0, r.err)
        }
        let got = try Npy.read(path: "\(work)/y.npy")
        let want = try Npy.read(path: TestSupport.path("Tests/Golden/cases/jordan/out_y.npy"))
        XCTAssertEqual(got.shape, want.shape)
        XCTAssertLessThanOrEqual(TestSupport.maxAbsDifference(got.asFloats(), want.asFloats()), 1e-5)
        let entries = try FileManager.default.contentsOfDirectory(atPath: TestSupport.cacheDirectory).filter { $0.hasPrefix("jordan_net-") }
        XCTAssertEqual(entries.count, 1, "the second run reuses the cached build")
    }

    func testBadModelFileIsReportedWithItsPlace() {
        let bad = write("bad.rnn", "model m {\n    input x: float[time, 3]\n    y = dense(x units=2)\n    output y\n}\n")
        assertFails(["run", bad, "--weights", "none.safetensors", "--input", "x=none.npy"],
                    ["bad.rnn:3:17: error: expected ')' to close the call to 'dense', found 'units'", "    y = dense(x units=2)"])
    }

    func testWeightFileWithMissingExtraOrMisShapedTensor() throws {
        let model = write("tok.rnn", Self.tokenModel)
        let good = try Safetensors.read(path: initWeights(model))
        let ids = writeNpy("ids.npy", NpyArray(shape: [2, 3], storage: .int64([1, 2, 3, 4, 5, 6])))

        var missing = good
        missing.tensors.removeAll { $0.name == "h.bias_hh_l0" }
        try Safetensors.write(missing.tensors.map { ($0.name, $0.tensor) }, metadata: [:], to: "\(work)/missing.safetensors")
        assertFails(["run", model, "--weights", "\(work)/missing.safetensors", "--input", "ids=\(ids)"],
                    ["missing tensor 'h.bias_hh_l0'", "[9]"])

        var extra = good
        extra.tensors.append((name: "h.weight_ih_l1", tensor: Tensor(zeros: [9, 3])))
        try Safetensors.write(extra.tensors.map { ($0.name, $0.tensor) }, metadata: [:], to: "\(work)/extra.safetensors")
        assertFails(["run", model, "--weights", "\(work)/extra.safetensors", "--input", "ids=\(ids)"],
                    ["unexpected tensor 'h.weight_ih_l1'"])

        var misShaped = good
        let i = misShaped.tensors.firstIndex { $0.name == "y.weight" }!
        misShaped.tensors[i].tensor = Tensor(zeros: [3, 2])
        try Safetensors.write(misShaped.tensors.map { ($0.name, $0.tensor) }, metadata: [:], to: "\(work)/shape.safetensors")
        assertFails(["run", model, "--weights", "\(work)/shape.safetensors", "--input", "ids=\(ids)"],
                    ["tensor 'y.weight' has shape [3, 2] but the model expects [2, 3]"])
    }

    func testTruncatedOrCorruptWeightFile() throws {
        let model = write("tok.rnn", Self.tokenModel)
        let bytes = try FileBytes.read(initWeights(model))
        let ids = writeNpy("ids.npy", NpyArray(shape: [1, 2], storage: .int64([1, 2])))
        try AtomicFile.write(Array(bytes.prefix(bytes.count - 10)), to: "\(work)/cut.safetensors")
        assertFails(["run", model, "--weights", "\(work)/cut.safetensors", "--input", "ids=\(ids)"], ["cut.safetensors", "truncated"])
        var corrupt = bytes
        corrupt[8] = UInt8(ascii: "x")
        try AtomicFile.write(corrupt, to: "\(work)/corrupt.safetensors")
        assertFails(["run", model, "--weights", "\(work)/corrupt.safetensors", "--input", "ids=\(ids)"], ["corrupt.safetensors", "JSON"])
        try AtomicFile.write([1, 2, 3], to: "\(work)/tiny.safetensors")
        assertFails(["run", model, "--weights", "\(work)/tiny.safetensors", "--input", "ids=\(ids)"], ["tiny.safetensors"])
    }

    func testArrayOfTheWrongShapeOrDtype() throws {
        let model = TestSupport.path("models/jordan.rnn")
        let weights = initWeights(model)
        let wrongShape = writeNpy("x5.npy", NpyArray(shape: [2, 3, 5], storage: .float32(Array(repeating: 0, count: 30))))
        assertFails(["run", model, "--weights", weights, "--input", "x=\(wrongShape)"],
                    ["input 'x'", "expected shape [B, T, 8], got [2, 3, 5]"])
        let wrongType = writeNpy("xi.npy", NpyArray(shape: [2, 3, 8], storage: .int32(Array(repeating: 0, count: 48))))
        assertFails(["run", model, "--weights", weights, "--input", "x=\(wrongType)"], ["input 'x'", "expected float32", "int32"])
        let ids = writeNpy("f.npy", NpyArray(shape: [2, 3], storage: .float32(Array(repeating: 0, count: 6))))
        let tok = write("tok.rnn", Self.tokenModel)
        assertFails(["run", tok, "--weights", initWeights(tok, seed: 2), "--input", "ids=\(ids)"],
                    ["input 'ids'", "expected integer token ids"])
        assertFails(["run", model, "--weights", weights], ["input 'x' is missing"])
    }

    func testTokenIdOutOfRangeNamesItsPosition() throws {
        let model = write("tok.rnn", Self.tokenModel)
        let weights = initWeights(model)
        let ids = writeNpy("ids.npy", NpyArray(shape: [2, 3], storage: .int64([1, 2, 3, 4, 12, 6])))
        assertFails(["run", model, "--weights", weights, "--input", "ids=\(ids)"],
                    ["input 'ids': token id 12 at [1, 1] is out of range [0, 10)"])
        let negative = writeNpy("neg.npy", NpyArray(shape: [1, 2], storage: .int32([0, -1])))
        assertFails(["run", model, "--weights", weights, "--input", "ids=\(negative)"], ["token id -1 at [0, 1]"])
    }

    func testLengthLargerThanT() throws {
        let model = write("tok.rnn", Self.tokenModel)
        let weights = initWeights(model)
        let ids = writeNpy("ids.npy", NpyArray(shape: [2, 3], storage: .int64([1, 2, 3, 4, 5, 6])))
        let lengths = writeNpy("len.npy", NpyArray(shape: [2], storage: .int64([3, 4])))
        assertFails(["run", model, "--weights", weights, "--input", "ids=\(ids)", "--lengths", lengths],
                    ["lengths[1] = 4 is larger than T = 3"])
        let wrong = writeNpy("len3.npy", NpyArray(shape: [3], storage: .int64([1, 1, 1])))
        assertFails(["run", model, "--weights", weights, "--input", "ids=\(ids)", "--lengths", wrong], ["expected shape [2]"])
    }

    func testOutputsAreAllOrNothing() throws {
        // The second output's place is taken by a directory: the first must not be written.
        let model = write("two.rnn", "model two { input x: float[time, 2]\n output a = x * 2\n output b = x + 1\n}\n")
        let x = writeNpy("x.npy", NpyArray(shape: [1, 2, 2], storage: .float32([1, 2, 3, 4])))
        let out = "\(work)/o"
        try FileManager.default.createDirectory(atPath: "\(out)/b.npy", withIntermediateDirectories: true)
        let w = "\(work)/empty.safetensors"
        try Safetensors.write([], metadata: [:], to: w)
        let r = TestSupport.runCLI(["run", model, "--weights", w, "--input", "x=\(x)", "--out", out])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("b.npy"), r.err)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out), ["b.npy"])
    }

    func testBenchPrintsOneJSONObjectPerMeasurement() throws {
        let model = write("b.rnn", """
        model b {
            input ids: int[time]
            target next: int[time]
            e = embedding(ids, vocab=10, dim=4)
            h = gru(e, hidden=5)
            y = dense(h, units=10)
            output y
            loss cross_entropy(y, next)
        }
        """)
        let r = TestSupport.runCLI(["bench", model, "--batch", "2", "--seq", "3", "--threads", "1", "--train", "--json", "--seconds", "0.01"])
        XCTAssertEqual(r.status, 0, r.err)
        let lines = r.out.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, r.out)
        for (line, mode) in zip(lines, ["infer", "train"]) {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            for key in ["model", "mode", "batch", "seq", "threads", "median_ms", "gflops", "peak_rss_mb"] {
                XCTAssertNotNil(object[key], "\(key) missing in \(line)")
            }
            XCTAssertEqual(object["mode"] as? String, mode)
            XCTAssertGreaterThan((object["gflops"] as? Double) ?? 0, 0)
        }
    }

    func testLengthsIgnorePaddingTokens() throws {
        // Ids past an example's length are ignored, even out-of-range ones.
        let model = write("tok.rnn", Self.tokenModel)
        let weights = initWeights(model)
        let ids = writeNpy("ids.npy", NpyArray(shape: [2, 3], storage: .int64([1, 2, 99, 4, 5, 6])))
        let lengths = writeNpy("len.npy", NpyArray(shape: [2], storage: .int64([2, 3])))
        let r = TestSupport.runCLI(["run", model, "--weights", weights, "--input", "ids=\(ids)", "--lengths", lengths, "--out", work])
        XCTAssertEqual(r.status, 0, r.err)
    }
}
