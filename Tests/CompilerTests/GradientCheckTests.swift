import Compiler
import Foundation
import GraphIR
import Runtime
import XCTest

/// Central differences in double precision against the compiled library's gradients,
/// with no PyTorch in the loop (issue 3, 6c): the loss is evaluated by
/// `ReferenceInterpreter` on the parsed, unoptimized graph, at w + eps and w - eps for an
/// element w of a parameter, and (L(w + eps) - L(w - eps)) / 2 eps is compared with the
/// gradient the library computed in float32 through every pass, fused kernel and
/// reverse scan. Same bound as the golden gradients: per parameter, the largest
/// difference at most 1e-4 of that parameter's largest gradient. The forward losses must
/// agree within 1e-5 relative.
///
/// Why these numbers hold: in double precision, with eps = 1e-5, the central difference
/// is off by eps^2 |L'''| / 6 (~1e-10) plus rounding 1e-16 / eps (~1e-11), far below the
/// float32 library's own ~1e-6; a wrong derivative rule is off by O(1).
final class GradientCheckTests: XCTestCase {
    static let relativeTolerance = 1e-4
    static let eps = 1e-5

    struct Setup {
        var compiled: CompiledModel
        var interpreter: ReferenceInterpreter
        var loss: LossSpec
        var parameters: [String: [Double]]
        var order: [(name: String, count: Int)]
        var feed: ReferenceInterpreter.Feed
        var inputs: [CompiledModel.Buffer]
        var target: [Double]
        var targetBuffer: CompiledModel.Buffer
    }

    /// Weights drawn uniformly in [-scale, scale] (stored as float32, so the library and
    /// the interpreter see the same numbers), random inputs and targets.
    func setUp(model path: String, batch: Int, time: Int, lengths: [Int]?, scale: Double) throws -> Setup {
        let compilation = try Compilation(path: TestSupport.path(path), optimize: false)
        guard let loss = compilation.signature.loss else { throw XCTSkip("\(path) has no loss") }
        let build = try TestSupport.compile(TestSupport.path(path))
        let interface = try ModelInterface.read(path: "\(build)/\(compilation.libraryName).json")
        var rng = SeededGenerator(seed: 42)
        func uniform() -> Double { Double(Float(rng.unit() * 2 - 1)) }
        var parameters: [String: [Double]] = [:]
        var tensors: [(String, Tensor)] = []
        for p in interface.parameters {
            let values = (0..<p.shape.reduce(1, *)).map { _ in Double(Float(uniform() * scale)) }
            parameters[p.name] = values
            tensors.append((p.name, Tensor(shape: p.shape, data: values.map { Float($0) })))
        }
        let weights = TestSupport.temporaryDirectory("fd-\(compilation.libraryName)") + "/w.safetensors"
        try Safetensors.write(tensors, metadata: [:], to: weights)
        let compiled = try CompiledModel(directory: build, weights: weights)
        compiled.setDropout(false)

        var feed = ReferenceInterpreter.Feed(batch: batch, time: time, lengths: lengths)
        var inputs: [CompiledModel.Buffer] = []
        for port in interface.inputs {
            let count = batch * (port.hasTime ? time : 1) * port.features.reduce(1, *)
            if port.isInt {
                let ids = (0..<count).map { _ in Int(rng.next() % UInt64(port.vocab ?? 2)) }
                feed.ints[port.name] = ids
                inputs.append(.ints(ids.map { Int32($0) }))
            } else {
                let xs = (0..<count).map { _ in uniform() }
                feed.floats[port.name] = xs
                inputs.append(.floats(xs.map { Float($0) }))
            }
        }
        let port = interface.targets[0]
        let count = batch * (port.hasTime ? time : 1) * port.features.reduce(1, *)
        let target: [Double]
        let targetBuffer: CompiledModel.Buffer
        if port.isInt {
            let classes = UInt64(max(interface.lossClasses, 2))
            target = (0..<count).map { _ in Double(rng.next() % classes) }
            targetBuffer = .ints(target.map { Int32($0) })
        } else {
            target = (0..<count).map { _ in Double(Float(rng.unit())) }
            targetBuffer = .floats(target.map { Float($0) })
        }
        return Setup(compiled: compiled, interpreter: ReferenceInterpreter(graph: compilation.graph), loss: loss,
                     parameters: parameters, order: interface.parameters.map { ($0.name, $0.shape.reduce(1, *)) },
                     feed: feed, inputs: inputs, target: target, targetBuffer: targetBuffer)
    }

