import Foundation
import XCTest
@testable import Runtime

final class NpyTests: XCTestCase {
    // MARK: - Helpers

    /// A .npy file with the given header text (padded and '\n'-terminated like numpy's)
    /// and raw data bytes.
    private func npy(_ header: String, data: [UInt8] = [], major: UInt8 = 1, pad: Bool = true) -> [UInt8] {
        var text = Array(header.utf8)
        if pad {
            let prefix = major == 1 ? 10 : 12
            while (prefix + text.count + 1) % 64 != 0 { text.append(0x20) }
            text.append(0x0A)
        }
        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, 0]
        let width = major == 1 ? 2 : 4
        for i in 0..<width { bytes.append(UInt8(truncatingIfNeeded: text.count >> (8 * i))) }
        return bytes + text + data
    }

    private func floatBytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } }
    }

    /// Asserts that parsing fails with a FormatError naming the file and containing every key word.
    private func assertRejects(_ bytes: [UInt8], _ keyWords: String..., file: StaticString = #filePath, line: UInt = #line) {
        do {
            let array = try Npy.parse(bytes, fileName: "data/x.npy")
            XCTFail("accepted a bad file as \(array.shape) \(array.dtype)", file: file, line: line)
        } catch let error as FormatError {
            XCTAssertTrue(error.description.hasPrefix("data/x.npy: "), error.description, file: file, line: line)
            for word in keyWords {
                XCTAssertTrue(error.description.contains(word), "'\(word)' not in: \(error.description)", file: file, line: line)
            }
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "/npy-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: - Reading numpy's own files

    func testReadsNumpyVersion1Files() throws {
        let a = try Npy.parse(NumpyFixtures.v1Float32x2x3, fileName: "a.npy")
        XCTAssertEqual(a.shape, [2, 3])
        XCTAssertEqual(a.dtype, .float32)
        XCTAssertEqual(a.storage, .float32([0, 1.5, -2, 3.25, 1e-3, -0.0]))
        XCTAssertEqual(a.asFloats()[5].sign, .minus)

        let b = try Npy.parse(NumpyFixtures.v1Int64x5, fileName: "b.npy")
        XCTAssertEqual(b.shape, [5])
        XCTAssertEqual(b.storage, .int64([1, -2, 3, 1 << 40, -(1 << 62)]))
        XCTAssertEqual(b.asInt64(), [1, -2, 3, 1 << 40, -(1 << 62)])

        let c = try Npy.parse(NumpyFixtures.v1Float64Scalar, fileName: "c.npy")
        XCTAssertEqual(c.shape, [])
        XCTAssertEqual(c.count, 1)
        XCTAssertEqual(c.storage, .float64([3.5]))
        XCTAssertNil(c.asInt64())
        XCTAssertEqual(c.asFloats(), [3.5])

        let d = try Npy.parse(NumpyFixtures.v1Int32x0x3, fileName: "d.npy")
        XCTAssertEqual(d.shape, [0, 3])
        XCTAssertEqual(d.storage, .int32([]))
    }

    func testReadsNumpyVersion2And3Files() throws {
        let a = try Npy.parse(NumpyFixtures.v2Float32x2x2, fileName: "a.npy")
        XCTAssertEqual(a.shape, [2, 2])
        XCTAssertEqual(a.storage, .float32([1, 2, 3, 4]))
        XCTAssertEqual(a.asTensor(), Tensor(shape: [2, 2], data: [1, 2, 3, 4]))

        let b = try Npy.parse(NumpyFixtures.v3Int32x3, fileName: "b.npy")
        XCTAssertEqual(b.shape, [3])
        XCTAssertEqual(b.storage, .int32([7, -8, 9]))
        XCTAssertEqual(b.asInt64(), [7, -8, 9])
        XCTAssertEqual(b.asFloats(), [7, -8, 9])
    }

    func testEncodingIsByteForByteWhatNumpyWrites() throws {
        for fixture in [NumpyFixtures.v1Float32x2x3, NumpyFixtures.v1Int64x5,
                        NumpyFixtures.v1Float64Scalar, NumpyFixtures.v1Int32x0x3] {
            let array = try Npy.parse(fixture, fileName: "f.npy")
            XCTAssertEqual(Npy.encode(array), fixture, "\(array.shape) \(array.dtype)")
        }
    }

    // MARK: - Writing

    func testEncodedHeaderLayout() {
        let bytes = Npy.encode(NpyArray(shape: [2, 3], storage: .float32([1, 2, 3, 4, 5, 6])))
        XCTAssertEqual(Array(bytes[0..<8]), [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        XCTAssertEqual((10 + headerLength) % 64, 0, "data must start 64-byte aligned")
        XCTAssertEqual(bytes.count, 10 + headerLength + 24)
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        let expected = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
        XCTAssertTrue(header.hasPrefix(expected), header)
        XCTAssertTrue(header.hasSuffix("\n"))
        XCTAssertEqual(header.dropFirst(expected.count).dropLast(), String(repeating: " ", count: headerLength - expected.count - 1)[...])
        XCTAssertEqual(Array(bytes[(10 + headerLength)...]), floatBytes([1, 2, 3, 4, 5, 6]))

        let scalar = String(decoding: Npy.encode(NpyArray(shape: [], storage: .int64([9]))), as: UTF8.self)
        XCTAssertTrue(scalar.contains("{'descr': '<i8', 'fortran_order': False, 'shape': (), }"))
        let vector = String(decoding: Npy.encode(NpyArray(shape: [5], storage: .int32([1, 2, 3, 4, 5]))), as: UTF8.self)
        XCTAssertTrue(vector.contains("{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }"))
        let doubles = String(decoding: Npy.encode(NpyArray(shape: [1, 1, 1], storage: .float64([1]))), as: UTF8.self)
        XCTAssertTrue(doubles.contains("'descr': '<f8'"))
        XCTAssertTrue(doubles.contains("'shape': (1, 1, 1), }"))
    }

    func testRoundTripsEveryDTypeAndShape() throws {
        let arrays = [
            NpyArray(shape: [], storage: .float32([-7.25])),
            NpyArray(shape: [0], storage: .float32([])),
            NpyArray(shape: [3, 0, 2], storage: .int64([])),
            NpyArray(shape: [4], storage: .float32([.infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude])),
            NpyArray(shape: [2, 3], storage: .float64([1e-300, -1e300, 0.1, 2, 3, 4])),
            NpyArray(shape: [2, 2, 2], storage: .int32([.min, .max, 0, -1, 1, 2, 3, 4])),
            NpyArray(shape: [3, 1], storage: .int64([.min, .max, 0])),
            NpyArray(Tensor(shape: [1, 70], data: (0..<70).map { Float($0) / 3 })),
        ]
        for array in arrays {
            let bytes = Npy.encode(array)
            XCTAssertEqual(try Npy.parse(bytes, fileName: "r.npy"), array)
            let path = directory + "/r.npy"
            try Npy.write(array, to: path)
            XCTAssertEqual(try Npy.read(path: path), array)
            XCTAssertEqual(try FileBytes.read(path), bytes)
        }
    }

    func testNaNRoundTripsBitForBit() throws {
        let nan = Float(bitPattern: 0x7FC0_1234)
        let back = try Npy.parse(Npy.encode(NpyArray(shape: [1], storage: .float32([nan]))), fileName: "n.npy")
        guard case .float32(let values) = back.storage else { return XCTFail("dtype changed") }
        XCTAssertEqual(values[0].bitPattern, 0x7FC0_1234)
    }

    func testLongHeaderFallsBackToVersion2() throws {
        let shape = [Int](repeating: 1, count: 25_000)
        let array = NpyArray(shape: shape, storage: .int32([42]))
        let bytes = Npy.encode(array)
        XCTAssertEqual(bytes[6], 2)
        XCTAssertEqual(try Npy.parse(bytes, fileName: "long.npy"), array)
    }

    // MARK: - Lenient where numpy is

    func testAcceptsNativeOrderSpellingsAndHeaderVariants() throws {
        let data = floatBytes([1, 2])
        for descr in ["'<f4'", "'|f4'", "'=f4'", "'f4'", "\"<f4\""] {
            let bytes = npy("{'descr': \(descr), 'fortran_order': False, 'shape': (2,), }", data: data)
            XCTAssertEqual(try Npy.parse(bytes, fileName: "v.npy").storage, .float32([1, 2]), descr)
        }
        // Key order, missing trailing comma, extra whitespace, Python 2's long suffix.
        let variants = [
            "{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}",
            "{ 'descr' : '<f4' ,\n 'fortran_order' : False , 'shape' : ( 2 , ) , }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2,), }",
        ]
        for header in variants {
            XCTAssertEqual(try Npy.parse(npy(header, data: data), fileName: "v.npy").count, 2, header)
        }
        let separated = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1_0,), }", data: floatBytes(Array(repeating: 0, count: 10)))
        XCTAssertEqual(try Npy.parse(separated, fileName: "v.npy").shape, [10])
        // Without numpy's padding or final newline.
        let bare = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", data: data, pad: false)
        XCTAssertEqual(try Npy.parse(bare, fileName: "v.npy").shape, [2])
        // Fortran order is harmless where it is the same layout as C order.
        for shape in ["(2,)", "(2, 1)", "()", "(0, 3, 4)"] {
            let count = shape == "()" ? 1 : shape.hasPrefix("(0") ? 0 : 2
            let bytes = npy("{'descr': '<f4', 'fortran_order': True, 'shape': \(shape), }", data: floatBytes(Array(repeating: 1, count: count)))
            XCTAssertNoThrow(try Npy.parse(bytes, fileName: "v.npy"), shape)
        }
        // Version 3.0 headers are UTF-8.
        let utf8 = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data: data, major: 3)
        XCTAssertEqual(try Npy.parse(utf8, fileName: "v.npy").count, 2)
    }

    // MARK: - Rejections

    func testRejectsBadMagicVersionAndLengths() {
        assertRejects([], "not a .npy file", "magic")
        assertRejects(Array("hello world, not numpy".utf8), "not a .npy file", "magic")
        assertRejects(Array(NumpyFixtures.v1Float32x2x3.prefix(7)), "magic")
        var v4 = NumpyFixtures.v1Float32x2x3
        v4[6] = 4
        assertRejects(v4, "unsupported", "version 4.0")
        var v11 = NumpyFixtures.v1Float32x2x3
        v11[7] = 1
        assertRejects(v11, "version 1.1")
        assertRejects(Array(NumpyFixtures.v1Float32x2x3.prefix(9)), "truncated", "header length")
        assertRejects(Array(NumpyFixtures.v2Float32x2x2.prefix(11)), "truncated", "header length")
        assertRejects(Array(NumpyFixtures.v1Float32x2x3.prefix(50)), "truncated", "header length is 118 bytes")
        var huge = NumpyFixtures.v2Float32x2x2
        huge[8...11] = [0xFF, 0xFF, 0xFF, 0xFF]
        assertRejects(huge, "truncated", "4294967295")
    }

    func testRejectsUnsupportedLayoutsAndDTypes() {
        assertRejects(NumpyFixtures.fortranFloat32x2x3, "Fortran-order arrays are not supported; save with np.ascontiguousarray")
        assertRejects(NumpyFixtures.objectArray, "object arrays", "'|O'")
        assertRejects(NumpyFixtures.bigEndianFloat32x2, "big-endian", "'>f4'", "astype('<f4')")
        for descr in ["<f2", "|u1", "|b1", "<c8", "<U5", "<u4", "float32", ">f2", ""] {
            assertRejects(npy("{'descr': '\(descr)', 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 0]),
                          "unsupported dtype '\(descr)'")
        }
        assertRejects(npy("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 0, 0, 0, 0, 0]),
                      "structured arrays")
        assertRejects(npy("{'descr': 4, 'fortran_order': False, 'shape': (1,), }"), "malformed header", "'descr'")
    }

    func testRejectsMalformedHeaders() {
        let data = floatBytes([1, 2])
        let cases: [(String, [String])] = [
            ("{'descr': '<f4', 'fortran_order': False}", ["malformed header", "no 'shape'"]),
            ("{'descr': '<f4', 'shape': (2,)}", ["malformed header", "no 'fortran_order'"]),
            ("{'fortran_order': False, 'shape': (2,)}", ["malformed header", "no 'descr'"]),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", ["unexpected key 'extra'"]),
            ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", ["'descr' appears more than once"]),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", ["'shape'", "not a tuple"]),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2)}", ["'shape'", "not a tuple"]),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,)}", ["'shape'", "not a tuple of integers"]),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': ('2',)}", ["'shape'", "not a tuple of integers"]),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", ["negative"]),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}", ["too large"]),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}", ["too large"]),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", ["'fortran_order'", "not True or False"]),
            ("{'descr': '<f4', 'fortran_order': false, 'shape': (2,)}", ["malformed header", "unexpected name"]),
            ("{1: '<f4'}", ["malformed header", "not a string"]),
            ("('<f4', False, (2,))", ["malformed header", "not a dict"]),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", ["malformed header", "expected"]),
            ("{'descr': '<f4 , 'fortran_order': False, 'shape': (2,)}", ["malformed header"]),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk", ["malformed header", "after the dict"]),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\0", ["malformed header"]),
            ("", ["malformed header", "unexpected end"]),
            (String(repeating: "(", count: 5000), ["malformed header", "nesting"]),
        ]
        for (header, words) in cases {
            do {
                _ = try Npy.parse(npy(header, data: data), fileName: "data/x.npy")
                XCTFail("accepted header \(header)")
            } catch let error as FormatError {
                XCTAssertTrue(error.description.hasPrefix("data/x.npy: "), error.description)
                for word in words {
                    XCTAssertTrue(error.description.contains(word), "'\(word)' not in: \(error.description) (header \(header))")
                }
            } catch {
                XCTFail("unexpected error \(error)")
            }
        }
        var badUTF8 = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data: data, major: 3)
        badUTF8[20] = 0xFF
        assertRejects(badUTF8, "not valid UTF-8")
    }

    func testRejectsDataOfTheWrongLength() {
        let full = NumpyFixtures.v1Float32x2x3
        assertRejects(Array(full.dropLast(1)), "truncated", "(2, 3)", "needs 24 bytes", "has 23")
        assertRejects(Array(full.prefix(128)), "truncated", "has 0")
        assertRejects(full + [0, 0, 0, 0], "4 bytes after the data", "(2, 3)")
        assertRejects(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (), }", data: [1, 2, 3]), "truncated", "shape ()")
    }

    func testReadReportsMissingFile() {
        XCTAssertThrowsError(try Npy.read(path: directory + "/missing.npy")) { error in
            XCTAssertEqual((error as? FormatError)?.description,
                           "cannot read \(directory)/missing.npy: No such file or directory")
        }
        XCTAssertThrowsError(try Npy.read(path: directory)) { error in
            XCTAssertEqual((error as? FormatError)?.description, "cannot read \(directory): Is a directory")
        }
    }

    // MARK: - Fuzzing

    /// Random byte flips, overwrites, truncations, insertions and deletions of valid files
    /// must give either an array consistent with its shape or a FormatError, never a trap.
    func testFuzzedFilesNeverTrap() {
        var rng = FormatFuzz.Generator(seed: 0x5EED_0001)
        let seeds = [
            NumpyFixtures.v1Float32x2x3, NumpyFixtures.v1Int64x5, NumpyFixtures.v1Float64Scalar,
            NumpyFixtures.v1Int32x0x3, NumpyFixtures.v2Float32x2x2, NumpyFixtures.v3Int32x3,
            NumpyFixtures.fortranFloat32x2x3, NumpyFixtures.bigEndianFloat32x2,
        ]
        // Characters that change the meaning of a header rather than just its text.
        let interesting = Array("{}()[],:'\" -0123456789LTFN_.\n\u{0}".utf8) + [0x80, 0xFF, 0xC3]
        var accepted = 0, rejected = 0
        for iteration in 0..<FormatFuzz.iterations {
            var bytes = seeds[iteration % seeds.count]
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                FormatFuzz.mutate(&bytes, headerEnd: min(bytes.count, 128), interesting: interesting, using: &rng)
            }
            do {
                let array = try Npy.parse(bytes, fileName: "fuzz.npy")
                XCTAssertEqual(Tensor.elementCount(array.shape), array.count)
                accepted += 1
            } catch let error as FormatError {
                XCTAssertTrue(error.description.hasPrefix("fuzz.npy: "), error.description)
                rejected += 1
            } catch {
                XCTFail("unexpected error \(error)")
            }
        }
        XCTAssertGreaterThan(rejected, 1000)
        XCTAssertGreaterThan(accepted, 10)
    }
}

