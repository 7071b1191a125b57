import ArgumentParser
import Foundation
import Runtime

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Sample text from a byte-level language model, streaming it as it is made."
    )

    @Argument(help: "A .rnn file or a compiled model directory (one int[time] input, an output over 256 bytes).") var model: String
    @Option(help: "Trained weights.") var weights: String
    @Option(help: "Text to start from.") var prime: String = "\n"
    @Option(help: "Bytes to generate.") var length: Int = 200
    @Option(help: "Sampling temperature: below 1 is more conservative, above 1 more varied.") var temperature: Double = 1.0
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func validate() throws {
        guard length >= 0 else { throw ValidationError("--length must be at least 0") }
        guard temperature > 0 else { throw ValidationError("--temperature must be positive") }
        guard !prime.isEmpty else { throw ValidationError("--prime must not be empty") }
    }

    func run() {
        guarded {
            let dir = try ModelResolver.compiledDirectory(for: model)
            let compiled = try CompiledModel(directory: dir, weights: weights)
            let interface = compiled.interface
            guard interface.inputs.count == 1, interface.inputs[0].isInt, interface.inputs[0].hasTime else {
                throw FormatError("model '\(interface.model)' is not a byte-level language model: it needs one int[time] input")
            }
            guard let outputIndex = interface.outputs.firstIndex(where: { $0.hasTime && $0.features == [256] }) else {
                throw FormatError("model '\(interface.model)' has no output of 256 values per step (a distribution over the next byte)")
            }
            if let threads { compiled.setThreads(threads) }
            // One step at a time, each starting where the last one ended.
            compiled.setStateful(true)
            var rng = SeededGenerator(seed: seed)
            var input = Array(prime.utf8).map { Int32($0) }
            FileHandle.standardOutput.write(Data(prime.utf8))
            for _ in 0..<length {
                let out = try compiled.run(batch: 1, time: input.count, inputs: [.ints(input)], lengths: nil)[outputIndex]
                let last = Array(out.values.suffix(256))
                let next = Self.sample(last, temperature: temperature, rng: &rng)
                FileHandle.standardOutput.write(Data([next]))
                input = [Int32(next)]
            }
            FileHandle.standardOutput.write(Data("\n".utf8))
        }
    }

    /// Samples a byte from probabilities (or logits, when the values are not a
    /// distribution), sharpened or flattened by the temperature.
    static func sample(_ values: [Float], temperature: Double, rng: inout SeededGenerator) -> UInt8 {
        let sum = values.reduce(0, +)
        let isDistribution = values.allSatisfy { $0 >= 0 && $0 <= 1 } && abs(sum - 1) < 1e-3
        let logits = values.map { isDistribution ? log(max(Double($0), 1e-30)) : Double($0) }
        let scaled = logits.map { $0 / temperature }
        let top = scaled.max() ?? 0
        let weights = scaled.map { exp($0 - top) }
        var r = rng.unit() * weights.reduce(0, +)
        for (i, w) in weights.enumerated() {
            r -= w
            if r <= 0 { return UInt8(i) }
        }
        return UInt8(weights.count - 1)
    }
}
