import GraphIR

/// `fuse-pointwise`: the element-wise work between two products becomes one kernel.
///
/// Each op gets a level: the number of non-element-wise ops (products, concat, softmax...)
/// on the longest path to it. Element-wise ops of one level and one shape form a group;
/// no path can leave a group and come back, because it would pass an op that raises the
/// level. A group becomes one `fused_pointwise` op whose region holds its ops; slices and
/// constants it reads are copied in, so a GRU step is one matvec and one fused kernel.
public struct FusePointwise: Pass {
    public let name = "fuse-pointwise"
    public init() {}

    public func run(_ graph: inout Graph) {
        var outerLive = Set(graph.outputs.map(\.value))
        outerLive.formUnion(graph.keepAlive)
        for i in graph.ops.indices {
            if case .scan = graph.ops[i].kind, var region = graph.ops[i].region {
                let (ops, yields) = fuse(region.ops, yields: region.yields, live: [], graph: &graph)
                region.ops = ops
                region.yields = yields
                graph.ops[i].region = region
            }
        }
        let (ops, _) = fuse(graph.ops, yields: [], live: outerLive, graph: &graph)
        graph.ops = ops
        var replacements: [ValueID: ValueID] = [:]
        for op in graph.ops where op.kind == .fused {
            for (inner, outer) in zip(op.region!.yields, op.results) { replacements[inner] = outer }
        }
        graph.outputs = graph.outputs.map { ($0.name, replacements[$0.value] ?? $0.value) }
        graph.keepAlive = graph.keepAlive.map { replacements[$0] ?? $0 }
    }

    private struct GroupKey: Hashable {
        var level: Int
        var type: TensorType
    }

    private func isRematerialized(_ k: OpKind) -> Bool {
        switch k {
        case .slice, .constant: return true
        default: return false
        }
    }

