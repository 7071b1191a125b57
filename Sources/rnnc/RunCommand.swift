import ArgumentParser
import Foundation
import Runtime

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run inference: .npy inputs in, one .npy per output out."
    )

    @Argument(help: "A .rnn file (compiled on the fly, cached) or a compiled model directory.") var model: String
    @Option(help: "The safetensors weight file.") var weights: String
    @Option(name: .customLong("input"), help: "NAME=FILE.npy, once per model input.") var inputs: [String] = []
    @Option(help: "Each example's valid length, int [B], for right-padded batches.") var lengths: String?
    @Option(help: "Directory for OUTPUT_NAME.npy files.") var out: String = "."
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func run() {
        guarded {
            let dir = try ModelResolver.compiledDirectory(for: model)
            var arrays: [String: (file: String, array: NpyArray)] = [:]
            for spec in inputs {
                guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else {
                    throw ValidationError("--input takes NAME=FILE.npy, got '\(spec)'")
                }
                let name = String(spec[..<eq]), file = String(spec[spec.index(after: eq)...])
                guard arrays[name] == nil else { throw ValidationError("input '\(name)' is given twice") }
                arrays[name] = (file, try Npy.read(path: file))
            }
            let lengthArray = try lengths.map { ($0, try Npy.read(path: $0)) }
            let compiled = try CompiledModel(directory: dir, weights: weights)
            if let threads { compiled.setThreads(threads) }
            var binding = try InputBinding(interface: compiled.interface, arrays: arrays, lengths: lengthArray)
            // A forecaster trained with --csv works on standardized values; its weight file
            // records the scaling, so inputs and outputs here are in the series' own units.
            let scaling = SeriesScaling(metadata: try Safetensors.read(path: weights).metadata)
            if let scaling {
                binding.buffers = binding.buffers.map {
                    if case .floats(let v) = $0 { return .floats(v.map { scaling.scale(Double($0)) }) }
                    return $0
                }
            }
            var results = try compiled.run(batch: binding.batch, time: binding.time, inputs: binding.buffers, lengths: binding.lengths)
            if let scaling {
                results = results.map { ($0.shape, $0.values.map { Float(scaling.unscale($0)) }) }
            }
            var isDir: ObjCBool = false
            if !FileManager.default.fileExists(atPath: out, isDirectory: &isDir) {
                do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) }
                catch { throw FormatError("cannot create output directory \(out)") }
            } else if !isDir.boolValue {
                throw FormatError("--out \(out) is a file, not a directory")
            }
            // All or nothing: every output goes to a temporary file first, and only when all
            // are written are they renamed into place.
            var staged: [(temporary: String, final: String)] = []
            defer { for s in staged { unlink(s.temporary) } }
            for (port, result) in zip(compiled.interface.outputs, results) {
                let final = "\(out)/\(port.name).npy"
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: final, isDirectory: &isDirectory), isDirectory.boolValue {
                    throw FormatError("cannot write \(final): it is a directory")
                }
                let temporary = "\(out)/.\(port.name).npy.\(getpid()).partial"
                try Npy.write(NpyArray(shape: result.shape, storage: .float32(result.values)), to: temporary)
                staged.append((temporary, final))
            }
            for s in staged {
                guard rename(s.temporary, s.final) == 0 else {
                    throw FormatError("cannot write \(s.final): \(String(cString: strerror(errno)))")
                }
            }
            for (port, result) in zip(compiled.interface.outputs, results) {
                print("wrote \(out)/\(port.name).npy \(result.shape)")
            }
        }
    }
}
