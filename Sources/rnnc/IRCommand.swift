import ArgumentParser
import Compiler
import GraphIR

struct IRCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ir",
        abstract: "Print the graph IR of a model at a stage of the compiler."
    )

    enum Stage: String, ExpressibleByArgument, CaseIterable { case parsed, optimized, training }

    @Argument(help: "The .rnn model file.") var model: String
    @Option(help: "parsed, optimized or training.") var stage: Stage = .optimized
    @Flag(help: "Print the IR after every pass (with --stage optimized).") var printAfterAll = false

    func run() {
        guarded {
            switch stage {
            case .parsed:
                let c = try Compilation(path: model, optimize: false)
                print(Printer().print(c.graph), terminator: "")
            case .optimized:
                if printAfterAll {
                    let text = try String(contentsOfFile: model, encoding: .utf8)
                    _ = try Compilation(path: model, text: text) { pass, graph in
                        print("// ----- after \(pass)")
                        print(Printer().print(graph), terminator: "")
                    }
                } else {
                    let c = try Compilation(path: model)
                    print(Printer().print(c.graph), terminator: "")
                }
            case .training:
                let c = try Compilation(path: model)
                print(TrainingPlan(graph: c.graph, signature: c.signature).print(), terminator: "")
            }
        }
    }
}
