import GraphIR

/// An embedding whose rows only a recurrence's input projection reads: a scheduling
/// decision of the C emitter, like `StreamedProjections`, not a change of the graph.
///
/// `x[b, t] = W E[id[b, t]] + bias` takes one product row per step and example, B x T of
/// them, though only V different rows exist. When the batch holds at least V rows, the
/// projection is taken once per vocabulary row instead, `table [V, N] = E W^T + bias`
/// (each element summed over k as the step's own product sums it, so the forward's bits do
/// not change), and each step copies its rows from the table. The backward mirrors it:
/// each step's gradient rows are added into their ids' rows of a `[V, N]` gradient table,
/// and W's and E's gradients come from its V rows (`dW += dtable^T E`, `dE += dtable W`)
/// instead of from B x T rows each, and the embedding's own scatter is not needed.
///
/// For `models/char_lstm.rnn` at H = 512 (V = 256, B x T = 4096 rows, K = 64) the three
/// products of the first layer's input projection took 5.3% of a training step on one
/// thread (a build with them left out, paired); they shrink 16-fold.
///
/// It applies where the projection streams (`StreamedProjections`: from
/// RNNC_STREAM_MIN_BATCH examples) and `rnnc_table_pays(B, T, V)`; below that, and for
/// tables larger than `maxFloats`, the embedding and the projection run as before.
struct ProjectedEmbeddings {
    let graph: Graph

    /// The largest table kept (floats, 16 MB): a word vocabulary of 50,000 rows by 4,096
    /// gate columns would need 800 MB for its table and as much for its gradient.
    static let maxFloats = 1 << 22

    struct Table {
        /// `embedding(E, ids)`.
        let embedding: Op
        /// `linear(embedding, W[, bias])`, the step input of `scan` at `operand`.
        let projection: Op
        let scan: Op
        let operand: Int
        /// The embedding's weights' name in the weight file.
        let tableName: String
        /// V, D and N: the vocabulary, the embedding's width and the projection's.
        let vocab: Int, dim: Int, width: Int

        var weights: ValueID { embedding.operands[0] }
        var ids: ValueID { embedding.operands[1] }
        var projectionWeights: ValueID { projection.operands[1] }
        /// The model's buffer holding the table in a forward pass, its gradient in a backward:
        /// its field in the model struct, and the field as the generated code reads it.
        var field: String { "tab\(projection.results[0].index)" }
        var buffer: String { "m->\(field)" }
        /// Whether this call computes the table: a C condition on B and T.
        var pays: String { "rnnc_table_pays(B, T, \(vocab))" }
        var floats: Int { vocab * width }
    }

    /// Every projected embedding of the graph: one table per projection. An embedding read
    /// by the projections of both directions of a bidirectional layer has two.
    var all: [Table] {
        let defs = graph.definingOps()
        let streams = StreamedProjections(graph: graph)
        var candidates: [Table] = []
        for scan in graph.ops {
            guard case .scan = scan.kind else { continue }
            for (k, p) in streams.of(scan).sorted(by: { $0.key < $1.key }) {
                guard let e = defs[p.operands[0]], e.kind == .embedding,
                      let table = defs[e.operands[0]], case .param(let name) = table.kind else { continue }
                let et = graph.type(of: e.operands[0]), n = graph.type(of: p.operands[1]).dims[0]
                guard et.dims.count == 2 else { continue }
                candidates.append(Table(embedding: e, projection: p, scan: scan, operand: k, tableName: name,
                                        vocab: et.dims[0], dim: et.dims[1], width: n))
            }
        }
        // An embedding's rows go only where every reader takes them from a table.
        return candidates.filter { t in
            let group = candidates.filter { $0.embedding.results[0] == t.embedding.results[0] }
            return readers(t.embedding.results[0]) == group.count && group.reduce(0) { $0 + $1.floats } <= Self.maxFloats
        }
    }

    /// The tables of an embedding's result (empty when its rows are needed).
    func tables(of embedding: ValueID) -> [Table] {
        all.filter { $0.embedding.results[0] == embedding }
    }

    /// The table of a projection's result.
    func table(projecting value: ValueID) -> Table? {
        all.first { $0.projection.results[0] == value }
    }

    /// Buffers that exist only in some calls, with the C condition of those calls: a
    /// streamed projection's result below RNNC_STREAM_MIN_BATCH examples, and a projected
    /// embedding's rows when the call has no table (`MemoryPlan.Slot.onlyWhen`).
    var conditionalValues: [ValueID: String] {
        var out: [ValueID: String] = [:]
        for r in StreamedProjections(graph: graph).results { out[r] = "B < RNNC_STREAM_MIN_BATCH" }
        // An embedding's tables share its vocabulary, so one condition covers them all.
        for t in all { out[t.embedding.results[0]] = "!\(t.pays)" }
        return out
    }

    /// A scan's projected embeddings, by operand index.
    func of(_ scan: Op) -> [Int: Table] {
        Dictionary(uniqueKeysWithValues: all.filter { $0.scan.results[0] == scan.results[0] }.map { ($0.operand, $0) })
    }

    private func readers(_ v: ValueID) -> Int {
        if graph.outputs.contains(where: { $0.1 == v }) || graph.keepAlive.contains(v) { return Int.max }
        return graph.allOps().reduce(0) { $0 + $1.operands.filter { $0 == v }.count }
    }
}
