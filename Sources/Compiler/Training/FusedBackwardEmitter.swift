import GraphIR

/// Writes the backward kernel of a `fused_pointwise` op: for each element it recomputes
/// the forward chain in registers from the saved inputs, then runs the chain in reverse
/// with the rules of `Derivatives`, and adds each input's gradient to its buffer. One
/// pass over memory, as the forward: the fused backward of a fused forward.
///
/// Gradients of inputs are accumulated (`+=`) into buffers with a row stride, or stored
/// (`=`) where the caller says this kernel is the first to write them (`assigned`: the
/// buffer then needs no zeroing first); an input shared by all rows (a bias) must be given
/// a per-row scratch and summed by the caller, so that threads never write the same element.
struct FusedBackwardEmitter {
    let graph: Graph

    func functionName(_ op: Op) -> String { "fused_\(op.results.first?.index ?? 0)_backward" }

    /// `NAME_part(b0, b1, ...)` for rows [b0, b1) (what a thread of a backward time loop
    /// calls) and, when `whole`, `NAME(rows, ..., threads)` sharing the rows on a team.
    /// The arguments in `summedElsewhere` (biases whose gradient the caller takes from
    /// other rows, `WindowBiasGradients`) get no gradient: their `d` may be NULL. Those in
    /// `assigned` (a subset of `wholeWrites`) get their gradient stored, not added.
    func emit(_ op: Op, whole: Bool = true, summedElsewhere: Set<Int> = [], assigned: Set<Int> = []) -> String {
        let region = op.region!
        let width = graph.type(of: region.ops.last!.results[0]).featureCount
        let name = functionName(op)
        var s = "/* Backward of \(FusedKernelEmitter(graph: graph).functionName(op)): recompute, then the chain in reverse.\n"
        s += " *   a_i: the forward inputs; g_k: gradients of its outputs; d_i += gradients of its inputs"
        s += assigned.isEmpty ? ". */\n" : "; \(assigned.sorted().map { "d\($0)" }.joined(separator: ", ")) = (the first to write them). */\n"
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
        let argIndex = argumentIndex(op)
        func read(_ v: ValueID) -> String { reference(v, argIndex) }
        // Forward, recomputed (only what the backward chain reads is kept, below).
        var forward: [(value: ValueID, line: String)] = []
        for inner in region.ops {
            let r = inner.results[0]
            let expr = FusedKernelEmitter.expression(inner, operands: inner.operands.map(read), argument: { argIndex[$0]! })
            forward.append((r, "            const float v\(r.index) = \(expr);\n"))
        }
        let forwardAt = s.count
        let accumulatorsAt = s.count   // declared below, once the chain shows which it uses
        for (k, y) in region.yields.enumerated() { s += "            gv\(y.index) += g\(k)r[j];\n" }
        let flow = reverseChain(op, summedElsewhere: summedElsewhere)
        s += flow.lines
        for w in flow.writes {
            let into = assigned.contains(w.arg) ? "=" : "+="
            s += "            d\(w.arg)r[\(w.offset == 0 ? "" : "\(w.offset) + ")j] \(into) \(w.terms.joined(separator: " + "));\n"
        }
        let differentiable = flow.differentiable
        let writes = flow.writes
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

    /// The reverse chain of a fused op's region: the statements that pass each value's
    /// gradient (`gv`) on to its operands, the gradient accumulators it may use, and for
    /// each (argument, offset) the terms that reach that block of the argument's gradient.
    /// They are written once at the end of the body: one store per address lets the
    /// compiler vectorize the loop (two `+=` to the same row at the same offset defeat its
    /// dependence analysis).
    struct Chain {
        var lines = ""
        var differentiable: [ValueID] = []
        var writes: [(arg: Int, offset: Int, terms: [String])] = []
    }

    func reverseChain(_ op: Op, summedElsewhere: Set<Int> = []) -> Chain {
        let region = op.region!
        let argIndex = argumentIndex(op)
        func read(_ v: ValueID) -> String { reference(v, argIndex) }
        var chain = Chain()
        var sliceOf: [ValueID: (arg: Int, offset: Int)] = [:]
        for inner in region.ops {
            if case .slice(let offset, _) = inner.kind { sliceOf[inner.results[0]] = (argIndex[inner.operands[0]]!, offset) }
        }
        // Gradient accumulators: one per value of the chain and per input.
        for inner in region.ops where inner.kind.isElementwise || isSlice(inner.kind) { chain.differentiable.append(inner.results[0]) }
        for (i, a) in region.arguments.enumerated() where !isScalarArg(a) && !summedElsewhere.contains(i) { chain.differentiable.append(a) }
        let tracked = Set(chain.differentiable)
        func write(_ arg: Int, _ offset: Int, _ term: String) {
            if let k = chain.writes.firstIndex(where: { $0.arg == arg && $0.offset == offset }) { chain.writes[k].terms.append(term) }
            else { chain.writes.append((arg, offset, [term])) }
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
                chain.lines += "            gv\(operand.index) += \(contribution);\n"
                reached.insert(operand)
            }
        }
        for (i, a) in region.arguments.enumerated() where tracked.contains(a) && reached.contains(a) {
            write(i, 0, "gv\(a.index)")
        }
        return chain
    }

    /// The arguments whose every gradient element this kernel writes exactly once: blocks
    /// of the kernel's width at offsets that tile the argument's row (a gate block sliced
    /// four ways, each slice reached; or the argument itself). Only these may be `assigned`.
    func wholeWrites(_ op: Op, summedElsewhere: Set<Int> = []) -> Set<Int> {
        let region = op.region!
        let width = graph.type(of: region.ops.last!.results[0]).featureCount
        let writes = reverseChain(op, summedElsewhere: summedElsewhere).writes
        var whole: Set<Int> = []
        for (i, a) in region.arguments.enumerated() where graph.type(of: a).batched && width > 0 {
            let offsets = writes.filter { $0.arg == i }.map(\.offset).sorted()
            let row = graph.type(of: a).featureCount
            if !offsets.isEmpty && offsets == Array(stride(from: 0, to: row, by: width)) { whole.insert(i) }
        }
        return whole
    }

    private func argumentIndex(_ op: Op) -> [ValueID: Int] {
        Dictionary(uniqueKeysWithValues: op.region!.arguments.enumerated().map { ($1, $0) })
    }

    private func isScalarArg(_ v: ValueID) -> Bool {
        let t = graph.type(of: v)
        return !t.batched && t.dims.isEmpty
    }

    /// A value in the loop body: element j of an argument's row (element 0 of a scalar),
    /// or the register of a recomputed value.
    private func reference(_ v: ValueID, _ argIndex: [ValueID: Int]) -> String {
        if let i = argIndex[v] { return isScalarArg(v) ? "a\(i)r[0]" : "a\(i)r[j]" }
        return "v\(v.index)"
    }

    private func isSlice(_ k: OpKind) -> Bool {
        if case .slice = k { return true }
        return false
    }
}
