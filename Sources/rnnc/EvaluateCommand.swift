import ArgumentParser
import Foundation
import Runtime

/// `rnnc evaluate`: the loss (and, for classifiers, the accuracy) of trained weights on a
/// held-out data set, in evaluation mode.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Loss and accuracy of trained weights on arrays (--npy DIR), dropout off."
    )

    @Argument(help: "A .rnn file or a compiled model directory.") var model: String
    @Option(help: "The trained weights.") var weights: String
    @Option(help: "A directory with one .npy per input and target (and lengths.npy).") var npy: String
    @Option(help: "Examples per call.") var batch: Int = 64
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
    }

    func run() {
        guarded {
            let dir = try ModelResolver.compiledDirectory(for: model)
            let compiled = try CompiledModel(directory: dir, weights: weights)
            if let threads { compiled.setThreads(threads) }
            let data = try TrainingData.loadNpyDirectory(npy, interface: compiled.interface)
            let r = try compiled.evaluate(data, range: 0..<data.count, batch: batch)
            var line = String(format: "%d examples: loss %.4f", data.count, r.loss)
            if let accuracy = r.accuracy { line += String(format: ", accuracy %.2f%%", accuracy * 100) }
            print(line)
        }
    }
}
