import Foundation
import GraphIR

/// The whole compiler as one call: `.rnn` text in, artifact directory out.
///
/// DIR holds NAME.c, NAME.h, NAME.json, libNAME.so and the two kernel headers NAME.c
/// includes (so the directory builds again by hand: `cc -shared -fPIC -fopenmp NAME.c`).
/// Each file is written to a temporary name and renamed into place, so an interrupted
/// or failed compile never leaves a half-written artifact.
public struct Compilation: Sendable {
    public static let version = "0.1.0"

    public let sourcePath: String
    public let sourceText: String
    public var graph: Graph
    public var signature: ModelSignature
    /// Copies of each time loop's step per iteration in the generated C (`--unroll N`).
    public var unroll = 1

    /// Parses, checks and optimizes. `observe` sees the graph after each pass.
    public init(path: String, text: String, optimize: Bool = true,
                observe: ((String, Graph) -> Void)? = nil) throws {
        let front = try Frontend.lower(path: path, text: text)
        sourcePath = path
        sourceText = text
        graph = front.graph
        signature = front.signature
        observe?("parsed", graph)
        if optimize { try PassPipeline.standard.run(&graph, observe: observe) }
    }

    public init(path: String, optimize: Bool = true) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw Toolchain.Failure(description: "cannot read \(path): \(Compilation.reason(error))")
        }
        try self.init(path: path, text: text, optimize: optimize)
    }

    public var libraryName: String { CNames.identifier(graph.name) }

    /// A stable hash of the source text and compiler version (FNV-1a, 64 bits), for caches.
    public var contentHash: String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in Array(sourceText.utf8) + Array("rnnc \(Compilation.version)".utf8) {
            h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3
        }
        return String(h, radix: 16)
    }

    public func emitC() -> (source: String, header: String) {
        var emitter = CEmitter(graph: graph, signature: signature, sourcePath: sourcePath, compilerVersion: Compilation.version)
        emitter.unroll = unroll
        return (emitter.emitSource(), emitter.emitHeader())
    }

    /// Writes the artifact directory and builds libNAME.so. Returns the library's path.
    @discardableResult
    public func build(into directory: String, toolchain: Toolchain) throws -> String {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw Toolchain.Failure(description: "cannot create \(directory): \(Compilation.reason(error))")
        }
        let name = libraryName
        let (source, header) = emitC()
        let json = SignatureJSON.emit(signature, graph: graph, compilerVersion: Compilation.version, sourceHash: contentHash)
        try writeAtomically("\(directory)/rnnc_kernels.h", String(decoding: PackageResources.rnnc_kernels_h, as: UTF8.self))
        try writeAtomically("\(directory)/rnnc_safetensors.h", String(decoding: PackageResources.rnnc_safetensors_h, as: UTF8.self))
        try writeAtomically("\(directory)/\(name).h", header)
        try writeAtomically("\(directory)/\(name).c", source)
        let library = "\(directory)/lib\(name).so"
        let temporary = "\(directory)/.lib\(name).so.\(getpid()).tmp"
        defer { try? fm.removeItem(atPath: temporary) }
        try toolchain.buildSharedLibrary(source: "\(directory)/\(name).c", output: temporary, includeDirectory: directory)
        guard rename(temporary, library) == 0 else {
            throw Toolchain.Failure(description: "cannot write \(library): \(String(cString: strerror(errno)))")
        }
        // The interface file goes last: its presence marks a complete artifact.
        try writeAtomically("\(directory)/\(name).json", json)
        return library
    }

    private func writeAtomically(_ path: String, _ text: String) throws {
        let temporary = "\(path).\(getpid()).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8)) else {
            throw Toolchain.Failure(description: "cannot write \(path)")
        }
        guard rename(temporary, path) == 0 else {
            try? FileManager.default.removeItem(atPath: temporary)
            throw Toolchain.Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    static func reason(_ error: Error) -> String {
        if let e = error as? CocoaError, let u = e.userInfo[NSUnderlyingErrorKey] as? NSError {
            return String(cString: strerror(Int32(u.code)))
        }
        return error.localizedDescription
    }
}
