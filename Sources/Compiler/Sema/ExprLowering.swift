import GraphIR

/// Lowering of the element-wise part of the language, shared by cell bodies and the model.
/// Reports shape errors at the operator and returns nil so lowering can go on.
struct ElementwiseLowering {
    let builder: GraphBuilder
    let diagnostics: DiagnosticEngine
    var source: SourceNote?
    /// Built-in cells live in the prelude, not the user's file: their errors are shown at
    /// the place the layer is used.
    var reportAt: SourceRange? = nil

    static let unaryFunctions: [String: OpKind] = [
        "tanh": .tanh, "sigmoid": .sigmoid, "relu": .relu, "exp": .exp, "log": .log,
    ]

    func constant(_ v: Double) -> ValueID {
        builder.emit(.constant(v), [], .scalar(), source: source)
    }

    func binary(_ op: BinaryOp, _ a: ValueID, _ b: ValueID, range: SourceRange) -> ValueID? {
        let ta = builder.graph.type(of: a), tb = builder.graph.type(of: b)
        let kind: OpKind
        switch op {
        case .add: kind = .add
        case .sub: kind = .sub
        case .mul: kind = .mul
        case .div: kind = .div
        case .matmul: preconditionFailure("matmul is lowered by the caller")
        }
        guard let result = broadcast(ta, tb) else {
            diagnostics.error(reportAt ?? range, "shape mismatch: \(describe(ta)) \(op.rawValue) \(describe(tb))")
            return nil
        }
        return builder.emit(kind, [a, b], result, source: source)
    }

    func unary(_ kind: OpKind, _ a: ValueID) -> ValueID {
        builder.emit(kind, [a], builder.graph.type(of: a), source: source)
    }

    /// Two operands combine when they have the same shape, when one is a scalar constant,
    /// or when one is a parameter (unbatched) matching the other's features, as a bias does.
    func broadcast(_ a: TensorType, _ b: TensorType) -> TensorType? {
        if a.element != .f32 || b.element != .f32 { return nil }
        if a.dims.isEmpty && !a.batched { return b }
        if b.dims.isEmpty && !b.batched { return a }
        guard a.dims == b.dims else { return nil }
        if !a.batched { return b }
        if !b.batched { return a }
        guard a.sequence == b.sequence else { return nil }
        return a
    }

    /// Types as users write them: `float[32]`, `float[time, 4]`, a number.
    func describe(_ t: TensorType) -> String {
        if !t.batched && t.dims.isEmpty { return "a number" }
        var parts: [String] = []
        if t.sequence { parts.append("time") }
        parts += t.dims.map(String.init)
        let element = t.element == .f32 ? "float" : "int"
        return parts.isEmpty ? element : "\(element)[\(parts.joined(separator: ", "))]"
    }
}
