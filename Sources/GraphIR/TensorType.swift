/// The element type and shape of an IR value.
///
/// Activations carry the implicit batch axis (`batched`) and, for sequences, the time
/// axis; `dims` are the per-step feature dimensions. Parameters are unbatched.
public struct TensorType: Sendable, Hashable, CustomStringConvertible {
    public enum Element: String, Sendable { case f32, i32 }

    public var element: Element
    public var batched: Bool
    public var sequence: Bool
    public var dims: [Int]

    public init(_ element: Element, batched: Bool = true, sequence: Bool = false, _ dims: [Int]) {
        self.element = element
        self.batched = batched
        self.sequence = sequence
        self.dims = dims
    }

    public static func param(_ dims: [Int]) -> TensorType { TensorType(.f32, batched: false, dims) }
    public static func scalar() -> TensorType { TensorType(.f32, batched: false, []) }

    /// Elements per example and time step.
    public var featureCount: Int { dims.reduce(1, *) }
    /// The size of the last axis (1 for a scalar).
    public var width: Int { dims.last ?? 1 }

    public func with(dims: [Int]) -> TensorType { var t = self; t.dims = dims; return t }
    public func with(sequence: Bool) -> TensorType { var t = self; t.sequence = sequence; return t }

    public var description: String {
        var axes: [String] = []
        if batched { axes.append("B") }
        if sequence { axes.append("T") }
        axes += dims.map(String.init)
        return "\(element.rawValue)[\(axes.joined(separator: ","))]"
    }
}
