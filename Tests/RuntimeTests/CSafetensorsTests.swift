// Tests for the C safetensors loader (Sources/CKernels/include/rnnc_safetensors.h)
// that every generated library includes. The files are built byte by byte here,
// so each test states exactly what the loader is given.

import CKernels
import Foundation
import XCTest

// MARK: - Building files

/// A safetensors file: 8-byte little-endian header length, the header, the data section.
private func stFile(header: String, data: [UInt8] = []) -> [UInt8] {
    let json = Array(header.utf8)
    return stLength(UInt64(json.count)) + json + data
}

private func stLength(_ n: UInt64) -> [UInt8] {
    withUnsafeBytes(of: n.littleEndian) { Array($0) }
}

/// Little-endian bytes of the floats (the host is little-endian, as the loader requires).
private func stFloats(_ values: [Float]) -> [UInt8] {
    values.withUnsafeBytes { Array($0) }
}

/// A header with one F32 tensor entry, for tests that vary a single field.
private func stOneTensor(_ name: String = "w", shape: String = "[2]", offsets: String = "[0, 8]",
                         dtype: String = "\"F32\"") -> String {
    "{\"\(name)\": {\"dtype\": \(dtype), \"shape\": \(shape), \"data_offsets\": \(offsets)}}"
}

// MARK: - Reading results

/// What a parse produced, copied out of the C structures so the file can be closed at once.
private struct STParsed {
    struct Tensor: Equatable {
        var name: String
        var shape: [Int64]
        var values: [Float]
    }
    var tensors: [Tensor] = []
    var metadata: [String: String] = [:]
}

private func stTensorInfo(_ t: rnnc_st_tensor) -> STParsed.Tensor {
    let shape = withUnsafeBytes(of: t.shape) { Array($0.bindMemory(to: Int64.self).prefix(Int(t.rank))) }
    return STParsed.Tensor(name: String(cString: t.name), shape: shape,
                         values: Array(UnsafeBufferPointer(start: t.data, count: t.count)))
}

/// Copies the file's contents out, checking the structural promises the generated code relies on.
private func stCollect(_ f: inout rnnc_st_file, file: StaticString = #filePath, line: UInt = #line) -> STParsed {
    var out = STParsed()
    for i in 0..<Int(f.count) {
        let t = f.tensors[i]
        XCTAssert((0...8).contains(t.rank), file: file, line: line)
        let address = UInt(bitPattern: t.data)
        XCTAssertEqual(address % 4, 0, "tensor data must be 4-byte aligned", file: file, line: line)
        let start = UInt(bitPattern: f.buffer)
        XCTAssert(address >= start && address + UInt(t.count * 4) <= start + UInt(f.size),
                  "tensor data must lie inside the buffer", file: file, line: line)
        out.tensors.append(stTensorInfo(t))
    }
    for i in 0..<Int(f.meta_count) {
        out.metadata[String(cString: f.meta_keys[i]!)] = String(cString: f.meta_values[i]!)
    }
    return out
}

private func stIsEmpty(_ f: rnnc_st_file) -> Bool {
    f.buffer == nil && f.size == 0 && f.tensors == nil && f.count == 0
        && f.meta_keys == nil && f.meta_values == nil && f.meta_count == 0
}

/// Parses bytes with rnnc_st_parse; returns the contents or the error message.
private func stParse(_ bytes: [UInt8], label: String = "w.safetensors") -> Result<STParsed, STParseError> {
    var f = rnnc_st_file()
    var err = [CChar](repeating: 0x55, count: 512)
    let rc = bytes.withUnsafeBufferPointer { rnnc_st_parse($0.baseAddress, $0.count, label, &f, &err, err.count) }
    defer { rnnc_st_close(&f) }
    if rc == 0 { return .success(stCollect(&f)) }
    XCTAssertEqual(rc, -1)
    XCTAssert(stIsEmpty(f), "a failed parse must leave the file empty")
    return .failure(STParseError(message: stText(err)))
}

private struct STParseError: Error { var message: String }

