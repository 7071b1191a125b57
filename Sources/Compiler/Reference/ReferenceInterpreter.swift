import Foundation
import GraphIR

/// Runs a graph in double precision, op by op, straight from the IR: no kernels, no
/// passes, no C. It is the yardstick the compiled library is held to where PyTorch is not
/// in the loop: the central-difference gradient check evaluates the loss with it, so the
/// finite differences carry ~1e-10 of rounding instead of float32's ~1e-3.
///
/// Semantics follow the generated C exactly: states start at zero; an example past its
/// length keeps its state and gets zeros in the output sequence (and its embedding rows
/// are zero); `last` takes each example's last valid step; dropout is the identity
/// (evaluation mode); losses are means over the valid rows.
///
/// Values are stored row-major as rows x features: B*T rows for sequences, B rows for
/// batched values, one row for parameters and constants.
public struct ReferenceInterpreter: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// What a run is fed: float inputs and integer inputs by name, B, T, optional lengths.
    public struct Feed: Sendable {
        public var floats: [String: [Double]]
        public var ints: [String: [Int]]
        public var batch: Int
        public var time: Int
        public var lengths: [Int]?

        public init(floats: [String: [Double]] = [:], ints: [String: [Int]] = [:], batch: Int, time: Int,
                    lengths: [Int]? = nil) {
            self.floats = floats
            self.ints = ints
            self.batch = batch
            self.time = time
            self.lengths = lengths
        }
    }

    public let graph: Graph
    public init(graph: Graph) { self.graph = graph }

    /// Every top-level value, by id.
    public func run(parameters: [String: [Double]], feed: Feed) throws -> [ValueID: [Double]] {
        var env: [ValueID: [Double]] = [:]
        for op in graph.ops { try evaluate(op, &env, parameters: parameters, feed: feed) }
        return env
    }

    /// The model's loss (`loss mse(...)` or `loss cross_entropy(...)`) for the targets.
    /// Integer targets (class labels) are given as whole numbers.
    public func loss(_ spec: LossSpec, parameters: [String: [Double]], feed: Feed, target: [Double]) throws -> Double {
        guard let prediction = graph.keepAlive.first else { throw Failure(description: "the graph has no loss prediction") }
        let env = try run(parameters: parameters, feed: feed)
        let t = graph.type(of: prediction)
        let y = env[prediction]!
        let B = feed.batch, T = feed.time
        let rows = rowCount(t, B, T)
        let width = t.featureCount
        func valid(_ r: Int) -> Bool {
            guard t.sequence, let lengths = feed.lengths else { return true }
            return r % T < lengths[r / T]
        }
        switch spec.kind {
        case .mse:
            var sum = 0.0, count = 0
            for r in 0..<rows where valid(r) {
                for j in 0..<width {
                    let d = y[r * width + j] - target[r * width + j]
                    sum += d * d
                    count += 1
                }
            }
            return count > 0 ? sum / Double(count) : 0
        case .crossEntropy:
            var sum = 0.0, count = 0
            for r in 0..<rows where valid(r) {
                let z = y[(r * width)..<((r + 1) * width)]
                let mx = z.max()!
                let logsum = z.reduce(0.0) { $0 + Foundation.exp($1 - mx) }
                sum += Foundation.log(logsum) + mx - z[r * width + Int(target[r])]
                count += 1
            }
            return count > 0 ? sum / Double(count) : 0
        }
    }

    // MARK: - Ops

    private func rowCount(_ t: TensorType, _ B: Int, _ T: Int) -> Int {
        (t.sequence ? B * T : (t.batched ? B : 1)) * t.dims.dropLast().reduce(1, *)
    }

    private func evaluate(_ op: Op, _ env: inout [ValueID: [Double]], parameters: [String: [Double]], feed: Feed) throws {
        let B = feed.batch, T = feed.time
        func operand(_ i: Int) -> [Double] { env[op.operands[i]]! }
        let result = op.results.first
        switch op.kind {
        case .input(let name):
            if let v = feed.floats[name] { env[result!] = v }
            else if let v = feed.ints[name] { env[result!] = v.map(Double.init) }
            else { throw Failure(description: "no input '\(name)'") }
        case .param(let name):
            guard let v = parameters[name] else { throw Failure(description: "no parameter '\(name)'") }
            env[result!] = v
        case .constant(let c):
            env[result!] = [c]
        case .paramChunk(let index, let of):
            let p = operand(0)
            let n = p.count / of
            env[result!] = Array(p[(index * n)..<((index + 1) * n)])
        case .stackRows:
            env[result!] = op.operands.flatMap { env[$0]! }
        case .embedding:
            let table = operand(0), ids = operand(1)
            let D = graph.type(of: result!).width
            var out = [Double](repeating: 0, count: B * T * D)
            for b in 0..<B {
                let len = feed.lengths?[b] ?? T
                for t in 0..<min(len, T) {
                    let id = Int(ids[b * T + t])
                    for d in 0..<D { out[(b * T + t) * D + d] = table[id * D + d] }
                }
            }
            env[result!] = out
        case .linear(let bias):
            let x = operand(0), w = operand(1)
            let wt = graph.type(of: op.operands[1])
            let N = wt.dims[0], K = wt.dims[1]
            let rows = x.count / K
            var out = Self.product(x, rows: rows, w, N: N, K: K)
            if bias {
                let b = operand(2)
                for r in 0..<rows { for n in 0..<N { out[r * N + n] += b[n] } }
            }
            env[result!] = out
        case .scan(let reverse):
            try scan(op, reverse: reverse, &env, parameters: parameters, feed: feed)
        case .last:
            let seq = operand(0)
            let F = graph.type(of: result!).featureCount
            var out = [Double](repeating: 0, count: B * F)
            for b in 0..<B {
                let t = (feed.lengths?[b] ?? T) - 1
                for j in 0..<F { out[b * F + j] = seq[(b * T + t) * F + j] }
            }
            env[result!] = out
        case .concat:
            let a = operand(0), c = operand(1)
            let fa = graph.type(of: op.operands[0]).width, fb = graph.type(of: op.operands[1]).width
            let rows = a.count / fa
            var out: [Double] = []
            out.reserveCapacity(rows * (fa + fb))
            for r in 0..<rows {
                out += a[(r * fa)..<((r + 1) * fa)]
                out += c[(r * fb)..<((r + 1) * fb)]
            }
            env[result!] = out
        case .softmax:
            let x = operand(0)
            let w = graph.type(of: result!).width
            var out = x
            for r in 0..<(x.count / w) {
                let row = x[(r * w)..<((r + 1) * w)]
                let mx = row.max()!
                let e = row.map { Foundation.exp($0 - mx) }
                let s = e.reduce(0, +)
                for j in 0..<w { out[r * w + j] = e[j] / s }
            }
            env[result!] = out
        case .dropout:
            env[result!] = operand(0)
        case .matvec:
            let w = operand(0), v = operand(1)
            let wt = graph.type(of: op.operands[0])
            let N = wt.dims[0], K = wt.dims[1]
            env[result!] = Self.product(v, rows: v.count / K, w, N: N, K: K)
        case .slice(let offset, let size):
            let x = operand(0)
            let w = graph.type(of: op.operands[0]).featureCount
            var out: [Double] = []
            for r in 0..<(x.count / w) { out += x[(r * w + offset)..<(r * w + offset + size)] }
            env[result!] = out
        case .add, .sub, .mul, .div, .neg, .tanh, .sigmoid, .relu, .exp, .log:
            env[result!] = elementwise(op, env)
        case .fused:
            // Fused regions only exist after optimization; run their ops in order.
            var inner = env
            for (a, o) in zip(op.region!.arguments, op.operands) { inner[a] = env[o]! }
            for member in op.region!.ops { try evaluate(member, &inner, parameters: parameters, feed: feed) }
            for (r, y) in zip(op.results, op.region!.yields) { env[r] = inner[y]! }
        }
    }

    /// x [rows, K] W^T for W [N, K], summed in order over k.
    static func product(_ x: [Double], rows: Int, _ w: [Double], N: Int, K: Int) -> [Double] {
        var out = [Double](repeating: 0, count: rows * N)
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                out.withUnsafeMutableBufferPointer { op in
                    for r in 0..<rows {
                        for n in 0..<N {
                            var acc = 0.0
                            for k in 0..<K { acc += xp[r * K + k] * wp[n * K + k] }
                            op[r * N + n] = acc
                        }
                    }
                }
            }
        }
        return out
    }

    /// Broadcasting as the fused kernels do: a value of one row (a parameter, a constant)
    /// is read by every row; a scalar by every element.
    private func elementwise(_ op: Op, _ env: [ValueID: [Double]]) -> [Double] {
        let ins = op.operands.map { env[$0]! }
        let width = graph.type(of: op.results[0]).featureCount
        let rows = ins.map { $0.count == 1 ? 1 : $0.count / width }.max()!
        func at(_ x: [Double], _ r: Int, _ j: Int) -> Double {
            if x.count == 1 { return x[0] }
            return x.count == width ? x[j] : x[r * width + j]
        }
        var out = [Double](repeating: 0, count: rows * width)
        for r in 0..<rows {
            for j in 0..<width {
                let a = at(ins[0], r, j)
                let b = ins.count > 1 ? at(ins[1], r, j) : 0
                let y: Double
                switch op.kind {
                case .add: y = a + b
                case .sub: y = a - b
                case .mul: y = a * b
                case .div: y = a / b
                case .neg: y = -a
                case .tanh: y = Foundation.tanh(a)
                case .sigmoid: y = 1 / (1 + Foundation.exp(-a))
                case .relu: y = a > 0 ? a : 0
                case .exp: y = Foundation.exp(a)
                case .log: y = Foundation.log(a)
                default: y = .nan
                }
                out[r * width + j] = y
            }
        }
        return out
    }

    private func scan(_ op: Op, reverse: Bool, _ env: inout [ValueID: [Double]], parameters: [String: [Double]],
                      feed: Feed) throws {
        let region = op.region!
        let B = feed.batch, T = feed.time
        let stepInputs = op.operands.count
        let states = Array(region.arguments.dropFirst(stepInputs))
        let widths = states.map { graph.type(of: $0).featureCount }
        var current = widths.map { [Double](repeating: 0, count: B * $0) }
        var out = [Double](repeating: 0, count: B * T * widths[0])
        for step in 0..<T {
            let t = reverse ? T - 1 - step : step
            var inner = env
            for k in 0..<stepInputs {
                let f = graph.type(of: region.arguments[k]).featureCount
                let seq = env[op.operands[k]]!
                var rows = [Double](repeating: 0, count: B * f)
                for b in 0..<B { for j in 0..<f { rows[b * f + j] = seq[(b * T + t) * f + j] } }
                inner[region.arguments[k]] = rows
            }
            for (i, s) in states.enumerated() { inner[s] = current[i] }
            for member in region.ops { try evaluate(member, &inner, parameters: parameters, feed: feed) }
            for b in 0..<B {
                if let lengths = feed.lengths, t >= lengths[b] { continue }   // frozen; output stays zero
                for (i, y) in region.yields.enumerated() {
                    let w = widths[i]
                    let next = inner[y]!
                    for j in 0..<w { current[i][b * w + j] = next[b * w + j] }
                }
                for j in 0..<widths[0] { out[(b * T + t) * widths[0] + j] = current[0][b * widths[0] + j] }
            }
        }
        env[op.results[0]] = out
        for (i, r) in op.results.dropFirst().enumerated() { env[r] = current[i] }
    }
}
