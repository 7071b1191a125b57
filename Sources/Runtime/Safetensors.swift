// The safetensors weight format: reading (hardened against any input) and writing.
//
// Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON mapping each tensor
// name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the first
// byte after the header) plus an optional "__metadata__" object of strings, then the data.
//
// The header is parsed by the small JSON parser at the end of this file rather than by
// JSONSerialization: we need the header's own key order (tensors come back in file order),
// duplicate keys must be an error rather than silently collapsed, integers must be exact,
// and the parser must be bounded in depth so no input can overflow the stack.

/// A parsed safetensors file.
public struct SafetensorsFile: Sendable, Equatable {
    /// The tensors in the order their entries appear in the file's header.
    public var tensors: [(name: String, tensor: Tensor)]
    /// The `"__metadata__"` object (string -> string); empty if the file has none.
    public var metadata: [String: String]

    public init(tensors: [(name: String, tensor: Tensor)] = [], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor called `name`, if the file has one.
    public subscript(name: String) -> Tensor? {
        tensors.first { $0.name == name }?.tensor
    }

    /// The tensor names in file order.
    public var names: [String] { tensors.map(\.name) }

    public static func == (a: SafetensorsFile, b: SafetensorsFile) -> Bool {
        a.metadata == b.metadata
            && a.tensors.count == b.tensors.count
            && zip(a.tensors, b.tensors).allSatisfy { $0.name == $1.name && $0.tensor == $1.tensor }
    }
}

public enum Safetensors {
    /// Headers beyond this are not weight files but corruption (or an attack on memory).
    public static let maxHeaderLength: UInt64 = 100_000_000

    /// Reads and validates the file at `path`; every problem is a `FormatError` naming it.
    public static func read(path: String) throws -> SafetensorsFile {
        try parse(FileBytes.read(path), fileName: path)
    }

    /// Writes the tensors (in the given order) and metadata to `path` atomically.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String], to path: String) throws {
        try AtomicFile.write(encode(tensors, metadata: metadata), to: path)
    }

    // MARK: - Reading

    /// Parses a whole safetensors file held in memory. Never traps: any malformed input
    /// gives a `FormatError` whose message starts with `fileName`.
    public static func parse(_ bytes: [UInt8], fileName: String) throws -> SafetensorsFile {
        func fail(_ message: String) -> FormatError {
            FormatError("\(fileName): \(message)")
        }

        guard bytes.count >= 8 else {
            throw fail("not a safetensors file: it has \(bytes.count) bytes, too few for the 8-byte header length")
        }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= maxHeaderLength else {
            throw fail("not a safetensors file: its header length (\(headerLength) bytes) is implausibly large")
        }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw fail("truncated file: the header length is \(headerLength) bytes but only \(bytes.count - 8) bytes follow it")
        }
        let dataStart = 8 + Int(headerLength)
        let dataSize = bytes.count - dataStart
        let header = Array(bytes[8..<dataStart])

        // JSON text must be UTF-8; decoding with repair changes the bytes exactly when it is not.
        guard Array(String(decoding: header, as: UTF8.self).utf8) == header else {
            throw fail("the header is not valid UTF-8")
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(header)
        } catch let error as JSONParser.Failure {
            throw fail("the header is not valid JSON: \(error.message) at byte \(error.offset) of the header")
        }
        guard case .object(let members) = json else {
            throw fail("the header is not a JSON object but \(json.kind)")
        }

        struct Entry {
            var name: String
            var shape: [Int]
            var count: Int
            var begin: Int
            var end: Int
        }
        var entries: [Entry] = []
        var metadata: [String: String] = [:]
        var seen = Set<String>()

        for (key, value) in members {
            guard seen.insert(key).inserted else {
                throw key == "__metadata__"
                    ? fail("the header has more than one \"__metadata__\"")
                    : fail("tensor \(FormatError.quote(key)) appears more than once in the header")
            }
            if key == "__metadata__" {
                metadata = try parseMetadata(value, fail: fail)
                continue
            }
            let tensor = "tensor \(FormatError.quote(key))"
            guard case .object(let fieldList) = value else {
                throw fail("the header entry for \(tensor) is \(value.kind), not an object")
            }
            var fields: [String: JSONValue] = [:]
            for (field, fieldValue) in fieldList {
                guard fields.updateValue(fieldValue, forKey: field) == nil else {
                    throw fail("the header entry for \(tensor) has \"\(field)\" more than once")
                }
            }
            for required in ["dtype", "shape", "data_offsets"] where fields[required] == nil {
                throw fail("the header entry for \(tensor) has no \"\(required)\"")
            }

            guard case .string(let dtype) = fields["dtype"]! else {
                throw fail("\(tensor) has a \"dtype\" that is \(fields["dtype"]!.kind), not a string")
            }
            guard dtype == "F32" else {
                throw knownDTypes.contains(dtype)
                    ? fail("unsupported dtype \(dtype) for \(tensor) (rnnc reads F32)")
                    : fail("unknown dtype \(FormatError.quote(dtype, with: "\"")) for \(tensor)")
            }

