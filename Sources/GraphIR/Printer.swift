/// Prints a graph as stable text: one op per line, regions indented, each op followed by
/// the source line it came from. Used by `rnnc ir` and by the pass tests.
public struct Printer {
    public init() {}

    public func print(_ graph: Graph) -> String {
        var out = "model \(graph.name) {\n"
        for op in graph.ops { printOp(op, graph, indent: 1, into: &out) }
        for (name, value) in graph.outputs {
            out += "  output \"\(name)\" = \(value) : \(graph.type(of: value))\n"
        }
        out += "}\n"
        return out
    }

    private func printOp(_ op: Op, _ graph: Graph, indent: Int, into out: inout String) {
        let pad = String(repeating: "  ", count: indent)
        var line = pad
        if !op.results.isEmpty { line += op.results.map(\.description).joined(separator: ", ") + " = " }
        line += op.kind.mnemonic
        switch op.kind {
        case .input(let n), .param(let n): line += " \"\(n)\""
        case .constant(let v): line += " \(formatNumber(v))"
        case .paramChunk(let i, let n): line += "[\(i)/\(n)]"
        case .slice(let offset, let size): line += "[\(offset)..<\(offset + size)]"
        case .dropout(let rate): line += "(\(rate))"
        default: break
        }
        if !op.operands.isEmpty { line += " " + op.operands.map(\.description).joined(separator: ", ") }
        if !op.results.isEmpty { line += " : " + op.results.map { graph.type(of: $0).description }.joined(separator: ", ") }
        var notes: [String] = []
        if let names = nameNote(op, graph) { notes.append(names) }
        if let label = op.label { notes.append(label) }
        if let s = op.source { notes.append("line \(s.line)") }
        if !notes.isEmpty { line += "  # " + notes.joined(separator: "; ") }
        if let region = op.region {
            out += line + " {\n"
            let args = region.arguments.map { "\($0): \(graph.type(of: $0))" }.joined(separator: ", ")
            out += pad + "  ^(\(args)):\n"
            for inner in region.ops { printOp(inner, graph, indent: indent + 1, into: &out) }
            out += pad + "  yield " + region.yields.map(\.description).joined(separator: ", ") + "\n"
            out += pad + "}\n"
        } else {
            out += line + "\n"
        }
    }

    private func nameNote(_ op: Op, _ graph: Graph) -> String? {
        let names = op.results.compactMap { graph.name(of: $0) }
        if names.isEmpty { return nil }
        if case .param = op.kind { return nil }
        if case .input = op.kind { return nil }
        return names.joined(separator: ", ")
    }

    private func formatNumber(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int(v)) }
        return String(v)
    }
}
