import GraphIR

/// Writes the backward of a `scan`: a scan in the opposite direction of time.
///
/// Each step seeds the gradients of the step's new states (from the next step, and for
/// the first state from the output sequence), runs the region's ops in reverse (fused
/// backward kernels, products with the transposed weights), and carries the gradients of
/// the previous states on. The weight gradient of every recurrent product is one product
/// per window of steps (`rnnc_window_steps`: about 256 rows of steps x examples), not one
/// per step: the window's output gradients are kept for it, and only one window's.
/// Examples past their length pass their state gradient through untouched, as their
/// forward passed the state through.
struct ScanBackwardEmitter {
    let graph: Graph
    let prefix: String

    func functionName(_ op: Op) -> String { "scan_\(op.results[0].index)_backward" }

    /// Offsets (in units of B floats) of each saved value's block within the history.
    func historyOffsets(_ op: Op) -> [ValueID: Int] { ScanEmitter(graph: graph, prefix: prefix).historyOffsets(op) }

    /// Per-example floats of the backward workspace (gradient buffers and bias scratch),
    /// and floats per row of a window (`rnnc_window_steps(B, T) * B` rows): the products'
    /// output gradients kept for the window's weight gradients, and the packed rows of the
    /// products' vectors for them.
    func workspace(_ op: Op) -> (perExample: Int, perWindowRow: Int) {
        let region = op.region!
        var perExample = 0
        let inWindow = windowRowGradients(op)
        for v in gradientValues(op) where !inWindow.contains(v) { perExample += round(graph.type(of: v).featureCount) }
        perExample += region.yields.map { round(graph.type(of: $0).featureCount) }.reduce(0, +)   // carries
        perExample += scratchBiases(op).map { round(graph.type(of: $0).featureCount) }.reduce(0, +)
        perExample += unbatchedComputed(op).map { 2 * round(graph.type(of: $0).featureCount) }.reduce(0, +)
        let products = region.ops.filter { $0.kind == .matvec }
        let streams = StreamedProjections(graph: graph).of(op)
        var kept = products.map { round(graph.type(of: $0.results[0]).featureCount) }.reduce(0, +)
        kept += streams.values.map { round(graph.type(of: $0.operands[1]).dims[0]) }.reduce(0, +)
        let vectors = products.map { graph.type(of: $0.operands[0]).dims[1] } + streams.values.map { graph.type(of: $0.operands[1]).dims[1] }
        let packed = vectors.map(packedWidth).max() ?? 0
        return (perExample, kept + packed)
    }

    private func round(_ n: Int) -> Int { (n + 15) / 16 * 16 }

    /// The products' results and the streamed step inputs: their gradients are computed
    /// straight into the window's kept rows (`hgy`), which the window's weight gradients
    /// read, so they need no buffer of their own and no copy. (Below RNNC_STREAM_MIN_BATCH
    /// a step input's rows there are only the step's scratch, added to dx.)
    func windowRowGradients(_ op: Op) -> Set<ValueID> {
        let streamed = StreamedProjections(graph: graph).of(op).keys.map { op.region!.arguments[$0] }
        return Set(op.region!.ops.filter { $0.kind == .matvec }.map { $0.results[0] } + streamed)
    }

    /// Floats per row of a vector of width k packed for a weight gradient (a multiple of
    /// the widest panel any target uses, 48 floats, so one figure serves every target).
    private func packedWidth(_ k: Int) -> Int { (k + 47) / 48 * 48 }

    /// Region values that get a gradient buffer: batched arguments and op results.
    func gradientValues(_ op: Op) -> [ValueID] { ScanEmitter(graph: graph, prefix: prefix).batchedValues(op) }

    /// Values of the region computed from parameters alone (`sigmoid(a)` of a parameter
    /// vector): the same at every step and for every example. The backward step recomputes
    /// them (u) and sums their gradient (g) over the batch.
    func unbatchedComputed(_ op: Op) -> [ValueID] {
        var out: [ValueID] = []
        for inner in op.region!.ops where inner.kind == .fused {
            for r in inner.results where !graph.type(of: r).batched { out.append(r) }
        }
        return out
    }

