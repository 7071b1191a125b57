import GraphIR

/// Helpers shared by the passes: use counts and value replacement through regions.
extension Graph {
    /// Replaces every use of each key by its value, in ops, regions and outputs.
    mutating func replaceUses(_ map: [ValueID: ValueID]) {
        guard !map.isEmpty else { return }
        func resolve(_ v: ValueID) -> ValueID {
            var v = v
            while let next = map[v], next != v { v = next }
            return v
        }
        func rewrite(_ ops: inout [Op]) {
            for i in ops.indices {
                ops[i].operands = ops[i].operands.map(resolve)
                if var region = ops[i].region {
                    rewrite(&region.ops)
                    region.yields = region.yields.map(resolve)
                    ops[i].region = region
                }
            }
        }
        rewrite(&ops)
        outputs = outputs.map { ($0.name, resolve($0.value)) }
    }

    /// How many times each value is read (operands, yields, outputs), through regions.
    func useCounts() -> [ValueID: Int] {
        var counts: [ValueID: Int] = [:]
        func visit(_ ops: [Op]) {
            for op in ops {
                for o in op.operands { counts[o, default: 0] += 1 }
                if let region = op.region {
                    visit(region.ops)
                    for y in region.yields { counts[y, default: 0] += 1 }
                }
            }
        }
        visit(ops)
        for (_, v) in outputs { counts[v, default: 0] += 1 }
        for v in keepAlive { counts[v, default: 0] += 1 }
        return counts
    }

    /// Applies `transform` to the op list of every scan region.
    mutating func forEachScanRegion(_ transform: (inout Region, _ scanIndex: Int, _ graph: inout Graph) -> Void) {
        var i = 0
        while i < ops.count {
            if case .scan = ops[i].kind, var region = ops[i].region {
                transform(&region, i, &self)
                ops[i].region = region
            }
            i += 1
        }
    }
}
