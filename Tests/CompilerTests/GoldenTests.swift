import Compiler
import Foundation
import Runtime
import XCTest

/// Every case under Tests/Golden/cases, made by Tests/Golden/make_golden.py from PyTorch,
/// must be reproduced by rnnc within 1e-5 (max absolute error) on every output.
final class GoldenTests: XCTestCase {
    static let tolerance: Float = 1e-5

    struct GoldenCase {
        var name: String
        var model: String
        var inputs: [String]
        var outputs: [String]
        var lengths: Bool
        var tensors: [(name: String, shape: [Int], scale: Double)]
    }

    static func loadCase(_ name: String) throws -> GoldenCase {
        let dir = TestSupport.path("Tests/Golden/cases/\(name)")
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/case.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let tensors = (json["tensors"] as! [[String: Any]]).map {
            ($0["name"] as! String, ($0["shape"] as! [NSNumber]).map(\.intValue), ($0["scale"] as! NSNumber).doubleValue)
        }
        return GoldenCase(name: name, model: json["model"] as! String, inputs: json["inputs"] as! [String],
                          outputs: json["outputs"] as! [String], lengths: json["lengths"] as! Bool, tensors: tensors)
    }

    static func writeWeights(_ c: GoldenCase, to path: String) throws {
        let tensors = c.tensors.map { ($0.name, TestSupport.goldenTensor(name: $0.name, shape: $0.shape, scale: $0.scale)) }
        try Safetensors.write(tensors, metadata: [:], to: path)
    }

    struct Outcome {
        var failures: [String] = []
        var batch = 0
        var outputs: [[Float]] = []   // of the last thread count
    }

    /// Runs one case through the compiled library (built with `extraFlags` added); returns
    /// failures as text.
    static func check(_ name: String, extraFlags: [String] = []) throws -> [String] {
        try run(name, extraFlags: extraFlags).failures
    }

    static func run(_ name: String, extraFlags: [String] = []) throws -> Outcome {
        let c = try loadCase(name)
        let dir = TestSupport.path("Tests/Golden/cases/\(name)")
        let build = try TestSupport.compile(TestSupport.path(c.model), extraFlags: extraFlags)
        let weights = TestSupport.temporaryDirectory("w-\(name)") + "/weights.safetensors"
        try writeWeights(c, to: weights)
        let model = try CompiledModel(directory: build, weights: weights)
        var arrays: [String: (file: String, array: NpyArray)] = [:]
        for input in c.inputs { arrays[input] = ("in_\(input).npy", try Npy.read(path: "\(dir)/in_\(input).npy")) }
        let lengths = c.lengths ? ("lengths.npy", try Npy.read(path: "\(dir)/lengths.npy")) : nil
        let binding = try InputBinding(interface: model.interface, arrays: arrays, lengths: lengths)
        var failures: [String] = []
        var outcome = Outcome(batch: binding.batch)
        var compared = Set<String>()
        // 4 threads: more than the examples of most cases, so teams split columns too.
        for threads in [1, 2, 4] {
            model.setThreads(threads)
            let results = try model.run(batch: binding.batch, time: binding.time, inputs: binding.buffers, lengths: binding.lengths)
            outcome.outputs = results.map(\.values)
            for (port, result) in zip(model.interface.outputs, results) {
                guard c.outputs.contains(port.name) else { continue }
                let expected = try Npy.read(path: "\(dir)/out_\(port.name).npy")
                guard expected.shape == result.shape else {
                    failures.append("\(name).\(port.name): shape \(result.shape), PyTorch \(expected.shape)")
                    continue
                }
                let err = TestSupport.maxAbsDifference(result.values, expected.asFloats())
                compared.insert(port.name)
                if ProcessInfo.processInfo.environment["RNNC_GOLDEN_VERBOSE"] != nil {
                    print("golden \(name).\(port.name) threads=\(threads): max abs error \(err)")
                }
                if !(err <= tolerance) {
                    failures.append("\(name).\(port.name) (\(threads) threads): max abs error \(err) > \(tolerance)")
                }
            }
        }
        for missing in Set(c.outputs).subtracting(compared) {
            failures.append("\(name).\(missing): the model has no such output")
        }
        outcome.failures = failures
        return outcome
    }

