import GraphIR

/// Whether a recurrence's step can split its product gate-aligned (`rnnc_gates_aligned`
/// in `rnnc_kernels.h`), and how many gate blocks each product has.
///
/// A step that is one product and one fused kernel (an LSTM, a GRU, an RNN, or a user's
/// cell of the same form) reads, for hidden unit `j`, column `j` of each gate block of the
/// product: `W_hi h` at `j`, `W_hf h` at `H + j`, and so on. When each thread computes the
/// same hidden panels of every block, the fused kernel's columns read only what the same
/// thread has just computed, and the barrier between the two kernels goes. The same holds
/// for the streamed input projections the fused kernel reads beside the product.
///
/// The condition is on the columns read: every read of a product's result (or of a
/// streamed projection) is a block of the fused kernel's width `W`, at an offset that is a
/// multiple of `W`, inside a result whose width is a whole number of blocks. Whether the
/// blocks are whole panels (or, at batch 1, whole vectors), the threads balanced and their
/// weights in their caches is known only at run time (the vector width, the batch, the
/// team size, the L2), so the C code asks `rnnc_gates_aligned` and keeps the barrier when
/// it says no.
struct GateAlignment {
    /// The fused kernel's width: hidden units.
    let width: Int
    /// Gate blocks of the step product's result.
    let productGates: Int
    /// Floats of the product's weights (whether each thread's share fits its L2).
    let recurrentFloats: Int
    /// Gate blocks of each streamed projection, by step input index.
    let streamGates: [Int: Int]

    /// nil when the step is not one product followed by one fused kernel reading its
    /// products only in aligned blocks.
    init?(graph: Graph, region: Region, work: [Op], streams: [Int: Op]) {
        guard work.count == 2, work[0].kind == .matvec, work[1].kind == .fused,
              let body = work[1].region, let last = body.ops.last else { return nil }
        let fused = work[1]
        let out = graph.type(of: last.results[0])
        guard out.batched else { return nil }
        let width = out.featureCount
        // The values whose columns must be aligned: the product's result, the streamed inputs.
        let product = work[0].results[0]
        var streamed: [ValueID: Int] = [:]
        for k in streams.keys { streamed[region.arguments[k]] = k }
        let gated = Set(streamed.keys).union([product])
        // Nothing else of the step may read them, and the step may not yield them.
        let others = region.ops.filter { $0.results != work[0].results && $0.results != fused.results }
        if others.contains(where: { !gated.isDisjoint(with: $0.operands) }) { return nil }
        if !gated.isDisjoint(with: region.yields) { return nil }
        // Offsets at which the fused kernel reads each of its operands.
        var offsets: [ValueID: Set<Int>] = [:]
        let outer = Dictionary(zip(body.arguments, fused.operands), uniquingKeysWith: { a, _ in a })
        for inner in body.ops {
            if case .slice(let offset, let size) = inner.kind, let v = outer[inner.operands[0]] {
                if gated.contains(v), size != width { return nil }
                offsets[v, default: []].insert(offset)
                continue
            }
            for o in inner.operands { if let v = outer[o] { offsets[v, default: []].insert(0) } }
        }
        var streamGates: [Int: Int] = [:]
        var productGates = 0
        for v in gated {
            let n = graph.type(of: v).featureCount
            guard n % width == 0, let read = offsets[v], !read.isEmpty,
                  read.allSatisfy({ $0 % width == 0 && $0 + width <= n }) else { return nil }
            if let k = streamed[v] { streamGates[k] = n / width } else { productGates = n / width }
        }
        self.width = width
        self.productGates = productGates
        self.recurrentFloats = graph.type(of: work[0].operands[0]).featureCount
        self.streamGates = streamGates
    }
}
