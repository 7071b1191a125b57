import GraphIR

/// Writes the backward of a `scan`: a scan in the opposite direction of time.
///
/// Each step seeds the gradients of the step's new states (from the next step, and for
/// the first state from the output sequence), runs the region's ops in reverse (fused
/// backward kernels, products with the transposed weights), and carries the gradients of
/// the previous states on. The weight gradient of every recurrent product is one product
/// over all steps after the loop (the step's output gradients are kept for it), not one
/// per step. Examples past their length pass their state gradient through untouched, as
/// their forward passed the state through.
struct ScanBackwardEmitter {
    let graph: Graph
    let prefix: String

    func functionName(_ op: Op) -> String { "scan_\(op.results[0].index)_backward" }

    /// Offsets (in units of B floats) of each saved value's block within the history.
    func historyOffsets(_ op: Op) -> [ValueID: Int] {
        var out: [ValueID: Int] = [:]
        var h = 0
        for v in ScanEmitter(graph: graph, prefix: prefix).historyValues(op) {
            out[v] = h
            h += (graph.type(of: v).featureCount + 15) / 16 * 16
        }
        return out
    }

    /// Per-example floats of the backward workspace (gradient buffers and bias scratch),
    /// and per (step x example) floats for the kept product gradients.
    func workspace(_ op: Op) -> (perExample: Int, perStep: Int) {
        let region = op.region!
        var perExample = 0
        for v in gradientValues(op) { perExample += round(graph.type(of: v).featureCount) }
        perExample += region.yields.map { round(graph.type(of: $0).featureCount) }.reduce(0, +)   // carries
        perExample += unbatchedOperands(op).map { round(graph.type(of: $0).featureCount) }.reduce(0, +)
        perExample += unbatchedComputed(op).map { 2 * round(graph.type(of: $0).featureCount) }.reduce(0, +)
        let perStep = region.ops.filter { $0.kind == .matvec }.map { round(graph.type(of: $0.results[0]).featureCount) }.reduce(0, +)
        return (perExample, perStep)
    }

    private func round(_ n: Int) -> Int { (n + 15) / 16 * 16 }

    /// Region values that get a gradient buffer: batched arguments and op results.
    func gradientValues(_ op: Op) -> [ValueID] { ScanEmitter(graph: graph, prefix: prefix).historyValues(op) }

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
        let biases = unbatchedOperands(op)
        let products = region.ops.filter { $0.kind == .matvec }
        func width(_ v: ValueID) -> Int { graph.type(of: v).featureCount }
        func h(_ v: ValueID) -> String { "(hist + (size_t)B * \(hist[v]!) * T + (size_t)t * B * \(width(v)))" }

