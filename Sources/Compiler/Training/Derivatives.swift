import GraphIR

/// The gradient rules of element-wise ops, in one table (the model for every backward
/// kernel rnnc writes). Each rule gives, for each operand, the C expression to add to
/// that operand's gradient, from the upstream gradient `g`, the operands `a`, `b` and the
/// op's result `y` — all per-element values already in registers.
enum Derivatives {
    struct Terms {
        var g: String
        var a: String
        var b: String
        var y: String
    }

    /// Operand gradient contributions; nil where an operand gets none.
    static let elementwise: [OpKind: @Sendable (Terms) -> [String?]] = [
        .add: { t in [t.g, t.g] },
        .sub: { t in [t.g, "-(\(t.g))"] },
        .mul: { t in ["\(t.g) * \(t.b)", "\(t.g) * \(t.a)"] },
        .div: { t in ["\(t.g) / \(t.b)", "-(\(t.g)) * \(t.y) / \(t.b)"] },
        .neg: { t in ["-(\(t.g))"] },
        .tanh: { t in ["\(t.g) * (1.0f - \(t.y) * \(t.y))"] },
        .sigmoid: { t in ["\(t.g) * \(t.y) * (1.0f - \(t.y))"] },
        .relu: { t in ["(\(t.a) > 0.0f ? \(t.g) : 0.0f)"] },
        .exp: { t in ["\(t.g) * \(t.y)"] },
        .log: { t in ["\(t.g) / \(t.a)"] },
    ]
}
