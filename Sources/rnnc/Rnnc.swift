import ArgumentParser
import Compiler
import Foundation
import Runtime

/// The command line: a thin layer over the Compiler and Runtime libraries.
@main
struct Rnnc: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rnnc",
        abstract: "A compiler for recurrent neural networks: .rnn models to fast, self-contained C libraries.",
        version: Compilation.version,
        subcommands: [CompileCommand.self, IRCommand.self, InitCommand.self, RunCommand.self, TrainCommand.self, EvaluateCommand.self, GenerateCommand.self, ForecastCommand.self, TokenizeCommand.self, InspectCommand.self, BenchCommand.self]
    )
}

/// Prints a user-facing error and exits non-zero. Compile errors are already rendered.
func fail(_ error: Error) -> Never {
    let text: String
    switch error {
    case let e as CompileError: text = e.rendered
    case let e as FormatError: text = "rnnc: error: \(e.description)\n"
    case let e as Toolchain.Failure: text = "rnnc: error: \(e.description)\n"
    case let e as PassFailure: text = "rnnc: \(e.description)\n"
    case let e as ValidationError: text = "rnnc: error: \(e.message)\n"
    default: text = "rnnc: error: \(error)\n"
    }
    FileHandle.standardError.write(Data(text.utf8))
    Foundation.exit(1)
}

/// Runs `body`, turning any error into a clean message and exit status 1.
func guarded(_ body: () throws -> Void) {
    do { try body() } catch { fail(error) }
}
