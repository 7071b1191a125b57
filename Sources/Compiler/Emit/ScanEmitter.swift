import GraphIR

/// Writes one `scan` (one layer, one direction of a recurrence) as a C function holding
/// the time loop. States are double-buffered: each step reads `cur` and writes `nxt`,
/// then the two swap, so a step never overwrites a state another op of the same step
/// still reads. With per-example lengths, an example past its length keeps its state and
/// gets zeros in the output sequence, as PyTorch's packed sequences do.
struct ScanEmitter {
    let graph: Graph
    let prefix: String
    /// Copies of the step per iteration of the time loop (`rnnc compile --unroll N`).
    var unroll = 1

    func functionName(_ op: Op) -> String { "scan_\(op.results[0].index)" }

    /// The arena request for a scan's workspace is keyed by a value id nobody else uses:
    /// the scan's output sequence, negated into a separate space.
    static func workspaceKey(_ op: Op) -> ValueID { ValueID(-1 - op.results[0].index) }

    /// Where each value of the region lives during one step: a C pointer expression and
    /// its row stride. States' new values are written straight into `nxt` buffers.
    struct Layout {
        var pointer: [ValueID: String] = [:]
        var stride: [ValueID: String] = [:]
        var workspace: [(name: String, floats: Int)] = []   // per example
        /// Values a training step writes straight into their history rows: the name and the
        /// rows of this step.
        var inHistory: [(name: String, rows: String)] = []
    }

    /// The step inputs this scan computes itself, step by step (see `StreamedProjections`;
    /// a training forward saves them in its history, and the reverse scan sums their
    /// gradients).
    func streamed(_ op: Op) -> [Int: Op] {
        StreamedProjections(graph: graph).of(op)
    }

    /// In a training forward, the products' results and the streamed projections that the
    /// backward reads are written straight into their history rows (`historySlot`) instead
    /// of into the workspace and then copied there: they have no workspace buffer.
    func layout(_ op: Op, training: Bool = false) -> Layout {
        let region = op.region!
        var l = Layout()
        let stepInputs = op.operands.count
        let streams = streamed(op)
        let saved = training ? historyOffsets(op) : [:]
        for (k, a) in region.arguments.prefix(stepInputs).enumerated() {
            let f = graph.type(of: a).featureCount
            if streams[k] != nil {
                l.pointer[a] = "(stream ? p\(k) : x\(k) + (size_t)t * \(f))"
                l.stride[a] = "(stream ? (size_t)\(f) : (size_t)T * \(f))"
                if saved[a] != nil { l.inHistory.append(("p\(k)", historySlot(a, offsets: saved))) }
                else { l.workspace.append(("p\(k)", f)) }
            } else {
                l.pointer[a] = "(x\(k) + (size_t)t * \(f))"
                l.stride[a] = "(size_t)T * \(f)"
            }
        }
        let states = Array(region.arguments.dropFirst(stepInputs))
        for (i, s) in states.enumerated() {
            let w = graph.type(of: s).featureCount
            l.pointer[s] = "s\(i)_cur"
            l.stride[s] = "\(w)"
            l.workspace.append(("s\(i)_cur", w))
            l.workspace.append(("s\(i)_nxt", w))
        }
        var claimed = Set<ValueID>()
        for (i, y) in region.yields.enumerated() where !region.arguments.contains(y) && !claimed.contains(y) {
            claimed.insert(y)
            l.pointer[y] = "s\(i)_nxt"
            l.stride[y] = "\(graph.type(of: y).featureCount)"
        }
        for inner in region.ops {
            for r in inner.results where l.pointer[r] == nil {
                let t = graph.type(of: r)
                l.pointer[r] = "v\(r.index)"
                l.stride[r] = t.batched ? "\(t.featureCount)" : "0"
                if saved[r] != nil { l.inHistory.append(("v\(r.index)", historySlot(r, offsets: saved))) }
                else { l.workspace.append(("v\(r.index)", t.featureCount)) }
            }
        }
        return l
    }

    /// Offsets (in units of B floats) of each saved value's block within the history.
    func historyOffsets(_ op: Op) -> [ValueID: Int] {
        var out: [ValueID: Int] = [:]
        var h = 0
        for v in historyValues(op) {
            out[v] = h
            h += (graph.type(of: v).featureCount + 15) / 16 * 16
        }
        return out
    }

