import ArgumentParser
import Runtime

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write PyTorch-style initial weights for a model (reproducible for a seed)."
    )

    @Argument(help: "A .rnn file or a compiled model directory.") var model: String
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(name: .shortAndLong, help: "The safetensors file to write.") var output: String

    func run() {
        guarded {
            let dir = try ModelResolver.compiledDirectory(for: model)
            let interface = try ModelInterface.read(path: try interfacePath(dir))
            let tensors = Initializer.initialize(interface, seed: seed)
            try Safetensors.write(tensors, metadata: ["rnnc_model": interface.model, "rnnc_seed": String(seed)], to: output)
            let count = tensors.reduce(0) { $0 + $1.1.count }
            print("wrote \(output): \(tensors.count) tensors, \(count) parameters")
        }
    }
}

/// The NAME.json of a compiled directory.
func interfacePath(_ dir: String) throws -> String {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
    guard let json = names.sorted().first(where: { $0.hasSuffix(".json") }) else {
        throw FormatError("\(dir): not a compiled model (no NAME.json)")
    }
    return "\(dir)/\(json)"
}

import Foundation
