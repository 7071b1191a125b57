// NumPy's .npy array format: reading versions 1.0, 2.0 and 3.0 (hardened against any
// input) and writing version 1.0 byte-for-byte as numpy's own np.save does.
//
// Layout: "\x93NUMPY", major and minor version bytes, the header length (u16 LE in 1.0,
// u32 LE in 2.0 and 3.0), then the header: a Python dict literal such as
// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and
// ending in '\n' (latin-1 in 1.0/2.0, UTF-8 in 3.0), then the raw elements in C order.
//
// numpy reads the header with ast.literal_eval; the small parser at the end of this file
// accepts the subset of Python literal syntax that such headers use.

/// The element types rnnc reads and writes, named by their little-endian numpy `descr`.
public enum NpyDType: String, Sendable, CaseIterable {
    case float32 = "<f4"
    case float64 = "<f8"
    case int32 = "<i4"
    case int64 = "<i8"

    /// Bytes per element.
    public var itemSize: Int {
        switch self {
        case .float32, .int32: 4
        case .float64, .int64: 8
        }
    }
}

/// An n-dimensional array as stored in a .npy file, row-major.
public struct NpyArray: Equatable, Sendable {
    public enum Storage: Equatable, Sendable {
        case float32([Float])
        case float64([Double])
        case int32([Int32])
        case int64([Int64])
    }

    public var shape: [Int]
    public var storage: Storage

    /// The storage's element count must equal the product of `shape` (1 for shape `[]`).
    public init(shape: [Int], storage: Storage) {
        self.shape = shape
        self.storage = storage
        precondition(Tensor.elementCount(shape) == count,
                     "NpyArray shape \(shape) does not match \(count) elements")
    }

    /// A float32 array with the tensor's shape and data.
    public init(_ tensor: Tensor) {
        self.init(shape: tensor.shape, storage: .float32(tensor.data))
    }

    public var dtype: NpyDType {
        switch storage {
        case .float32: .float32
        case .float64: .float64
        case .int32: .int32
        case .int64: .int64
        }
    }

    /// The number of elements stored.
    public var count: Int {
        switch storage {
        case .float32(let v): v.count
        case .float64(let v): v.count
        case .int32(let v): v.count
        case .int64(let v): v.count
        }
    }

    /// The elements converted to Float (float64 is rounded; large integers lose precision).
    public func asFloats() -> [Float] {
        switch storage {
        case .float32(let v): v
        case .float64(let v): v.map { Float($0) }
        case .int32(let v): v.map { Float($0) }
        case .int64(let v): v.map { Float($0) }
        }
    }

    /// The elements as Int64 for integer arrays; nil for float arrays, which must not be
    /// silently truncated into labels or lengths.
    public func asInt64() -> [Int64]? {
        switch storage {
        case .float32, .float64: nil
        case .int32(let v): v.map { Int64($0) }
        case .int64(let v): v
        }
    }

    /// The array as a float32 tensor of the same shape (converting as `asFloats`).
    public func asTensor() -> Tensor {
        Tensor(shape: shape, data: asFloats())
    }

    /// The shape as numpy prints it: `()`, `(5,)`, `(2, 3)`.
    public var shapeDescription: String {
        Npy.pythonTuple(shape)
    }
}

public enum Npy {
    /// Reads and validates the file at `path`; every problem is a `FormatError` naming it.
    public static func read(path: String) throws -> NpyArray {
        try parse(FileBytes.read(path), fileName: path)
    }

    /// Writes the array to `path` atomically (see `encode`).
    public static func write(_ a: NpyArray, to path: String) throws {
        try AtomicFile.write(encode(a), to: path)
    }

    // MARK: - Reading