            guard case .array(let dims) = fields["shape"]!,
                  let shape = integers(dims) else {
                throw fail("\(tensor) has a \"shape\" that is not a list of integers: \(fields["shape"]!.summary)")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw fail("\(tensor) has a negative dimension in its shape \(shape)")
            }
            guard let count = Tensor.elementCount(shape),
                  case (let byteCount, false) = count.multipliedReportingOverflow(by: 4) else {
                throw fail("\(tensor) has a shape \(shape) too large to hold")
            }

            guard case .array(let offsetValues) = fields["data_offsets"]!,
                  let offsets = integers(offsetValues), offsets.count == 2,
                  offsets[0] >= 0, offsets[1] >= 0 else {
                throw fail("\(tensor) has \"data_offsets\" that are not two non-negative integers [begin, end]: \(fields["data_offsets"]!.summary)")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin <= end else {
                throw fail("\(tensor) has data_offsets [\(begin), \(end)] whose begin is after its end")
            }
            guard end <= dataSize else {
                throw fail("truncated file: \(tensor) has data_offsets [\(begin), \(end)] but the data section has only \(dataSize) bytes")
            }
            guard end - begin == byteCount else {
                throw fail("\(tensor) has shape \(shape), which needs \(byteCount) bytes as F32, but its data_offsets [\(begin), \(end)] hold \(end - begin) bytes")
            }
            entries.append(Entry(name: key, shape: shape, count: count, begin: begin, end: end))
        }

        // Two tensors sharing bytes is corruption (or an aliasing trick we do not support).
        // Empty tensors occupy no bytes, so they cannot overlap anything.
        let placed = entries.filter { $0.begin < $0.end }.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        for (a, b) in zip(placed, placed.dropFirst()) where b.begin < a.end {
            throw fail("tensors \(FormatError.quote(a.name)) and \(FormatError.quote(b.name)) overlap in the data section (data_offsets [\(a.begin), \(a.end)] and [\(b.begin), \(b.end)])")
        }

        let tensors = entries.map { entry in
            (name: entry.name,
             tensor: Tensor(shape: entry.shape,
                            data: ElementBytes.decode(Float.self, from: bytes, offset: dataStart + entry.begin,
                                                      count: entry.count)))
        }
        return SafetensorsFile(tensors: tensors, metadata: metadata)
    }

    /// Every dtype the safetensors format defines; anything else is not merely unsupported
    /// but not a dtype at all, and gets a different message.
    static let knownDTypes: Set<String> = [
        "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2",
        "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "C64", "I64", "U64",
    ]

    private static func parseMetadata(_ value: JSONValue, fail: (String) -> FormatError) throws -> [String: String] {
        // The reference implementation reads an optional map, so an explicit null means none.
        if case .null = value { return [:] }
        guard case .object(let members) = value else {
            throw fail("\"__metadata__\" is \(value.kind), not an object of strings")
        }
        var metadata: [String: String] = [:]
        for (key, entry) in members {
            guard case .string(let text) = entry else {
                throw fail("\"__metadata__\" entry \(FormatError.quote(key)) is \(entry.kind), not a string")
            }
            guard metadata.updateValue(text, forKey: key) == nil else {
                throw fail("\"__metadata__\" has the key \(FormatError.quote(key)) more than once")
            }
        }
        return metadata
    }

    /// The values as exact integers, or nil if any is not an integer that fits in `Int`.
    private static func integers(_ values: [JSONValue]) -> [Int]? {
        var result: [Int] = []
        result.reserveCapacity(values.count)
        for value in values {
            guard case .number(let text) = value, let n = Int(text) else { return nil }
            result.append(n)
        }
        return result
    }

    // MARK: - Writing

    /// The bytes of a safetensors file holding the tensors contiguously in the given order.
    /// The header lists `__metadata__` first (keys sorted, so output is deterministic), then
    /// the tensors, and is padded with spaces so the data starts 8-byte aligned.
    /// Names must be distinct and not `__metadata__` (a programming error otherwise).
    public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String]) -> [UInt8] {
        var names = Set<String>()
        for (name, _) in tensors {
            precondition(name != "__metadata__", "a tensor cannot be called __metadata__")
            precondition(names.insert(name).inserted, "duplicate tensor name \(name)")
        }

        var entries: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { jsonString($0.key) + ":" + jsonString($0.value) }
            entries.append("\"__metadata__\":{" + pairs.joined(separator: ",") + "}")
        }
        var offset = 0
        for (name, tensor) in tensors {
            let size = tensor.data.count * 4
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            entries.append(jsonString(name) + ":{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + size)]}")
            offset += size
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))

        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + header.count + offset)
        let length = UInt64(header.count)
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(i)))) }
        bytes.append(contentsOf: header)
        for (_, tensor) in tensors { ElementBytes.append(tensor.data, to: &bytes) }
        return bytes
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped, the rest
    /// (including non-ASCII) written as UTF-8, as serde_json does.
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

// MARK: - JSON
