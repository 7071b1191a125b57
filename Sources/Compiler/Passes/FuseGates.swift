import GraphIR

/// `fuse-gates`: inside a cell, matrix-vector products that read the same vector become one
/// product with the weights stacked by rows; each original product is a slice of it.
///
/// LSTM's four `W_h* @ h` become one [4H, H] product per step. When the stacked pieces are
/// exactly the row chunks of one packed tensor in order (the built-ins' `weight_hh_l0`),
/// the stack is that tensor itself and costs nothing at load time; otherwise (a user's
/// `W_hr`, `W_hz`, `W_hn`) the rows are copied together once, when weights are loaded.
public struct FuseGates: Pass {
    public let name = "fuse-gates"
    public init() {}

    public func run(_ graph: inout Graph) {
        var newTopLevel: [(before: Int, op: Op)] = []
        graph.forEachScanRegion { region, scanIndex, graph in
            let defs = graph.definingOps()
            // Group products by their vector operand, in first-use order.
            var groups: [ValueID: [Int]] = [:]
            var order: [ValueID] = []
            for (i, op) in region.ops.enumerated() where op.kind == .matvec {
                let v = op.operands[1]
                if groups[v] == nil { order.append(v) }
                groups[v, default: []].append(i)
            }
            var replacements: [ValueID: ValueID] = [:]
            var insertions: [Int: [Op]] = [:]   // region index -> ops to put before it
            var removed = Set<Int>()
            for v in order {
                let members = groups[v]!
                guard members.count > 1 else { continue }
                let weights = members.map { region.ops[$0].operands[0] }
                let rows = weights.map { graph.type(of: $0).dims[0] }
                let k = graph.type(of: weights[0]).dims[1]
                let total = rows.reduce(0, +)
                let stacked: ValueID
                if let packed = Self.packedSource(weights, defs) {
                    stacked = packed
                } else {
                    let names = weights.compactMap { graph.name(of: $0) }
                    stacked = graph.newValue(.param([total, k]), name: "stack(" + names.joined(separator: ", ") + ")")
                    newTopLevel.append((scanIndex, Op(.stackRows, weights, results: [stacked],
                                                      source: graph.ops[scanIndex].source, label: "gate weights stacked at load time")))
                }
                let first = members[0]
                let parts = members.compactMap { graph.name(of: region.ops[$0].results[0])?.split(separator: " ").first }
                let vName = graph.name(of: v) ?? "(...)"
                let product = graph.newValue(TensorType(.f32, [total]), name: "[\(parts.joined(separator: ", "))] @ \(vName)")
                var ops = [Op(.matvec, [stacked, v], results: [product], source: region.ops[first].source,
                              label: "\(members.count) products fused")]
                var offset = 0
                for (m, r) in zip(members, rows) {
                    let slice = graph.newValue(TensorType(.f32, [r]), name: graph.name(of: region.ops[m].results[0]))
                    ops.append(Op(.slice(offset: offset, size: r), [product], results: [slice], source: region.ops[m].source))
                    replacements[region.ops[m].results[0]] = slice
                    offset += r
                    removed.insert(m)
                }
                insertions[first] = ops
            }
            guard !removed.isEmpty else { return }
            var out: [Op] = []
            for (i, op) in region.ops.enumerated() {
                if let ins = insertions[i] { out += ins }
                if !removed.contains(i) { out.append(op) }
            }
            region.ops = out
            var r = region
            // Rewrite uses inside this region (the products are not visible outside it).
            var tmp = Graph(name: "")
            tmp.ops = r.ops
            tmp.replaceUses(replacements)
            r.ops = tmp.ops
            r.yields = r.yields.map { replacements[$0] ?? $0 }
            region = r
        }
        // Stacked weights are parameter plumbing: define them just before their scan.
        for (before, op) in newTopLevel.sorted(by: { $0.before > $1.before }) {
            graph.ops.insert(op, at: before)
        }
    }

    /// The packed parameter whose chunks 0..<n are exactly `weights`, in order, if any.
    static func packedSource(_ weights: [ValueID], _ defs: [ValueID: Op]) -> ValueID? {
        var source: ValueID?
        for (i, w) in weights.enumerated() {
            guard let op = defs[w], case .paramChunk(let index, let of) = op.kind,
                  index == i, of == weights.count else { return nil }
            if source == nil { source = op.operands[0] } else if source != op.operands[0] { return nil }
        }
        return source
    }
}
