import GraphIR

/// Where a hoisted input projection runs: a scheduling decision of the C emitter, not a
/// change of the graph.
///
/// `hoist-input-projection` turns the products of a step input into one product over all
/// steps, `[B*T, K] x [K, N]`, before the time loop. That product is efficient, but its
/// result (`B*T*N` floats: 13 MB for an LSTM with B = 32, T = 100, H = 256) leaves the
/// cache before the loop reads it back row by row. With a batch of at least
/// `RNNC_STREAM_MIN_BATCH` examples each step's rows (`B` rows of the same product) are
/// enough to fill the product's register tiles, so the scan computes them itself at the
/// top of each step, into a `[B, N]` buffer that its fused kernel reads from the cache.
/// The arithmetic of every element is the same either way.
///
/// Measured on the project's 2-core machine (LSTM, T = 100, I = H = 256, 1 thread, median
/// of 3 to 7 runs, ms; `docs/PERFORMANCE.md`): B = 1: 2.04 hoisted, 2.47 by step; B = 2:
/// 2.64 and 2.64; B = 4: 4.78 and 4.36; B = 32: 35.3 and 33.6. Below the threshold the
/// product over all steps stays: at batch 1 the per-step product is a matrix-vector product
/// that streams the input weights from the cache at every step.
///
/// A projection streams when it is a top-level `linear` whose only reader is one scan (as a
/// step input) and whose input is a sequence of plain rows (`[B, T, K]`).
struct StreamedProjections {
    let graph: Graph

    /// For a scan: its streamed step inputs, by operand index, with the `linear` computing each.
    func of(_ scan: Op) -> [Int: Op] {
        guard case .scan = scan.kind else { return [:] }
        let defs = graph.definingOps()
        var out: [Int: Op] = [:]
        for (k, x) in scan.operands.enumerated() {
            guard let op = defs[x], case .linear = op.kind, isStreamable(op) else { continue }
            out[k] = op
        }
        return out
    }

    /// The projection a forward recurrence computes a block of steps ahead at batch 1
    /// (`rnnc_project_ahead`), interleaved with its step's product, when it has exactly one
    /// streamed projection and its step starts with one product of the same width: each
    /// thread then computes the projection's columns of the panels it multiplies anyway.
    /// Measured on one thread (LSTM, GRU at T = 100, I = H = 256): the two products in
    /// 0.92 and 0.88 of the time they take one after the other (docs/PERFORMANCE.md).
    func ahead(_ scan: Op) -> (operand: Int, projection: Op, recurrentFloats: Int)? {
        guard case .scan(let reverse) = scan.kind, !reverse, let region = scan.region else { return nil }
        let streams = of(scan)
        guard streams.count == 1, let (k, p) = streams.first else { return nil }
        // The step's first kernel: the one teamLoop emits first, whose call it replaces.
        guard let product = ScanEmitter.stepKernels(region).first, product.kind == .matvec,
              graph.type(of: product.operands[0]).dims[0] == graph.type(of: p.operands[1]).dims[0] else { return nil }
        // Whether it pays depends on how the recurrent weights fit the cache (rnnc_project_ahead).
        let recurrent = region.ops.filter { $0.kind == .matvec }.reduce(0) { $0 + graph.type(of: $1.operands[0]).featureCount }
        return (k, p, recurrent)
    }

    /// The projections recurrences compute ahead at batch 1 (`ahead`), with the floats of
    /// their recurrences' weights: the top-level product is skipped on the same condition.
    var aheadResults: [ValueID: Int] {
        var out: [ValueID: Int] = [:]
        for op in graph.ops { if let a = ahead(op) { out[a.projection.results[0]] = a.recurrentFloats } }
        return out
    }

    /// Results of every streamed projection of the graph.
    var results: Set<ValueID> {
        var out = Set<ValueID>()
        for op in graph.ops { if case .scan = op.kind { for p in of(op).values { out.insert(p.results[0]) } } }
        return out
    }

    private func isStreamable(_ op: Op) -> Bool {
        let r = op.results[0]
        let input = graph.type(of: op.operands[0])
        guard input.sequence, input.dims.count == 1 else { return false }
        if graph.outputs.contains(where: { $0.1 == r }) || graph.keepAlive.contains(r) { return false }
        var readers = 0
        for other in graph.allOps() { readers += other.operands.filter { $0 == r }.count }
        return readers == 1
    }
}
