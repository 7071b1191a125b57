import GraphIR

/// One named graph-to-graph transformation.
public protocol Pass: Sendable {
    var name: String { get }
    func run(_ graph: inout Graph)
}

/// Runs passes in order, verifying the graph after each and optionally handing each
/// intermediate graph to an observer (`rnnc ir --stage optimized --print-after-all`).
public struct PassPipeline: Sendable {
    public var passes: [any Pass]

    public init(_ passes: [any Pass]) { self.passes = passes }

    /// The optimization pipeline every model goes through.
    public static let standard = PassPipeline([
        FoldConstants(),
        EliminateCommonSubexpressions(),
        FuseGates(),
        HoistInputProjection(),
        EliminateCommonSubexpressions(),
        FusePointwise(),
        EliminateDeadValues(),
    ])

    public func run(_ graph: inout Graph, observe: ((String, Graph) -> Void)? = nil) throws {
        for pass in passes {
            pass.run(&graph)
            do {
                try Verifier().verify(graph)
            } catch {
                throw PassFailure(pass: pass.name, underlying: "\(error)", graph: Printer().print(graph))
            }
            observe?(pass.name, graph)
        }
    }
}

/// A pass broke an IR invariant: a compiler bug, reported with the graph it produced.
public struct PassFailure: Error, CustomStringConvertible {
    public let pass: String
    public let underlying: String
    public let graph: String
    public var description: String { "internal error: pass '\(pass)' produced invalid IR: \(underlying)\n\(graph)" }
}
