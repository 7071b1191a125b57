import GraphIR

/// A dense layer whose result the next op turns into probabilities (`logits = dense(h, ...)`
/// then `probs = softmax(logits)`), emitted as one call, `rnnc_dense_softmax`: each row
/// tile's product, then its rows' softmax while they are still in the core's L2, rather
/// than the whole product and then a softmax that reads the logits back from L3 or memory.
/// The logits are still written (a loss or another op may read them), and both results
/// keep the bits of the two kernels run one after the other (`NativeKernelTests`).
/// word_lm's output layer (400 rows of 10000 words), one Zen 4 core: 0.89x to 0.92x the
/// time of the model's inference in pairs (`bench/pair.c`).
struct DenseSoftmax {
    let graph: Graph

    /// Whether the dense layer at op index `i` and the softmax after it can run as one: the
    /// softmax reads only the layer's result, right after it, with the same rows; the layer
    /// is not an input projection that a recurrence computes (those run inside time loops);
    /// and neither op is part of a pair of recurrences run side by side. The memory plan
    /// keeps the layer's input alive through the softmax for such pairs (`memoryPlan`),
    /// since the fused kernel reads it after its first rows' probabilities are written.
    func fuses(at i: Int) -> Bool {
        let ops = graph.ops
        guard i >= 0, i + 1 < ops.count, case .linear = ops[i].kind, case .softmax = ops[i + 1].kind,
              let logits = ops[i].results.first, ops[i + 1].operands == [logits],
              let probs = ops[i + 1].results.first else { return false }
        let projections = StreamedProjections(graph: graph)
        guard !projections.results.contains(logits), projections.aheadResults[logits] == nil else { return false }
        let lt = graph.type(of: logits), pt = graph.type(of: probs)
        guard lt.dims == pt.dims, lt.batched == pt.batched, lt.sequence == pt.sequence else { return false }
        let runs = ConcurrentRecurrences(graph: graph).pairs.map(\.branches.run)
        return !runs.contains(where: { $0.contains(i) || $0.contains(i + 1) })
    }

    /// The op index of the softmax fused into the dense layer at op index `i`, or nil where
    /// the two run apart: where they cannot fuse (`fuses`), or where the probabilities take
    /// the buffer of the layer's input or of the logits (a plan made without `fuses`, as the
    /// training forward's).
    func softmax(fusedInto i: Int, ptr: (ValueID) -> String) -> Int? {
        guard fuses(at: i) else { return nil }
        let dense = graph.ops[i], probs = ptr(graph.ops[i + 1].results[0])
        guard probs != ptr(dense.operands[0]), probs != ptr(dense.results[0]) else { return nil }
        return i + 1
    }

    /// Whether the op at index `i` is a softmax fused into the dense layer before it.
    func isFusedSoftmax(_ i: Int, ptr: (ValueID) -> String) -> Bool {
        i > 0 && softmax(fusedInto: i - 1, ptr: ptr) == i
    }

    /// The C of the fused pair at op index `i` (the dense layer): `rnnc_dense_softmax` with
    /// the dense layer's operands and both results, under both ops' comments.
    func code(at i: Int, rows: String, comment: (Op) -> String, ptr: (ValueID) -> String) -> String {
        let dense = graph.ops[i], softmax = graph.ops[i + 1]
        let x = graph.type(of: dense.operands[0]), w = graph.type(of: dense.operands[1])
        guard case .linear(let hasBias) = dense.kind else { return "" }
        let bias = hasBias ? "m->w\(dense.operands[2].index)" : "NULL"
        var s = "    /* \(comment(dense)) */\n"
        s += "    /* \(comment(softmax)) */\n"
        s += "    /* fused: each row tile's softmax as soon as its product is done, while the tile is in L2 */\n"
        s += "    rnnc_dense_softmax(\(rows), \(w.dims[0]), \(w.dims[1]), \(ptr(dense.operands[0])), \(x.width), "
        s += "m->pk\(dense.operands[1].index), \(bias), \(ptr(dense.results[0])), \(ptr(softmax.results[0])), threads);\n"
        return s
    }
}
