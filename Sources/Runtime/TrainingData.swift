/// A training set held in memory: one array per model input and target, example first,
/// and optionally each example's length. Loaded from `--npy DIR` (DIR/NAME.npy for every
/// input and target, DIR/lengths.npy optional) and checked against the model.
public struct TrainingData {
    public var inputs: [(port: ModelInterface.Port, array: NpyArray)]
    public var targets: [(port: ModelInterface.Port, array: NpyArray)]
    public var lengths: [Int64]?
    public var count: Int
    public var time: Int

    public init(inputs: [(port: ModelInterface.Port, array: NpyArray)], targets: [(port: ModelInterface.Port, array: NpyArray)],
                lengths: [Int64]?, count: Int, time: Int) {
        self.inputs = inputs
        self.targets = targets
        self.lengths = lengths
        self.count = count
        self.time = time
    }

    public static func loadNpyDirectory(_ dir: String, interface: ModelInterface) throws -> TrainingData {
        func load(_ port: ModelInterface.Port, role: String) throws -> NpyArray {
            let path = "\(dir)/\(port.name).npy"
            let a = try Npy.read(path: path)
            let rank = 1 + (port.hasTime ? 1 : 0) + port.features.count
            guard a.shape.count == rank, Array(a.shape.suffix(port.features.count)) == port.features, a.shape.allSatisfy({ $0 >= 1 }) else {
                throw FormatError("\(role) '\(port.name)' (\(path)): expected shape \(port.shapeDescription.replacingFirst("B", with: "N")), got [\(a.shape.map(String.init).joined(separator: ", "))]")
            }
            if port.isInt {
                guard a.asInt64() != nil else { throw FormatError("\(role) '\(port.name)' (\(path)): expected integers (int32 or int64), got a float array") }
            } else if a.dtype != .float32 && a.dtype != .float64 {
                throw FormatError("\(role) '\(port.name)' (\(path)): expected float32 values")
            }
            return a
        }
        let inputs = try interface.inputs.map { ($0, try load($0, role: "input")) }
        let targets = try interface.targets.map { ($0, try load($0, role: "target")) }
        let all = inputs.map(\.1) + targets.map(\.1)
        guard let first = all.first else { throw FormatError("model '\(interface.model)' has no inputs") }
        let count = first.shape[0]
        for (port, a) in inputs + targets where a.shape[0] != count {
            throw FormatError("\(dir)/\(port.name).npy has \(a.shape[0]) examples, the other arrays \(count)")
        }
        let timed = (inputs + targets).filter { $0.0.hasTime }
        let time = timed.first?.1.shape[1] ?? 1
        for (port, a) in timed where a.shape[1] != time {
            throw FormatError("\(dir)/\(port.name).npy has \(a.shape[1]) time steps, the other arrays \(time)")
        }
        var lengths: [Int64]?
        let lengthsPath = "\(dir)/lengths.npy"
        if FileBytes.exists(lengthsPath) {
            let l = try Npy.read(path: lengthsPath)
            guard l.shape == [count], let values = l.asInt64() else {
                throw FormatError("\(lengthsPath): expected \(count) integer lengths, one per example")
            }
            if let bad = values.firstIndex(where: { $0 < 1 || $0 > Int64(time) }) {
                throw FormatError("\(lengthsPath): lengths[\(bad)] = \(values[bad]) is outside 1...\(time)")
            }
            lengths = values
        }
        return TrainingData(inputs: inputs, targets: targets, lengths: lengths, count: count, time: time)
    }

    /// The arrays of the given examples, as a library call takes them.
    public func batch(_ indices: [Int]) -> (inputs: [CompiledModel.Buffer], targets: [CompiledModel.Buffer], lengths: [Int32]?) {
        func rows(_ a: NpyArray, int: Bool) -> CompiledModel.Buffer {
            let per = a.shape.dropFirst().reduce(1, *)
            if int {
                let ids = a.asInt64()!
                var out: [Int32] = []
                out.reserveCapacity(indices.count * per)
                for i in indices { out += ids[(i * per)..<((i + 1) * per)].map { Int32(clamping: $0) } }
                return .ints(out)
            }
            let values = a.asFloats()
            var out: [Float] = []
            out.reserveCapacity(indices.count * per)
            for i in indices { out += values[(i * per)..<((i + 1) * per)] }
            return .floats(out)
        }
        return (inputs.map { rows($0.array, int: $0.port.isInt) },
                targets.map { rows($0.array, int: $0.port.isInt) },
                lengths.map { l in indices.map { Int32(l[$0]) } })
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let r = range(of: target) else { return self }
        return replacingCharacters(in: r, with: replacement)
    }
}

import Foundation
