import GraphIR

/// The front end as one call: parse a file (with the prelude's cells), check it and lower
/// it to GraphIR. Throws CompileError with every diagnostic rendered.
public enum Frontend {
    public struct Result: Sendable {
        public var graph: Graph
        public var signature: ModelSignature
    }

    /// The built-in cells, parsed once.
    static let prelude: [String: CellDecl] = {
        let file = SourceFile(path: "<prelude>", text: String(decoding: PackageResources.prelude_rnn, as: UTF8.self))
        let diagnostics = DiagnosticEngine(file: file)
        var parser = Parser(file: file, diagnostics: diagnostics)
        let unit = parser.parse()
        // The prelude has cells but no model, which the parser reports; nothing else may fail.
        precondition(diagnostics.diagnostics.count <= 1, "the prelude does not parse: \(diagnostics.render())")
        return Dictionary(uniqueKeysWithValues: unit.cells.map { ($0.name.text, $0) })
    }()

    public static func lower(path: String, text: String) throws -> Result {
        let file = SourceFile(path: path, text: text)
        let diagnostics = DiagnosticEngine(file: file)
        var parser = Parser(file: file, diagnostics: diagnostics)
        let unit = parser.parse()
        if diagnostics.hasErrors { throw CompileError(diagnostics: diagnostics.diagnostics, rendered: diagnostics.render()) }
        let lowering = ModelLowering(unit: unit, prelude: prelude, file: file, diagnostics: diagnostics)
        guard let (graph, signature) = lowering.lower(), !diagnostics.hasErrors else {
            throw CompileError(diagnostics: diagnostics.diagnostics, rendered: diagnostics.render())
        }
        return Result(graph: graph, signature: signature)
    }
}
