/// Checks user arrays against a model's inputs and turns them into the buffers a compiled
/// library reads: int32 token ids or float32 values, batch first.
public struct InputBinding {
    public var batch: Int
    public var time: Int
    public var buffers: [CompiledModel.Buffer]
    public var lengths: [Int32]?

    static func brackets(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

    /// `arrays` maps input names to (file name for messages, array).
    public init(interface: ModelInterface, arrays: [String: (file: String, array: NpyArray)],
                lengths: (file: String, array: NpyArray)?) throws {
        for name in arrays.keys.sorted() where !interface.inputs.contains(where: { $0.name == name }) {
            let known = interface.inputs.map(\.name).joined(separator: ", ")
            throw FormatError("model '\(interface.model)' has no input '\(name)' (its inputs: \(known))")
        }
        var batch: Int?
        var time: Int?
        var buffers: [CompiledModel.Buffer] = []
        for port in interface.inputs {
            guard let (file, a) = arrays[port.name] else {
                throw FormatError("input '\(port.name)' is missing: pass --input \(port.name)=FILE.npy (\(port.declared), shaped \(port.shapeDescription))")
            }
            let rank = 1 + (port.hasTime ? 1 : 0) + port.features.count
            let fits = a.shape.count == rank && Array(a.shape.suffix(port.features.count)) == port.features
                && a.shape.allSatisfy { $0 >= 1 }
            guard fits else {
                throw FormatError("input '\(port.name)' (\(file)): expected shape \(port.shapeDescription), got \(Self.brackets(a.shape))")
            }
            if let b = batch, b != a.shape[0] {
                throw FormatError("input '\(port.name)' (\(file)): batch size \(a.shape[0]) differs from the other inputs' \(b)")
            }
            batch = a.shape[0]
            if port.hasTime {
                if let t = time, t != a.shape[1] {
                    throw FormatError("input '\(port.name)' (\(file)): \(a.shape[1]) time steps, the other inputs have \(t)")
                }
                time = a.shape[1]
            }
            if port.isInt {
                guard let ids = a.asInt64() else {
                    throw FormatError("input '\(port.name)' (\(file)): expected integer token ids (int32 or int64), got \(a.dtype == .float32 ? "float32" : "float64")")
                }
                var out = [Int32](repeating: 0, count: ids.count)
                for (i, v) in ids.enumerated() {
                    guard let narrow = Int32(exactly: v) else {
                        throw FormatError("input '\(port.name)' (\(file)): token id \(v) at flat index \(i) is out of range")
                    }
                    out[i] = narrow
                }
                buffers.append(.ints(out))
            } else {
                guard a.dtype == .float32 || a.dtype == .float64 else {
                    throw FormatError("input '\(port.name)' (\(file)): expected float32 values, got \(a.dtype == .int32 ? "int32" : "int64")")
                }
                buffers.append(.floats(a.asFloats()))
            }
        }
        self.batch = batch ?? 1
        self.time = time ?? 1
        self.buffers = buffers
        if let (file, l) = lengths {
            guard l.shape == [self.batch] else {
                throw FormatError("lengths (\(file)): expected shape [\(self.batch)] (one length per example), got \(Self.brackets(l.shape))")
            }
            guard let values = l.asInt64() else {
                throw FormatError("lengths (\(file)): expected integers, got a float array")
            }
            self.lengths = try values.enumerated().map { i, v in
                guard v >= 1 else { throw FormatError("lengths (\(file)): lengths[\(i)] = \(v); every example needs at least one step") }
                guard v <= Int64(self.time) else {
                    throw FormatError("lengths (\(file)): lengths[\(i)] = \(v) is larger than T = \(self.time)")
                }
                return Int32(v)
            }
        } else {
            self.lengths = nil
        }
    }
}
