import Compiler
import Foundation
import Runtime
import XCTest

/// Paths and helpers shared by the compiler tests.
enum TestSupport {
    /// The repository root, found from this file's location.
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static func path(_ relative: String) -> String { "\(root)/\(relative)" }

    /// A fresh temporary directory, removed at process exit by the OS's tmp cleaning.
    static func temporaryDirectory(_ label: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rnnc-test-\(label)-\(getpid())-\(UUID().uuidString.prefix(8))").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static let toolchain: Toolchain = {
        do { return try Toolchain.detect() } catch { fatalError("no C toolchain: \(error)") }
    }()

    /// Compiled model directories, one per model source, shared across tests of a run.
    nonisolated(unsafe) private static var compiled: [String: String] = [:]
    private static let lock = NSLock()

    /// `extraFlags`: C compiler flags added to the toolchain's (such as `-D` settings of
    /// rnnc_kernels.h); each set of flags gets its own build.
    static func compile(_ modelPath: String, extraFlags: [String] = []) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        let key = ([modelPath] + extraFlags).joined(separator: " ")
        if let dir = compiled[key] { return dir }
        let c = try Compilation(path: modelPath)
        let dir = temporaryDirectory("build-\(c.libraryName)" + (extraFlags.isEmpty ? "" : "-\(compiled.count)"))
        var tools = toolchain
        tools.flags += extraFlags
        try c.build(into: dir, toolchain: tools)
        compiled[key] = dir
        return dir
    }

    /// Writes a model's text to a fresh directory as NAME.rnn (NAME: the model's name) and
    /// compiles it; returns the build directory.
    static func compile(modelText: String, name: String) throws -> String {
        let source = "\(temporaryDirectory("src-\(name)"))/\(name).rnn"
        try modelText.write(toFile: source, atomically: true, encoding: .utf8)
        return try compile(source)
    }

    /// A model written inline, compiled and loaded with initial weights (seed 0); also its
    /// build directory, for tests that read the generated C.
    static func load(modelText: String, name: String) throws -> (model: CompiledModel, build: String) {
        let build = try compile(modelText: modelText, name: name)
        return (try load(build: build, name: name, seed: 0), build)
    }

    /// The compiled model `name` in `build`, loaded with PyTorch-style initial weights
    /// drawn from `seed` (written beside it in a temporary directory).
    static func load(build: String, name: String, seed: UInt64) throws -> CompiledModel {
        let interface = try ModelInterface.read(path: "\(build)/\(name).json")
        let weights = "\(temporaryDirectory("weights-\(name)"))/w.safetensors"
        try Safetensors.write(Initializer.initialize(interface, seed: seed), metadata: [:], to: weights)
        return try CompiledModel(directory: build, weights: weights)
    }

    /// The golden weight formula (Tests/Golden/README.md): FNV-1a of the name seeds an LCG.
    static func goldenTensor(name: String, shape: [Int], scale: Double) -> Tensor {
        var h: UInt32 = 2_166_136_261
        for b in name.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        var state = h
        let count = shape.reduce(1, *)
        var data = [Float](repeating: 0, count: count)
        for i in 0..<count {
            state = state &* 1_664_525 &+ 1_013_904_223
            let u = Double(state >> 8) / 16_777_216.0
            data[i] = Float((u - 0.5) * 2.0 * scale)
        }
        return Tensor(shape: shape, data: data)
    }

    static func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        var m: Float = 0
        for (x, y) in zip(a, b) {
            if x.isNaN != y.isNaN { return .infinity }
            m = max(m, abs(x - y))
        }
        return m
    }

    /// The rnnc executable built beside the tests.
    static let executable: String = Bundle.allBundles.compactMap { $0.bundleURL.deletingLastPathComponent().appendingPathComponent("rnnc").path }
        .first { FileManager.default.isExecutableFile(atPath: $0) }
        ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("rnnc").path

    /// Runs the rnnc executable built beside the tests; returns (status, stdout, stderr).
    static func runCLI(_ args: [String], cwd: String? = nil) -> (status: Int32, out: String, err: String) {
        let exe = executable
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        var env = ProcessInfo.processInfo.environment
        env["RNNC_CACHE"] = cacheDirectory
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { return (127, "", "cannot run \(exe): \(error)") }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// Starts rnnc in the background (output discarded), for tests that signal a run.
    static func launchCLI(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["RNNC_CACHE"] = cacheDirectory
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    static let cacheDirectory = temporaryDirectory("cache")
}
