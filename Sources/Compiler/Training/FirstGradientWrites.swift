import GraphIR

/// Which kernel of a backward time step writes each gradient buffer first, and whether it
/// can store its gradient there instead of adding it to zeros.
///
/// A backward step zeroed every gradient buffer of its examples and then let each kernel
/// add to it. For an LSTM the two largest, the gradients of the gates from the input and
/// from the hidden state (4H floats a row each), are written whole by the fused backward
/// kernel, the first to touch them, and the product by W_hh^T writes the previous state's
/// gradient whole. Stored instead of added, they need no zeroing and no read of the zeros:
/// char_lstm's training step (H = 512, B = 32) took 0.972 of the time on 2 threads and
/// 0.985 on 1 (bench/pair.c, both orders, same losses).
///
/// The sum is the same but for the sign of a zero gradient (0 + -0 is +0; stored, it stays
/// -0), which no later step distinguishes.
struct FirstGradientWrites {
    /// Per fused op of the region (keyed by its first result): the arguments whose
    /// gradient it stores.
    var fusedStores: [ValueID: Set<Int>] = [:]
    /// Vectors of recurrent products whose gradient the product stores (accumulate 0).
    var productStores: Set<ValueID> = []
    /// Gradient buffers a store writes first: not zeroed at the top of the step.
    var unzeroed: Set<ValueID> = []

    /// Walks the region in the backward step's order: the seeds (the yields' gradients)
    /// first, then the ops in reverse. A buffer is stored into by the first kernel that
    /// writes it, where that kernel writes all of it, once.
    init(graph: Graph, scan: Op, hasHistory: Set<ValueID>, summedElsewhere: [ValueID: Set<Int>]) {
        guard let region = scan.region else { return }
        let fusedBack = FusedBackwardEmitter(graph: graph)
        var written = Set(region.yields)
        for inner in region.ops.reversed() {
            switch inner.kind {
            case .fused:
                guard graph.type(of: inner.region!.ops.last!.results[0]).batched else { continue }
                let whole = fusedBack.wholeWrites(inner, summedElsewhere: summedElsewhere[inner.results[0]] ?? [])
                var stores: Set<Int> = []
                for (i, o) in inner.operands.enumerated() where hasHistory.contains(o) {
                    let once = inner.operands.filter { $0 == o }.count == 1
                    if whole.contains(i) && once && !written.contains(o) {
                        stores.insert(i)
                        unzeroed.insert(o)
                    }
                }
                if !stores.isEmpty { fusedStores[inner.results[0]] = stores }
                written.formUnion(inner.operands)
            case .matvec:
                let v = inner.operands[1]
                guard hasHistory.contains(v) else { continue }
                if !written.contains(v) {
                    productStores.insert(v)
                    unzeroed.insert(v)
                }
                written.insert(v)
            default:
                // concat and softmax add to their operands' gradients; anything else is
                // taken to write them too, so that no later kernel stores over it.
                written.formUnion(inner.operands)
            }
        }
    }

    /// The first writes of every scan of a graph's training step, for the fused kernels'
    /// emission (which is shared by all scans); `summedElsewhere` is what that emission is
    /// given (`WindowBiasGradients.summedFromWindow`).
    static func fusedStores(graph: Graph, scans: [Op], prefix: String, summedElsewhere: [ValueID: Set<Int>]) -> [ValueID: Set<Int>] {
        var out: [ValueID: Set<Int>] = [:]
        for scan in scans {
            let history = Set(ScanEmitter(graph: graph, prefix: prefix).historyOffsets(scan).keys)
            out.merge(FirstGradientWrites(graph: graph, scan: scan, hasHistory: history, summedElsewhere: summedElsewhere).fusedStores) { a, _ in a }
        }
        return out
    }
}