    /// Parses a whole .npy file held in memory. Never traps: any malformed input gives a
    /// `FormatError` whose message starts with `fileName`.
    public static func parse(_ bytes: [UInt8], fileName: String) throws -> NpyArray {
        func fail(_ message: String) -> FormatError {
            FormatError("\(fileName): \(message)")
        }

        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY
        guard bytes.count >= 8, Array(bytes[0..<6]) == magic else {
            throw fail("not a .npy file (it does not start with the magic bytes \\x93NUMPY)")
        }
        let (major, minor) = (bytes[6], bytes[7])
        guard minor == 0, (1...3).contains(major) else {
            throw fail("unsupported .npy format version \(major).\(minor) (rnnc reads 1.0, 2.0 and 3.0)")
        }

        // Version 1.0 has a u16 header length; 2.0 and 3.0 widened it to u32.
        let lengthSize = major == 1 ? 2 : 4
        guard bytes.count >= 8 + lengthSize else {
            throw fail("truncated file: it ends inside the header length")
        }
        var headerLength = 0
        for i in 0..<lengthSize { headerLength |= Int(bytes[8 + i]) << (8 * i) }
        let headerStart = 8 + lengthSize
        guard headerLength <= bytes.count - headerStart else {
            throw fail("truncated file: the header length is \(headerLength) bytes but only \(bytes.count - headerStart) bytes follow it")
        }
        let dataStart = headerStart + headerLength
        let header = Array(bytes[headerStart..<dataStart])

        // 3.0 exists only to allow UTF-8 (1.0 and 2.0 are latin-1, where every byte is valid).
        if major == 3, Array(String(decoding: header, as: UTF8.self).utf8) != header {
            throw fail("the header is not valid UTF-8")
        }

        let dict: [(PythonLiteral, PythonLiteral)]
        do {
            let value = try PythonLiteralParser.parse(header)
            guard case .dict(let items) = value else {
                throw PythonLiteralParser.Failure(message: "it is \(value.kind), not a dict", offset: nil)
            }
            dict = items
        } catch let error as PythonLiteralParser.Failure {
            let position = error.offset.map { " at byte \($0) of the header" } ?? ""
            throw fail("malformed header: \(error.message)\(position)")
        }

        // numpy requires exactly these three keys.
        var fields: [String: PythonLiteral] = [:]
        for (key, value) in dict {
            guard case .string(let name) = key else {
                throw fail("malformed header: the key \(key.summary) is not a string")
            }
            guard ["descr", "fortran_order", "shape"].contains(name) else {
                throw fail("malformed header: unexpected key \(FormatError.quote(name))")
            }
            guard fields.updateValue(value, forKey: name) == nil else {
                throw fail("malformed header: the key \(FormatError.quote(name)) appears more than once")
            }
        }
        for required in ["descr", "fortran_order", "shape"] where fields[required] == nil {
            throw fail("malformed header: it has no '\(required)'")
        }

        guard case .tuple(let dims) = fields["shape"]! else {
            throw fail("malformed header: 'shape' is \(fields["shape"]!.summary), not a tuple of integers")
        }
        var shape: [Int] = []
        for dim in dims {
            guard case .int(let n) = dim else {
                throw fail("malformed header: 'shape' is \(fields["shape"]!.summary), not a tuple of integers")
            }
            guard let n, n >= 0 else {
                throw fail("malformed header: 'shape' \(fields["shape"]!.summary) has a dimension that is negative or too large")
            }
            shape.append(n)
        }
        let shapeText = pythonTuple(shape)

        guard case .bool(let fortranOrder) = fields["fortran_order"]! else {
            throw fail("malformed header: 'fortran_order' is \(fields["fortran_order"]!.summary), not True or False")
        }
        // Column-major and row-major layouts coincide when at most one axis has more than
        // one element (or there are no elements), so only a real transposition is refused.
        if fortranOrder && shape.filter({ $0 > 1 }).count > 1 && !shape.contains(0) {
            throw fail("Fortran-order arrays are not supported; save with np.ascontiguousarray")
        }

        let (dtype, needsSwap) = try decodeDescr(fields["descr"]!, fail: fail)

        guard let count = Tensor.elementCount(shape),
              case (let byteCount, false) = count.multipliedReportingOverflow(by: dtype.itemSize) else {
            throw fail("shape \(shapeText) is too large")
        }
        let available = bytes.count - dataStart
        guard available >= byteCount else {
            throw fail("truncated file: a \(dtype.rawValue) array of shape \(shapeText) needs \(byteCount) bytes of data but the file has \(available)")
        }
        guard available == byteCount else {
            throw fail("the file has \(available - byteCount) bytes after the data of its \(dtype.rawValue) array of shape \(shapeText) (\(byteCount) bytes); it is corrupt or not a single .npy array")
        }

        let storage: NpyArray.Storage
        switch dtype {
        case .float32: storage = .float32(ElementBytes.decode(Float.self, from: bytes, offset: dataStart, count: count, swap: needsSwap))
        case .float64: storage = .float64(ElementBytes.decode(Double.self, from: bytes, offset: dataStart, count: count, swap: needsSwap))
        case .int32: storage = .int32(ElementBytes.decode(Int32.self, from: bytes, offset: dataStart, count: count, swap: needsSwap))
        case .int64: storage = .int64(ElementBytes.decode(Int64.self, from: bytes, offset: dataStart, count: count, swap: needsSwap))
        }
        return NpyArray(shape: shape, storage: storage)
    }

