import ArgumentParser
import Compiler

struct CompileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compile",
        abstract: "Compile a model to DIR: NAME.c, NAME.h, libNAME.so and NAME.json."
    )

    @Argument(help: "The .rnn model file.") var model: String
    @Option(name: .shortAndLong, help: "Output directory (default: build/MODEL_NAME).") var output: String?

    func run() {
        guarded {
            let compilation = try Compilation(path: model)
            let dir = output ?? "build/\(compilation.libraryName)"
            let library = try compilation.build(into: dir, toolchain: try Toolchain.detect())
            print("compiled \(compilation.graph.name): \(library)")
        }
    }
}
