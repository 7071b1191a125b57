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
///
/// Two stacked recurrences are not independent, but where the upper one reads the lower
/// one only through the input projection it computes step by step, its step t needs only
/// the lower one's row t: they run as a pipeline, each on one thread, the upper one
/// waiting for each row (`rnnc_pipelines`, `rnnc_await_step`). Inference and the training
/// forward run them so; their backward runs in turn.
struct ConcurrentRecurrences {
    struct Pair {
        /// Op indices from the first branch's first op to the second's recurrence.
        let ops: ClosedRange<Int>
        /// Op indices of each branch (no parameter plumbing).
        let first: [Int]
        let second: [Int]
        /// For a pipeline of stacked recurrences: the counter of the lower one's committed
        /// steps (`done<index>` in the model), and the C deciding whether it runs.
        var pipeline: (counter: String, condition: String)? = nil

        var branches: Branches {
            guard let pipeline else { return Branches(run: ops, first: first, second: second) }
            return Branches(run: ops, first: first, second: second, condition: pipeline.condition,
                            opening: "    m->\(pipeline.counter) = 0;  /* steps the lower recurrence has committed */\n",
                            kind: "two stacked recurrences as a pipeline: side by side, the upper one a step behind the\n"
                                + "     * lower one, or one after the other on all the threads (rnnc_pipelines)")
        }
    }

    /// Items of emitted C (ops, or backward stages) that run as two branches: the run of
    /// items from the first to the last, each branch's items in order, then the items of
    /// the run that come after both branches, in order, on all the threads, and `closing`,
    /// C that ends the run.
    struct Branches {
        let run: ClosedRange<Int>
        let first: [Int]
        let second: [Int]
        var after: [Int] = []
        var closing = ""
        /// Whether they run side by side (C, of `all_threads` and `B`), C before the
        /// region, and what the region's comment calls them.
        var condition = "rnnc_branches(all_threads, B)"
        var opening = ""
        var kind = "two independent recurrences: side by side, each on its share of the threads, or one\n"
            + "     * after the other on all of them (rnnc_branches)"
    }

    /// A pair's backward rules as branches (`backwardBranches`).
    struct BackwardBranches {
        var branches: Branches
        /// Values both branches' projections read (not model inputs): their gradients get a
        /// share from each branch.
        let shared: [ValueID]
        /// The recurrence (op index) of the branch whose rules run second in turn, which
        /// adds its share of a shared gradient computed inside its time loop (from
        /// RNNC_STREAM_MIN_BATCH examples, a streamed projection's) into a buffer of its own,
        /// summed into the gradient after both branches.
        let separateScan: Int
    }

    let pairs: [Pair]

    /// Independent branches pair side by side; stacked ones (their time loops signal each
    /// step, `ScanEmitter`) pair as a pipeline where the upper one's streamed input
    /// projections are all it reads of the lower one, and both run forward in time.
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

