/// A value in SSA form: defined once, by one op or as a region argument.
public struct ValueID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let index: Int
    public init(_ index: Int) { self.index = index }
    public static func < (a: ValueID, b: ValueID) -> Bool { a.index < b.index }
    public var description: String { "%\(index)" }
}

/// What an op computes. Model-level and per-step (cell) ops share one vocabulary; the
/// verifier checks each is used where it belongs.
public enum OpKind: Sendable, Hashable {
    // Sources.
    case input(String)                 // a model input fed at run time
    case param(String)                 // a tensor stored in the weight file under this name
    case constant(Double)              // a scalar that broadcasts

    // Parameter plumbing (evaluated once, when weights are loaded).
    case paramChunk(index: Int, of: Int)   // rows [index*n/of, (index+1)*n/of) of a packed param
    case stackRows                         // parameters stacked along their first axis

    // Layers over whole tensors.
    case embedding                     // (table [V,D], ids) -> rows of the table
    case linear(bias: Bool)            // (x[..., K], W [N,K], b [N]?) -> x W^T + b on the last axis
    case scan(reverse: Bool)           // a recurrence: region runs once per time step
    case last                          // each example's last valid step of a sequence
    case concat                        // along the last axis
    case softmax                       // over the last axis
    case dropout(rate: Double)         // training: zero with probability rate, scale the rest by 1/(1-rate); inference: identity

    // Per-step matrix-vector product (batched: a matrix-matrix product over the batch).
    case matvec                        // (W [N,K], v [B,K]) -> [B,N]
    case slice(offset: Int, size: Int) // a window of the last axis

    // Element-wise.
    case add, sub, mul, div, neg
    case tanh, sigmoid, relu, exp, log

    // A group of element-wise ops run as one kernel; its region holds them.
    case fused

    public var mnemonic: String {
        switch self {
        case .input: return "input"
        case .param: return "param"
        case .constant: return "const"
        case .paramChunk: return "param_chunk"
        case .stackRows: return "stack_rows"
        case .embedding: return "embedding"
        case .linear(let bias): return bias ? "linear" : "linear_nobias"
        case .scan(let reverse): return reverse ? "scan_reverse" : "scan"
        case .last: return "last"
        case .concat: return "concat"
        case .softmax: return "softmax"
        case .dropout: return "dropout"
        case .matvec: return "matvec"
        case .slice: return "slice"
        case .add: return "add"
        case .sub: return "sub"
        case .mul: return "mul"
        case .div: return "div"
        case .neg: return "neg"
        case .tanh: return "tanh"
        case .sigmoid: return "sigmoid"
        case .relu: return "relu"
        case .exp: return "exp"
        case .log: return "log"
        case .fused: return "fused_pointwise"
        }
    }

    /// Ops computed independently per element, which `fuse-pointwise` may group.
    public var isElementwise: Bool {
        switch self {
        case .add, .sub, .mul, .div, .neg, .tanh, .sigmoid, .relu, .exp, .log: return true
        default: return false
        }
    }

    /// Ops that depend only on parameters and are evaluated at load time.
    public var isParameterPlumbing: Bool {
        switch self {
        case .param, .paramChunk, .stackRows: return true
        default: return false
        }
    }
}

/// Where an op came from in the user's file: printed in IR dumps and above every C kernel.
public struct SourceNote: Sendable, Hashable {
    public var line: Int
    public var text: String
    public init(line: Int, text: String) { self.line = line; self.text = text }
}

/// A nested block: arguments, ops in order, and the values it yields.
public struct Region: Sendable, Hashable {
    public var arguments: [ValueID]
    public var ops: [Op]
    public var yields: [ValueID]
    public init(arguments: [ValueID], ops: [Op], yields: [ValueID]) {
        self.arguments = arguments
        self.ops = ops
        self.yields = yields
    }
}

public struct Op: Sendable, Hashable {
    public var kind: OpKind
    public var operands: [ValueID]
    public var results: [ValueID]
    public var region: Region?
    public var source: SourceNote?
    /// Free-form facts the printer shows after the op (e.g. "layer 0", "hoisted from line 9").
    public var label: String?

    public init(_ kind: OpKind, _ operands: [ValueID], results: [ValueID], region: Region? = nil,
                source: SourceNote? = nil, label: String? = nil) {
        self.kind = kind
        self.operands = operands
        self.results = results
        self.region = region
        self.source = source
        self.label = label
    }
}