/// The NUL-terminated text in a C buffer.
private func stText(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

private func stParseOK(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> STParsed? {
    switch stParse(bytes) {
    case .success(let p): return p
    case .failure(let e):
        XCTFail("unexpected error: \(e.message)", file: file, line: line)
        return nil
    }
}

/// Asserts that parsing fails with a one-line message that starts with the label
/// and contains every key phrase.
private func stExpectError(_ bytes: [UInt8], _ phrases: [String],
                         file: StaticString = #filePath, line: UInt = #line) {
    switch stParse(bytes) {
    case .success:
        XCTFail("expected an error containing \(phrases)", file: file, line: line)
    case .failure(let e):
        XCTAssert(e.message.hasPrefix("w.safetensors: "), "message must start with the label: \(e.message)",
                  file: file, line: line)
        XCTAssertFalse(e.message.contains("\n"), "message must be one line: \(e.message)", file: file, line: line)
        for phrase in phrases {
            XCTAssert(e.message.contains(phrase), "\"\(e.message)\" lacks \"\(phrase)\"", file: file, line: line)
        }
    }
}

private func stTemporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rnnc-st-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

// MARK: - Tests

final class CSafetensorsTests: XCTestCase {

    func testReadsTensorsShapesValuesAndMetadata() throws {
        let a: [Float] = [1, 2, 3, 4, 5, 6], b: [Float] = [-0.5], c: [Float] = [7, 8, 9]
        let header = """
            {"lstm.weight_ih_l0":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},\
            "__metadata__":{"format":"pt","rnnc":"1"},\
            "scalar":{"dtype":"F32","shape":[],"data_offsets":[24,28]},\
            "empty":{"dtype":"F32","shape":[0,5],"data_offsets":[28,28]},\
            "bias":{"dtype":"F32","shape":[3],"data_offsets":[28,40]}}
            """
        let parsed = try XCTUnwrap(stParseOK(stFile(header: header, data: stFloats(a + b + c))))
        XCTAssertEqual(parsed.tensors, [
            .init(name: "lstm.weight_ih_l0", shape: [2, 3], values: a),
            .init(name: "scalar", shape: [], values: b),
            .init(name: "empty", shape: [0, 5], values: []),
            .init(name: "bias", shape: [3], values: c),
        ])
        XCTAssertEqual(parsed.metadata, ["format": "pt", "rnnc": "1"])
    }

    func testFindAndMetaLookups() {
        let header = """
            {"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},\
            "b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}
            """
        let bytes = stFile(header: header, data: stFloats([10, 20]))
        var f = rnnc_st_file()
        var err = [CChar](repeating: 0, count: 256)
        XCTAssertEqual(bytes.withUnsafeBufferPointer { rnnc_st_parse($0.baseAddress, $0.count, "x", &f, &err, 256) }, 0)
        defer { rnnc_st_close(&f) }
        XCTAssertEqual(rnnc_st_find(&f, "b")?.pointee.data.pointee, 20)
        XCTAssertNil(rnnc_st_find(&f, "c"))
        XCTAssertNil(rnnc_st_find(&f, "B"))
        XCTAssertEqual(rnnc_st_meta(&f, "format").map { String(cString: $0) }, "pt")
        XCTAssertNil(rnnc_st_meta(&f, "missing"))
        XCTAssertNil(rnnc_st_find(nil, "a"))
        XCTAssertNil(rnnc_st_meta(nil, "format"))
    }

    func testKeysInAnyOrderWhitespaceAndUnknownFields() throws {
        // Fields in every order, JSON whitespace everywhere, an unknown field holding
        // nested values (skipped), and the trailing space padding real writers add.
        let header = " \r\n{\t\"t\" :\n{ \"data_offsets\" : [ 0 , 12 ] ,\"extra\": {\"k\": [1.5e-3, true, false, null, \"s\"]},"
            + " \"shape\":[ 3 ] , \"dtype\" : \"F32\" } }" + String(repeating: " ", count: 7)
        let parsed = try XCTUnwrap(stParseOK(stFile(header: header, data: stFloats([1, 2, 3]))))
        XCTAssertEqual(parsed.tensors, [.init(name: "t", shape: [3], values: [1, 2, 3])])
        XCTAssertTrue(parsed.metadata.isEmpty)
    }

    func testEmptyHeaderObjectIsAValidFile() throws {
        let parsed = try XCTUnwrap(stParseOK(stFile(header: "{}")))
        XCTAssertTrue(parsed.tensors.isEmpty)
    }

    func testStringEscapesAreDecoded() throws {
        // Name: a"b\c/d<BS><FF><LF><CR><TAB>é😀 — the last two via \u, 😀 as a surrogate pair.
        let escapedName = #"a\"b\\c\/d\b\f\n\r\t\u00e9\uD83D\uDE00"#
        let header = #"{"__metadata__":{"k\u00e9y":"line1\nline2 \u4e2d \"q\""},"#
            + #""\#(escapedName)":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
            + #""raw é 中":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        let parsed = try XCTUnwrap(stParseOK(stFile(header: header, data: stFloats([1, 2]))))
        XCTAssertEqual(parsed.tensors.map(\.name), ["a\"b\\c/d\u{8}\u{c}\n\r\té😀", "raw é 中"])
        XCTAssertEqual(parsed.metadata, ["kéy": "line1\nline2 中 \"q\""])
    }

    func testMisalignedOffsetsAndGapsArePackedAligned() throws {
        // Offsets 2 and 13 are not multiples of 4; the loader must still hand out aligned floats.
        var data: [UInt8] = [0xAA, 0xBB] + stFloats([1.5, -2.5]) + [0xCC, 0xDD, 0xEE] + stFloats([3.25])
        data += [0xFF]
        let header = """
            {"second":{"dtype":"F32","shape":[1],"data_offsets":[13,17]},\
            "first":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}}
            """
        let parsed = try XCTUnwrap(stParseOK(stFile(header: header, data: data)))
        XCTAssertEqual(parsed.tensors, [
            .init(name: "second", shape: [1], values: [3.25]),
            .init(name: "first", shape: [2], values: [1.5, -2.5]),
        ])
    }

    func testOpenReadsAFileFromDisk() throws {
        let path = stTemporaryPath("w.safetensors")
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let values = (0..<300).map { Float($0) * 0.25 }
        let header = #"{"__metadata__":{"format":"pt"},"big":{"dtype":"F32","shape":[3,100],"data_offsets":[0,1200]}}"#
        try Data(stFile(header: header, data: stFloats(values))).write(to: URL(fileURLWithPath: path))

        var f = rnnc_st_file()
        var err = [CChar](repeating: 0, count: 512)
        XCTAssertEqual(rnnc_st_open(path, &f, &err, err.count), 0, stText(err))
        let parsed = stCollect(&f)
        rnnc_st_close(&f)
        rnnc_st_close(&f)  // closing twice is harmless
        XCTAssertEqual(parsed.tensors, [.init(name: "big", shape: [3, 100], values: values)])
        XCTAssertEqual(parsed.metadata, ["format": "pt"])
    }

    func testOpenReportsMissingTruncatedAndDirectoryPaths() throws {
        var f = rnnc_st_file()
        var err = [CChar](repeating: 0, count: 512)

        let missing = stTemporaryPath("absent.safetensors")
        XCTAssertEqual(rnnc_st_open(missing, &f, &err, err.count), -1)
        XCTAssertEqual(stText(err), "\(missing): cannot open: \(String(cString: strerror(ENOENT)))")
        XCTAssert(stIsEmpty(f))

        let dir = (missing as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(rnnc_st_open(dir, &f, &err, err.count), -1)
        XCTAssert(stText(err).hasPrefix("\(dir): "), stText(err))

        // The example from the API documentation: the data section is cut short.
        let path = dir + "/w.safetensors"
        let header = stOneTensor("lstm.weight_ih_l0", shape: "[32, 32]", offsets: "[0, 4096]")
        try Data(stFile(header: header, data: [UInt8](repeating: 0, count: 1024)))
            .write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(rnnc_st_open(path, &f, &err, err.count), -1)
        XCTAssertEqual(stText(err), "\(path): tensor 'lstm.weight_ih_l0': data_offsets [0, 4096) exceed "
                       + "the data section (1024 bytes); the file is truncated or corrupt")
        XCTAssert(stIsEmpty(f))

        try Data([1, 0, 0]).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(rnnc_st_open(path, &f, &err, err.count), -1)
        XCTAssert(stText(err).contains("shorter than 8 bytes"), stText(err))

        try Data(stLength(50) + Array("{}".utf8)).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(rnnc_st_open(path, &f, &err, err.count), -1)
        XCTAssert(stText(err).contains("header length 50 is larger than the 2 bytes after it"),
                  stText(err))
        rnnc_st_close(&f)
    }

    func testRejectsBadFraming() {
        stExpectError([], ["file is 0 bytes", "shorter than 8 bytes"])
        stExpectError([1, 2, 3, 4, 5], ["shorter than 8 bytes"])
        stExpectError(stLength(0) + [1, 2, 3], ["header length is 0"])
        stExpectError(stLength(64) + Array("{}".utf8), ["header length 64", "larger than the 2 bytes", "truncated"])
        stExpectError(stLength(200_000_000) + Array("{}".utf8), ["header length 200000000", "100 MB"])
        stExpectError(stLength(UInt64.max) + Array("{}".utf8), ["100 MB"])
    }

    func testRejectsJSONSyntaxErrorsWithByteOffset() {
        // The '}' after the trailing comma is at byte 22 of the header.
        stExpectError(stFile(header: #"{"a": {"dtype": "F32",}}"#),
                    ["header JSON syntax error at byte 22", "expected a string key", "found '}'"])
        let cases: [(String, [String])] = [
            (#"{"a" 1}"#, ["syntax error at byte 5", "expected ':'"]),
            (#"{"a": {"dtype": "F32"}"#, ["syntax error at byte 22 of 22", "found the end of the header"]),
            // Syntax is checked before meaning: the broken second entry wins over the bad first one.
            (#"{"a": {"dtype": "F16"}, "b": {"shape": [1,]}}"#, ["syntax error at byte 42", "found ']'"]),
            (#"{"a": {}} x"#, ["syntax error at byte 10", "unexpected data after the top-level value"]),
            ("{\"a\u{1}\": 1}", ["syntax error at byte 3", "control character", "found byte 0x01"]),
            (#"{"a\q": 1}"#, ["syntax error at byte 3", "invalid escape"]),
            (#"{"\u12G4": 1}"#, ["syntax error at byte 2", "four hex digits"]),
            (#"{"\ud800x": 1}"#, ["unpaired UTF-16 surrogate"]),
            (#"{"\udc00": 1}"#, ["unpaired UTF-16 surrogate"]),
            (#"{"abc"#, ["syntax error at byte 1", "unterminated string"]),
            (#"{"a": {"dtype": "F32", "shape": [01], "data_offsets": [0, 4]}}"#, ["syntax error", "found '1'"]),
            (#"{"a": {"dtype": "F32", "shape": [1.], "data_offsets": [0, 4]}}"#, ["expected a digit after '.'"]),
            (#"{"a": {"x": tru}}"#, ["syntax error", "expected a JSON value"]),
            (#"{"a": {"x": [1 2]}}"#, ["expected ',' or ']'"]),
            ("   ", ["syntax error at byte 3", "found the end of the header"]),
        ]
        for (header, phrases) in cases { stExpectError(stFile(header: header), phrases) }
        // Invalid UTF-8 inside a string (a lone continuation byte, an overlong encoding).
        stExpectError(stLength(8) + [0x7B, 0x22, 0x80, 0x22, 0x3A, 0x31, 0x7D, 0x20], ["invalid UTF-8"])
        stExpectError(stLength(9) + [0x7B, 0x22, 0xC0, 0xAF, 0x22, 0x3A, 0x31, 0x7D, 0x20], ["invalid UTF-8"])
        // Unknown values nested past the depth limit fail cleanly instead of exhausting the stack.
        let deep = #"{"a": {"x": "# + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}}"
        stExpectError(stFile(header: deep), ["nested more than 128 levels"])
    }

    func testRejectsATopLevelThatIsNotAnObject() {
        stExpectError(stFile(header: "[1, 2]"), ["the header is an array, not a JSON object"])
        stExpectError(stFile(header: #""F32""#), ["the header is a string, not a JSON object"])
        stExpectError(stFile(header: "42"), ["the header is a number, not a JSON object"])
    }

    func testRejectsMalformedEntries() {
        let cases: [(String, [String])] = [
            (#"{"w": 5}"#, ["tensor 'w': entry is a number, expected an object with dtype, shape and data_offsets"]),
            (#"{"w": ["F32"]}"#, ["tensor 'w': entry is an array"]),
            (#"{"w": {"shape": [1], "data_offsets": [0, 4]}}"#, ["tensor 'w'", "missing \"dtype\""]),
            (#"{"w": {"dtype": "F32", "data_offsets": [0, 4]}}"#, ["tensor 'w'", "missing \"shape\""]),
            (#"{"w": {"dtype": "F32", "shape": [1]}}"#, ["tensor 'w'", "missing \"data_offsets\""]),
            (stOneTensor(dtype: "32"), ["tensor 'w': dtype is a number, expected a string"]),
            (stOneTensor(shape: "\"2\""), ["tensor 'w': shape is a string, expected an array of non-negative integers"]),
            (stOneTensor(shape: "[2, null]"), ["tensor 'w': shape[1] is null, expected a non-negative integer"]),
            (stOneTensor(offsets: "{\"begin\": 0}"), ["tensor 'w': data_offsets is an object"]),
            (stOneTensor(offsets: "[0, 4, 8]"), ["data_offsets has 3 entries, expected 2"]),
            (stOneTensor(offsets: "[0]"), ["data_offsets has 1 entries, expected 2"]),
            (#"{"w": {"dtype": "F32", "dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#,
             ["tensor 'w'", "duplicate key 'dtype'"]),
            (#"{"w": {"dtype": "F32", "shape": [1], "shape": [1], "data_offsets": [0, 4]}}"#,
             ["duplicate key 'shape'"]),
            (#"{"a\u0000b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, ["NUL character"]),
        ]
        for (header, phrases) in cases { stExpectError(stFile(header: header, data: [UInt8](repeating: 0, count: 8)), phrases) }
    }

    func testRejectsDtypesOtherThanF32() {
        for dtype in ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F64", "I64", "U64"] {
            stExpectError(stFile(header: stOneTensor(dtype: "\"\(dtype)\""), data: [UInt8](repeating: 0, count: 8)),
                        ["tensor 'w': unsupported dtype '\(dtype)'", "rnnc reads F32"])
        }
        for dtype in ["f32", "FLOAT", "", "F32 "] {
            stExpectError(stFile(header: stOneTensor(dtype: "\"\(dtype)\""), data: [UInt8](repeating: 0, count: 8)),
                        ["tensor 'w': unknown dtype '\(dtype)'", "rnnc reads F32"])
        }
    }

    func testRejectsBadShapes() {
        let data = [UInt8](repeating: 0, count: 64)
        let cases: [(String, [String])] = [
            ("[1, 1, 1, 1, 1, 1, 1, 1, 1]", ["tensor 'w': shape has rank 9", "at most 8"]),
            ("[2, -3]", ["shape[1] is -3", "negative", "non-negative integers"]),
            ("[2.5]", ["shape[0] is 2.5", "not an integer"]),
            ("[2.0]", ["shape[0] is 2.0", "not an integer"]),
            ("[1e2]", ["shape[0] is 1e2", "not an integer"]),
            ("[99999999999999999999]", ["shape[0] is 99999999999999999999", "too large"]),
            ("[9223372036854775808]", ["too large"]),  // INT64_MAX + 1 does not fit the int64 shape
            // 2^32 * 2^32 * 16 elements overflows 64 bits; the guard must catch it, not wrap.
            ("[4294967296, 4294967296, 16]", ["shape [4294967296, 4294967296, 16] has too many elements"]),
            ("[4611686018427387904]", ["too many elements"]),  // 2^62 floats: the byte count overflows
        ]
        for (shape, phrases) in cases {
            stExpectError(stFile(header: stOneTensor(shape: shape), data: data), phrases)
        }
        // Eight dimensions is the maximum and is accepted; a zero dimension beside huge ones means no elements.
        XCTAssertNotNil(stParseOK(stFile(header: stOneTensor(shape: "[1,1,1,1,1,1,1,2]"), data: stFloats([1, 2]))))
        XCTAssertNotNil(stParseOK(stFile(header: stOneTensor(shape: "[0, 9223372036854775807, 9223372036854775807]",
                                                              offsets: "[0, 0]"))))
        XCTAssertNotNil(stParseOK(stFile(header: stOneTensor(shape: "[-0, 3]", offsets: "[0, 0]"))))
    }

    func testRejectsBadDataOffsets() {
        let data = [UInt8](repeating: 0, count: 16)
        stExpectError(stFile(header: stOneTensor(offsets: "[8, 0]"), data: data),
                    ["tensor 'w': data_offsets [8, 0): begin is greater than end"])
        stExpectError(stFile(header: stOneTensor(offsets: "[-4, 4]"), data: data), ["data_offsets[0] is -4", "negative"])
        stExpectError(stFile(header: stOneTensor(offsets: "[0, 18446744073709551616]"), data: data), ["too large"])
        stExpectError(stFile(header: stOneTensor(offsets: "[12, 20]"), data: data),
                    ["tensor 'w': data_offsets [12, 20) exceed the data section (16 bytes); the file is truncated or corrupt"])
        stExpectError(stFile(header: stOneTensor(offsets: "[0, 12]"), data: data),
                    ["tensor 'w': data_offsets [0, 12) hold 12 bytes but shape [2] of F32 needs 8 bytes", "size mismatch"])
        stExpectError(stFile(header: stOneTensor(offsets: "[18446744073709551608, 18446744073709551615]"), data: data),
                    ["exceed the data section"])
    }

    func testRejectsOverlapsAndDuplicates() {
        let data = [UInt8](repeating: 0, count: 32)
        stExpectError(stFile(header: """
            {"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}
            """, data: data), ["tensors 'a' and 'b' overlap", "[0, 12) and [8, 16)"])
        // One range inside another, listed in the other order.
        stExpectError(stFile(header: """
            {"inner":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"outer":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}}
            """, data: data), ["tensors 'outer' and 'inner' overlap"])
        // Two identical ranges.
        stExpectError(stFile(header: """
            {"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}
            """, data: data), ["overlap"])
        // Adjacent ranges and empty ranges inside others do not overlap.
        XCTAssertNotNil(stParseOK(stFile(header: """
            {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},\
            "e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}
            """, data: data)))
        stExpectError(stFile(header: """
            {"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}
            """, data: data), ["tensor 'a': duplicate tensor name"])
    }

    func testRejectsBadMetadata() {
        let cases: [(String, [String])] = [
            (#"{"__metadata__": {"epochs": 3}}"#, ["__metadata__ value for 'epochs' is a number", "must be strings"]),
            (#"{"__metadata__": {"a": "x", "b": ["y"]}}"#, ["__metadata__ value for 'b' is an array"]),
            (#"{"__metadata__": {"a": null}}"#, ["value for 'a' is null"]),
            (#"{"__metadata__": ["a"]}"#, ["__metadata__ is an array, expected an object of string values"]),
            (#"{"__metadata__": {"a": "x", "a": "y"}}"#, ["duplicate __metadata__ key 'a'"]),
            (#"{"__metadata__": {}, "__metadata__": {}}"#, ["duplicate \"__metadata__\""]),
            (#"{"__metadata__": {"a": "x\u0000y"}}"#, ["value for 'a' contains a NUL character"]),
        ]
        for (header, phrases) in cases { stExpectError(stFile(header: header), phrases) }
    }

    func testMessagesAreSanitizedAndTruncated() {
        // A control character in a name is shown escaped so the message stays on one line.
        stExpectError(stFile(header: stOneTensor("a\\nb", dtype: "\"F16\""), data: [UInt8](repeating: 0, count: 8)),
                    ["tensor 'a\\x0ab': unsupported dtype"])
        // A very long name is shortened.
        let long = String(repeating: "x", count: 5000)
        if case .failure(let e) = stParse(stFile(header: stOneTensor(long, dtype: "\"F16\""))) {
            XCTAssert(e.message.contains("xxx...': unsupported dtype"), e.message)
            XCTAssertLessThan(e.message.count, 400)
        } else {
            XCTFail("expected an error")
        }
        // The error buffer is always NUL-terminated, whatever its size.
        let bytes = stFile(header: "[]")
        for size in [1, 2, 10, 17] {
            var f = rnnc_st_file()
            var err = [CChar](repeating: 0x55, count: size + 1)
            XCTAssertEqual(bytes.withUnsafeBufferPointer { rnnc_st_parse($0.baseAddress, $0.count, "w.safetensors", &f, &err, size) }, -1)
            XCTAssertEqual(strlen(err), size - 1)
            XCTAssertEqual(err[size], 0x55, "nothing written past errlen")
            XCTAssertEqual(stText(err), String("w.safetensors: the header".prefix(size - 1)))
        }
        var f = rnnc_st_file()
        XCTAssertEqual(bytes.withUnsafeBufferPointer { rnnc_st_parse($0.baseAddress, $0.count, nil, &f, nil, 0) }, -1)
        XCTAssertEqual(rnnc_st_open(nil, &f, nil, 0), -1)
    }

    func testFormatShape() {
        func format(_ shape: [Int64], size: Int = 64) -> String {
            var buf = [CChar](repeating: 0x55, count: size)
            rnnc_st_format_shape(shape, Int32(shape.count), &buf, size)
            return stText(buf)
        }
        XCTAssertEqual(format([2, 3, 4]), "[2, 3, 4]")
        XCTAssertEqual(format([7]), "[7]")
        XCTAssertEqual(format([]), "[]")
        XCTAssertEqual(format([9_223_372_036_854_775_807, 0]), "[9223372036854775807, 0]")
        XCTAssertEqual(format([2, 3, 4], size: 5), "[2, ")
        var buf = [CChar](repeating: 0x55, count: 4)
        rnnc_st_format_shape(nil, 3, &buf, 4)
        XCTAssertEqual(stText(buf), "[]")
    }

    /// Thousands of random corruptions of a valid file: each must either parse into a
    /// consistent file or fail with a message, never crash or read out of bounds.
    /// (The header was also run under -fsanitize=address,undefined with a C driver.)
    func testFuzzedInputsParseOrFailCleanly() {
        let header = #"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"#
            + #""__metadata__":{"format":"pt","k\u00e9y":"v\"\\\/\n\ud83d\ude00"},"#
            + #""b":{"dtype":"F32","shape":[],"data_offsets":[26,30]},"#
            + #""z":{"dtype":"F32","shape":[0,5],"data_offsets":[30,30]}}  "#
        let valid = stFile(header: header, data: stFloats([1, 2, 3, 4, 5, 6]) + [0, 0] + stFloats([7]))
        XCTAssertNotNil(stParseOK(valid))
        let interesting = Array("\"{}[],:\\0123456789-.eEu \nFtrue".utf8) + [0x00, 0x80, 0xC3, 0xFF]

        var rng = STRandom(seed: 20240607)
        var parsedCount = 0, rejectedCount = 0
        for _ in 0..<4000 {
            var bytes = valid
            for _ in 0..<(1 + rng.below(3)) where !bytes.isEmpty {
                let at = rng.below(bytes.count)
                switch rng.below(6) {
                case 0: bytes[at] ^= UInt8(1) << UInt8(rng.below(8))
                case 1: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                case 2: bytes[at] = interesting[rng.below(interesting.count)]
                case 3: bytes.removeSubrange(at...)
                case 4:
                    for _ in 0...rng.below(4) { bytes.insert(interesting[rng.below(interesting.count)], at: at) }
                default: bytes.removeSubrange(at..<min(bytes.count, at + 1 + rng.below(6)))
                }
            }
            switch stParse(bytes, label: "fuzz") {
            case .success(let p):
                parsedCount += 1
                for t in p.tensors { XCTAssertEqual(Int64(t.values.count), t.shape.reduce(1, *)) }
            case .failure(let e):
                rejectedCount += 1
                XCTAssert(e.message.hasPrefix("fuzz: ") && e.message.count > 6 && !e.message.contains("\n"), e.message)
            }
        }
        XCTAssertGreaterThan(parsedCount, 0)
        XCTAssertGreaterThan(rejectedCount, 0)
    }
}

/// A small deterministic generator so the fuzz test is reproducible.
private struct STRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