        /// Whether branch b reads of branch a (which writes `written`) only its recurrence's
        /// output, through projections that b's recurrence computes step by step, both
        /// forward in time.
        func stacked(_ a: [Int], _ b: [Int], written: Set<ValueID>) -> Bool {
            let lower = ops[a.last!], upper = ops[b.last!]
            guard case .scan(false) = lower.kind, case .scan(false) = upper.kind else { return false }
            let streamedOps = Set(StreamedProjections(graph: graph).of(upper).values.map { $0.results[0] })
            return b.allSatisfy { i in
                let reads = ops[i].operands.filter(written.contains)
                return reads.isEmpty || (reads == [lower.results[0]] && streamedOps.contains(ops[i].results[0]))
            }
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
                if stacked(a.ops, b.ops, written: written) {
                    let work = ScanEmitter(graph: graph, prefix: "")
                    let madds = { (op: Op) in "(double)B * \(work.stepWork(op) + work.streamedWork(op))" }
                    let lower = ops[a.ops.last!], upper = ops[b.ops.last!]
                    found.append(Pair(ops: a.ops[0]...b.ops.last!, first: a.ops, second: b.ops,
                                      pipeline: ("done\(lower.results[0].index)",
                                                 "rnnc_pipelines(all_threads, B, \(madds(lower)), \(madds(upper)))")))
                    i = b.next
                    continue
                }
            }
            i += 1
        }
        pairs = found
    }

    /// The counters a recurrence (by its op) signals its committed steps on, as the lower
    /// one of a pipeline, and waits on, as the upper one.
    func pipelineCounters(of op: Op, in graph: Graph) -> (signals: String?, awaits: String?) {
        let isScan = { (i: Int) in graph.ops[i].results[0] == op.results[0] }
        let lower = pairs.first { $0.pipeline != nil && isScan($0.first.last!) }
        let upper = pairs.first { $0.pipeline != nil && isScan($0.second.last!) }
        return (lower?.pipeline?.counter, upper?.pipeline?.counter)
    }

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

    /// The backward stages of a pair (stage k is the rule of op count - k) as branches that
    /// run side by side, or nil where they cannot. Each branch's rules read and write only
    /// its own buffers, except where both read one value: there every reader must be a
    /// hoisted input projection. A projection of a model input writes no gradient into it
    /// and stays in its branch. A projection of any other value (an embedding, the layer
    /// below) adds into that value's gradient, which both directions share:
    /// - its rule (the input gradient below RNNC_STREAM_MIN_BATCH examples, and from a
    ///   projected embedding's table) runs after both branches, on all the threads, in its
    ///   order in turn;
    /// - from RNNC_STREAM_MIN_BATCH examples the recurrence's backward computes that input
    ///   gradient step by step: the branch that runs second in turn adds its share into a
    ///   buffer of its own (`separateScan`), summed into the gradient after both branches.
    /// Both ways the arithmetic is the same whether the branches run side by side or in
    /// turn, so the bits do not depend on the thread count.
    func backwardBranches(_ pair: Pair, graph: Graph) -> BackwardBranches? {
        let defs = graph.definingOps()
        let members = pair.first + pair.second
        let readsOf = { (ops: [Int]) in Set(ops.flatMap { graph.ops[$0].operands }) }
        var deferred: Set<Int> = []
        var shared: [ValueID] = []
        for v in readsOf(pair.first).intersection(readsOf(pair.second)).sorted() {
            let readers = members.filter { graph.ops[$0].operands.contains(v) }
            guard readers.allSatisfy({ if case .linear = graph.ops[$0].kind { true } else { false } }) else { return nil }
            if let def = defs[v], case .input = def.kind { continue }
            deferred.formUnion(readers)
            shared.append(v)
        }
        let stage = { (i: Int) in graph.ops.count - i }
        let inBranch = { (ops: [Int]) in ops.filter { !deferred.contains($0) }.map(stage).sorted() }
        let branches = Branches(run: stage(pair.ops.upperBound)...stage(pair.ops.lowerBound), first: inBranch(pair.second),
                                second: inBranch(pair.first), after: deferred.map(stage).sorted())
        return BackwardBranches(branches: branches, shared: shared, separateScan: pair.first.last!)
    }

    /// The C of two branches: both in one region of two threads when `rnnc_branches` says
    /// so, each seeing `threads` as its share; otherwise (or when the region gets one
    /// thread, inside a caller's parallel region) one after the other on all of them.
    /// `code` gives an item's C, written against `threads`.
    static func emit(_ branches: Branches, code: (Int) -> String) -> String {
        var s = "    /* \(branches.kind) */\n"
        s += "    {\n"
        s += "        const int all_threads = threads;\n"
        s += branches.opening.split(separator: "\n").map { "    \($0)\n" }.joined()
        s += "        #pragma omp parallel num_threads(2) if (\(branches.condition))\n"
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
        if !branches.after.isEmpty {
            s += "    /* then, on all the threads, the rules that add into a gradient both branches share */\n"
            for i in branches.after { s += code(i) }
        }
        return s + branches.closing
    }
}
