/// The syntax tree of a `.rnn` file, as written (no names resolved yet).
public struct SourceUnit: Sendable {
    public var cells: [CellDecl]
    public var model: ModelDecl?
}

public struct Name: Sendable, Hashable {
    public let text: String
    public let range: SourceRange
}

/// `float[time, 64]`, `int[time]`, `int`, `float[H, I]`.
public struct TypeExpr: Sendable {
    public enum Element: String, Sendable { case float, int }
    public enum Dim: Sendable, Hashable {
        case time
        case literal(Int)
        case symbol(String)
    }
    public let element: Element
    public let dims: [Dim]
    public let dimRanges: [SourceRange]
    public let range: SourceRange
}

public indirect enum Expr: Sendable {
    case number(Double, SourceRange)
    case name(Name)
    case unary(op: UnaryOp, operand: Expr, range: SourceRange)
    case binary(op: BinaryOp, lhs: Expr, rhs: Expr, range: SourceRange)
    case call(callee: Name, args: [CallArgument], range: SourceRange)
    case tuple([Expr], SourceRange)

    public var range: SourceRange {
        switch self {
        case .number(_, let r), .unary(_, _, let r), .binary(_, _, _, let r), .call(_, _, let r), .tuple(_, let r): return r
        case .name(let n): return n.range
        }
    }
}

public enum UnaryOp: String, Sendable { case negate = "-" }
public enum BinaryOp: String, Sendable { case add = "+", sub = "-", mul = "*", div = "/", matmul = "@" }

/// A positional argument or `key = value`.
public struct CallArgument: Sendable {
    public let label: Name?
    public let value: Expr
}

public struct CellDecl: Sendable {
    public struct Parameter: Sendable {
        public let name: Name
        public let type: TypeExpr
        public let isState: Bool
    }
    /// `param NAME: TYPE`, optionally `= PACKED[k]`: the prelude's way to say that a
    /// parameter is chunk k (of equal row chunks) of a packed tensor PyTorch stores.
    public struct Param: Sendable {
        public let name: Name
        public let type: TypeExpr
        public let storage: (packed: Name, chunk: Int)?
    }
    public struct Assignment: Sendable {
        public let name: Name
        public let value: Expr
    }
    public let name: Name
    public let parameters: [Parameter]
    public let params: [Param]
    public let body: [Assignment]
    public let range: SourceRange
}

public struct ModelDecl: Sendable {
    public enum Statement: Sendable {
        case input(Name, TypeExpr)
        case target(Name, TypeExpr)
        case binding(Name, Expr)
        case output(Name, Expr?)
        case loss(Expr, SourceRange)
        case train([(key: Name, value: Expr)], SourceRange)
    }
    public let name: Name
    public let statements: [Statement]
    public let range: SourceRange
}