    /// Checks `perParameter` elements of each parameter (all of them when nil): half spread
    /// evenly over it, half where the library's gradient is largest (so a sparse gradient,
    /// an embedding's, is checked where it is not zero).
    func check(_ s: Setup, perParameter: Int?) throws -> [String] {
        let lengths = s.feed.lengths.map { $0.map { Int32($0) } }
        let analytic = try s.compiled.gradients(batch: s.feed.batch, time: s.feed.time, inputs: s.inputs,
                                                targets: [s.targetBuffer], lengths: lengths)
        var failures: [String] = []
        let reference = try s.interpreter.loss(s.loss, parameters: s.parameters, feed: s.feed, target: s.target)
        if abs(analytic.loss - reference) > 1e-5 * max(1, abs(reference)) {
            failures.append("loss: library \(analytic.loss), double-precision reference \(reference)")
        }
        for (i, p) in s.order.enumerated() {
            let grad = analytic.gradients[i].map(Double.init)
            let scale = max(grad.map(abs).max() ?? 0, 1e-12)
            var picks = Array(0..<p.count)
            if let n = perParameter, n < p.count {
                let spread = (0..<(n / 2)).map { $0 * p.count / (n / 2) }
                let largest = grad.indices.sorted { abs(grad[$0]) > abs(grad[$1]) }.prefix(n - n / 2)
                picks = Array(Set(spread).union(largest)).sorted()
            }
            var worst = 0.0
            for k in picks {
                var params = s.parameters
                let w = params[p.name]![k]
                params[p.name]![k] = w + Self.eps
                let up = try s.interpreter.loss(s.loss, parameters: params, feed: s.feed, target: s.target)
                params[p.name]![k] = w - Self.eps
                let down = try s.interpreter.loss(s.loss, parameters: params, feed: s.feed, target: s.target)
                let numeric = (up - down) / (2 * Self.eps)
                worst = max(worst, abs(numeric - grad[k]))
            }
            if !(worst <= Self.relativeTolerance * scale) {
                failures.append("\(p.name): largest difference \(worst) against largest gradient \(scale) (relative \(worst / scale))")
            } else if ProcessInfo.processInfo.environment["RNNC_GOLDEN_VERBOSE"] != nil {
                print("central difference \(p.name): \(picks.count) elements, relative error \(worst / scale)")
            }
        }
        return failures
    }

    /// jordan: a user cell whose output (not its hidden state) is fed back, with lengths.
    /// Small enough to check every element of every parameter.
    func testJordanGradientsMatchCentralDifferences() throws {
        let s = try setUp(model: "models/jordan.rnn", batch: 3, time: 6, lengths: [6, 2, 4], scale: 0.3)
        let failures = try check(s, perParameter: nil)
        XCTAssert(failures.isEmpty, failures.joined(separator: "\n"))
    }

    /// gate_gru: the GRU written gate by gate, which the compiler turns into the built-in
    /// GRU's kernels (hoisted, stacked, fused), under an embedding and a dense layer with
    /// cross-entropy. 3.3e5 parameters: 10 elements of each tensor.
    func testGateGRUGradientsMatchCentralDifferences() throws {
        let s = try setUp(model: "models/gate_gru.rnn", batch: 2, time: 4, lengths: nil, scale: 0.1)
        let failures = try check(s, perParameter: 10)
        XCTAssert(failures.isEmpty, failures.joined(separator: "\n"))
    }
}
