import GraphIR

/// Writes one `fused_pointwise` op as a C function: a loop over rows (batch, or batch x
/// time) around a loop over features whose body computes every member op in registers.
/// Arguments are read through (pointer, row stride): stride 0 broadcasts a parameter.
struct FusedKernelEmitter {
    let graph: Graph

    func functionName(_ op: Op) -> String { "fused_\(op.results.first?.index ?? 0)" }

    /// The C rendering of each op a fused kernel may hold, per element `j` of row `b`:
    /// one table for the forward kernels and the recomputation in backward kernels.
    static func expression(_ op: Op, operands x: [String], argument: (ValueID) -> Int) -> String {
        switch op.kind {
        case .constant(let c): return CNames.floatLiteral(c)
        case .slice(let offset, _): return "a\(argument(op.operands[0]))r[\(offset) + j]"
        case .add: return "\(x[0]) + \(x[1])"
        case .sub: return "\(x[0]) - \(x[1])"
        case .mul: return "\(x[0]) * \(x[1])"
        case .div: return "\(x[0]) / \(x[1])"
        case .neg: return "-\(x[0])"
        case .tanh: return "rnnc_tanhf(\(x[0]))"
        case .sigmoid: return "rnnc_sigmoidf(\(x[0]))"
        case .relu: return "rnnc_reluf(\(x[0]))"
        case .exp: return "rnnc_expf(\(x[0]))"
        case .log: return "logf(\(x[0]))"
        default: preconditionFailure("\(op.kind) in a fused region")
        }
    }

    /// The C functions: `NAME_part` for a block of rows and columns and, when `whole`,
    /// `NAME` for all of them on a team of its own. `sourceLines` are the `.rnn` lines its
    /// ops came from.
    func emit(_ op: Op, sourceLines: [SourceNote], whole: Bool = true) -> String {
        let region = op.region!
        let width = graph.type(of: region.ops.last!.results[0]).featureCount
        let name = functionName(op)
        var s = ""
        s += "/* \(region.ops.filter { $0.kind.isElementwise }.count) element-wise ops fused, rows of \(width)"
        for note in sourceLines { s += "\n * line \(note.line): \(CNames.comment(note.text))" }
        for (i, a) in region.arguments.enumerated() {
            s += "\n *   in  a\(i) \(CNames.shape(graph.type(of: a)))" + (graph.name(of: a).map { " \($0)" } ?? "")
        }
        for (i, y) in region.yields.enumerated() {
            s += "\n *   out o\(i) \(CNames.shape(graph.type(of: y)))" + (graph.name(of: y).map { " \($0)" } ?? "")
        }
        s += "\n */\n"
        // The body works on a block of rows and columns: `_part` is what one thread of a
        // time loop's team calls; the plain function shares the whole among `threads`.
        var args: [String] = []
        for i in region.arguments.indices { args.append("const float *restrict a\(i), size_t a\(i)_stride") }
        for i in region.yields.indices { args.append("float *restrict o\(i), size_t o\(i)_stride") }
        let argNames = region.arguments.indices.flatMap { ["a\($0)", "a\($0)_stride"] }
            + region.yields.indices.flatMap { ["o\($0)", "o\($0)_stride"] }
        let part = "\(name)_part"
        let partParams = ["int b0", "int b1", "int j0", "int j1"] + args
        s += "static void \(part)(" + partParams.joined(separator: ",\n" + String(repeating: " ", count: part.count + 13)) + ") {\n"
        s += "    for (int b = b0; b < b1; b++) {\n"
        for i in region.arguments.indices {
            s += "        const float *restrict a\(i)r = a\(i) + (size_t)b * a\(i)_stride;\n"
        }
        for i in region.yields.indices {
            s += "        float *restrict o\(i)r = o\(i) + (size_t)b * o\(i)_stride;\n"
        }
        s += "        RNNC_ELEMENTWISE_LOOP\n"
        s += "        for (int j = j0; j < j1; j++) {\n"
        let argIndex = Dictionary(uniqueKeysWithValues: region.arguments.enumerated().map { ($1, $0) })
        func read(_ v: ValueID) -> String {
            if let i = argIndex[v] {
                let t = graph.type(of: v)
                if !t.batched && t.dims.isEmpty { return "a\(i)r[0]" }
                return "a\(i)r[j]"
            }
            return "v\(v.index)"
        }
        for inner in region.ops {
            let r = inner.results[0]
            let x = inner.operands.map(read)
            let expr = Self.expression(inner, operands: x, argument: { argIndex[$0]! })
            let label = graph.name(of: r).map { "  /* \($0) */" } ?? ""
            s += "            const float v\(r.index) = \(expr);\(label)\n"
        }
        for (i, y) in region.yields.enumerated() {
            s += "            o\(i)r[j] = \(read(y));\n"
        }
        s += "        }\n    }\n}\n"
        guard whole else { return s }
        s += "\n" + TeamWrapper(name: name, params: args, argNames: argNames, width: width, split: .rowsAndColumns).emit()
        return s
    }
}