    /// The rows `[B, width]` of saved value `v` at time `t` in the history `[T][B][width]`.
    func historySlot(_ v: ValueID, offsets: [ValueID: Int]) -> String {
        "(hist + (size_t)B * \(offsets[v]!) * T + (size_t)t * B * \(graph.type(of: v).featureCount))"
    }

    /// Every batched value of a step: region arguments (step inputs, previous states) and
    /// op results. Each gets a gradient buffer in the backward step.
    func batchedValues(_ op: Op) -> [ValueID] {
        let region = op.region!
        var out: [ValueID] = []
        for a in region.arguments where graph.type(of: a).batched { out.append(a) }
        for inner in region.ops {
            switch inner.kind {
            case .constant, .slice: continue
            default: break
            }
            for r in inner.results where graph.type(of: r).batched && !out.contains(r) { out.append(r) }
        }
        return out
    }

    /// Values a training forward saves at every step for the backward pass: those the
    /// backward step reads. A fused kernel's backward recomputes its values from its
    /// operands; a product's weight gradient reads its vector; softmax's backward reads its
    /// output. A step's new states are not saved: the next step saves them as its previous
    /// states, and the backward reads them there.
    func historyValues(_ op: Op) -> [ValueID] {
        var read = Set<ValueID>()
        for inner in op.region!.ops {
            switch inner.kind {
            case .fused: read.formUnion(inner.operands)
            case .matvec: read.insert(inner.operands[1])
            case .softmax: read.insert(inner.results[0])
            default: break
            }
        }
        return batchedValues(op).filter(read.contains)
    }

    /// Floats of the history per (time step x example).
    func historyWidth(_ op: Op) -> Int {
        historyValues(op).reduce(0) { $0 + (graph.type(of: $1).featureCount + 15) / 16 * 16 }
    }

    /// Floats per example of the states a stateful run carries from one call to the next.
    func carryWidth(_ op: Op) -> Int {
        let region = op.region!
        return region.arguments.dropFirst(op.operands.count).reduce(0) { $0 + graph.type(of: $1).featureCount }
    }

    func workspaceWidth(_ op: Op, training: Bool = false) -> Int {
        layout(op, training: training).workspace.reduce(0) { $0 + ($1.floats + 15) / 16 * 16 }
    }

