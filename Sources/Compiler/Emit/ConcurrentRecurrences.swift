import GraphIR

/// Pairs of recurrences that can run at the same time, each on its share of the threads.
///
/// The two directions of a bidirectional layer read the same input and nothing of each
/// other. Run one after the other, each direction's time loop splits every step between
/// all the threads, with barriers between a step's kernels and the weights of a step
/// divided between the cores. Run side by side on 2 threads, each direction has a core to
/// itself: no barrier at all, and a core reads only its own direction's weights, as one
/// thread of a unidirectional layer does. `rnnc_branches` in `rnnc_kernels.h` decides at
/// run time (from the thread count and the batch), and the measurements are there.
///
/// A pair is two branches of consecutive ops: each is a recurrence preceded by the hoisted
/// input projections that only it reads (parameter plumbing in between emits nothing), and
/// no op of the second reads a value of the first. The values of both branches live from
/// the pair's first op to at least its last (`MemoryPlan` must not hand one branch's
/// memory to the other while both run).
struct ConcurrentRecurrences {
    struct Pair {
        /// Op indices from the first branch's first op to the second's recurrence.
        let ops: ClosedRange<Int>
        /// Op indices of each branch (no parameter plumbing).
        let first: [Int]
        let second: [Int]

        var branches: Branches { Branches(run: ops, first: first, second: second) }
    }

    /// Items of emitted C (ops, or backward stages) that run as two branches: the run of
    /// items from the first to the last, and each branch's items in order.
    struct Branches {
        let run: ClosedRange<Int>
        let first: [Int]
        let second: [Int]
    }

    let pairs: [Pair]

    init(graph: Graph) {
        var readers: [ValueID: Int] = [:]
        for op in graph.ops { for o in op.operands { readers[o, default: 0] += 1 } }
        for (_, v) in graph.outputs { readers[v, default: 0] += 1 }
        for v in graph.keepAlive { readers[v, default: 0] += 1 }
        let ops = graph.ops

        /// The branch starting at op index `i`: projections read only by the recurrence that
        /// follows them, then that recurrence. Returns its op indices and the index after it.
        func branch(at start: Int) -> (ops: [Int], next: Int)? {
            var members: [Int] = []
            var i = start
            while i < ops.count {
                let op = ops[i]
                if op.kind.isParameterPlumbing { i += 1; continue }
                if case .linear = op.kind {
                    members.append(i)
                    i += 1
                    continue
                }
                guard case .scan = op.kind else { return nil }
                members.append(i)
                // Every projection of the branch feeds this recurrence, and nothing else.
                let projections = members.dropLast().map { ops[$0].results[0] }
                guard projections.allSatisfy({ readers[$0] == 1 && op.operands.contains($0) }) else { return nil }
                return (members, i + 1)
            }
            return nil
        }

        var found: [Pair] = []
        var i = 0
        while i < ops.count {
            if !ops[i].kind.isParameterPlumbing, let a = branch(at: i), let b = branch(at: a.next) {
                let written = Set(a.ops.flatMap { ops[$0].results })
                if !b.ops.contains(where: { ops[$0].operands.contains(where: written.contains) }) {
                    found.append(Pair(ops: a.ops[0]...b.ops.last!, first: a.ops, second: b.ops))
                    i = b.next
                    continue
                }
            }
            i += 1
        }
        pairs = found
    }

    /// The pair whose first op is `i`.
    func pair(startingAt i: Int) -> Pair? { pairs.first { $0.ops.lowerBound == i } }

    /// The pair holding op `i`.
    func pair(containing i: Int) -> Pair? { pairs.first { $0.ops.contains(i) } }

    /// The C of every op in order (`code`), with each pair's ops emitted as the pair.
    func emitOps(count: Int, code: (Int) -> String) -> String {
        Self.emit(items: 0..<count, branches: pairs.map(\.branches), code: code)
    }

    /// The C of `items` in order: each of `branches` as one region where its run starts
    /// (`before` that item's C ahead of the region), every other item as `before` + `code`.
    static func emit(items: some Sequence<Int>, branches: [Branches], before: (Int) -> String = { _ in "" },
                     code: (Int) -> String) -> String {
        var s = ""
        for i in items {
            if let b = branches.first(where: { $0.run.lowerBound == i }) {
                s += before(i) + emit(b, code: code)
            } else if !branches.contains(where: { $0.run.contains(i) }) {
                s += before(i) + code(i)
            }
        }
        return s
    }

    /// Whether a pair's backward rules may run side by side too: they must write no common
    /// gradient. The branches may share only model inputs, read by their projections alone
    /// (a product writes no gradient into a model input; a recurrence reading one directly
    /// does). Both directions of a layer over an embedding or another layer add into that
    /// value's gradient, so they stay in turn.
    func backwardSideBySide(_ pair: Pair, graph: Graph) -> Bool {
        let defs = graph.definingOps()
        let readsOf = { (ops: [Int]) in Set(ops.flatMap { graph.ops[$0].operands }) }
        let common = readsOf(pair.first).intersection(readsOf(pair.second))
        return common.allSatisfy { v in
            guard let def = defs[v], case .input = def.kind else { return false }
            return (pair.first + pair.second).allSatisfy { i in
                guard graph.ops[i].operands.contains(v) else { return true }
                if case .linear = graph.ops[i].kind { return true }
                return false
            }
        }
    }

    /// The backward stages of a pair (stage k is the rule of op count - k): its run of
    /// stages, and each branch's stages in order.
    func backwardStages(_ pair: Pair, opCount: Int) -> Branches {
        let stage = { (i: Int) in opCount - i }
        return Branches(run: stage(pair.ops.upperBound)...stage(pair.ops.lowerBound),
                        first: pair.second.map(stage).sorted(), second: pair.first.map(stage).sorted())
    }

    /// The C of two branches: both in one region of two threads when `rnnc_branches` says
    /// so, each seeing `threads` as its share; otherwise (or when the region gets one
    /// thread, inside a caller's parallel region) one after the other on all of them.
    /// `code` gives an item's C, written against `threads`.
    static func emit(_ branches: Branches, code: (Int) -> String) -> String {
        var s = "    /* two independent recurrences: side by side, each on its share of the threads, or one\n"
        s += "     * after the other on all of them (rnnc_branches) */\n"
        s += "    {\n"
        s += "        const int all_threads = threads;\n"
        s += "        #pragma omp parallel num_threads(2) if (rnnc_branches(all_threads, B))\n"
        s += "        {\n"
        s += "            const int branch = rnnc_thread_count() == 2 ? rnnc_thread_id() : -1;  /* -1: both, in turn */\n"
        s += "            const int threads = branch < 0 ? all_threads : rnnc_branch_threads(all_threads, branch);\n"
        for (k, members) in [branches.first, branches.second].enumerated() {
            s += "            if (branch != \(1 - k)) {\n"
            for i in members {
                for line in code(i).split(separator: "\n") { s += "            \(line)\n" }
            }
            s += "            }\n"
        }
        s += "        }\n"
        s += "    }\n"
        return s
    }
}