    /// A thread's share of every kernel depends only on the sizes, and every element is
    /// computed by the same code whichever thread owns it, so the outputs are the same to
    /// the bit for any thread count (issue 4: results identical run to run).
    func testOutputsAreBitwiseEqualForAnyThreadCount() throws {
        // lstm_team_rows: 4 and 5 threads split its products by (panel, row tile) pairs.
        // batch1_ahead: 1 and 2 threads compute its projections a block of steps ahead, 3
        // to 5 before the time loop.
        for name in ["lstm_team_lengths", "gru_team_batch1", "lstm_team_rows", "batch1_ahead"] {
            let c = try Self.loadCase(name)
            let dir = TestSupport.path("Tests/Golden/cases/\(name)")
            let build = try TestSupport.compile(TestSupport.path(c.model))
            let weights = TestSupport.temporaryDirectory("wt-\(name)") + "/weights.safetensors"
            try Self.writeWeights(c, to: weights)
            let model = try CompiledModel(directory: build, weights: weights)
            let x = try Npy.read(path: "\(dir)/in_x.npy")
            let lengths = c.lengths ? ("lengths.npy", try Npy.read(path: "\(dir)/lengths.npy")) : nil
            let binding = try InputBinding(interface: model.interface, arrays: ["x": ("in_x.npy", x)], lengths: lengths)
            var reference: [[Float]] = []
            for threads in 1...5 {
                model.setThreads(threads)
                for _ in 0..<2 {
                    let outs = try model.run(batch: binding.batch, time: binding.time, inputs: binding.buffers,
                                             lengths: binding.lengths).map(\.values)
                    if reference.isEmpty { reference = outs; continue }
                    for (k, (a, b)) in zip(reference, outs).enumerated() {
                        XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(name) output \(k): \(threads) threads differ from 1")
                    }
                }
            }
        }
    }

    /// `rnnc compile --unroll 3` writes each time loop with three copies of the step (and
    /// T = 6 or 7 leaves a remainder); the outputs must be the same to the bit, and the C
    /// clean under -Wall -Wextra.
    func testUnrolledTimeLoopsGiveTheSameOutputs() throws {
        for name in ["lstm_team_lengths", "cell_lengths", "gru_bi_lengths"] {
            let c = try Self.loadCase(name)
            let dir = TestSupport.path("Tests/Golden/cases/\(name)")
            var unrolled = try Compilation(path: TestSupport.path(c.model))
            unrolled.unroll = 3
            let build = TestSupport.temporaryDirectory("unroll-\(name)")
            try unrolled.build(into: build, toolchain: TestSupport.toolchain)
            var strict = TestSupport.toolchain
            strict.flags = ["-O2", "-fopenmp", "-Wall", "-Wextra"]
            XCTAssertEqual(strict.warnings(source: "\(build)/\(unrolled.libraryName).c", includeDirectory: build), "")
            let weights = TestSupport.temporaryDirectory("wu-\(name)") + "/weights.safetensors"
            try Self.writeWeights(c, to: weights)
            let plain = try CompiledModel(directory: try TestSupport.compile(TestSupport.path(c.model)), weights: weights)
            let model = try CompiledModel(directory: build, weights: weights)
            let x = try Npy.read(path: "\(dir)/in_x.npy")
            let lengths = c.lengths ? ("lengths.npy", try Npy.read(path: "\(dir)/lengths.npy")) : nil
            let binding = try InputBinding(interface: model.interface, arrays: ["x": ("in_x.npy", x)], lengths: lengths)
            for threads in [1, 2] {
                plain.setThreads(threads)
                model.setThreads(threads)
                let a = try plain.run(batch: binding.batch, time: binding.time, inputs: binding.buffers, lengths: binding.lengths)
                let b = try model.run(batch: binding.batch, time: binding.time, inputs: binding.buffers, lengths: binding.lengths)
                for (p, q) in zip(a, b) { XCTAssertEqual(p.values.map(\.bitPattern), q.values.map(\.bitPattern), name) }
            }
        }
    }

    /// From a batch of RNNC_STREAM_MIN_BATCH examples a recurrence computes its hoisted
    /// input projection step by step (StreamedProjection.swift); most golden cases have 3
    /// examples. Built with the threshold at 1, every case takes that path: its outputs must
    /// match PyTorch's and, to the bit, those of the product over all steps (except at
    /// batch 1, where a step's product is the matrix-vector tile, which sums in two chains).
    func testInputProjectionsComputedStepByStepGiveTheSameOutputs() throws {
        let casesDir = TestSupport.path("Tests/Golden/cases")
        let names = try FileManager.default.contentsOfDirectory(atPath: casesDir).sorted()
        var failures: [String] = []
        for name in names {
            do {
                let hoisted = try Self.run(name)
                let streamed = try Self.run(name, extraFlags: ["-DRNNC_STREAM_MIN_BATCH=1"])
                failures += streamed.failures
                guard streamed.batch > 1 else { continue }
                for (k, (a, b)) in zip(hoisted.outputs, streamed.outputs).enumerated() where a.map(\.bitPattern) != b.map(\.bitPattern) {
                    failures.append("\(name) output \(k): step-by-step projections differ from the hoisted product")
                }
            } catch { failures.append("\(name): \(error)") }
        }
        XCTAssert(failures.isEmpty, failures.joined(separator: "\n"))
    }

    func testEveryGoldenCaseMatchesPyTorch() throws {
        let casesDir = TestSupport.path("Tests/Golden/cases")
        let names = try FileManager.default.contentsOfDirectory(atPath: casesDir).sorted()
        XCTAssertGreaterThanOrEqual(names.count, 20, "golden cases missing")
        var failures: [String] = []
        for name in names {
            do { failures += try Self.check(name) } catch { failures.append("\(name): \(error)") }
        }
        XCTAssert(failures.isEmpty, failures.joined(separator: "\n"))
    }
}
