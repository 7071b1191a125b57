import Compiler
import Foundation
import Runtime
import XCTest

/// Bugs found by trying unseen and hostile models; each stays fixed.
final class RegressionTests: XCTestCase {
    func compileAndLoad(_ text: String, weights: (ModelInterface) -> [(String, Tensor)]) throws -> CompiledModel {
        let dir = TestSupport.temporaryDirectory("reg")
        try text.write(toFile: "\(dir)/m.rnn", atomically: true, encoding: .utf8)
        let build = try TestSupport.compile("\(dir)/m.rnn")
        let interface = try ModelInterface.read(path: "\(build)/\(try FileManager.default.contentsOfDirectory(atPath: build).first { $0.hasSuffix(".json") }!)")
        try Safetensors.write(weights(interface), metadata: [:], to: "\(dir)/w.safetensors")
        return try CompiledModel(directory: build, weights: "\(dir)/w.safetensors")
    }

    func formulaWeights(_ i: ModelInterface) -> [(String, Tensor)] {
        i.parameters.map { ($0.name, TestSupport.goldenTensor(name: $0.name, shape: $0.shape, scale: 0.3)) }
    }

    /// A model-level constant equal to one inside the prelude's GRU (`1 - z`) must not be
    /// shared into the recurrence (it once reached the C as a weight that does not exist).
    func testModelConstantIsNotSharedIntoACell() throws {
        let with = try compileAndLoad("model m { input x: float[time, 3]\n output q = x - 1\n output y = gru(x, hidden=3) }\n", weights: formulaWeights)
        let without = try compileAndLoad("model m { input x: float[time, 3]\n output y = gru(x, hidden=3) }\n", weights: formulaWeights)
        let x: [Float] = (0..<24).map { i -> Float in Float(i % 7) / 7 - 0.5 }
        let a = try with.run(batch: 2, time: 4, inputs: [.floats(x)], lengths: nil)
        let b = try without.run(batch: 2, time: 4, inputs: [.floats(x)], lengths: nil)
        XCTAssertEqual(a[1].values, b[0].values)
        XCTAssertEqual(a[0].values, x.map { $0 - 1 })
    }

    /// softmax or concat of a value computed in place, inside a cell (once a crash).
    func testCallsOnComputedValuesInsideACell() throws {
        let m = try compileAndLoad("""
        cell c(x: float[I], state h: float[I]) {
          param W: float[I, I]
          h = softmax(h + x) + W @ concat(x, -h)[0]
        }
        model m { input x: float[time, 3]  y = c(x)  output y }
        """.replacingOccurrences(of: " + W @ concat(x, -h)[0]", with: ""), weights: formulaWeights)
        let out = try m.run(batch: 1, time: 2, inputs: [.floats([0, 1, 2, 3, 4, 5])], lengths: nil)[0].values
        // Step 1: softmax([0, 1, 2]); step 2: softmax(step1 + [3, 4, 5]).
        func softmax(_ v: [Float]) -> [Float] {
            let m = v.max()!
            let e: [Float] = v.map { Foundation.exp($0 - m) }
            let total = e.reduce(0, +)
            return e.map { $0 / total }
        }
        let s1 = softmax([0, 1, 2])
        let s2 = softmax([s1[0] + 3, s1[1] + 4, s1[2] + 5])
        XCTAssertLessThanOrEqual(TestSupport.maxAbsDifference(out, s1 + s2), 1e-6)
        XCTAssertNoThrow(try Compilation(path: "c.rnn", text: """
        cell c(x: float[I], state h: float[H]) {
          param W: float[H, 9]
          h = tanh(W @ concat(concat(x, h), -h))
        }
        model m { input x: float[time, 3]  y = c(x, H=3)  output y }
        """))
    }

