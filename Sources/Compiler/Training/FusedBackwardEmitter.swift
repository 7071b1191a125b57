import GraphIR

/// Writes the backward kernel of a `fused_pointwise` op: for each element it recomputes
/// the forward chain in registers from the saved inputs, then runs the chain in reverse
/// with the rules of `Derivatives`, and adds each input's gradient to its buffer. One
/// pass over memory, as the forward: the fused backward of a fused forward.
///
/// Gradients of inputs are accumulated (`+=`) into buffers with a row stride; an input
/// shared by all rows (a bias) must be given a per-row scratch and summed by the caller,
/// so that threads never write the same element.
struct FusedBackwardEmitter {
    let graph: Graph

    func functionName(_ op: Op) -> String { "fused_\(op.results.first?.index ?? 0)_backward" }

    /// `NAME_part(b0, b1, ...)` for rows [b0, b1) (what a thread of a backward time loop
    /// calls) and, when `whole`, `NAME(rows, ..., threads)` sharing the rows on a team.
    /// The arguments in `summedElsewhere` (biases whose gradient the caller takes from
    /// other rows, `WindowBiasGradients`) get no gradient: their `d` may be NULL.
    func emit(_ op: Op, whole: Bool = true, summedElsewhere: Set<Int> = []) -> String {
        let region = op.region!
        let width = graph.type(of: region.ops.last!.results[0]).featureCount
        let name = functionName(op)
        var s = "/* Backward of \(FusedKernelEmitter(graph: graph).functionName(op)): recompute, then the chain in reverse.\n"
        s += " *   a_i: the forward inputs; g_k: gradients of its outputs; d_i += gradients of its inputs. */\n"
        var params: [String] = []
        for i in region.arguments.indices { params.append("const float *restrict a\(i), size_t a\(i)_stride") }
        for k in region.yields.indices { params.append("const float *restrict g\(k), size_t g\(k)_stride") }
        for i in region.arguments.indices { params.append("float *restrict d\(i), size_t d\(i)_stride") }
        let argNames = region.arguments.indices.flatMap { ["a\($0)", "a\($0)_stride"] }
            + region.yields.indices.flatMap { ["g\($0)", "g\($0)_stride"] }
            + region.arguments.indices.flatMap { ["d\($0)", "d\($0)_stride"] }
        let part = "\(name)_part"
        s += "static void \(part)(" + (["int b0", "int b1"] + params).joined(separator: ",\n" + String(repeating: " ", count: part.count + 13)) + ") {\n"
        s += "    for (int b = b0; b < b1; b++) {\n"
        let declarationsAt = s.count
        let loopHead = "        RNNC_ELEMENTWISE_LOOP\n        for (int j = 0; j < \(width); j++) {\n"
        s += loopHead
        let argIndex = Dictionary(uniqueKeysWithValues: region.arguments.enumerated().map { ($1, $0) })
        func isScalarArg(_ v: ValueID) -> Bool {
            let t = graph.type(of: v)
            return !t.batched && t.dims.isEmpty
        }
        func read(_ v: ValueID) -> String {
            if let i = argIndex[v] { return isScalarArg(v) ? "a\(i)r[0]" : "a\(i)r[j]" }
            return "v\(v.index)"
        }
        // Forward, recomputed (only what the backward chain reads is kept, below).
        var sliceOf: [ValueID: (arg: Int, offset: Int)] = [:]
        var forward: [(value: ValueID, line: String)] = []
        for inner in region.ops {
            let r = inner.results[0]
            let x = inner.operands.map(read)
            if case .slice(let offset, _) = inner.kind { sliceOf[r] = (argIndex[inner.operands[0]]!, offset) }
            let expr = FusedKernelEmitter.expression(inner, operands: x, argument: { argIndex[$0]! })
            forward.append((r, "            const float v\(r.index) = \(expr);\n"))
        }
        let forwardAt = s.count
        // Gradient accumulators: one per value of the chain and per input.
        var differentiable: [ValueID] = []
        for inner in region.ops where inner.kind.isElementwise || isSlice(inner.kind) { differentiable.append(inner.results[0]) }
        for (i, a) in region.arguments.enumerated() where !isScalarArg(a) && !summedElsewhere.contains(i) { differentiable.append(a) }
        let accumulatorsAt = s.count   // declared below, once the chain shows which it uses
        for (k, y) in region.yields.enumerated() { s += "            gv\(y.index) += g\(k)r[j];\n" }
        let tracked = Set(differentiable)
        // Gradients that reach each input element, written once at the end of the body: one
        // read-modify-write per address lets the compiler vectorize the loop (two `+=` to
        // the same row at the same offset defeat its dependence analysis).
        var writes: [(arg: Int, offset: Int, terms: [String])] = []
        func write(_ arg: Int, _ offset: Int, _ term: String) {
            if let k = writes.firstIndex(where: { $0.arg == arg && $0.offset == offset }) { writes[k].terms.append(term) }
            else { writes.append((arg, offset, [term])) }
        }
        var reached: Set<ValueID> = Set(region.yields)   // values some gradient flows into
        for inner in region.ops.reversed() {
            let r = inner.results[0]
            if case .slice = inner.kind {
                let src = inner.operands[0]
                if tracked.contains(src) && reached.contains(r) { write(argIndex[src]!, sliceOf[r]!.offset, "gv\(r.index)") }
                continue
            }
            guard let rule = Derivatives.elementwise[inner.kind] else { continue }
            let operands = inner.operands.map(read)
            let terms = Derivatives.Terms(g: "gv\(r.index)", a: operands[0], b: operands.count > 1 ? operands[1] : "", y: "v\(r.index)")
            guard reached.contains(r) else { continue }
            for (operand, contribution) in zip(inner.operands, rule(terms)) {
                guard let contribution, tracked.contains(operand) else { continue }
                s += "            gv\(operand.index) += \(contribution);\n"
                reached.insert(operand)
            }
        }
        for (i, a) in region.arguments.enumerated() where tracked.contains(a) && reached.contains(a) {
            write(i, 0, "gv\(a.index)")
        }
        for w in writes {
            s += "            d\(w.arg)r[\(w.offset == 0 ? "" : "\(w.offset) + ")j] += \(w.terms.joined(separator: " + "));\n"
        }
        let chain = String(s.dropFirst(accumulatorsAt))
        let accumulators = differentiable.filter { CEmitter.mentions(chain, "gv\($0.index)") }
            .map { "            float gv\($0.index) = 0.0f;\n" }.joined()
        s.insert(contentsOf: accumulators, at: s.index(s.startIndex, offsetBy: accumulatorsAt))
        // Keep the recomputed values the backward chain reads, and the values they read.
        var text = String(s.dropFirst(forwardAt))
        var kept: [String] = []
        for (v, line) in forward.reversed() where CEmitter.mentions(text, "v\(v.index)") {
            kept.insert(line, at: 0)
            text += line
        }
        s.insert(contentsOf: kept.joined(), at: s.index(s.startIndex, offsetBy: forwardAt))
        // Row pointers, for the arrays the loop reads or writes.
        let loop = String(s.dropFirst(declarationsAt))
        var declarations = ""
        var unused = ""
        for i in region.arguments.indices {
            if CEmitter.mentions(loop, "a\(i)r") { declarations += "        const float *restrict a\(i)r = a\(i) + (size_t)b * a\(i)_stride;\n" }
            else { unused += "    (void)a\(i);\n    (void)a\(i)_stride;\n" }
            if CEmitter.mentions(loop, "d\(i)r") { declarations += "        float *restrict d\(i)r = d\(i) + (size_t)b * d\(i)_stride;\n" }
            else { unused += "    (void)d\(i);\n    (void)d\(i)_stride;\n" }
        }
        for k in region.yields.indices {
            declarations += "        const float *restrict g\(k)r = g\(k) + (size_t)b * g\(k)_stride;\n"
        }
        s.insert(contentsOf: declarations, at: s.index(s.startIndex, offsetBy: declarationsAt))
        // Inputs the gradient does not depend on (the backward of `a + b` never reads a).
        let bodyStart = s.range(of: ") {\n")!.upperBound
        s.insert(contentsOf: unused, at: bodyStart)
        // Iteration j touches element j of each output block, and the blocks of one row
        // start at multiples of the width: no two iterations share an address, which the
        // compiler cannot see through a dozen row pointers. Said with `omp simd`, which
        // must come before RNNC_ELEMENTWISE_LOOP (clang wants its loop hint right above the loop).
        if writes.allSatisfy({ $0.offset % width == 0 }) {
            let at = s.range(of: loopHead)!
            s.insert(contentsOf: "        #pragma omp simd\n", at: at.lowerBound)
        }
        s += "        }\n    }\n}\n"
        guard whole else { return s }
        s += "\n" + TeamWrapper(name: name, params: params, argNames: argNames, width: width, split: .rows).emit()
        return s
    }

    private func isSlice(_ k: OpKind) -> Bool {
        if case .slice = k { return true }
        return false
    }
}
