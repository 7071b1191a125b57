import GraphIR

/// What a compiled model looks like from outside: its inputs, outputs and parameters.
/// Written to `NAME.json`, and what the runtime checks arrays and weight files against.
public struct ModelSignature: Sendable {
    public struct Port: Sendable {
        public var name: String
        public var type: TensorType
        /// The type as the user wrote it, e.g. `int[time]`, for messages.
        public var declared: String
    }

    /// PyTorch's default initialization for a parameter.
    public enum Initializer: Sendable, Equatable {
        case uniform(bound: Double)   // U(-bound, bound)
        case normal(std: Double)      // N(0, std^2)
    }

    public struct Parameter: Sendable {
        public var name: String
        public var shape: [Int]
        public var initializer: Initializer
        public var count: Int { shape.reduce(1, *) }
    }

    public var name: String
    public var inputs: [Port] = []
    public var targets: [Port] = []
    public var outputs: [Port] = []
    public var parameters: [Parameter] = []
    public var loss: LossSpec?
    public var train: [String: TrainValue] = [:]

    public func parameter(named n: String) -> Parameter? { parameters.first { $0.name == n } }
}

public struct LossSpec: Sendable {
    public enum Kind: String, Sendable { case mse, crossEntropy = "cross_entropy" }
    public var kind: Kind
    public var prediction: String
    public var target: String
}

/// A value in a `train { }` block.
public enum TrainValue: Sendable, Equatable {
    case number(Double)
    case name(String)
    case call(String, [String: TrainValue], [TrainValue])
    case tuple([TrainValue])
}