    /// The dtype named by `descr`, and whether its bytes must be reversed on this host.
    ///
    /// numpy writes '<' for these types; it also reads '=' (native), '|' (no order, which it
    /// treats as native for multi-byte types) and no prefix at all, so those are accepted as
    /// native order. '>' is refused with a hint, as are object and structured arrays.
    private static func decodeDescr(_ value: PythonLiteral, fail: (String) -> FormatError) throws -> (NpyDType, Bool) {
        guard case .string(let descr) = value else {
            if case .list = value {
                throw fail("structured arrays (descr \(value.summary)) are not supported; save a plain float or int array")
            }
            throw fail("malformed header: 'descr' is \(value.summary), not a string")
        }
        var order: Character = "="
        var code = Substring(descr)
        if let first = code.first, "<>|=".contains(first) {
            order = first
            code = code.dropFirst()
        }
        if code == "O" {
            throw fail("object arrays (dtype \(FormatError.quote(descr))) are not supported; save a numeric array")
        }
        let known: [Substring: NpyDType] = ["f4": .float32, "f8": .float64, "i4": .int32, "i8": .int64]
        guard let dtype = known[code] else {
            throw fail("unsupported dtype \(FormatError.quote(descr)) (rnnc reads float32 '<f4', float64 '<f8', int32 '<i4' and int64 '<i8')")
        }
        let big = ElementBytes.hostIsBigEndian
        switch order {
        case "<": return (dtype, big)
        case ">":
            if big { return (dtype, false) }
            throw fail("big-endian arrays (dtype \(FormatError.quote(descr))) are not supported; convert with a.astype('\(dtype.rawValue)')")
        default: return (dtype, false)
        }
    }

    // MARK: - Writing

    /// The bytes of a version 1.0 .npy file, identical to what numpy's np.save writes: the
    /// header dict with sorted keys, numpy's spare spaces for growing the first axis, and
    /// padding so the data starts at a multiple of 64 bytes, ending in '\n'. (A header too
    /// long for 1.0's u16 length, which needs thousands of axes, falls back to 2.0 as numpy does.)
    public static func encode(_ a: NpyArray) -> [UInt8] {
        precondition(Tensor.elementCount(a.shape) == a.count,
                     "NpyArray shape \(a.shape) does not match \(a.count) elements")
        var text = "{'descr': '\(a.dtype.rawValue)', 'fortran_order': False, 'shape': \(pythonTuple(a.shape)), }"
        // numpy leaves room to rewrite the first dimension in place with up to 21 digits.
        if let first = a.shape.first {
            text += String(repeating: " ", count: max(0, 21 - String(first).count))
        }
        var header = Array(text.utf8)

        var lengthSize = 2
        var padding = 64 - (8 + lengthSize + header.count + 1) % 64
        if header.count + 1 + padding > Int(UInt16.max) {
            lengthSize = 4
            padding = 64 - (8 + lengthSize + header.count + 1) % 64
        }
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
        header.append(UInt8(ascii: "\n"))

        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, lengthSize == 2 ? 1 : 2, 0]
        for i in 0..<lengthSize { bytes.append(UInt8(truncatingIfNeeded: header.count >> (8 * i))) }
        bytes.append(contentsOf: header)
        bytes.reserveCapacity(bytes.count + a.count * a.dtype.itemSize)
        switch a.storage {
        case .float32(let v): ElementBytes.append(v, to: &bytes)
        case .float64(let v): ElementBytes.append(v, to: &bytes)
        case .int32(let v): ElementBytes.append(v, to: &bytes)
        case .int64(let v): ElementBytes.append(v, to: &bytes)
        }
        return bytes
    }

    /// A shape as Python's repr of a tuple: `()`, `(5,)`, `(2, 3)`.
    static func pythonTuple(_ shape: [Int]) -> String {
        shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }
}