        var s = "/* Backward of \(ScanEmitter(graph: graph, prefix: prefix).functionName(op))_train\(op.source.map { " (line \($0.line): \(CNames.comment($0.text)))" } ?? ""):\n"
        s += " * the steps in the opposite order; dx_k += gradients of the step inputs, gw += weight gradients. */\n"
        var params = ["\(prefix)_model *m", "int B", "int T", "const int32_t *lengths", "const float *hist",
                      "const float *gout"]
        params += states.indices.map { "const float *gfinal\($0)" }
        params += (0..<stepInputs).map { "float *dx\($0)" }
        params += ["float *ws", "float *hgy", "int threads"]
        let fn = functionName(op)
        s += "static void \(fn)(" + params.joined(separator: ",\n" + String(repeating: " ", count: fn.count + 13)) + ") {\n"
        s += "    size_t off = 0;\n"
        for v in gvals {
            s += "    float *g\(v.index) = ws + off; off += (size_t)B * \(round(width(v)));\n"
        }
        for i in states.indices {
            s += "    float *carry\(i) = ws + off; off += (size_t)B * \(round(width(states[i])));\n"
        }
        for p in biases {
            s += "    float *scratch\(p.index) = ws + off; off += (size_t)B * \(round(width(p)));\n"
        }
        let computed = unbatchedComputed(op)
        for u in computed {
            s += "    float *u\(u.index) = ws + off; off += (size_t)B * \(round(width(u)));\n"
            s += "    float *g\(u.index) = ws + off; off += (size_t)B * \(round(width(u)));\n"
        }
        s += "    (void)off;\n"
        var hoff = 0
        for p in products {
            s += "    float *hgy\(p.results[0].index) = hgy + (size_t)B * T * \(hoff);\n"
            hoff += round(width(p.results[0]))
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
        for p in biases { s += "    memset(scratch\(p.index), 0, (size_t)B * \(width(p)) * sizeof(float));\n" }
        func gradientTarget(_ o: ValueID) -> String { computed.contains(o) ? "g\(o.index)" : "m->gw\(o.index)" }
        func value(_ o: ValueID) -> String { computed.contains(o) ? "u\(o.index)" : "m->w\(o.index)" }

        // The loop, on one team: each thread owns the rows (examples) [b0, b1) of every
        // gradient buffer; only the products with the transposed weights cross rows (their
        // threads split the columns), so a barrier stands before and after each of them.
        s += "    /* one parallel region for the whole time loop; each thread owns examples [b0, b1) */\n"
        s += "    const int team = rnnc_team_size(threads, (double)B * \(ScanEmitter(graph: graph, prefix: prefix).stepWork(op)));\n"
        s += "    #pragma omp parallel num_threads(team) if (team > 1)\n"
        s += "    {\n"
        s += "        const int tid = rnnc_thread_id(), nth = rnnc_thread_count();\n"
        s += "        int b0, b1;\n"
        s += "        rnnc_split(B, tid, nth, &b0, &b1);\n"
        s += "        const size_t rows = (size_t)(b1 - b0);\n"
        s += "        (void)rows;\n"
        s += "        for (int step = T - 1; step >= 0; step--) {\n"
        s += "            const int t = \(reverse ? "T - 1 - step" : "step");\n"
        for v in gvals { s += "            memset(g\(v.index) + (size_t)b0 * \(width(v)), 0, rows * \(width(v)) * sizeof(float));\n" }
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
                    else if biases.contains(o) { args += ["scratch\(o.index)", "\(width(o))"] }
                    else { args += ["NULL", "0"] }
                }
                s += "            \(fusedBack.functionName(inner))_part(\(args.joined(separator: ", ")));\n"
            case .matvec:
                let w = inner.operands[0], v = inner.operands[1], y = inner.results[0]
                let wt = graph.type(of: w)
                s += "            /* product \(graph.name(of: y) ?? ""): keep g for the weight gradient; g(v) += g(y) W */\n"
                s += "            memcpy(hgy\(y.index) + ((size_t)t * B + b0) * \(wt.dims[0]), g\(y.index) + (size_t)b0 * \(wt.dims[0]), rows * \(wt.dims[0]) * sizeof(float));\n"
                if hist[v] != nil {
                    s += "            #pragma omp barrier\n"
                    s += "            rnnc_gemm_part(B, \(wt.dims[1]), \(wt.dims[0]), g\(y.index), \(wt.dims[0]), m->pkT\(w.index), NULL, g\(v.index), \(wt.dims[1]), 1, tid, nth);\n"
                    s += "            #pragma omp barrier\n"
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
        s += "                if (lengths && t >= lengths[b]) continue;\n"
        for (i, st) in states.enumerated() {
            let w = width(st)
            s += "                memcpy(carry\(i) + (size_t)b * \(w), g\(st.index) + (size_t)b * \(w), \(w) * sizeof(float));\n"
        }
        for k in 0..<stepInputs {
            let a = region.arguments[k]
            let w = width(a)
            s += "                for (int j = 0; j < \(w); j++) dx\(k)[((size_t)b * T + t) * \(w) + j] += g\(a.index)[(size_t)b * \(w) + j];\n"
        }
        s += "            }\n"
        s += "        }\n"
        s += "    }\n"
        // Biases and parameter-only values: their sums over steps and examples.
        for p in biases { s += "    rnnc_bias_gradient(B, \(width(p)), scratch\(p.index), \(width(p)), \(gradientTarget(p)));\n" }
        for inner in region.ops.reversed() where inner.kind == .fused && !graph.type(of: inner.region!.ops.last!.results[0]).batched {
            s += "    /* \(fusedBack.functionName(inner)): a parameter-only kernel, gradients straight into its inputs' */\n"
            var args = ["0", "1"]
            for o in inner.operands { args += [value(o), "0"] }
            for r in inner.results { args += ["g\(r.index)", "0"] }
            for o in inner.operands { args += [graph.type(of: o).dims.isEmpty ? "NULL" : gradientTarget(o), "0"] }
            s += "    \(fusedBack.functionName(inner))_part(\(args.joined(separator: ", ")));\n"
        }
        // Weight gradients of the recurrent products: one product over all steps each.
        for p in products {
            let w = p.operands[0], v = p.operands[1], y = p.results[0]
            let wt = graph.type(of: w)
            guard hist[v] != nil else { continue }
            s += "    /* \(graph.name(of: w) ?? "weight") += sum over steps and examples of g(y)^T v */\n"
            s += "    rnnc_weight_gradient(T * B, \(wt.dims[0]), \(wt.dims[1]), hgy\(y.index), \(wt.dims[0]), hist + (size_t)B * \(hist[v]!) * T, \(wt.dims[1]), m->gw\(w.index), threads);\n"
        }
        s += "}\n"
        return s
    }
}
