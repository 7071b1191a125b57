import GraphIR

/// Biases of a recurrence whose gradient the backward reads off the window's rows.
///
/// A bias inside a time loop (`b_hr` in `W_hr h + b_hr`) is read by every example at every
/// step, so its gradient is a sum over both. The general way (`ScanBackwardEmitter`) gives
/// each example a scratch row that the fused backward adds into, summed once after the
/// loop: B rows per bias, 0.75 MB for a GRU with B = 64 and H = 512.
///
/// Most biases need none of it. When a bias enters only through `x + b`, and the chain of
/// additions from there reaches a value whose every reader is in that chain, the gradient
/// of the bias is, row by row, the gradient of that value. If the value is a product's
/// result or a streamed step input, or a block of its columns, that gradient is already
/// kept in the window's rows (`hgy`, for the weight gradients): the bias's gradient is the
/// column sums of those rows, taken once per window. The sums run down each column in row
/// order, whatever the team, so the bits do not depend on the thread count.
struct WindowBiasGradients {
    let graph: Graph

    struct Bias: Equatable {
        /// The bias: a parameter, or a value computed from parameters alone.
        let value: ValueID
        /// The fused kernel reading it, and the bias's argument index in that kernel.
        let kernel: ValueID
        let argument: Int
        /// The region value whose window rows hold the bias's gradient, from column `offset`.
        let source: ValueID
        let offset: Int
    }

    /// The biases of a scan whose gradients are column sums of the window's rows.
    func of(_ scan: Op) -> [Bias] {
        guard case .scan = scan.kind, let region = scan.region else { return [] }
        let uses = graph.useCounts()
        let windowRows = ScanBackwardEmitter(graph: graph, prefix: "").windowRowGradients(scan)
        var out: [Bias] = []
        for kernel in region.ops where kernel.kind == .fused {
            guard let inner = kernel.region,
                  kernel.results.allSatisfy({ graph.type(of: $0).batched }) else { continue }
            let body = Body(inner)
            for (i, b) in kernel.operands.enumerated() {
                let t = graph.type(of: b)
                guard !t.batched, t.dims.count == 1, uses[b] == 1 else { continue }
                guard let (arg, offset) = gradientTwin(of: inner.arguments[i], in: body, width: t.featureCount, uses: uses)
                else { continue }
                let source = kernel.operands[arg]
                guard windowRows.contains(source), uses[source] == 1 else { continue }
                out.append(Bias(value: b, kernel: kernel.results[0], argument: i, source: source, offset: offset))
            }
        }
        return out
    }

    /// The biases `of(scan)` finds, as argument indices of each fused kernel (by its first
    /// result): the gradients its backward need not write.
    func summedFromWindow(_ scans: [Op]) -> [ValueID: Set<Int>] {
        var out: [ValueID: Set<Int>] = [:]
        for scan in scans { for b in of(scan) { out[b.kernel, default: []].insert(b.argument) } }
        return out
    }

    /// For a kernel argument read once, by `x + bias`: an argument of the kernel (and a
    /// column offset in it) whose gradient equals the bias's row by row, if one is reached
    /// through additions of values read once, directly or through one slice of an argument
    /// that only disjoint slices read.
    private func gradientTwin(of bias: ValueID, in body: Body, width: Int, uses: [ValueID: Int]) -> (Int, Int)? {
        guard uses[bias] == 1 else { return nil }
        let (definer, readers, argumentIndex) = (body.definer, body.readers, body.argumentIndex)
        func isAdd(_ op: Op) -> Bool { op.kind == .add && op.operands[0] != op.operands[1] }
        guard let first = readers[bias]?.first, isAdd(first) else { return nil }
        // Down: while the sum is read once, by another addition, its gradient is that sum's.
        var top = first.results[0]
        while uses[top] == 1, let next = readers[top]?.first, isAdd(next) { top = next.results[0] }
        // Up: every single-use addend of the additions below `top` has top's gradient.
        func twin(_ sum: ValueID) -> (Int, Int)? {
            guard let op = definer[sum], isAdd(op) else { return nil }
            for c in op.operands where c != bias && uses[c] == 1 {
                let t = graph.type(of: c)
                if let d = definer[c] {
                    if isAdd(d), let found = twin(c) { return found }
                    if case .slice(let offset, _) = d.kind, t.batched, t.featureCount == width,
                       let a = argumentIndex[d.operands[0]], onlyDisjointSlices(d.operands[0], readers: readers[d.operands[0]] ?? [], uses: uses) {
                        return (a, offset)
                    }
                } else if let a = argumentIndex[c], t.batched, t.featureCount == width {
                    return (a, 0)
                }
            }
            return nil
        }
        return twin(top)
    }

    /// A fused kernel's body, indexed once for all of its biases: each value's defining op,
    /// each value's readers, and each argument's position.
    private struct Body {
        var definer: [ValueID: Op] = [:]
        var readers: [ValueID: [Op]] = [:]
        let argumentIndex: [ValueID: Int]

        init(_ region: Region) {
            for op in region.ops {
                for r in op.results { definer[r] = op }
                for o in op.operands { readers[o, default: []].append(op) }
            }
            argumentIndex = Dictionary(uniqueKeysWithValues: region.arguments.enumerated().map { ($1, $0) })
        }
    }

    /// Whether every reader of `argument` is a slice and no two slices overlap: then the
    /// gradient of each slice is the gradient of the argument's columns it covers.
    private func onlyDisjointSlices(_ argument: ValueID, readers: [Op], uses: [ValueID: Int]) -> Bool {
        var ranges: [Range<Int>] = []
        for r in readers {
            guard case .slice(let offset, let size) = r.kind else { return false }
            ranges.append(offset..<(offset + size))
        }
        guard ranges.count == uses[argument] else { return false }
        ranges.sort { $0.lowerBound < $1.lowerBound }
        return zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound <= $1.lowerBound }
    }
}