// MARK: - Python literals

/// The Python literal values a .npy header can contain.
enum PythonLiteral: Sendable {
    case string(String)
    /// nil when the integer does not fit in `Int`.
    case int(Int?)
    case float(String)
    case bool(Bool)
    case none
    case tuple([PythonLiteral])
    case list([PythonLiteral])
    case dict([(PythonLiteral, PythonLiteral)])

    var kind: String {
        switch self {
        case .string: "a string"
        case .int: "an integer"
        case .float: "a float"
        case .bool: "a boolean"
        case .none: "None"
        case .tuple: "a tuple"
        case .list: "a list"
        case .dict: "a dict"
        }
    }

    /// The value as short Python-like text for messages.
    var summary: String {
        func items(_ values: [PythonLiteral]) -> String {
            values.prefix(8).map(\.summary).joined(separator: ", ") + (values.count > 8 ? ", ..." : "")
        }
        switch self {
        case .string(let s): return FormatError.quote(String(s.prefix(40)))
        case .int(let n): return n.map(String.init) ?? "<huge integer>"
        case .float(let text): return text
        case .bool(let b): return b ? "True" : "False"
        case .none: return "None"
        case .tuple(let values): return values.count == 1 ? "(\(values[0].summary),)" : "(\(items(values)))"
        case .list(let values): return "[\(items(values))]"
        case .dict: return "{...}"
        }
    }
}

/// Parses the subset of Python literal syntax that .npy headers use: dicts, tuples, lists,
/// quoted strings, integers (with `_` separators, and the `L` suffix that Python 2 wrote),
/// floats, True, False and None, with Python's whitespace. Never traps: malformed input,
/// including nesting deeper than `maxDepth`, ends in a `Failure`.
struct PythonLiteralParser {
    struct Failure: Error {
        var message: String
        var offset: Int?
    }

    static let maxDepth = 32

    private let bytes: [UInt8]
    private var position = 0

    static func parse(_ bytes: [UInt8]) throws -> PythonLiteral {
        var parser = PythonLiteralParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.failure("unexpected text after the dict") }
        return value
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private func failure(_ message: String) -> Failure {
        Failure(message: message, offset: position)
    }

    private var current: UInt8? {
        position < bytes.count ? bytes[position] : nil
    }

    private mutating func skipWhitespace() {
        // space, \t, \n, \v, \f, \r
        while let byte = current, byte == 0x20 || (0x09...0x0D).contains(byte) {
            position += 1
        }
    }

    private static func isDigit(_ byte: UInt8?) -> Bool {
        byte.map { (0x30...0x39).contains($0) } ?? false
    }

    private static func isLetter(_ byte: UInt8?) -> Bool {
        byte.map { (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x5F } ?? false
    }

    private mutating func parseValue(depth: Int) throws -> PythonLiteral {
        guard depth < PythonLiteralParser.maxDepth else {
            throw failure("nesting deeper than \(PythonLiteralParser.maxDepth) levels")
        }
        guard let byte = current else { throw failure("unexpected end") }
        switch byte {
        case UInt8(ascii: "{"): return try parseDict(depth: depth)
        case UInt8(ascii: "("): return try parseTuple(depth: depth)
        case UInt8(ascii: "["):
            position += 1
            return .list(try parseItems(until: UInt8(ascii: "]"), depth: depth))
        case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."):
            return try parseNumber()
        case _ where PythonLiteralParser.isLetter(byte):
            let start = position
            while PythonLiteralParser.isLetter(current) || PythonLiteralParser.isDigit(current) { position += 1 }
            switch String(decoding: bytes[start..<position], as: UTF8.self) {
            case "True": return .bool(true)
            case "False": return .bool(false)
            case "None": return .none
            default:
                position = start
                throw failure("unexpected name")
            }
        default:
            throw failure("unexpected character")
        }
    }

    private mutating func parseDict(depth: Int) throws -> PythonLiteral {
        position += 1  // {
        var items: [(PythonLiteral, PythonLiteral)] = []
        while true {
            skipWhitespace()
            if current == UInt8(ascii: "}") {
                position += 1
                return .dict(items)
            }
            let key = try parseValue(depth: depth + 1)
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw failure("expected ':'") }
            position += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            items.append((key, value))
            skipWhitespace()
            if current == UInt8(ascii: ",") {
                position += 1
            } else if current != UInt8(ascii: "}") {
                throw failure("expected ',' or '}'")
            }
        }
    }