    func emit(_ op: Op, training: Bool = false) -> String {
        guard case .scan(let reverse) = op.kind, let region = op.region else { return "" }
        let l = layout(op, training: training)
        let streams = streamed(op)
        let stepInputs = op.operands.count
        let states = Array(region.arguments.dropFirst(stepInputs))
        var s = "/* "
        if let src = op.source { s += "line \(src.line): \(CNames.comment(src.text))\n * " }
        s += "scan\(reverse ? ", backward in time" : ""): \(CNames.comment(op.label ?? ""))\n"
        for (k, x) in op.operands.enumerated() {
            s += " *   x\(k) \(CNames.shape(graph.type(of: x))) step input" + (graph.name(of: x).map { ": \($0)" } ?? "") + "\n"
            if let p = streams[k] {
                s += " *      (with B >= RNNC_STREAM_MIN_BATCH, computed here step by step from u\(k) \(CNames.shape(graph.type(of: p.operands[0]))) into p\(k))\n"
            }
        }
        for (i, st) in states.enumerated() {
            s += " *   state s\(i) \(CNames.shape(graph.type(of: st))) \(graph.name(of: st) ?? "")\n"
        }
        s += " *   out \(CNames.shape(graph.type(of: op.results[0]))): the first state after every step\n"
        s += " */\n"
        var params = ["\(prefix)_model *m", "int B", "int T", "const int32_t *lengths"]
        // At batch 1 an inference scan may write its projection's rows a block ahead.
        let ahead = training ? nil : StreamedProjections(graph: graph).ahead(op)
        params += op.operands.indices.map { $0 == ahead?.operand ? "float *restrict x\($0)" : "const float *restrict x\($0)" }
        params += streams.keys.sorted().map { "const float *restrict u\($0)" }
        // A projected embedding's ids, and its table (NULL when this call does not use one).
        for k in ProjectedEmbeddings(graph: graph).of(op).keys.sorted() {
            params += ["const int32_t *restrict ids\(k)", "const float *restrict tab\(k)"]
        }
        params.append("float *restrict out")
        params += states.indices.map { "float *restrict final\($0)" }
        params.append("float *carry")
        if training { params.append("float *hist") }
        params += ["float *ws", "int threads"]
        let fn = functionName(op) + (training ? "_train" : "")
        s += "static void \(fn)(" + params.joined(separator: ",\n" + String(repeating: " ", count: fn.count + 13)) + ") {\n"
        s += "    /* workspace: both buffers of each state, then the step's values; B rows each */\n"
        s += "    size_t off = 0;\n"
        for (name, floats) in l.workspace {
            s += "    float *\(bufferName(name)) = ws + off; off += (size_t)B * \((floats + 15) / 16 * 16);\n"
        }
        s += "    (void)off;\n"
        if !streams.isEmpty {
            s += "    /* the input projections: by step, from the cache, once the batch fills the product's tiles */\n"
            s += "    const int stream = B >= RNNC_STREAM_MIN_BATCH;\n"
        }
        if let (k, p, recurrent) = ahead {
            let wt = graph.type(of: p.operands[1])
            s += "    /* at batch 1, x\(k) = u\(k) x \(CNames.comment(weightName(p.operands[1], graph.definingOps())))^T is computed here: its first block of\n"
            s += "     * rows and the rows past the last whole block now, every other block beside the steps before it */\n"
            s += "    const int ahead = rnnc_project_ahead(B, T, threads, \(recurrent));\n"
            s += "    if (ahead) rnnc_project_ahead_start(T, \(wt.dims[0]), \(wt.dims[1]), u\(k), m->pk\(p.operands[1].index), \(projectionBias(p)), x\(k), threads);\n"
        }
        // States start at zero, or, in stateful runs, where the previous call left them.
        var carryOffset = 0
        for (i, st) in states.enumerated() {
            let w = graph.type(of: st).featureCount
            s += "    if (carry) memcpy(s\(i)_buf0, carry + (size_t)B * \(carryOffset), (size_t)B * \(w) * sizeof(float));\n"
            s += "    else memset(s\(i)_buf0, 0, (size_t)B * \(w) * sizeof(float));\n"
            carryOffset += w
        }
        // The two recurrences of a pipeline (inference and the training forward): the lower
        // one counts its committed steps, the upper one waits for the step it reads.
        let pipeline = ConcurrentRecurrences(graph: graph).pipelineCounters(of: op, in: graph)
        s += teamLoop(op, layout: l, training: training, reverse: reverse, ahead: ahead.map { ($0.operand, $0.projection) },
                      signals: pipeline.signals, awaits: pipeline.awaits)
        carryOffset = 0
        for (i, st) in states.enumerated() {
            let w = graph.type(of: st).featureCount
            s += "    const float *s\(i)_last = (T & 1) ? s\(i)_buf1 : s\(i)_buf0;\n"
            s += "    memcpy(final\(i), s\(i)_last, (size_t)B * \(w) * sizeof(float));\n"
            s += "    if (carry) memcpy(carry + (size_t)B * \(carryOffset), s\(i)_last, (size_t)B * \(w) * sizeof(float));\n"
            carryOffset += w
        }
        s += "}\n"
        return s
    }

    /// The state buffers are named by role in the layout (`s0_cur`, `s0_nxt`) and by
    /// storage in the workspace (`s0_buf0`, `s0_buf1`): the roles alternate between them.
    private func bufferName(_ name: String) -> String {
        if name.hasSuffix("_cur") { return String(name.dropLast(4)) + "_buf0" }
        if name.hasSuffix("_nxt") { return String(name.dropLast(4)) + "_buf1" }
        return name
    }

    /// Multiply-adds of one step for one example: what decides whether a team is worth it.
    func stepWork(_ op: Op) -> Int {
        op.region!.ops.reduce(0) { sum, inner in
            switch inner.kind {
            case .matvec:
                let wt = graph.type(of: inner.operands[0])
                return sum + wt.dims[0] * wt.dims[1]
            case .fused:
                return sum + graph.type(of: inner.results[0]).featureCount * inner.region!.ops.count
            default:
                return sum + graph.type(of: inner.results[0]).featureCount
            }
        }
    }

