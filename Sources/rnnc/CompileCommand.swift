import ArgumentParser
import Compiler

struct CompileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compile",
        abstract: "Compile a model to DIR: NAME.c, NAME.h, libNAME.so and NAME.json."
    )

    @Argument(help: "The .rnn model file.") var model: String
    @Option(name: .shortAndLong, help: "Output directory (default: build/MODEL_NAME).") var output: String?
    @Option(help: "Copies of each time loop's step per iteration (1: none; see docs/PERFORMANCE.md).") var unroll: Int = 1

    func validate() throws {
        guard (1...16).contains(unroll) else { throw ValidationError("--unroll must be between 1 and 16") }
    }

    func run() {
        guarded {
            var compilation = try Compilation(path: model)
            compilation.unroll = unroll
            let dir = output ?? "build/\(compilation.libraryName)"
            let library = try compilation.build(into: dir, toolchain: try Toolchain.detect())
            print("compiled \(compilation.graph.name): \(library)")
        }
    }
}