    /// `()` is the empty tuple, `(x)` is just x, `(x,)` and `(x, y)` are tuples.
    private mutating func parseTuple(depth: Int) throws -> PythonLiteral {
        position += 1  // (
        skipWhitespace()
        if current == UInt8(ascii: ")") {
            position += 1
            return .tuple([])
        }
        let first = try parseValue(depth: depth + 1)
        skipWhitespace()
        if current == UInt8(ascii: ")") {
            position += 1
            return first
        }
        guard current == UInt8(ascii: ",") else { throw failure("expected ',' or ')'") }
        position += 1
        return .tuple([first] + (try parseItems(until: UInt8(ascii: ")"), depth: depth)))
    }

    /// Comma-separated values up to `close`, a trailing comma allowed; consumes `close`.
    private mutating func parseItems(until close: UInt8, depth: Int) throws -> [PythonLiteral] {
        var items: [PythonLiteral] = []
        while true {
            skipWhitespace()
            if current == close {
                position += 1
                return items
            }
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            if current == UInt8(ascii: ",") {
                position += 1
            } else if current != close {
                throw failure("expected ',' or '\(Character(Unicode.Scalar(close)))'")
            }
        }
    }

    /// An integer such as `12`, `1_000`, `-3` or Python 2's `7L`; anything with a '.', an
    /// exponent or a letter is a float (kept as text, only ever reported as an error).
    private mutating func parseNumber() throws -> PythonLiteral {
        let start = position
        var negative = false
        if current == UInt8(ascii: "-") || current == UInt8(ascii: "+") {
            negative = current == UInt8(ascii: "-")
            position += 1
            skipWhitespace()
        }
        var digits: [UInt8] = []
        var isFloat = false
        while let byte = current {
            if PythonLiteralParser.isDigit(byte) {
                digits.append(byte)
            } else if byte == UInt8(ascii: "_") && !digits.isEmpty && PythonLiteralParser.isDigit(bytes[position - 1]) {
                // a separator between digits
            } else if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
                        || ((byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")) && isFloat) {
                isFloat = true
            } else {
                break
            }
            position += 1
        }
        guard !digits.isEmpty else {
            position = start
            throw failure("invalid number")
        }
        if isFloat {
            return .float(String(decoding: bytes[start..<position], as: UTF8.self))
        }
        if current == UInt8(ascii: "L") || current == UInt8(ascii: "l") { position += 1 }
        guard !PythonLiteralParser.isLetter(current) else { throw failure("invalid number") }
        let magnitude = String(decoding: digits, as: UTF8.self)
        return .int(Int((negative ? "-" : "") + magnitude))
    }

    /// A '...' or "..." string without prefixes; backslash escapes are decoded for the
    /// common cases and otherwise kept literally (descr values never contain them).
    private mutating func parseString() throws -> String {
        let quote = bytes[position]
        position += 1
        var out: [UInt8] = []
        while true {
            guard let byte = current, byte != 0x0A else { throw failure("unterminated string") }
            position += 1
            if byte == quote { break }
            if byte == UInt8(ascii: "\\") {
                guard let escape = current else { throw failure("unterminated string") }
                position += 1
                switch escape {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(escape)
                default: out.append(contentsOf: [byte, escape])
                }
            } else {
                out.append(byte)
            }
        }
        // Header bytes are latin-1 (1.0/2.0) or UTF-8 (3.0, checked by the caller); valid
        // UTF-8 decodes as itself and anything else is shown via its latin-1 characters.
        let utf8 = String(decoding: out, as: UTF8.self)
        if Array(utf8.utf8) == out { return utf8 }
        return String(String.UnicodeScalarView(out.map { Unicode.Scalar($0) }))
    }
}