    /// Multiply-adds of a step's streamed input projections for one example.
    func streamedWork(_ op: Op) -> Int {
        streamed(op).values.reduce(0) { sum, p in
            let wt = graph.type(of: p.operands[1])
            return sum + wt.dims[0] * wt.dims[1]
        }
    }

    /// The time loop, inside one parallel region: the team lives for the whole loop, each
    /// kernel of a step runs as its `_part` (the thread's fixed share: the same weight
    /// panels and the same rows or columns at every step, so they stay in that core's
    /// cache), and barriers stand where a kernel reads what other threads wrote. A step
    /// whose last kernel is a fused one writing every state in its own block commits that
    /// block without waiting: one barrier after each product, one at the end of the step.
    /// A step of one product and one fused kernel reading it in gate blocks drops the
    /// first when the run splits the product gate-aligned (`GateAlignment`).
    private func teamLoop(_ op: Op, layout l: Layout, training: Bool, reverse: Bool,
                          ahead: (operand: Int, projection: Op)?, signals: String?, awaits: String?) -> String {
        let region = op.region!
        let stepInputs = op.operands.count
        let states = Array(region.arguments.dropFirst(stepInputs))
        let work = Self.stepKernels(region)
        // The commit is local when the last kernel is fused, batched, as wide as every
        // state, and produces every yield that is not already in place.
        // In training, the step also saves its values for the backward pass, row by row:
        // that needs no barrier when every value it copies existed before the step (its
        // inputs, its previous states) and the rest are written in place.
        let savesOnlyInputs = !training || historyValues(op).allSatisfy { v in
            region.arguments.contains(v) || l.inHistory.contains { $0.name == l.pointer[v] }
        }
        var localCommit = false
        if savesOnlyInputs, let last = work.last, last.kind == .fused {
            let width = graph.type(of: last.region!.ops.last!.results[0])
            localCommit = width.batched
                && states.allSatisfy { graph.type(of: $0).featureCount == width.featureCount }
                && region.yields.enumerated().allSatisfy { i, y in l.pointer[y] == "s\(i)_nxt" || last.results.contains(y) }
        }
        var s = "    /* one parallel region for the whole time loop: no fork and join per step */\n"
        s += "    const int team = rnnc_team_size(threads, (double)B * \(stepWork(op) + streamedWork(op)));\n"
        s += StepBarrier.declaration
        s += "    #pragma omp parallel num_threads(team) if (team > 1)\n"
        s += "    {\n"
        s += "        const int tid = rnnc_thread_id(), nth = rnnc_thread_count();\n"
        s += StepBarrier.threadState
        s += "        int rb0, rb1;  /* this thread's examples, for the commit */\n"
        s += "        rnnc_split(B, tid, nth, &rb0, &rb1);\n"
        let streams = streamed(op)
        let aligned = GateAlignment(graph: graph, region: region, work: work, streams: streams)
        if let aligned {
            s += "        /* gate-aligned: each thread the same hidden units of every gate, and no barrier between\n"
            s += "         * the product and the fused kernel (rnnc_gates_aligned; 0: whole panels and the barrier) */\n"
            s += "        const int aligned = rnnc_gates_aligned(B, \(aligned.width), \(aligned.productGates), nth, \(aligned.recurrentFloats));\n"
        }
        /// The `gates` argument of a product's call: its blocks when the split is aligned.
        func gates(_ n: Int?) -> String { n.map { "aligned ? \($0) : 0" } ?? "0" }
        let head = s
        s = ""
        s += "            const int t = \(reverse ? "T - 1 - step" : "step");\n"
        if let awaits {
            s += "            /* the lower recurrence's row t (rnnc_pipelines) */\n"
            s += "            rnnc_await_step(&m->\(awaits), t + 1);\n"
        }
        for i in states.indices {
            s += "            float *s\(i)_cur = (step & 1) ? s\(i)_buf1 : s\(i)_buf0;\n"
            s += "            float *s\(i)_nxt = (step & 1) ? s\(i)_buf0 : s\(i)_buf1;\n"
        }
        if !l.inHistory.isEmpty {
            s += "            /* values the backward reads: written straight into this step's history rows */\n"
            for (name, rows) in l.inHistory { s += "            float *\(name) = \(rows);\n" }
        }
        s += "            int b0 = rb0, b1 = rb1, j0 = 0, j1 = 0;  /* the block of the last fused kernel */\n"
        s += "            (void)j0;\n            (void)j1;\n"
        let defs = graph.definingOps()
        let tables = ProjectedEmbeddings(graph: graph).of(op)
        for (k, p) in streams.sorted(by: { $0.key < $1.key }) {
            let wt = graph.type(of: p.operands[1])
            let bias = projectionBias(p)
            s += "            /* \(stepComment(p)): this step's rows, [B, \(wt.dims[0])] = u\(k) [B, \(wt.dims[1])] x \(CNames.comment(weightName(p.operands[1], defs)))^T */\n"
            // Unless the step is gate-aligned (each thread's columns its own), threads take
            // the projection's shares in reverse (thread nth - 1 - tid's): where the panels
            // split unevenly, the thread with one panel more of the recurrent product has one
            // fewer here, and both meet the barrier before the fused kernel with the same work.
            // A 3-layer LSTM at B = 4, H = 128 (11 panels, 6 and 5), 2 threads: 0.957 inference,
            // 0.954 training (bench/pair.c). Every output is the same tile's: the same bits.
            let product: String
            if let g = aligned?.streamGates[k] {
                product = "rnnc_gemm_gates_part(0, \(gates(g)), B, \(wt.dims[0]), \(wt.dims[1]), u\(k) + (size_t)t * \(wt.dims[1]), T * \(wt.dims[1]), m->pk\(p.operands[1].index), \(bias), p\(k), \(wt.dims[0]), 0, aligned ? tid : nth - 1 - tid, nth);"
            } else {
                product = "rnnc_gemm_part(B, \(wt.dims[0]), \(wt.dims[1]), u\(k) + (size_t)t * \(wt.dims[1]), T * \(wt.dims[1]), m->pk\(p.operands[1].index), \(bias), p\(k), \(wt.dims[0]), 0, nth - 1 - tid, nth);"
            }
            if tables[k] != nil {
                // The fused kernel reads the rows of the same threads' columns as the product's.
                let g = aligned?.streamGates[k].map(gates) ?? "0"
                s += "            /* (a projected embedding: with a table, this step's rows of it) */\n"
                s += "            if (stream && tab\(k)) rnnc_table_rows_part(\(g), B, \(wt.dims[0]), tab\(k), ids\(k) + t, T, lengths, t, \(bias), p\(k), \(wt.dims[0]), tid, nth);\n"
                s += "            else if (stream) \(product)\n"
            } else {
                s += "            if (stream) \(product)\n"
            }
        }
        // The fused kernel reads the projections across threads' panels: the barrier after
        // the recurrent product covers them; without one, they need their own.
        if !streams.isEmpty, work.first?.kind != .matvec {
            s += "            if (stream) \(StepBarrier.call)\n"
        }
        for (n, inner) in work.enumerated() {
            let isLast = n == work.count - 1
            switch inner.kind {
            case .matvec:
                let w = inner.operands[0], v = inner.operands[1], r = inner.results[0]
                let wt = graph.type(of: w)
                s += "            /* \(stepComment(inner)): [B, \(wt.dims[0])] = \(graph.name(of: v) ?? "\(v)") [B, \(wt.dims[1])] x \(CNames.comment(weightName(w, defs)))^T */\n"
                if n == 0, let (k, p) = ahead {
                    let pt = graph.type(of: p.operands[1])
                    s += "            /* at batch 1 with it, slice t % R of the next block's rows of x\(k) (R = RNNC_AHEAD_ROWS) */\n"
                    s += "            if (ahead && t / RNNC_AHEAD_ROWS + 1 < T / RNNC_AHEAD_ROWS) {\n"
                    s += "                const size_t next = (size_t)(t / RNNC_AHEAD_ROWS + 1) * RNNC_AHEAD_ROWS;\n"
                    s += "                rnnc_gemv_ahead_part(step, \(gates(aligned?.productGates)), \(wt.dims[0]), \(wt.dims[1]), \(l.pointer[v]!), m->pk\(w.index), \(l.pointer[r]!), \(pt.dims[1]), u\(k) + next * \(pt.dims[1]), m->pk\(p.operands[1].index), \(projectionBias(p)), x\(k) + next * \(pt.dims[0]), tid, nth);\n"
                    s += "            } else\n    "
                }
                if let aligned {
                    s += "            rnnc_gemm_gates_part(step, \(gates(aligned.productGates)), B, \(wt.dims[0]), \(wt.dims[1]), \(l.pointer[v]!), \(l.stride[v]!), m->pk\(w.index), NULL, \(l.pointer[r]!), \(l.stride[r]!), 0, tid, nth);\n"
                    s += "            if (!aligned) \(StepBarrier.call)\n"
                } else {
                    s += "            rnnc_gemm_step_part(step, B, \(wt.dims[0]), \(wt.dims[1]), \(l.pointer[v]!), \(l.stride[v]!), m->pk\(w.index), NULL, \(l.pointer[r]!), \(l.stride[r]!), 0, tid, nth);\n"
                    s += "            \(StepBarrier.call)\n"
                }
            case .fused:
                s += "            /* \(stepComment(inner)) */\n"
                let width = graph.type(of: inner.region!.ops.last!.results[0])
                var args = ["b0", "b1", "j0", "j1"]
                for o in inner.operands {
                    if let p = l.pointer[o] { args += [p, l.stride[o]!] }
                    else { args += ["m->w\(o.index)", graph.type(of: o).batched ? "\(graph.type(of: o).featureCount)" : "0"] }
                }
                for r in inner.results { args += [l.pointer[r]!, l.stride[r]!] }
                if aligned != nil {
                    s += "            if (aligned) rnnc_split_gate_cols(B, \(width.featureCount), tid, nth, &b0, &b1, &j0, &j1);\n"
                    s += "            else rnnc_split_rows_cols(B, \(width.featureCount), tid, nth, &b0, &b1, &j0, &j1);\n"
                } else {
                    s += "            rnnc_split_rows_cols(\(width.batched ? "B" : "1"), \(width.featureCount), tid, nth, &b0, &b1, &j0, &j1);\n"
                }
                s += "            \(FusedKernelEmitter(graph: graph).functionName(inner))_part(\(args.joined(separator: ", ")));\n"
                if !(isLast && localCommit) { s += "            \(StepBarrier.call)\n" }
            case .concat:
                let a = inner.operands[0], b = inner.operands[1], r = inner.results[0]
                s += "            /* \(stepComment(inner)) */\n"
                // One thread's work, then the team's barrier (what `omp single` does, with
                // the steps' own barrier: StepBarrier).
                s += "            if (tid == 0) rnnc_concat_rows(B, \(l.pointer[a]!), \(l.stride[a]!), \(graph.type(of: a).width), \(l.pointer[b]!), \(l.stride[b]!), \(graph.type(of: b).width), \(l.pointer[r]!), \(l.stride[r]!));\n"
                s += "            \(StepBarrier.call)\n"
            case .softmax:
                let a = inner.operands[0], r = inner.results[0]
                s += "            /* \(stepComment(inner)) */\n"
                s += "            if (tid == 0) rnnc_softmax_rows(B, \(graph.type(of: r).width), \(l.pointer[a]!), \(l.stride[a]!), \(l.pointer[r]!), \(l.stride[r]!), 1);\n"
                s += "            \(StepBarrier.call)\n"
            default:
                s += "            /* unsupported step op \(inner.kind.mnemonic) */\n"
            }
        }
        if !localCommit {
            s += "            b0 = rb0;\n            b1 = rb1;\n"
        }
        if training {
            s += "            /* save the step for the backward pass: history [T][B][width] per value */\n"
            s += "            {\n                size_t h = 0;\n"
            let streamedArguments = Dictionary(uniqueKeysWithValues: streams.keys.map { (region.arguments[$0], $0) })
            let written = Set(l.inHistory.map(\.name))
            for v in historyValues(op) {
                let w = graph.type(of: v).featureCount
                func copy(_ rows: String, _ stride: String) -> String {
                    "for (int b = rb0; b < rb1; b++) memcpy(hist + h * T + ((size_t)t * B + b) * \(w), \(rows) + (size_t)b * \(stride), \(w) * sizeof(float));"
                }
                if let k = streamedArguments[v], written.contains("p\(k)") {
                    s += "                if (!stream) \(copy("x\(k) + (size_t)t * \(w)", "(size_t)T * \(w)"))\n"
                } else if written.contains(l.pointer[v]!) {
                    s += "                /* \(l.pointer[v]!): written in place */\n"
                } else {
                    s += "                \(copy(l.pointer[v]!, l.stride[v]!))\n"
                }
                s += "                h += (size_t)B * \((w + 15) / 16 * 16);\n"
            }
            s += "                (void)h;\n            }\n"
        }
        // Commit: masked examples keep their states; others copy yields not already in place.
        // Local: this thread's block [b0, b1) x [j0, j1); otherwise its rows, every column.
        func cols(_ w: Int) -> (lo: String, n: String) { localCommit ? ("j0", "(j1 - j0)") : ("0", "\(w)") }
        let first = graph.type(of: states[0]).featureCount
        s += "            /* commit the step: the output row, and states of examples past their length */\n"
        s += "            for (int b = b0; b < b1; b++) {\n"
        s += "                float *row = out + ((size_t)b * T + t) * \(first);\n"
        s += "                if (lengths && t >= lengths[b]) {\n"
        for (i, st) in states.enumerated() {
            let w = graph.type(of: st).featureCount
            let c = cols(w)
            s += "                    memcpy(s\(i)_nxt + (size_t)b * \(w) + \(c.lo), s\(i)_cur + (size_t)b * \(w) + \(c.lo), \(c.n) * sizeof(float));\n"
        }
        s += "                    memset(row + \(cols(first).lo), 0, \(cols(first).n) * sizeof(float));\n"
        s += "                    continue;\n                }\n"
        for (i, y) in region.yields.enumerated() where l.pointer[y] != "s\(i)_nxt" {
            let w = graph.type(of: y).featureCount
            let c = cols(w)
            s += "                memcpy(s\(i)_nxt + (size_t)b * \(w) + \(c.lo), \(l.pointer[y]!) + (size_t)b * \(l.stride[y]!) + \(c.lo), \(c.n) * sizeof(float));\n"
        }
        s += "                memcpy(row + \(cols(first).lo), s0_nxt + (size_t)b * \(first) + \(cols(first).lo), \(cols(first).n) * sizeof(float));\n"
        s += "            }\n"
        s += "            \(StepBarrier.call)\n"
        if let signals {
            s += "            /* committed by every thread: the upper recurrence may read row t (rnnc_pipelines) */\n"
            s += "            if (tid == 0) rnnc_step_done(&m->\(signals), step + 1);\n"
        }
        return head + stepLoop(body: s) + "    }\n"
    }

