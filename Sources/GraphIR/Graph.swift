/// A whole model: its values and its top-level ops in execution order.
///
/// Scans and fused kernels hold nested regions; a region may read values defined outside
/// it (parameters, and for fused kernels anything of the enclosing region) — the usual
/// implicit capture of SSA regions.
public struct Graph: Sendable, Hashable {
    public struct ValueInfo: Sendable, Hashable {
        public var type: TensorType
        /// A readable name from the source (`emb`, `hidden.r`), used by the printer and the C emitter.
        public var name: String?
    }

    public var name: String
    public private(set) var values: [ValueInfo] = []
    public var ops: [Op] = []
    /// Model outputs by name, in declaration order.
    public var outputs: [(name: String, value: ValueID)] = []
    /// Model inputs by name and type, in declaration order.
    public var inputs: [(name: String, type: TensorType)] = []
    /// Values kept although no output reads them: the loss's prediction, for training
    /// (the first entry, when the model has a loss).
    public var keepAlive: [ValueID] = []

    public init(name: String) { self.name = name }

    public mutating func newValue(_ type: TensorType, name: String? = nil) -> ValueID {
        values.append(ValueInfo(type: type, name: name))
        return ValueID(values.count - 1)
    }

    public func type(of v: ValueID) -> TensorType { values[v.index].type }
    public func name(of v: ValueID) -> String? { values[v.index].name }
    public mutating func setName(_ name: String, for v: ValueID) { values[v.index].name = name }

    public static func == (a: Graph, b: Graph) -> Bool {
        a.name == b.name && a.values == b.values && a.ops == b.ops
            && a.outputs.map(\.name) == b.outputs.map(\.name) && a.outputs.map(\.value) == b.outputs.map(\.value)
    }

    public func hash(into h: inout Hasher) {
        h.combine(name)
        h.combine(values)
        h.combine(ops)
    }

    /// The op that defines each value, searched through regions. Region arguments map to nil.
    public func definingOps() -> [ValueID: Op] {
        var map: [ValueID: Op] = [:]
        func visit(_ ops: [Op]) {
            for op in ops {
                for r in op.results { map[r] = op }
                if let region = op.region { visit(region.ops) }
            }
        }
        visit(ops)
        return map
    }

    /// Every op, depth first, with the ops of regions after their parent.
    public func allOps() -> [Op] {
        var out: [Op] = []
        func visit(_ ops: [Op]) {
            for op in ops {
                out.append(op)
                if let region = op.region { visit(region.ops) }
            }
        }
        visit(ops)
        return out
    }
}
