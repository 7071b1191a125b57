/// Checks the invariants every pass must keep: SSA (each value defined once, before its
/// uses, or captured from an enclosing scope), operand counts and shapes per op, and
/// region signatures. Passes run it after themselves in tests and in debug pipelines.
public struct Verifier {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public init() {}

    public func verify(_ graph: Graph) throws {
        var defined = Set<ValueID>()
        try verifyOps(graph.ops, graph, defined: &defined, inCell: false)
        for (name, v) in graph.outputs where !defined.contains(v) {
            throw Failure(description: "output \"\(name)\" reads \(v), which is not defined")
        }
    }

    private func verifyOps(_ ops: [Op], _ graph: Graph, defined: inout Set<ValueID>, inCell: Bool) throws {
        for op in ops {
            for operand in op.operands where !defined.contains(operand) {
                throw Failure(description: "\(op.kind.mnemonic) uses \(operand) before it is defined")
            }
            try checkShape(op, graph)
            if let region = op.region {
                var inner = defined
                for a in region.arguments {
                    guard inner.insert(a).inserted else { throw Failure(description: "region argument \(a) defined twice") }
                }
                try verifyOps(region.ops, graph, defined: &inner, inCell: true)
                for y in region.yields where !inner.contains(y) {
                    throw Failure(description: "\(op.kind.mnemonic) yields \(y), which is not defined in its region")
                }
                // Values defined inside a region are not visible after it; results are.
            }
            for r in op.results {
                guard defined.insert(r).inserted else { throw Failure(description: "\(r) is defined twice") }
            }
        }
    }

    private func fail(_ op: Op, _ message: String) -> Failure {
        Failure(description: "\(op.kind.mnemonic) \(op.results.map(\.description).joined(separator: ", ")): \(message)")
    }

    private func checkShape(_ op: Op, _ graph: Graph) throws {
        func t(_ v: ValueID) -> TensorType { graph.type(of: v) }
        let arity: Int?
        switch op.kind {
        case .input, .param, .constant: arity = 0
        case .paramChunk, .last, .softmax, .dropout, .neg, .tanh, .sigmoid, .relu, .exp, .log: arity = 1
        case .slice: arity = 1
        case .embedding, .matvec, .add, .sub, .mul, .div, .concat: arity = 2
        case .linear(let bias): arity = bias ? 3 : 2
        case .stackRows, .scan, .fused: arity = nil
        }
        if let arity, op.operands.count != arity {
            throw fail(op, "expects \(arity) operands, has \(op.operands.count)")
        }
        switch op.kind {
        case .matvec:
            let w = t(op.operands[0]), v = t(op.operands[1]), r = t(op.results[0])
            guard w.dims.count == 2, w.dims[1] == v.width, r.width == w.dims[0] else {
                throw fail(op, "matvec of \(w) by \(v) cannot give \(r)")
            }
        case .linear:
            let x = t(op.operands[0]), w = t(op.operands[1]), r = t(op.results[0])
            guard w.dims.count == 2, w.dims[1] == x.width, r.width == w.dims[0] else {
                throw fail(op, "linear of \(x) by \(w) cannot give \(r)")
            }
        case .add, .sub, .mul, .div:
            let a = t(op.operands[0]), b = t(op.operands[1]), r = t(op.results[0])
            let widths = [a, b].filter { !$0.dims.isEmpty }.map(\.dims)
            if let first = widths.first, widths.contains(where: { $0 != first }) || r.dims != first {
                throw fail(op, "element-wise shapes \(a) and \(b) differ")
            }
        case .slice(let offset, let size):
            let a = t(op.operands[0])
            guard offset >= 0, offset + size <= a.width, t(op.results[0]).width == size else {
                throw fail(op, "slice [\(offset)..<\(offset + size)] outside \(a)")
            }
        case .scan:
            guard let region = op.region else { throw fail(op, "scan without a region") }
            let states = region.yields.count
            guard op.results.count == states + 1, region.arguments.count == op.operands.count + states else {
                throw fail(op, "scan signature: \(op.operands.count) inputs, \(states) states, \(op.results.count) results, \(region.arguments.count) arguments")
            }
        case .fused:
            guard let region = op.region, region.yields.count == op.results.count,
                  region.arguments.count == op.operands.count else { throw fail(op, "fused signature mismatch") }
            for inner in region.ops where !inner.kind.isElementwise && !isSliceOrConst(inner.kind) {
                throw fail(op, "fused region holds \(inner.kind.mnemonic), which is not element-wise")
            }
        default: break
        }
    }

    private func isSliceOrConst(_ k: OpKind) -> Bool {
        switch k {
        case .slice, .constant: return true
        default: return false
        }
    }
}