    /// The time loop around one step's code (which reads `step`). Unrolled N times, each
    /// copy is guarded by `step < T` (every thread takes the same branches, so the barriers
    /// inside still pair up) and the state buffers' parity is known in each copy.
    private func stepLoop(body: String) -> String {
        guard unroll > 1 else { return "        for (int step = 0; step < T; step++) {\n" + body + "        }\n" }
        let indented = body.split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? "" : "        " + $0 }
            .joined(separator: "\n")
        var s = "        /* unrolled: \(unroll) steps per iteration (rnnc compile --unroll \(unroll)) */\n"
        s += "        for (int first = 0; first < T; first += \(unroll)) {\n"
        for k in 0..<unroll {
            s += "            {\n                const int step = first + \(k);\n"
            s += "                if (step < T) {\n" + indented + "                }\n            }\n"
        }
        s += "        }\n"
        return s
    }

    /// The ops of a step that run code, in order: a constant is a literal in its readers'
    /// code and a slice a view of its operand. `StreamedProjections.ahead` reads the first.
    static func stepKernels(_ region: Region) -> [Op] {
        region.ops.filter { inner in
            switch inner.kind {
            case .constant, .slice: return false
            default: return true
            }
        }
    }

    /// The bias argument of a hoisted projection's product: its bias, or NULL.
    func projectionBias(_ p: Op) -> String {
        if case .linear(true) = p.kind { return "m->w\(p.operands[2].index)" }
        return "NULL"
    }

    private func stepComment(_ op: Op) -> String {
        var parts: [String] = []
        if let src = op.source { parts.append("line \(src.line): \(CNames.comment(src.text))") }
        parts.append(op.kind.mnemonic + (op.label.map { " (\($0))" } ?? ""))
        return parts.joined(separator: " | ")
    }

    private func weightName(_ w: ValueID, _ defs: [ValueID: Op]) -> String {
        if let op = defs[w], case .param(let n) = op.kind { return n }
        return graph.name(of: w) ?? "w\(w.index)"
    }
}
