import Foundation
import XCTest
@testable import Runtime

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class SafetensorsTests: XCTestCase {
    // MARK: - Helpers

    /// A safetensors file with the given header text (no padding) and raw data bytes.
    private func file(_ header: String, data: [UInt8] = []) -> [UInt8] {
        let text = Array(header.utf8)
        return (0..<8).map { UInt8(truncatingIfNeeded: text.count >> (8 * $0)) } + text + data
    }

    private func floatBytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } }
    }

    /// Asserts that parsing fails with a FormatError naming the file and containing every key word.
    private func assertRejects(_ bytes: [UInt8], _ keyWords: String..., file: StaticString = #filePath, line: UInt = #line) {
        do {
            let parsed = try Safetensors.parse(bytes, fileName: "w/x.safetensors")
            XCTFail("accepted a bad file with tensors \(parsed.names)", file: file, line: line)
        } catch let error as FormatError {
            XCTAssertTrue(error.description.hasPrefix("w/x.safetensors: "), error.description, file: file, line: line)
            for word in keyWords {
                XCTAssertTrue(error.description.contains(word), "'\(word)' not in: \(error.description)", file: file, line: line)
            }
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    /// A header entry for one tensor.
    private func entry(_ name: String, dtype: String = "\"F32\"", shape: String = "[2]", offsets: String = "[0,8]") -> String {
        "\"\(name)\":{\"dtype\":\(dtype),\"shape\":\(shape),\"data_offsets\":\(offsets)}"
    }

    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "/safetensors-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: - Writing

    func testEncodedByteLayout() {
        let bytes = Safetensors.encode(
            [("a", Tensor(shape: [2], data: [1, 2])), ("b.w", Tensor(shape: [1, 1], data: [3]))],
            metadata: ["format": "pt"])
        let json = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b.w":{"dtype":"F32","shape":[1,1],"data_offsets":[8,12]}}"#
        XCTAssertEqual(json.utf8.count, 143)
        // 143 bytes of JSON, one space of padding: the data starts at 8 + 144, a multiple of 8.
        XCTAssertEqual(Array(bytes[0..<8]), [144, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(String(decoding: bytes[8..<152], as: UTF8.self), json + " ")
        XCTAssertEqual(Array(bytes[152...]), floatBytes([1, 2, 3]))
        XCTAssertEqual(bytes.count, 152 + 12)
    }

    func testEncodingWithoutMetadataOrTensors() {
        XCTAssertEqual(Safetensors.encode([], metadata: [:]), [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
        let bytes = Safetensors.encode([("s", Tensor(shape: [], data: [5]))], metadata: [:])
        let header = #"{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#
        XCTAssertEqual(String(decoding: bytes[8..<(8 + Int(bytes[0]))], as: UTF8.self),
                       header + String(repeating: " ", count: (8 - header.utf8.count % 8) % 8))
    }

    func testRoundTrips() throws {
        let tensors: [(String, Tensor)] = [
            ("rnn.weight_ih_l0", Tensor(shape: [4, 3], data: (0..<12).map { Float($0) * 0.5 - 2 })),
            ("scalar", Tensor(shape: [], data: [-0.0])),
            ("empty", Tensor(shape: [0, 3], data: [])),
            ("special", Tensor(shape: [4], data: [.infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude])),
            ("quote\" back\\slash\nnewline\u{1}é😀", Tensor(shape: [1], data: [7])),
        ]
        let metadata = ["format": "pt", "note": "tab\there \"quoted\" ünïcode"]
        let bytes = Safetensors.encode(tensors, metadata: metadata)
        let parsed = try Safetensors.parse(bytes, fileName: "r.safetensors")
        XCTAssertEqual(parsed.names, tensors.map(\.0))
        XCTAssertEqual(parsed.metadata, metadata)
        for (name, tensor) in tensors {
            XCTAssertEqual(parsed[name], tensor, name)
        }
        XCTAssertEqual(parsed["scalar"]?.data[0].sign, .minus)
        XCTAssertNil(parsed["missing"])
        XCTAssertEqual(parsed, SafetensorsFile(tensors: tensors.map { (name: $0.0, tensor: $0.1) }, metadata: metadata))

        let path = directory + "/w.safetensors"
        try Safetensors.write(tensors, metadata: metadata, to: path)
        XCTAssertEqual(try Safetensors.read(path: path), parsed)
        XCTAssertEqual(try FileBytes.read(path), bytes)
    }

    // MARK: - Reading what other writers produce

    func testReadsAndReproducesTheReferenceWriter() throws {
        let parsed = try Safetensors.parse(SafetensorsFixtures.reference, fileName: "ref.safetensors")
        // The reference writer sorts tensors by name; we keep its header order.
        XCTAssertEqual(parsed.names, ["a.bias", "empty", "lstm.weight_ih_l0", "scalar"])
        XCTAssertEqual(parsed.metadata, ["format": "np"])
        XCTAssertEqual(parsed["a.bias"], Tensor(shape: [2], data: [-1.5, 2]))
        XCTAssertEqual(parsed["empty"], Tensor(shape: [0, 2], data: []))
        XCTAssertEqual(parsed["lstm.weight_ih_l0"], Tensor(shape: [4, 3], data: (0..<12).map(Float.init)))
        XCTAssertEqual(parsed["scalar"], Tensor(shape: [], data: [7]))
        // Given the same order, our writer produces the very same bytes.
        XCTAssertEqual(Safetensors.encode(parsed.tensors.map { ($0.name, $0.tensor) }, metadata: parsed.metadata),
                       SafetensorsFixtures.reference)
    }

    func testKeepsHeaderOrderAndAcceptsOtherValidLayouts() throws {
        // Header order differs from data order, metadata comes last, whitespace and escapes
        // as another JSON writer might produce them, unknown keys are ignored, a zero-size
        // tensor sits inside another's bytes, and there is a gap before the first tensor.
        let header = """
            { "b" : {"data_offsets": [12, 20], "shape": [2], "dtype": "F32", "extra": [null, {}]},
              "\\u0061\\ud83d\\ude00" : {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
              "z": {"dtype": "F32", "shape": [0], "data_offsets": [14, 14]},
              "__metadata__": {"k\\/": "v\\n"} }\t\r\n
            """
        let data = floatBytes([0, 1, 0, 2, 3])
        let parsed = try Safetensors.parse(file(header, data: data), fileName: "o.safetensors")
        XCTAssertEqual(parsed.names, ["b", "a😀", "z"])
        XCTAssertEqual(parsed["b"], Tensor(shape: [2], data: [2, 3]))
        XCTAssertEqual(parsed["a😀"], Tensor(shape: [1], data: [1]))
        XCTAssertEqual(parsed["z"], Tensor(shape: [0], data: []))
        XCTAssertEqual(parsed.metadata, ["k/": "v\n"])

        let nullMetadata = try Safetensors.parse(file("{\"__metadata__\":null}"), fileName: "n.safetensors")
        XCTAssertEqual(nullMetadata, SafetensorsFile())
    }

    // MARK: - Rejections

    func testRejectsBadLengths() {
        assertRejects([], "not a safetensors file", "0 bytes")
        assertRejects([1, 2, 3], "not a safetensors file", "8-byte header length")
        var huge = file("{}")
        huge[0..<8] = [0, 0xE2, 0xF5, 0x05, 0, 0, 0, 0]  // 100_000_256
        assertRejects(huge, "implausibly large")
        assertRejects([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7B, 0x7D], "implausibly large")
        var long = file("{}")
        long[0] = 40
        assertRejects(long, "truncated", "header length is 40 bytes", "only 2 bytes")
    }

    func testRejectsHeadersThatAreNotJSONObjects() {
        assertRejects(file("{\"a\":"), "not valid JSON", "at byte 5")
        assertRejects(file("{\"a\":1,}"), "not valid JSON")
        assertRejects(file("{'a':1}"), "not valid JSON")
        assertRejects(file("{} {}"), "not valid JSON", "after the end")
        assertRejects(file("{\"a\":01}"), "not valid JSON")
        assertRejects(file("{\"a\":\"\\x\"}"), "not valid JSON", "escape")
        assertRejects(file("{\"a\":\"\\ud800\"}"), "not valid JSON", "surrogate")
        assertRejects(file("{\"a\":\"tab\there\"}"), "not valid JSON", "control character")
        assertRejects(file("{\"a\":tru}"), "not valid JSON")
        assertRejects(file(""), "not valid JSON", "unexpected end")
        assertRejects(file("\0{}"), "not valid JSON")
        assertRejects(file("[1, 2]"), "not a JSON object", "a list")
        assertRejects(file("\"hello\""), "not a JSON object", "a string")
        assertRejects(file(String(repeating: "[", count: 100_000)), "not valid JSON", "nesting")
        assertRejects(file("{\"a\":" + String(repeating: "{\"a\":", count: 100) + "1" + String(repeating: "}", count: 101)), "nesting")
        assertRejects(Array(file("{}").prefix(8)) + [0x7B, 0xFF], "not valid UTF-8")
    }

    func testRejectsMalformedEntries() {
        let data = floatBytes([1, 2])
        assertRejects(file("{\"a\":5}", data: data), "tensor 'a'", "a number, not an object")
        assertRejects(file("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", data: data), "tensor 'a'", "no \"dtype\"")
        assertRejects(file("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", data: data), "tensor 'a'", "no \"shape\"")
        assertRejects(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", data: data), "tensor 'a'", "no \"data_offsets\"")
        assertRejects(file("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data: data),
                      "tensor 'a'", "\"dtype\" more than once")
        assertRejects(file("{" + entry("a", dtype: "32") + "}", data: data), "tensor 'a'", "\"dtype\"", "not a string")
        for shape in ["\"2\"", "2", "[2.0]", "[true]", "[[2]]", "[1e1]", "[99999999999999999999]", "null"] {
            assertRejects(file("{" + entry("a", shape: shape) + "}", data: data), "tensor 'a'", "\"shape\"", "not a list of integers")
        }
        assertRejects(file("{" + entry("a", shape: "[-2]") + "}", data: data), "tensor 'a'", "negative dimension")
        assertRejects(file("{" + entry("a", shape: "[4294967296,4294967296,4294967296]") + "}", data: data), "tensor 'a'", "too large")
        for offsets in ["[0]", "[0,4,8]", "[\"0\",\"8\"]", "[-4,4]", "[0,8.0]", "{}", "[0,99999999999999999999]"] {
            assertRejects(file("{" + entry("a", offsets: offsets) + "}", data: data),
                          "tensor 'a'", "\"data_offsets\"", "two non-negative integers")
        }
        assertRejects(file("{" + entry("a", offsets: "[8,0]") + "}", data: data), "tensor 'a'", "[8, 0]", "begin is after its end")
    }

    func testRejectsOffsetsThatDoNotFitTheData() {
        let data = floatBytes([1, 2, 3])
        assertRejects(file("{" + entry("a", offsets: "[4,16]") + "}", data: data),
                      "truncated", "tensor 'a'", "[4, 16]", "only 12 bytes")
        assertRejects(file("{" + entry("a", shape: "[3]", offsets: "[0,8]") + "}", data: data),
                      "tensor 'a'", "shape [3]", "needs 12 bytes", "hold 8 bytes")
        assertRejects(file("{" + entry("a", shape: "[1]", offsets: "[0,8]") + "}", data: data), "needs 4 bytes")
        assertRejects(file("{" + entry("a", offsets: "[0,8]") + "," + entry("b", offsets: "[4,12]") + "}", data: data),
                      "tensors 'a' and 'b' overlap", "[0, 8]", "[4, 12]")
        assertRejects(file("{" + entry("b", offsets: "[4,12]") + "," + entry("a", shape: "[1]", offsets: "[8,12]") + "}", data: data),
                      "overlap")
        // A real file cut short: the last tensor's bytes are missing.
        let full = Safetensors.encode([("a", Tensor(shape: [2], data: [1, 2])), ("b", Tensor(shape: [3], data: [3, 4, 5]))], metadata: [:])
        assertRejects(Array(full.dropLast(2)), "truncated", "tensor 'b'")
    }

    func testRejectsDuplicates() {
        let data = floatBytes([1, 2, 3, 4])
        assertRejects(file("{" + entry("a") + "," + entry("a", offsets: "[8,16]") + "}", data: data),
                      "tensor 'a' appears more than once")
        assertRejects(file("{\"__metadata__\":{},\"__metadata__\":{}}"), "more than one \"__metadata__\"")
        assertRejects(file("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}"), "__metadata__", "'k' more than once")
    }

    func testRejectsOtherDTypesAndBadMetadata() {
        let data = floatBytes([1, 2])
        do {
            _ = try Safetensors.parse(file("{" + entry("x", dtype: "\"F16\"", offsets: "[0,4]") + "}", data: data), fileName: "x.safetensors")
            XCTFail("accepted F16")
        } catch {
            XCTAssertEqual("\(error)", "x.safetensors: unsupported dtype F16 for tensor 'x' (rnnc reads F32)")
        }
        for dtype in ["F64", "I64", "BF16", "BOOL", "U8"] {
            assertRejects(file("{" + entry("x", dtype: "\"\(dtype)\"") + "}", data: data), "unsupported dtype \(dtype) for tensor 'x'")
        }
        for dtype in ["F33", "f32", "", "float32"] {
            assertRejects(file("{" + entry("x", dtype: "\"\(dtype)\"") + "}", data: data), "unknown dtype \"\(dtype)\" for tensor 'x'")
        }
        assertRejects(file("{\"__metadata__\":[1]}"), "\"__metadata__\"", "not an object")
        assertRejects(file("{\"__metadata__\":{\"epoch\":3}}"), "\"__metadata__\"", "'epoch'", "not a string")
    }

    func testMessagesDoNotPassControlCharactersThrough() {
        let header = "{" + entry("evil\\u001b[31m", dtype: "\"F16\"") + "}"
        do {
            _ = try Safetensors.parse(file(header, data: floatBytes([1, 2])), fileName: "e.safetensors")
            XCTFail("accepted F16")
        } catch {
            XCTAssertEqual("\(error)", "e.safetensors: unsupported dtype F16 for tensor 'evil\\u{1b}[31m' (rnnc reads F32)")
        }
    }

    func testReadReportsMissingFile() {
        XCTAssertThrowsError(try Safetensors.read(path: directory + "/none.safetensors")) { error in
            XCTAssertEqual("\(error)", "cannot read \(directory)/none.safetensors: No such file or directory")
        }
    }

    // MARK: - Fuzzing

    /// Random edits of valid files (see `FormatFuzz` in NpyTests.swift) must give either tensors
    /// consistent with their shapes or a FormatError, never a trap.
    func testFuzzedFilesNeverTrap() {
        var rng = FormatFuzz.Generator(seed: 0x5EED_0002)
        let seeds = [
            SafetensorsFixtures.reference,
            Safetensors.encode([("a", Tensor(shape: [2], data: [1, 2])), ("b.w", Tensor(shape: [1, 1], data: [3]))],
                               metadata: ["format": "pt"]),
            Safetensors.encode([("lstm.weight_ih_l0", Tensor(shape: [4, 2], data: Array(repeating: 0.5, count: 8))),
                                ("s", Tensor(shape: [], data: [1])), ("e", Tensor(shape: [0], data: []))], metadata: [:]),
            file("{\"x\":{\"dtype\":\"F16\",\"shape\":[-1,2],\"data_offsets\":[0,4]},\"__metadata__\":{\"k\":\"\\u00e9\"}}", data: [1, 2, 3, 4]),
        ]
        let interesting = Array("{}[],:\" -0123456789eE.\\ntfu\u{0}".utf8) + [0x80, 0xFF, 0xC3]
        var accepted = 0, rejected = 0
        for iteration in 0..<FormatFuzz.iterations {
            var bytes = seeds[iteration % seeds.count]
            let headerEnd = min(bytes.count, 8 + Int(bytes[0]) + Int(bytes[1]) << 8)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                FormatFuzz.mutate(&bytes, headerEnd: headerEnd, interesting: interesting, using: &rng)
            }
            // Now and then, aim at the header length itself.
            if iteration % 10 == 0, bytes.count >= 8 {
                bytes[Int.random(in: 0..<8, using: &rng)] = [0, 1, 0x7F, 0xFF].randomElement(using: &rng)!
            }
            do {
                let parsed = try Safetensors.parse(bytes, fileName: "fuzz.safetensors")
                for (_, tensor) in parsed.tensors {
                    XCTAssertEqual(Tensor.elementCount(tensor.shape), tensor.data.count)
                }
                accepted += 1
            } catch let error as FormatError {
                XCTAssertTrue(error.description.hasPrefix("fuzz.safetensors: "), error.description)
                rejected += 1
            } catch {
                XCTFail("unexpected error \(error)")
            }
        }
        XCTAssertGreaterThan(rejected, 1000)
        XCTAssertGreaterThan(accepted, 10)
    }
}

/// AtomicFile is tested here because safetensors files are what it mostly writes.
final class AtomicFileTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "/atomic-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        chmod(directory, 0o755)
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func entries(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    func testWritesAndReplaces() throws {
        let path = directory + "/out.bin"
        try AtomicFile.write([1, 2, 3], to: path)
        XCTAssertEqual(try FileBytes.read(path), [1, 2, 3])
        try AtomicFile.write([], to: path)
        XCTAssertEqual(try FileBytes.read(path), [])
        try AtomicFile.write(Array(repeating: 7, count: 1 << 20), to: path)
        XCTAssertEqual(try FileBytes.read(path).count, 1 << 20)
        XCTAssertEqual(entries(directory), ["out.bin"], "no temporary file may be left behind")
    }

    func testRelativePathWritesIntoTheCurrentDirectory() throws {
        let old = FileManager.default.currentDirectoryPath
        defer { _ = FileManager.default.changeCurrentDirectoryPath(old) }
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(directory))
        try AtomicFile.write([9], to: "plain.npy")
        XCTAssertEqual(try FileBytes.read(directory + "/plain.npy"), [9])
    }

    func testKeepsPermissionsOfTheFileItReplaces() throws {
        let path = directory + "/secret.bin"
        try AtomicFile.write([1], to: path)
        XCTAssertEqual(chmod(path, 0o600), 0)
        try AtomicFile.write([2], to: path)
        var info = stat()
        XCTAssertEqual(stat(path, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
    }

    func testMissingDirectory() {
        let path = directory + "/no/such/dir/x.npy"
        XCTAssertThrowsError(try AtomicFile.write([1], to: path)) { error in
            XCTAssertEqual("\(error)", "cannot write \(path): No such file or directory")
        }
        XCTAssertEqual(entries(directory), [])
        XCTAssertThrowsError(try Safetensors.write([], metadata: [:], to: path)) { error in
            XCTAssertTrue("\(error)".hasPrefix("cannot write \(path): "))
        }
    }

    func testParentIsAFile() throws {
        try AtomicFile.write([1], to: directory + "/file")
        XCTAssertThrowsError(try AtomicFile.write([2], to: directory + "/file/x.npy")) { error in
            XCTAssertEqual("\(error)", "cannot write \(directory)/file/x.npy: Not a directory")
        }
        XCTAssertEqual(try FileBytes.read(directory + "/file"), [1])
    }

    /// The temporary file is written and then the rename fails: it must be cleaned up and
    /// what was at the target must survive.
    func testFailedRenameRemovesTheTemporaryFile() throws {
        let target = directory + "/taken"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
        try AtomicFile.write([5], to: target + "/inside")
        XCTAssertThrowsError(try AtomicFile.write([1, 2], to: target)) { error in
            XCTAssertTrue("\(error)".hasPrefix("cannot write \(target): "), "\(error)")
        }
        XCTAssertEqual(entries(directory), ["taken"])
        XCTAssertEqual(entries(target), ["inside"])
        XCTAssertThrowsError(try AtomicFile.write([1], to: directory + "/")) { error in
            XCTAssertEqual("\(error)", "cannot write \(directory)/: not a file name")
        }
    }

    func testUnwritableDirectoryLeavesOldFileIntact() throws {
        try XCTSkipIf(geteuid() == 0, "root ignores directory permissions")
        let path = directory + "/w.safetensors"
        try AtomicFile.write([1, 2, 3], to: path)
        XCTAssertEqual(chmod(directory, 0o555), 0)
        XCTAssertThrowsError(try AtomicFile.write([4, 5], to: path)) { error in
            XCTAssertEqual("\(error)", "cannot write \(path): Permission denied")
        }
        XCTAssertEqual(try FileBytes.read(path), [1, 2, 3])
        XCTAssertEqual(entries(directory), ["w.safetensors"])
    }
}

/// A file written by the reference implementation (the `safetensors` Python package 0.8.0,
/// `safetensors.numpy.save_file`), so the tests need no Python.
enum SafetensorsFixtures {
    static let reference: [UInt8] = [
        0x18, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7b, 0x22, 0x5f, 0x5f, 0x6d, 0x65, 0x74, 0x61,
        0x64, 0x61, 0x74, 0x61, 0x5f, 0x5f, 0x22, 0x3a, 0x7b, 0x22, 0x66, 0x6f, 0x72, 0x6d, 0x61, 0x74,
        0x22, 0x3a, 0x22, 0x6e, 0x70, 0x22, 0x7d, 0x2c, 0x22, 0x61, 0x2e, 0x62, 0x69, 0x61, 0x73, 0x22,
        0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46, 0x33, 0x32, 0x22, 0x2c,
        0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x32, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74,
        0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x30, 0x2c, 0x38, 0x5d,
        0x7d, 0x2c, 0x22, 0x65, 0x6d, 0x70, 0x74, 0x79, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70,
        0x65, 0x22, 0x3a, 0x22, 0x46, 0x33, 0x32, 0x22, 0x2c, 0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22,
        0x3a, 0x5b, 0x30, 0x2c, 0x32, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66,
        0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x38, 0x2c, 0x38, 0x5d, 0x7d, 0x2c, 0x22, 0x6c, 0x73,
        0x74, 0x6d, 0x2e, 0x77, 0x65, 0x69, 0x67, 0x68, 0x74, 0x5f, 0x69, 0x68, 0x5f, 0x6c, 0x30, 0x22,
        0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46, 0x33, 0x32, 0x22, 0x2c,
        0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x34, 0x2c, 0x33, 0x5d, 0x2c, 0x22, 0x64,
        0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x38, 0x2c,
        0x35, 0x36, 0x5d, 0x7d, 0x2c, 0x22, 0x73, 0x63, 0x61, 0x6c, 0x61, 0x72, 0x22, 0x3a, 0x7b, 0x22,
        0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46, 0x33, 0x32, 0x22, 0x2c, 0x22, 0x73, 0x68,
        0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66,
        0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x35, 0x36, 0x2c, 0x36, 0x30, 0x5d, 0x7d, 0x7d,
        0x00, 0x00, 0xc0, 0xbf, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f,
        0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x40, 0x40, 0x00, 0x00, 0x80, 0x40, 0x00, 0x00, 0xa0, 0x40,
        0x00, 0x00, 0xc0, 0x40, 0x00, 0x00, 0xe0, 0x40, 0x00, 0x00, 0x00, 0x41, 0x00, 0x00, 0x10, 0x41,
        0x00, 0x00, 0x20, 0x41, 0x00, 0x00, 0x30, 0x41, 0x00, 0x00, 0xe0, 0x40,
    ]
}