    /// Fuses one op list. `live` are values read outside the list (model outputs).
    private func fuse(_ ops: [Op], yields: [ValueID], live: Set<ValueID>, graph: inout Graph) -> ([Op], [ValueID]) {
        var definedAt: [ValueID: Int] = [:]
        for (i, op) in ops.enumerated() { for r in op.results { definedAt[r] = i } }

        // Levels.
        var level: [ValueID: Int] = [:]
        var opLevel: [Int] = []
        for op in ops {
            var l = op.operands.map { level[$0] ?? 0 }.max() ?? 0
            if !op.kind.isElementwise && !isRematerialized(op.kind) && !op.kind.isParameterPlumbing && !isSource(op.kind) { l += 1 }
            for r in op.results { level[r] = l }
            opLevel.append(l)
        }

        // Element-wise ops sink to the latest level their readers allow, so that work which
        // could run early (adding a bias to the hoisted input projection) joins the kernel
        // that needs it instead of forming a kernel of its own. A reader that is not
        // element-wise needs the value one level below its own; values leaving the list
        // (yields, outputs) can wait for the last level.
        let lastLevel = opLevel.max() ?? 0
        for i in ops.indices.reversed() where ops[i].kind.isElementwise {
            let r = ops[i].results[0]
            var latest = (yields.contains(r) || live.contains(r)) ? lastLevel : Int.max
            for (j, reader) in ops.enumerated() where j > i && reader.operands.contains(r) {
                let limit: Int
                if reader.kind.isElementwise { limit = opLevel[j] }
                else if isRematerialized(reader.kind) { limit = lastLevel }
                else { limit = opLevel[j] - 1 }
                latest = min(latest, limit)
            }
            if latest == Int.max { latest = lastLevel }
            opLevel[i] = max(opLevel[i], latest)
        }

        // Groups of element-wise ops, in order of their first member.
        var groupOf: [Int: Int] = [:]
        var groups: [[Int]] = []
        var keys: [GroupKey: Int] = [:]
        for (i, op) in ops.enumerated() where op.kind.isElementwise {
            let key = GroupKey(level: opLevel[i], type: graph.type(of: op.results[0]))
            if let g = keys[key] { groups[g].append(i); groupOf[i] = g }
            else { keys[key] = groups.count; groupOf[i] = groups.count; groups.append([i]) }
        }
        guard !groups.isEmpty else { return (ops, yields) }

        // Who reads each value from outside its group.
        var readers: [ValueID: Set<Int>] = [:]   // value -> group ids (or -1 for a non-member)
        for (i, op) in ops.enumerated() {
            let reader = groupOf[i] ?? -1
            for o in op.operands { readers[o, default: []].insert(reader) }
        }

        // Build each fused op.
        var fusedOps: [Op] = []
        var replacements: [ValueID: ValueID] = [:]
        for (g, members) in groups.enumerated() {
            let memberSet = Set(members)
            var regionOps: [Op] = []
            var argumentFor: [ValueID: ValueID] = [:]
            var operands: [ValueID] = []
            var copied: [ValueID: ValueID] = [:]     // slice/constant value -> its copy in the region
            func argument(_ v: ValueID) -> ValueID {
                if let a = argumentFor[v] { return a }
                let a = graph.newValue(graph.type(of: v), name: graph.name(of: v))
                argumentFor[v] = a
                operands.append(v)
                return a
            }
            func inner(_ v: ValueID) -> ValueID {
                if let d = definedAt[v], memberSet.contains(d) { return v }
                if let c = copied[v] { return c }
                if let d = definedAt[v], isRematerialized(ops[d].kind) {
                    let src = ops[d]
                    let copy = graph.newValue(graph.type(of: v), name: graph.name(of: v))
                    regionOps.append(Op(src.kind, src.operands.map(argument), results: [copy], source: src.source))
                    copied[v] = copy
                    return copy
                }
                return argument(v)
            }
            for m in members {
                var op = ops[m]
                op.operands = op.operands.map(inner)
                regionOps.append(op)
            }
            var results: [ValueID] = []
            var regionYields: [ValueID] = []
            for m in members {
                let r = ops[m].results[0]
                let readOutside = readers[r, default: []].contains { $0 != g } || yields.contains(r) || live.contains(r)
                guard readOutside else { continue }
                let outer = graph.newValue(graph.type(of: r), name: graph.name(of: r))
                results.append(outer)
                regionYields.append(r)
                replacements[r] = outer
            }
            let region = Region(arguments: operands.map { argumentFor[$0]! }, ops: regionOps, yields: regionYields)
            let source = members.compactMap { ops[$0].source }.first
            fusedOps.append(Op(.fused, operands, results: results, region: region, source: source,
                               label: "\(members.count) element-wise ops"))
        }

        // Schedule: non-members keep their relative order; each group is placed as early as
        // its operands allow and before its first reader (a topological order).
        enum Unit { case op(Int), group(Int) }
        var units: [Unit] = []
        var unitMin: [Int] = []
        for (i, _) in ops.enumerated() where groupOf[i] == nil { units.append(.op(i)); unitMin.append(i) }
        for (g, members) in groups.enumerated() { units.append(.group(g)); unitMin.append(members[0]) }
        var producer: [ValueID: Int] = [:]   // value (outer name) -> unit index
        for (u, unit) in units.enumerated() {
            switch unit {
            case .op(let i): for r in ops[i].results { producer[r] = u }
            case .group(let g): for r in fusedOps[g].results { producer[r] = u }
            }
        }
        func operandsOf(_ unit: Unit) -> [ValueID] {
            switch unit {
            case .op(let i):
                var vs = ops[i].operands.map { replacements[$0] ?? $0 }
                if let region = ops[i].region { vs += capturedValues(region, ops[i]) }
                return vs
            case .group(let g): return fusedOps[g].operands.map { replacements[$0] ?? $0 }
            }
        }
        var deps: [[Int]] = Array(repeating: [], count: units.count)
        var dependents: [[Int]] = Array(repeating: [], count: units.count)
        for (u, unit) in units.enumerated() {
            for v in operandsOf(unit) {
                if let p = producer[v], p != u { deps[u].append(p); dependents[p].append(u) }
            }
        }
        var remaining = deps.map { Set($0).count }
        for u in units.indices { deps[u] = Array(Set(deps[u])) }
        var ready = units.indices.filter { remaining[$0] == 0 }
        var scheduled: [Op] = []
        var done = Set<Int>()
        while !ready.isEmpty {
            ready.sort { unitMin[$0] < unitMin[$1] }
            let u = ready.removeFirst()
            done.insert(u)
            switch units[u] {
            case .op(let i):
                var op = ops[i]
                op.operands = op.operands.map { replacements[$0] ?? $0 }
                if var region = op.region {
                    var tmp = Graph(name: "")
                    tmp.ops = region.ops
                    tmp.replaceUses(replacements)
                    region.ops = tmp.ops
                    region.yields = region.yields.map { replacements[$0] ?? $0 }
                    op.region = region
                }
                scheduled.append(op)
            case .group(let g):
                var op = fusedOps[g]
                op.operands = op.operands.map { replacements[$0] ?? $0 }
                scheduled.append(op)
            }
            for d in Set(dependents[u]) {
                remaining[d] -= 1
                if remaining[d] == 0 { ready.append(d) }
            }
        }
        precondition(done.count == units.count, "fuse-pointwise: cyclic groups")
        return (scheduled, yields.map { replacements[$0] ?? $0 })
    }

    private func isSource(_ k: OpKind) -> Bool {
        if case .input = k { return true }
        return false
    }

    /// Values a nested region reads from outside itself.
    private func capturedValues(_ region: Region, _ op: Op) -> [ValueID] {
        var defined = Set(region.arguments)
        var captured: [ValueID] = []
        func visit(_ ops: [Op]) {
            for o in ops {
                for v in o.operands where !defined.contains(v) { captured.append(v) }
                if let r = o.region { defined.formUnion(r.arguments); visit(r.ops) }
                defined.formUnion(o.results)
            }
        }
        visit(region.ops)
        return captured
    }
}
