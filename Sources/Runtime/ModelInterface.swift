/// What a compiled model takes and gives, read from the NAME.json beside its library.
public struct ModelInterface: Sendable {
    public struct Port: Sendable {
        public var name: String
        public var isInt: Bool
        public var hasTime: Bool
        /// Per-example feature sizes, after B (and T).
        public var features: [Int]
        public var declared: String
        /// For token-id inputs: the vocabulary of the embedding that reads them.
        public var vocab: Int? = nil

        /// The shape written the way users read it: [B, T, 8].
        public var shapeDescription: String {
            "[" + (["B"] + (hasTime ? ["T"] : []) + features.map(String.init)).joined(separator: ", ") + "]"
        }
    }
    public struct Parameter: Sendable {
        public var name: String
        public var shape: [Int]
        /// PyTorch's default initialization: U(-bound, bound), or N(0, std^2) when `normal`.
        public var normal: Bool
        public var scale: Double
    }

    public var model: String
    /// Forward FLOPs per example and time step, and per example for the rest.
    public var flopsPerStep: Int = 0
    public var flopsPerExample: Int = 0
    /// Classes of a cross-entropy loss's labels (0 without one).
    public var lossClasses: Int = 0
    public var inputs: [Port]
    public var targets: [Port]
    public var outputs: [Port]
    public var parameters: [Parameter]

    public static func read(path: String) throws -> ModelInterface {
        let bytes = try FileBytes.read(path)
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch let e as JSONParser.Failure {
            throw FormatError("\(path): not valid JSON: \(e.message) at byte \(e.offset)")
        }
        func fail(_ m: String) -> FormatError { FormatError("\(path): \(m); compile the model again") }
        guard case .object(let top) = json else { throw fail("expected an object") }
        let fields = Dictionary(top, uniquingKeysWith: { a, _ in a })
        guard case .string(let model)? = fields["model"] else { throw fail("no model name") }
        func ports(_ key: String) throws -> [Port] {
            guard case .array(let items)? = fields[key] else { throw fail("no '\(key)' list") }
            return try items.map { item in
                guard case .object(let kv) = item else { throw fail("a \(key) entry is not an object") }
                let f = Dictionary(kv, uniquingKeysWith: { a, _ in a })
                guard case .string(let name)? = f["name"], case .string(let dtype)? = f["dtype"],
                      case .array(let shape)? = f["shape"] else { throw fail("a \(key) entry lacks name, dtype or shape") }
                var hasTime = false
                var features: [Int] = []
                for (i, d) in shape.enumerated() {
                    switch d {
                    case .string("B") where i == 0: continue
                    case .string("T") where i == 1: hasTime = true
                    case .number(let text): guard let n = Int(text) else { throw fail("bad size \(text)") }; features.append(n)
                    default: throw fail("bad shape for '\(name)'")
                    }
                }
                var declared = ""
                if case .string(let d)? = f["declared"] { declared = d }
                var port = Port(name: name, isInt: dtype == "int32", hasTime: hasTime, features: features, declared: declared)
                if case .number(let v)? = f["vocab"] { port.vocab = Int(v) }
                return port
            }
        }
        guard case .array(let params)? = fields["parameters"] else { throw fail("no parameters list") }
        let parameters: [Parameter] = try params.map { item in
            guard case .object(let kv) = item else { throw fail("a parameter entry is not an object") }
            let f = Dictionary(kv, uniquingKeysWith: { a, _ in a })
            guard case .string(let name)? = f["name"], case .array(let shape)? = f["shape"] else { throw fail("a parameter lacks name or shape") }
            let dims: [Int] = try shape.map {
                guard case .number(let t) = $0, let n = Int(t) else { throw fail("bad shape for '\(name)'") }
                return n
            }
            var normal = false
            var scale = 0.0
            if case .string(let kind)? = f["init"] { normal = kind == "normal" }
            if case .number(let t)? = f[normal ? "std" : "bound"], let v = Double(t) { scale = v }
            return Parameter(name: name, shape: dims, normal: normal, scale: scale)
        }
        var interface = ModelInterface(model: model, inputs: try ports("inputs"), targets: try ports("targets"),
                                       outputs: try ports("outputs"), parameters: parameters)
        if case .object(let kv)? = fields["flops"] {
            let f = Dictionary(kv, uniquingKeysWith: { a, _ in a })
            if case .number(let v)? = f["per_example_step"] { interface.flopsPerStep = Int(v) ?? 0 }
            if case .number(let v)? = f["per_example"] { interface.flopsPerExample = Int(v) ?? 0 }
        }
        if case .object(let kv)? = fields["loss"] {
            let f = Dictionary(kv, uniquingKeysWith: { a, _ in a })
            if case .number(let v)? = f["classes"] { interface.lossClasses = Int(v) ?? 0 }
        }
        return interface
    }
}