    /// The biases (`unbatchedOperands`) that get a per-example scratch: those whose gradient
    /// is not summed from the window's rows (`WindowBiasGradients`).
    func scratchBiases(_ op: Op) -> [ValueID] { scratchBiases(op, summed: WindowBiasGradients(graph: graph).of(op)) }

    private func scratchBiases(_ op: Op, summed: [WindowBiasGradients.Bias]) -> [ValueID] {
        let values = Set(summed.map(\.value))
        return unbatchedOperands(op).filter { !values.contains($0) }
    }

    /// Parameters and parameter-only values read by fused kernels inside the region
    /// (biases, gates of parameters): their per-example gradients are summed over the batch.
    func unbatchedOperands(_ op: Op) -> [ValueID] {
        var out: [ValueID] = []
        for inner in op.region!.ops where inner.kind == .fused && inner.results.allSatisfy({ graph.type(of: $0).batched }) {
            for o in inner.operands where !graph.type(of: o).batched && !graph.type(of: o).dims.isEmpty && !out.contains(o) {
                out.append(o)
            }
        }
        return out
    }

    func emit(_ op: Op) -> String {
        guard case .scan(let reverse) = op.kind, let region = op.region else { return "" }
        let stepInputs = op.operands.count
        let states = Array(region.arguments.dropFirst(stepInputs))
        let hist = historyOffsets(op)
        let gvals = gradientValues(op)
        let windowBiases = WindowBiasGradients(graph: graph).of(op)
        let scratched = scratchBiases(op, summed: windowBiases)
        let products = region.ops.filter { $0.kind == .matvec }
        let firstWrites = FirstGradientWrites(graph: graph, scan: op, hasHistory: Set(hist.keys),
                                              summedElsewhere: WindowBiasGradients(graph: graph).summedFromWindow([op]))
        func width(_ v: ValueID) -> Int { graph.type(of: v).featureCount }
        func h(_ v: ValueID) -> String { ScanEmitter(graph: graph, prefix: prefix).historySlot(v, offsets: hist) }

        var s = "/* Backward of \(ScanEmitter(graph: graph, prefix: prefix).functionName(op))_train\(op.source.map { " (line \($0.line): \(CNames.comment($0.text)))" } ?? ""):\n"
        s += " * the steps in the opposite order; dx_k += gradients of the step inputs, gw += weight gradients. */\n"
        var params = ["\(prefix)_model *m", "int B", "int T", "const int32_t *lengths", "const float *hist",
                      "const float *gout"]
        params += states.indices.map { "const float *gfinal\($0)" }
        params += (0..<stepInputs).map { "float *dx\($0)" }
        // A step input the forward computed step by step (StreamedProjections): the
        // projection's input sequence, and its gradient (NULL when nothing needs it).
        let streams = StreamedProjections(graph: graph).of(op)
        let streamKeys = streams.keys.sorted()
        for k in streamKeys { params += ["const float *u\(k)", "float *du\(k)"] }
        // A projected embedding's ids, and its gradient table (NULL when the forward used no table).
        let tables = ProjectedEmbeddings(graph: graph).of(op)
        for k in tables.keys.sorted() { params += ["const int32_t *ids\(k)", "float *dtab\(k)"] }
        params += ["float *ws", "float *hgy", "int threads"]
        let fn = functionName(op)
        s += "static void \(fn)(" + params.joined(separator: ",\n" + String(repeating: " ", count: fn.count + 13)) + ") {\n"
        s += "    size_t off = 0;\n"
        let inWindow = windowRowGradients(op)
        for v in gvals where !inWindow.contains(v) {
            s += "    float *g\(v.index) = ws + off; off += (size_t)B * \(round(width(v)));\n"
        }
        for i in states.indices {
            s += "    float *carry\(i) = ws + off; off += (size_t)B * \(round(width(states[i])));\n"
        }
        for p in scratched {
            s += "    float *scratch\(p.index) = ws + off; off += (size_t)B * \(round(width(p)));\n"
        }
        let computed = unbatchedComputed(op)
        for u in computed {
            s += "    float *u\(u.index) = ws + off; off += (size_t)B * \(round(width(u)));\n"
            s += "    float *g\(u.index) = ws + off; off += (size_t)B * \(round(width(u)));\n"
        }
        s += "    (void)off;\n"
        // The window's kept product gradients (rows (t - tlo) * B + b), then packed rows.
        s += "    const int win = rnnc_window_steps(B, T);  /* steps per window of weight gradients */\n"
        s += "    const size_t wrows = (size_t)win * B;\n"
        var hoff = 0
        for p in products {
            s += "    float *hgy\(p.results[0].index) = hgy + wrows * \(hoff);\n"
            hoff += round(width(p.results[0]))
        }
        for k in streamKeys {
            s += "    float *gin\(k) = hgy + wrows * \(hoff);  /* step input x\(k)'s gradient, by window */\n"
            hoff += round(graph.type(of: streams[k]!.operands[1]).dims[0])
        }
        s += "    float *xt = hgy + wrows * \(hoff);\n"
        s += "    (void)xt;\n"
        if !streams.isEmpty {
            s += "    /* from RNNC_STREAM_MIN_BATCH examples the forward computed the input projections step by\n"
            s += "     * step; their gradients are summed here, window by window, instead of after the loop */\n"
            s += "    const int stream = B >= RNNC_STREAM_MIN_BATCH;\n"
        }

        for (i, st) in states.enumerated() {
            s += "    if (gfinal\(i)) memcpy(carry\(i), gfinal\(i), (size_t)B * \(width(st)) * sizeof(float));\n"
            s += "    else memset(carry\(i), 0, (size_t)B * \(width(st)) * sizeof(float));\n"
        }
        // Parameter-only values are the same at every step: recomputed once, and their
        // gradients (like the biases') summed over all steps and examples, then pushed back
        // to the parameters once after the loop (the backward is linear in them).
        let fusedForward = FusedKernelEmitter(graph: graph)
        for inner in region.ops where inner.kind == .fused && inner.results.contains(where: computed.contains) {
            var args = ["0", "1", "0", "\(graph.type(of: inner.region!.ops.last!.results[0]).featureCount)"]
            for o in inner.operands { args += [computed.contains(o) ? "u\(o.index)" : "m->w\(o.index)", "0"] }
            for r in inner.results { args += ["u\(r.index)", "0"] }
            s += "    \(fusedForward.functionName(inner))_part(\(args.joined(separator: ", ")));\n"
        }
        for u in computed { s += "    memset(g\(u.index), 0, \(width(u)) * sizeof(float));\n" }
        for p in scratched { s += "    memset(scratch\(p.index), 0, (size_t)B * \(width(p)) * sizeof(float));\n" }
        func gradientTarget(_ o: ValueID) -> String { computed.contains(o) ? "g\(o.index)" : "m->gw\(o.index)" }
        func value(_ o: ValueID) -> String { computed.contains(o) ? "u\(o.index)" : "m->w\(o.index)" }

        // The loop, on one team: each thread owns the rows (examples) [b0, b1) of every
        // gradient buffer; only the products with the transposed weights cross rows (their
        // threads split the columns), so a barrier stands before and after each of them.
        s += "    /* one parallel region for the whole time loop; each thread owns examples [b0, b1) */\n"
        s += "    const int team = rnnc_team_size(threads, (double)B * \(ScanEmitter(graph: graph, prefix: prefix).stepWork(op)));\n"
        s += StepBarrier.declaration
        s += "    #pragma omp parallel num_threads(team) if (team > 1)\n"
        s += "    {\n"
        s += "        const int tid = rnnc_thread_id(), nth = rnnc_thread_count();\n"
        s += StepBarrier.threadState
        s += "        int b0, b1;\n"
        s += "        rnnc_split(B, tid, nth, &b0, &b1);\n"
        s += "        const size_t rows = (size_t)(b1 - b0);\n"
        s += "        (void)rows;\n"
        s += "        for (int step = T - 1; step >= 0; step--) {\n"
        s += "            const int t = \(reverse ? "T - 1 - step" : "step");\n"
        s += "            /* this step's window: steps [w0, w0 + wn), times from tlo */\n"
        s += "            const int w0 = step / win * win, wn = (w0 + win < T ? w0 + win : T) - w0;\n"
        s += "            const int tlo = \(reverse ? "T - (w0 + wn)" : "w0");\n"
        s += "            (void)wn;\n            (void)tlo;\n"
        if !inWindow.isEmpty || !streamKeys.isEmpty {
            s += "            /* gradients the window's weight gradients read: straight into its rows */\n"
        }
        for p in products {
            let y = p.results[0]
            s += "            float *g\(y.index) = hgy\(y.index) + (size_t)(t - tlo) * B * \(width(y));\n"
        }
        for k in streamKeys {
            let a = region.arguments[k]
            s += "            float *g\(a.index) = gin\(k) + (size_t)(t - tlo) * B * \(width(a));\n"
        }
        // Zeroed, for kernels that add to them; not those a kernel stores into first.
        for v in gvals where !firstWrites.unzeroed.contains(v) {
            s += "            memset(g\(v.index) + (size_t)b0 * \(width(v)), 0, rows * \(width(v)) * sizeof(float));\n"
        }
        // Seeds.
        let first = width(states[0])
        s += "            /* seeds: the new states' gradients (carried from the next step, and the output row) */\n"
        s += "            for (int b = b0; b < b1; b++) {\n"
        s += "                if (lengths && t >= lengths[b]) continue;\n"
        for (i, y) in region.yields.enumerated() {
            let w = width(y)
            s += "                for (int j = 0; j < \(w); j++) g\(y.index)[(size_t)b * \(w) + j] += carry\(i)[(size_t)b * \(w) + j];\n"
        }
        s += "                for (int j = 0; j < \(first); j++) g\(region.yields[0].index)[(size_t)b * \(first) + j] += gout[((size_t)b * T + t) * \(first) + j];\n"
        s += "            }\n"
        // Region ops in reverse.
        let fusedBack = FusedBackwardEmitter(graph: graph)
        for inner in region.ops.reversed() {
            switch inner.kind {
            case .fused:
                // Parameter-only kernels run once, after the loop.
                guard graph.type(of: inner.region!.ops.last!.results[0]).batched else { continue }
                s += "            /* \(fusedBack.functionName(inner)), this thread's examples */\n"
                var args = ["b0", "b1"]
                for o in inner.operands {
                    if hist[o] != nil { args += [h(o), "\(width(o))"] }
                    else { args += [value(o), "0"] }
                }
                for r in inner.results { args += ["g\(r.index)", "\(width(r))"] }
                for o in inner.operands {
                    if hist[o] != nil { args += ["g\(o.index)", "\(width(o))"] }
                    else if scratched.contains(o) { args += ["scratch\(o.index)", "\(width(o))"] }
                    else { args += ["NULL", "0"] }
                }
                s += "            \(fusedBack.functionName(inner))_part(\(args.joined(separator: ", ")));\n"
            case .matvec:
                let w = inner.operands[0], v = inner.operands[1], y = inner.results[0]
                let wt = graph.type(of: w)
                let stores = firstWrites.productStores.contains(v)
                s += "            /* product \(graph.name(of: y) ?? ""): g(v) \(stores ? "=" : "+=") g(y) W (g(y) stays in the window's rows for the weight gradient) */\n"
                if hist[v] != nil {
                    s += "            \(StepBarrier.call)\n"
                    s += "            rnnc_gemm_step_part(step, B, \(wt.dims[1]), \(wt.dims[0]), g\(y.index), \(wt.dims[0]), m->pkT\(w.index), NULL, g\(v.index), \(wt.dims[1]), \(stores ? 0 : 1), tid, nth);\n"
                    s += "            \(StepBarrier.call)\n"
                }
            case .concat:
                let a = inner.operands[0], b = inner.operands[1], y = inner.results[0]
                let wa = width(a), wb = width(b)
                s += "            for (int b = b0; b < b1; b++) {\n"
                s += "                for (int j = 0; j < \(wa); j++) g\(a.index)[(size_t)b * \(wa) + j] += g\(y.index)[(size_t)b * \(wa + wb) + j];\n"
                s += "                for (int j = 0; j < \(wb); j++) g\(b.index)[(size_t)b * \(wb) + j] += g\(y.index)[(size_t)b * \(wa + wb) + \(wa) + j];\n"
                s += "            }\n"
            case .softmax:
                let x = inner.operands[0], y = inner.results[0]
                let w = width(y)
                s += "            for (int b = b0; b < b1; b++) {\n"
                s += "                const float *yr = \(h(y)) + (size_t)b * \(w);\n"
                s += "                float dot = 0.0f;\n"
                s += "                for (int j = 0; j < \(w); j++) dot += g\(y.index)[(size_t)b * \(w) + j] * yr[j];\n"
                s += "                for (int j = 0; j < \(w); j++) g\(x.index)[(size_t)b * \(w) + j] += yr[j] * (g\(y.index)[(size_t)b * \(w) + j] - dot);\n"
                s += "            }\n"
            default:
                continue
            }
        }
        // Carry and step inputs.
        s += "            /* carry the previous states' gradients; examples past their length pass theirs through */\n"
        s += "            for (int b = b0; b < b1; b++) {\n"
        func windowRow(_ k: Int) -> String {
            "gin\(k) + ((size_t)(t - tlo) * B + b) * \(width(region.arguments[k]))"
        }
        if streamKeys.isEmpty {
            s += "                if (lengths && t >= lengths[b]) continue;\n"
        } else {
            s += "                if (lengths && t >= lengths[b]) {\n"
            for k in streamKeys {
                s += "                    if (stream) memset(\(windowRow(k)), 0, \(width(region.arguments[k])) * sizeof(float));\n"
            }
            s += "                    continue;\n                }\n"
        }
        for (i, st) in states.enumerated() {
            let w = width(st)
            s += "                memcpy(carry\(i) + (size_t)b * \(w), g\(st.index) + (size_t)b * \(w), \(w) * sizeof(float));\n"
        }
        for k in 0..<stepInputs {
            let a = region.arguments[k]
            let w = width(a)
            let sum = "for (int j = 0; j < \(w); j++) dx\(k)[((size_t)b * T + t) * \(w) + j] += g\(a.index)[(size_t)b * \(w) + j];"
            if streams[k] != nil {
                s += "                if (!stream) \(sum)\n"
            } else {
                s += "                \(sum)\n"
            }
        }
        s += "            }\n"
        // The projection's input gradient, step by step: du[t] += g(x_k) W (B rows, the
        // weight's columns split over the team, as the forward's product). du is NULL when
        // the input takes no gradient (a model input), and then W^T is not packed either.
        for k in streamKeys {
            let p = streams[k]!
            let wt = graph.type(of: p.operands[1])
            let (n, kk) = (wt.dims[0], wt.dims[1])
            s += "            if (stream && du\(k)\(tables[k] != nil ? " && !dtab\(k)" : "")) {\n"
            s += "                \(StepBarrier.call)\n"
            s += "                rnnc_gemm_part(B, \(kk), \(n), gin\(k) + (size_t)(t - tlo) * B * \(n), \(n), m->pkT\(p.operands[1].index), NULL, du\(k) + (size_t)t * \(kk), T * \(kk), 1, tid, nth);\n"
            s += "            }\n"
        }
        // Weight gradients of the recurrent products, once per window: the window's steps
        // and examples in one product each (the team's barriers: every product's kept rows
        // are written, the packed rows are free, and the next window may overwrite both).
        let windowed = products.filter { hist[$0.operands[1]] != nil }
        if !windowed.isEmpty || !streamKeys.isEmpty {
            s += "            if (step == w0) {\n"
            for p in windowed {
                let w = p.operands[0], v = p.operands[1], y = p.results[0]
                let wt = graph.type(of: w)
                s += "                /* \(CNames.comment(graph.name(of: w) ?? "weight")) += the window's g(y)^T v */\n"
                s += "                \(StepBarrier.call)\n"
                s += "                rnnc_weight_gradient_team(wn * B, \(wt.dims[0]), \(wt.dims[1]), hgy\(y.index), \(wt.dims[0]), hist + (size_t)B * \(hist[v]!) * T + (size_t)tlo * B * \(wt.dims[1]), \(wt.dims[1]), 0, 0, xt, m->gw\(w.index), tid, nth);\n"
            }
            for k in streamKeys {
                let p = streams[k]!
                let w = p.operands[1]
                let wt = graph.type(of: w)
                let (n, kk) = (wt.dims[0], wt.dims[1])
                s += "                if (stream) {\n"
                s += "                    \(StepBarrier.call)\n"
                let weightGradient = "rnnc_weight_gradient_team(wn * B, \(n), \(kk), gin\(k), \(n), u\(k) + (size_t)tlo * \(kk), \(kk), B, T, xt, m->gw\(w.index), tid, nth);"
                if tables[k] != nil {
                    s += "                    /* a projected embedding: the window's g(x\(k)) rows into their ids' rows of the table's\n"
                    s += "                     * gradient (W's and the embedding's come from it after the loop), or without a table\n"
                    s += "                     * \(CNames.comment(graph.name(of: w) ?? "weight")) += the window's g(x\(k))^T u\(k) (u\(k) read as [B, T, \(kk)]) */\n"
                    s += "                    if (dtab\(k)) rnnc_table_gradient_team(wn, B, T, tlo, \(n), gin\(k), ids\(k), lengths, dtab\(k), tid, nth);\n"
                    s += "                    else \(weightGradient)\n"
                } else {
                    s += "                    /* \(CNames.comment(graph.name(of: w) ?? "weight")) += the window's g(x\(k))^T u\(k) (u\(k) read as [B, T, \(kk)]) */\n"
                    s += "                    \(weightGradient)\n"
                }
                if case .linear(true) = p.kind {
                    s += "                    rnnc_bias_gradient_team(wn * B, \(n), gin\(k), \(n), m->gw\(p.operands[2].index), tid, nth);\n"
                }
                s += "                }\n"
            }
            if !windowBiases.isEmpty {
                // After a barrier: every thread's rows of the window are written.
                s += "                /* biases whose gradient is the window's rows' (WindowBiasGradients): column sums */\n"
                s += "                \(StepBarrier.call)\n"
                for b in windowBiases {
                    let n = width(b.value)
                    let (rows, ld): (String, Int)
                    if let k = streamKeys.first(where: { region.arguments[$0] == b.source }) {
                        (rows, ld) = ("gin\(k)", width(region.arguments[k]))
                    } else {
                        (rows, ld) = ("hgy\(b.source.index)", width(b.source))
                    }
                    s += "                /* \(CNames.comment(graph.name(of: b.value) ?? "bias")): columns \(b.offset)..<\(b.offset + n) of \(rows) */\n"
                    s += "                rnnc_bias_gradient_team(wn * B, \(n), \(rows) + \(b.offset), \(ld), \(gradientTarget(b.value)), tid, nth);\n"
                }
            }
            s += "                \(StepBarrier.call)\n"
            s += "            }\n"
        }
        s += "        }\n"
        s += "    }\n"
        // Biases and parameter-only values: their sums over steps and examples.
        for p in scratched { s += "    rnnc_bias_gradient(B, \(width(p)), scratch\(p.index), \(width(p)), \(gradientTarget(p)));\n" }
        for inner in region.ops.reversed() where inner.kind == .fused && !graph.type(of: inner.region!.ops.last!.results[0]).batched {
            s += "    /* \(fusedBack.functionName(inner)): a parameter-only kernel, gradients straight into its inputs' */\n"
            var args = ["0", "1"]
            for o in inner.operands { args += [value(o), "0"] }
            for r in inner.results { args += ["g\(r.index)", "0"] }
            for o in inner.operands { args += [graph.type(of: o).dims.isEmpty ? "NULL" : gradientTarget(o), "0"] }
            s += "    \(fusedBack.functionName(inner))_part(\(args.joined(separator: ", ")));\n"
        }
        s += "}\n"
        return s
    }
}