/// Fuzzing helpers shared by the format tests.
enum FormatFuzz {
    /// Mutations per fuzz test: a few thousand keeps the suite fast; set RNNC_FUZZ_ITERATIONS
    /// to run a long campaign.
    static let iterations = ProcessInfo.processInfo.environment["RNNC_FUZZ_ITERATIONS"].flatMap { Int($0) } ?? 4000

    /// One random edit of a file, biased towards its header where the parsing happens.
    static func mutate(_ bytes: inout [UInt8], headerEnd: Int, interesting: [UInt8], using rng: inout Generator) {
        func position(_ limit: Int) -> Int {
            let end = Bool.random(using: &rng) || Bool.random(using: &rng) ? min(headerEnd, limit) : limit
            return end > 0 ? Int.random(in: 0..<end, using: &rng) : 0
        }
        switch Int.random(in: 0..<7, using: &rng) {
        case 0 where !bytes.isEmpty:
            bytes[position(bytes.count)] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
        case 1 where !bytes.isEmpty:
            bytes[position(bytes.count)] = UInt8.random(in: 0...255, using: &rng)
        case 2 where !bytes.isEmpty:
            bytes[position(bytes.count)] = interesting.randomElement(using: &rng)!
        case 3:
            bytes.removeSubrange(position(bytes.count + 1)...)
        case 4:
            bytes.insert(interesting.randomElement(using: &rng)!, at: position(bytes.count + 1))
        case 5 where !bytes.isEmpty:
            let start = position(bytes.count)
            bytes.removeSubrange(start..<min(bytes.count, start + Int.random(in: 1...8, using: &rng)))
        case 6 where bytes.count > 8:
            // The length fields: make them small, huge or off by a little.
            let index = Int.random(in: 6..<min(bytes.count, 12), using: &rng)
            bytes[index] = [0, 1, 0x7F, 0x80, 0xFF, bytes[index] &+ 1, bytes[index] &- 1].randomElement(using: &rng)!
        default:
            break
        }
    }