    /// A step's concat and softmax run on the team's thread 0, then the team crosses the
    /// steps' barrier (rnnc_barrier, in place of `omp single`): at a size where the step
    /// runs on a team (16 x 64 x 96 multiply-adds), the outputs are the same bits on 1 to 4
    /// threads and match a plain loop over the equations.
    func testStepConcatAndSoftmaxOnATeam() throws {
        let m = try compileAndLoad("""
        cell mix(x: float[I], state h: float[H]) {
          param W: float[H, 96]
          h = softmax(tanh(W @ concat(x, h)))
        }
        model m { input x: float[time, 32]  y = mix(x, H=64)  output y }
        """, weights: formulaWeights)
        let (B, T, I, H) = (16, 5, 32, 64)
        let x: [Float] = (0..<(B * T * I)).map { i -> Float in Float((i * 37) % 101) / 50 - 1 }
        let W = TestSupport.goldenTensor(name: "y.W", shape: [H, I + H], scale: 0.3).data
        var want = [Float](repeating: 0, count: B * T * H)
        for b in 0..<B {
            var h = [Double](repeating: 0, count: H)
            for t in 0..<T {
                let xh = (0..<I).map { Double(x[(b * T + t) * I + $0]) } + h
                let z = (0..<H).map { n in Foundation.tanh((0..<(I + H)).reduce(0.0) { $0 + Double(W[n * (I + H) + $1]) * xh[$1] }) }
                let top = z.max()!, e = z.map { Foundation.exp($0 - top) }, total = e.reduce(0, +)
                h = e.map { $0 / total }
                for n in 0..<H { want[(b * T + t) * H + n] = Float(h[n]) }
            }
        }
        var first: [Float] = []
        for threads in 1...4 {
            m.setThreads(threads)
            let out = try m.run(batch: B, time: T, inputs: [.floats(x)], lengths: nil)[0].values
            if first.isEmpty {
                first = out
                XCTAssertLessThanOrEqual(TestSupport.maxAbsDifference(out, want), 1e-5)
            } else {
                XCTAssertEqual(out.map(\.bitPattern), first.map(\.bitPattern), "\(threads) threads differ from 1")
            }
        }
    }

    /// dense and softmax on values with more than one feature axis work row by row.
    func testDenseAndSoftmaxOnRankTwoValues() throws {
        let m = try compileAndLoad("model r2 {\n input v: float[2, 3]\n d = dense(v, units=4)\n output d\n output sm = softmax(v)\n}\n", weights: formulaWeights)
        let v: [Float] = (0..<18).map { i -> Float in Float(i) / 10 }
        let out = try m.run(batch: 3, time: 1, inputs: [.floats(v)], lengths: nil)
        let w = TestSupport.goldenTensor(name: "d.weight", shape: [4, 3], scale: 0.3).data
        let bias = TestSupport.goldenTensor(name: "d.bias", shape: [4], scale: 0.3).data
        var want: [Float] = []
        for row in 0..<6 {
            for n in 0..<4 {
                var acc = bias[n]
                for k in 0..<3 { acc += v[row * 3 + k] * w[n * 3 + k] }
                want.append(acc)
            }
        }
        XCTAssertEqual(out[0].shape, [3, 2, 4])
        XCTAssertLessThanOrEqual(TestSupport.maxAbsDifference(out[0].values, want), 1e-6)
        let first: [Float] = v[0..<3].map { Foundation.exp($0) }
        let last: [Float] = v[15..<18].map { Foundation.exp($0) }
        XCTAssertLessThanOrEqual(abs(out[1].values[0] - first[0] / first.reduce(0, +)), 1e-6)
        XCTAssertLessThanOrEqual(abs(out[1].values[17] - last[2] / last.reduce(0, +)), 1e-6)
    }

    func testHostileNestingIsAnErrorNotACrash() {
        for body in [String(repeating: "(", count: 5000) + "x" + String(repeating: ")", count: 5000),
                     Array(repeating: "x", count: 7000).joined(separator: " + "),
                     String(repeating: "-", count: 100_000) + "x"] {
            XCTAssertThrowsError(try Compilation(path: "m.rnn", text: "model m { input x: float[time, 3]\n output y = \(body) }\n")) {
                let text = "\($0)"
                XCTAssertTrue(text.contains("nested more than 200") || text.contains("more than 2000 terms"), String(text.prefix(200)))
            }
        }
    }

    func testAParameterTooLargeIsACompileError() {
        XCTAssertThrowsError(try Compilation(path: "m.rnn", text: "model m { input x: float[time, 3]\n h = lstm(x, hidden=100000000)\n output h }\n")) {
            XCTAssertTrue("\($0)".contains("m.rnn:2:6: error: parameter"), "\($0)")
        }
    }
}