    /// A small deterministic generator (SplitMix64) so fuzzing failures reproduce.
    struct Generator: RandomNumberGenerator {
        private var state: UInt64

        init(seed: UInt64) {
            state = seed
        }

        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}

/// Files written by numpy 2.4 (np.save, and np.lib.format.write_array with version=(2, 0)
/// and (3, 0)), so the tests need no Python.
enum NumpyFixtures {
    static let v1Float32x2x3: [UInt8] = [
        0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63,
        0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x34, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74,
        0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73,
        0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x32, 0x2c, 0x20,
        0x33, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x50, 0x40,
        0x6f, 0x12, 0x83, 0x3a, 0x00, 0x00, 0x00, 0x80,
    ]
    static let v1Int64x5: [UInt8] = [
        0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63,
        0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x69, 0x38, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74,
        0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73,
        0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x35, 0x2c, 0x29,
        0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0,
    ]
    static let v1Float64Scalar: [UInt8] = [
        0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63,
        0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x38, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74,
        0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73,
        0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x29, 0x2c, 0x20,
        0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x40,
    ]
    static let v1Int32x0x3: [UInt8] = [
        0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63,
        0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x69, 0x34, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74,
        0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73,
        0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x30, 0x2c, 0x20,
        0x33, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a,
    ]
    static let v2Float32x2x2: [UInt8] = [
        0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x02, 0x00, 0x74, 0x00, 0x00, 0x00, 0x7b, 0x27, 0x64, 0x65,
        0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x34, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f,
        0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61,
        0x6c, 0x73, 0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x32,
        0x2c, 0x20, 0x32, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a,
        0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x40, 0x40, 0x00, 0x00, 0x80, 0x40,
    ]
    static let v3Int32x3: [UInt8] = [
        0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x03, 0x00, 0x74, 0x00, 0x00, 0x00, 0x7b, 0x27, 0x64, 0x65,
        0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x69, 0x34, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f,
        0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61,
        0x6c, 0x73, 0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x33,
        0x2c, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a,
        0x07, 0x00, 0x00, 0x00, 0xf8, 0xff, 0xff, 0xff, 0x09, 0x00, 0x00, 0x00,
    ]
    static let fortranFloat32x2x3: [UInt8] = [
        0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63,
        0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x34, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74,
        0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x54, 0x72, 0x75, 0x65,
        0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x32, 0x2c, 0x20, 0x33,
        0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x40, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x80, 0x40,
        0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0xa0, 0x40,
    ]
    static let bigEndianFloat32x2: [UInt8] = [
        0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63,
        0x72, 0x27, 0x3a, 0x20, 0x27, 0x3e, 0x66, 0x34, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74,
        0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73,
        0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x32, 0x2c, 0x29,
        0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a,
        0x3f, 0x80, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00,
    ]
    static let objectArray: [UInt8] = [
        0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63,
        0x72, 0x27, 0x3a, 0x20, 0x27, 0x7c, 0x4f, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74, 0x72,
        0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73, 0x65,
        0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x32, 0x2c, 0x29, 0x2c,
        0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a,
        0x80, 0x04, 0x95, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8c, 0x16, 0x6e, 0x75, 0x6d,
        0x70, 0x79, 0x2e, 0x5f, 0x63, 0x6f, 0x72, 0x65, 0x2e, 0x6d, 0x75, 0x6c, 0x74, 0x69, 0x61, 0x72,
        0x72, 0x61, 0x79, 0x94, 0x8c, 0x0c, 0x5f, 0x72, 0x65, 0x63, 0x6f, 0x6e, 0x73, 0x74, 0x72, 0x75,
        0x63, 0x74, 0x94, 0x93, 0x94, 0x8c, 0x05, 0x6e, 0x75, 0x6d, 0x70, 0x79, 0x94, 0x8c, 0x07, 0x6e,
        0x64, 0x61, 0x72, 0x72, 0x61, 0x79, 0x94, 0x93, 0x94, 0x4b, 0x00, 0x85, 0x94, 0x43, 0x01, 0x62,
        0x94, 0x87, 0x94, 0x52, 0x94, 0x28, 0x4b, 0x01, 0x4b, 0x02, 0x85, 0x94, 0x68, 0x03, 0x8c, 0x05,
        0x64, 0x74, 0x79, 0x70, 0x65, 0x94, 0x93, 0x94, 0x8c, 0x02, 0x4f, 0x38, 0x94, 0x89, 0x88, 0x87,
        0x94, 0x52, 0x94, 0x28, 0x4b, 0x03, 0x8c, 0x01, 0x7c, 0x94, 0x4e, 0x4e, 0x4e, 0x4a, 0xff, 0xff,
        0xff, 0xff, 0x4a, 0xff, 0xff, 0xff, 0xff, 0x4b, 0x3f, 0x74, 0x94, 0x62, 0x89, 0x5d, 0x94, 0x28,
        0x4b, 0x01, 0x8c, 0x01, 0x61, 0x94, 0x65, 0x74, 0x94, 0x62, 0x2e,
    ]
}
