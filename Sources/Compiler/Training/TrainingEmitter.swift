import Foundation
import GraphIR

/// The training half of NAME.c: `NAME_gradients` runs the forward pass keeping what the
/// backward pass needs, the loss, and the backward pass, leaving every parameter's
/// gradient in a block laid out like the parameters (`NAME_gradient(m, i)`).
///
/// The backward pass walks the top-level ops in reverse with one rule per op kind
/// (`backwardCode`); element-wise work goes through the fused backward kernels, and each
/// recurrence through its reverse scan.
extension CEmitter {
    /// Values whose gradient is needed: computed from parameters, and read (directly or
    /// not) by the loss. An output the loss does not read (`probs = softmax(logits)` when
    /// the loss takes the logits) gets no backward work.
    func valuesNeedingGradients() -> Set<ValueID> {
        var fromParameters = Set<ValueID>()
        for op in graph.ops {
            if op.kind.isParameterPlumbing || op.operands.contains(where: fromParameters.contains) {
                fromParameters.formUnion(op.results)
            }
        }
        return fromParameters.intersection(valuesFeedingLoss())
    }

    /// Values the loss depends on (all of the prediction's inputs, back to the model's).
    func valuesFeedingLoss() -> Set<ValueID> {
        valuesComputing(Array(graph.keepAlive.prefix(1)))
    }

    /// `seeds` and every value they are computed from, back to the model's inputs. An op's
    /// results all count together: a scan's results all come from one op, and every one of
    /// them may carry gradient.
    func valuesComputing(_ seeds: [ValueID]) -> Set<ValueID> {
        let defs = graph.definingOps()
        var found = Set<ValueID>()
        var work = seeds
        while let v = work.popLast() {
            guard found.insert(v).inserted, let op = defs[v] else { continue }
            found.formUnion(op.results)
            work += op.operands
        }
        return found
    }

    /// Top-level values that hold activations during training (each its own buffer).
    var trainingValues: [ValueID] {
        var out: [ValueID] = []
        for op in graph.ops where !op.kind.isParameterPlumbing {
            if case .input = op.kind { continue }
            out += op.results
        }
        return out
    }

    /// Weights that need a transposed packing for the backward products.
    /// A top-level projection whose input takes no gradient (a model input) only sums its
    /// weight's gradient, so its weight needs none: for a one-layer model that is one
    /// matrix fewer to keep and to repack at every step. Products inside recurrences always
    /// pass gradient to their vector (the state).
    var transposedWeights: [ValueID] {
        let needs = valuesNeedingGradients()
        var used = Set<ValueID>()
        func visitBodies(_ ops: [Op]) {
            for op in ops {
                switch op.kind {
                case .matvec: used.insert(op.operands[0])
                case .linear: used.insert(op.operands[1])
                default: break
                }
                if let region = op.region { visitBodies(region.ops) }
            }
        }
        for op in graph.ops {
            if case .linear = op.kind, needs.contains(op.operands[0]) { used.insert(op.operands[1]) }
            if let region = op.region { visitBodies(region.ops) }
        }
        return packedWeights.filter(used.contains)
    }

    /// Stacked weights that are copies (not views of the parameter block, `stackView`):
    /// their gradients have blocks of their own, summed back into the parts'.
    var stackOps: [Op] { plumbing.filter { $0.kind == .stackRows && stackView($0) == nil } }

    /// The prediction, when the loss's gradient can be written over it: no backward rule
    /// reads it. Its own op's rule reads its operands, not its result (softmax's would), and
    /// no op that takes it has a rule (`probs = softmax(logits)` beside a loss on the logits
    /// has none). Its gradient then needs no buffer of its own: for an LSTM at T=100, B=32,
    /// H=256 with an mse loss, 3.3 MB of a 52 MB step.
    func lossGradientInPlace(needs: Set<ValueID>) -> ValueID? {
        guard let p = graph.keepAlive.first, let op = graph.definingOps()[p] else { return nil }
        switch op.kind {
        case .linear, .scan, .fused: break
        default: return nil
        }
        let readers = graph.ops.filter { $0.operands.contains(p) && $0.results.contains(where: needs.contains) }
        return readers.isEmpty ? p : nil
    }

    /// Values the training forward computes: what the loss reads and, since a stateful
    /// recurrence carries its states to the next call, every recurrence and what it reads.
    /// The gradients function returns no outputs, so an output the loss does not read
    /// (`probs = softmax(logits)` beside `cross_entropy(logits, ...)`) is neither computed
    /// nor given room.
    func valuesComputedInTraining() -> Set<ValueID> {
        let scanResults = graph.ops.flatMap { op -> [ValueID] in
            if case .scan = op.kind { return op.results } else { return [] }
        }
        return valuesComputing(Array(graph.keepAlive.prefix(1)) + scanResults)
    }

    /// Why this model cannot be differentiated yet, or nil.
    func trainingUnsupportedReason() -> String? {
        // Inside recurrences, parameter-only values are handled by the reverse scan; at the
        // top level there is nothing to hold them.
        for op in graph.ops where !op.kind.isParameterPlumbing {
            switch op.kind {
            case .constant, .input: continue
            default: break
            }
            for r in op.results where !graph.type(of: r).batched {
                return "an expression of parameters alone (line \(op.source?.line ?? 0)) is not differentiated yet"
            }
        }
        return nil
    }

    func emitTrainingKernels() -> String {
        if trainingUnsupportedReason() != nil || signature.loss == nil { return "" }
        var s = ""
        let scans = graph.ops.filter { if case .scan = $0.kind { return true } else { return false } }
        let fusedBack = FusedBackwardEmitter(graph: graph)
        let summed = WindowBiasGradients(graph: graph).summedFromWindow(scans)
        let stores = FirstGradientWrites.fusedStores(graph: graph, scans: scans, prefix: prefix, summedElsewhere: summed)
        // Kernels of time loops run as `_part`s of the loop's team.
        for op in graph.allOps() where op.kind == .fused {
            s += fusedBack.emit(op, whole: graph.ops.contains(op), summedElsewhere: summed[op.results[0]] ?? [],
                                assigned: stores[op.results[0]] ?? []) + "\n"
        }
        let scanEmitter = ScanEmitter(graph: graph, prefix: prefix, unroll: unroll)
        let scanBack = ScanBackwardEmitter(graph: graph, prefix: prefix)
        for op in scans {
            s += scanEmitter.emit(op, training: true) + "\n"
            s += scanBack.emit(op) + "\n"
        }
        return s
    }

    func trainingParameters() -> [String] {
        var ps = runParameters()
        ps.removeLast()   // lengths goes last, after the targets
        for t in signature.targets {
            ps.append(t.type.element == .i32 ? "const int32_t *tgt_\(CNames.identifier(t.name))" : "const float *tgt_\(CNames.identifier(t.name))")
        }
        ps += ["const int32_t *lengths", "double *loss"]
        return ps
    }

    func emitGradients() -> String {
        let unsupported = trainingUnsupportedReason()
        guard unsupported == nil, let lossSpec = signature.loss, let prediction = graph.keepAlive.first,
              let target = signature.targets.first(where: { $0.name == lossSpec.target }) else {
            let message = unsupported.map { "model '\(graph.name)' cannot be trained yet: \($0)" }
                ?? "model '\(graph.name)' has no loss: add 'loss mse(...)' or 'loss cross_entropy(...)'"
            return """
            int \(prefix)_gradients_v(\(prefix)_model *m, int batch, int time, const void *const *inputs, const void *const *targets,
                                      const int32_t *lengths, double *loss) {
                (void)m; (void)batch; (void)time; (void)inputs; (void)targets; (void)lengths; (void)loss;
                rnnc_fail("%s", "\(message.replacingOccurrences(of: "\"", with: "'"))");
                return -1;
            }
            const float *\(prefix)_gradient(const \(prefix)_model *m, int index) { (void)m; (void)index; return NULL; }
            int \(prefix)_train_step_v(\(prefix)_model *m, int batch, int time, const void *const *inputs, const void *const *targets,
                                       const int32_t *lengths, const rnnc_optimizer *optimizer, double *loss) {
                (void)optimizer;
                return \(prefix)_gradients_v(m, batch, time, inputs, targets, lengths, loss);
            }
            int \(prefix)_optimizer_state(\(prefix)_model *m, float **moment1, float **moment2, long **step) {
                (void)m; (void)moment1; (void)moment2; (void)step;
                return -1;
            }
            int \(prefix)_training_floats(int batch, int time, double *out) {
                (void)batch; (void)time; (void)out;
                return -1;
            }
            int \(prefix)_loss_v(\(prefix)_model *m, int batch, int time, const void *const *inputs, const void *const *targets,
                                 const int32_t *lengths, double *loss) {
                return \(prefix)_gradients_v(m, batch, time, inputs, targets, lengths, loss);
            }

            """
        }
        let needs = valuesNeedingGradients()
        let defs = graph.definingOps()
        var s = "/* ---------------------------------------------------------------------------------- */\n"
        s += "/* Training: gradients of the loss                                                   */\n\n"
        s += "/* Forward (keeping every activation), \(lossSpec.kind.rawValue) loss, backward. Leaves the gradient\n"
        s += " * of every parameter in m->grads (layout of the parameters). Dropout applies when m->dropout_on. */\n"
        s += "int \(prefix)_gradients(\(trainingParameters().joined(separator: ", "))) {\n"
        s += callPreamble()
        let predType = graph.type(of: prediction)
        s += labelCheck(lossSpec, prediction: prediction, target: target.name)
        // One-time allocations: the gradient block and stacked gradients.
        s += "    if (!m->grads) {\n"
        s += "        if (!(m->grads = rnnc_alloc_floats(\(prefix)_parameter_floats))) { rnnc_fail(\"out of memory\"); return -1; }\n"
        for op in stackOps {
            let r = op.results[0]
            s += "        if (!(m->gw\(r.index) = rnnc_alloc_floats(\(graph.type(of: r).featureCount)))) { rnnc_fail(\"out of memory\"); return -1; }\n"
        }
        s += "    }\n"
        let offsets = Dictionary(uniqueKeysWithValues: parameterOffsets.map { ($0.0.name, $0.1) })
        for op in plumbing {
            let r = op.results[0]
            switch op.kind {
            case .param(let name): s += "    m->gw\(r.index) = m->grads + \(offsets[name]!);\n"
            case .stackRows:
                if let off = stackView(op) { s += "    m->gw\(r.index) = m->grads + \(off);  /* a view, as the stack is */\n" }
            case .paramChunk(let i, let n):
                let parent = graph.type(of: op.operands[0])
                let per = parent.dims[0] / n * parent.dims.dropFirst().reduce(1, *)
                s += "    m->gw\(r.index) = m->gw\(op.operands[0].index) + \(i * per);\n"
            default: break
            }
        }
        s += "    memset(m->grads, 0, (size_t)\(prefix)_parameter_floats * sizeof(float));\n"
        for op in stackOps {
            let r = op.results[0]
            s += "    memset(m->gw\(r.index), 0, \(graph.type(of: r).featureCount) * sizeof(float));\n"
        }
        // The training arena: activations, their gradients, scan histories and workspaces.
        var pieces: [(name: String, size: String)] = []
        func size(_ t: TensorType) -> String {
            guard t.sequence || t.batched else { return "rnnc_round16(\(t.featureCount))" }
            return MemoryPlan<String>.sizeExpression(t.sequence ? .perStep : .perExample, width: t.featureCount)
        }
        // A projection computed step by step (B >= RNNC_STREAM_MIN_BATCH) lives in the scan's
        // history and its gradient in the reverse scan's window: no buffers of its own. Nor
        // has an embedding whose projection takes its rows from a table, or its gradient.
        let conditional = ProjectedEmbeddings(graph: graph).conditionalValues
        let inPlace = lossGradientInPlace(needs: needs)
        let computed = valuesComputedInTraining()
        // The backward pass's buffers are not pieces of their own: they share slots by
        // lifetime (BackwardPlan, below).
        var backward: [BackwardPlan.Buffer] = []
        func gradient(_ v: ValueID) -> BackwardPlan.Buffer {
            let t = graph.type(of: v)
            return .init(name: "g\(v.index)", extent: t.sequence ? .perStep : .perExample, width: t.featureCount,
                         onlyWhen: conditional[v])
        }
        for v in trainingValues where computed.contains(v) {
            let bytes = conditional[v].map { "(\($0) ? \(size(graph.type(of: v))) : 0)" } ?? size(graph.type(of: v))
            pieces.append(("v\(v.index)", bytes))
            if v != inPlace { backward.append(gradient(v)) }
        }
        // Inputs are read in place; a recurrence or fused kernel reading one directly still
        // writes its gradient (which nothing reads). Products and embeddings do not.
        let writesInputGradient = Set(graph.ops.filter { op in
            switch op.kind {
            case .scan, .fused: return true
            default: return false
            }
        }.flatMap(\.operands))
        for op in graph.ops {
            guard case .input = op.kind, writesInputGradient.contains(op.results[0]) else { continue }
            backward.append(gradient(op.results[0]))
        }
        // Two recurrences run their backward side by side as well, the rules that add into a
        // gradient both share after them (ConcurrentRecurrences.backwardBranches). Where the
        // recurrences compute that gradient step by step, the second in turn adds its share
        // into a buffer of its own, summed into the gradient after both.
        let concurrent = ConcurrentRecurrences(graph: graph)
        var backwardPairs = concurrent.pairs.filter { $0.pipeline == nil }.compactMap { concurrent.backwardBranches($0, graph: graph) }
        var separate: [Int: Set<ValueID>] = [:]
        for (k, pair) in backwardPairs.enumerated() {
            let scan = graph.ops[pair.separateScan]
            let streamedInputs = Set(StreamedProjections(graph: graph).of(scan).values.map { $0.operands[0] })
            var closing = ""
            for u in pair.shared where needs.contains(u) && streamedInputs.contains(u) {
                separate[pair.separateScan, default: []].insert(u)
                let streaming = "B >= RNNC_STREAM_MIN_BATCH" + (conditional[u].map { " && \($0)" } ?? "")
                backward.append(.init(name: "gpair\(u.index)", extent: .perStep, width: graph.type(of: u).featureCount,
                                      onlyWhen: streaming))
                closing += "    /* the second recurrence's share of g(\(CNames.comment(graph.name(of: u) ?? "v\(u.index)"))), from its time loop */\n"
                closing += "    if (\(streaming))\n"
                closing += "        for (size_t i = 0; i < (size_t)B * T * \(graph.type(of: u).featureCount); i++) g\(u.index)[i] += gpair\(u.index)[i];\n"
            }
            backwardPairs[k].branches.closing = closing
        }
        pieces.append(("valid", "rnnc_round16((size_t)B * T)"))
        for op in graph.ops { if case .dropout = op.kind { pieces.append(("mask\(op.results[0].index)", size(graph.type(of: op.results[0])))) } }
        let scanEmitter = ScanEmitter(graph: graph, prefix: prefix, unroll: unroll)
        let scanBack = ScanBackwardEmitter(graph: graph, prefix: prefix)
        let scans = graph.ops.filter { if case .scan = $0.kind { return true } else { return false } }
        var forwardWorkspaces: [(pointer: String, size: String)] = []
        for op in scans {
            let i = op.results[0].index
            forwardWorkspaces.append(("ws\(i)", "rnnc_round16((size_t)B * \(scanEmitter.workspaceWidth(op, training: true)))"))
            pieces.append(("hist\(i)", "rnnc_round16((size_t)B * T * \(scanEmitter.historyWidth(op)))"))
            let w = scanBack.workspace(op)
            backward.append(.init(name: "bws\(i)", extent: .perExample, width: w.perExample, zeroed: false))
            backward.append(.init(name: "hgy\(i)", extent: .perWindowRow, width: max(1, w.perWindowRow), zeroed: false))
        }
        let scratchOperands = graph.ops.filter { $0.kind == .fused }.flatMap { op in
            op.operands.filter { !graph.type(of: $0).batched && !graph.type(of: $0).dims.isEmpty }
        }
        for o in Set(scratchOperands).sorted() {
            pieces.append(("scratch\(o.index)", "rnnc_round16((size_t)B * T * \(graph.type(of: o).featureCount))"))
        }
        func ptr(_ v: ValueID) -> String {
            if let op = defs[v] {
                switch op.kind {
                case .input(let name): return "in_\(CNames.identifier(name))"
                case .param, .paramChunk, .stackRows: return "m->w\(v.index)"
                default: break
                }
            }
            return "v\(v.index)"
        }
        // The loss, then the backward rules in reverse order of the ops: stage 0, 1, ...
        let tname = "tgt_\(CNames.identifier(target.name))"
        var stages = [lossCall(lossSpec, prediction: prediction, values: ptr(prediction), target: tname, gradient: "g\(prediction.index)")]
        stages += graph.ops.indices.reversed().map {
            backwardCode(graph.ops[$0], needs: needs, ptr: ptr, separate: separate[$0] ?? [])
        }
        // A pair's buffers live for all of its stages.
        let backwardPlan = BackwardPlan(buffers: backward, stages: stages, together: backwardPairs.map(\.branches.run))
        // A forward workspace no backward stage names is the forward's alone: it goes into
        // the shared region, after the packings.
        let readByBackward = { (w: (pointer: String, size: String)) in stages.contains { Self.mentions($0, w.pointer) } }
        let forwardOnly = forwardWorkspaces.filter { !readByBackward($0) }
        pieces += forwardWorkspaces.filter(readByBackward).map { (name: $0.pointer, size: $0.size) }
        var region = sharedRegion(backwardPlan)
        region.forwardScratch = forwardOnly
        pieces.append(("shared", region.size))
        s += region.sizeDeclarations()
        s += "    size_t need = " + pieces.map(\.size).joined(separator: "\n                + ") + ";\n"
        s += """
            if (need > m->train_floats) {
        \(region.releaseBeforeReallocation())        free(m->train_arena);
                m->train_floats = 0;
                if (!(m->train_arena = rnnc_alloc_floats(need))) { rnnc_fail("out of memory: %zu floats for training", need); return -1; }
                m->train_floats = need;
            }
            const int threads = m->threads;
            size_t offset = 0;

        """
        let carveAt = s.count
        for p in pieces {
            s += "    float *\(p.name) = m->train_arena + offset; offset += \(p.size);\n"
        }
        s += "    (void)offset;\n"
        if let p = inPlace {
            s += "    float *g\(p.index) = v\(p.index);  /* the loss's gradient, over the prediction: no backward rule reads it */\n"
        }
        let carvedEnd = s.count
        s += region.placeForward(at: "shared", prefix: prefix)
        s += region.carve(at: "shared")
        s += backwardPlan.declarations()
        s += "\n    /* forward, keeping every activation */\n"
        let denseSoftmax = DenseSoftmax(graph: graph)
        func needed(_ i: Int) -> Bool {
            let op = graph.ops[i]
            return op.kind.isParameterPlumbing || op.results.isEmpty || op.results.contains(where: computed.contains)
        }
        func forwardCode(_ i: Int) -> String {
            let op = graph.ops[i]
            if !needed(i) {
                return "    /* not needed for the loss: \(opComment(op).replacingOccurrences(of: "\n     * ", with: " | ")) */\n"
            }
            // A dense layer and the softmax after it, both needed: one fused call.
            if i + 1 < graph.ops.count, needed(i + 1), denseSoftmax.softmax(fusedInto: i, ptr: ptr) != nil {
                return denseSoftmax.code(at: i, rows: rowCount(graph.type(of: op.results[0])), comment: opComment, ptr: ptr)
            }
            if denseSoftmax.isFusedSoftmax(i, ptr: ptr) { return "" }  // needed, so its dense layer is too
            return forwardOpCode(op, ptr: ptr, scanCall: { scan, args in
                // The training scan takes its history before the workspace and thread count.
                var a = Array(args.dropLast(2))
                a += ["hist\(scan.results[0].index)", args[args.count - 2], args[args.count - 1]]
                // (args end with the carried state, then workspace and threads: the carry
                // stays before the history, as the training scan's signature has it.)
                return "    \(scanEmitter.functionName(scan))_train(\(a.joined(separator: ", ")));\n"
            }, workspace: { "ws\($0.results[0].index)" }, dropoutMask: { "mask\($0.index)" }, training: true)
        }
        // Two independent recurrences may run side by side, and two stacked ones as a
        // pipeline: every buffer of the training forward is its own (activations,
        // histories, workspaces), so they share none.
        s += concurrent.emitOps(count: graph.ops.count, code: forwardCode)
        // The forward is done: the backward's buffers take the forward packings' place.
        if !region.forward.isEmpty {
            s += "\n    /* the loss and the backward write over the forward's packings: pack them again before the next forward */\n"
            s += "    m->pk_stale = 1;\n"
        }
        for w in transposedWeights {
            let t = graph.type(of: w)
            s += "    rnnc_pack_weights_transposed(m->w\(w.index), \(t.dims[0]), \(t.dims[1]), m->pkT\(w.index));\n"
        }
        // Loss.
        s += "\n    /* loss: \(lossSpec.kind.rawValue)(\(lossSpec.prediction), \(lossSpec.target)) */\n"
        s += "    unsigned char *valid_rows = NULL;\n"
        if predType.sequence {
            s += "    if (lengths) {\n        valid_rows = (unsigned char *)valid;\n"
            s += "        rnnc_length_mask(B, T, lengths, valid_rows);\n    }\n"
        } else {
            s += "    (void)valid;\n"
        }
        s += stages[0]
        s += "\n    /* backward: the ops in reverse, one rule each; a gradient starts at zero before its first */\n"
        // A pair's buffers all start at its first stage (BackwardPlan's `together`), so
        // they are zeroed before its region.
        s += ConcurrentRecurrences.emit(items: stages.indices.dropFirst(), branches: backwardPairs.map(\.branches),
                                        before: backwardPlan.zeroing(before:)) { stages[$0] }
        s += "\n    /* gradients of stacked weights go back to the parameters they were stacked from */\n"
        for op in stackOps {
            let r = op.results[0]
            var off = 0
            for part in op.operands {
                let n = graph.type(of: part).featureCount
                s += "    for (int i = 0; i < \(n); i++) m->gw\(part.index)[i] += m->gw\(r.index)[\(off) + i];\n"
                off += n
            }
        }
        // Buffers the body never names (an input nobody differentiates into) are marked used.
        let body = String(s.dropFirst(carvedEnd))
        let unused = pieces.filter { !Self.mentions(body, $0.name) }.map { "    (void)\($0.name);\n" }.joined()
        s.insert(contentsOf: unused, at: s.index(s.startIndex, offsetBy: carvedEnd))
        _ = carveAt
        s += "    return 0;\n}\n\n"
        // Generic entry points.
        s += "int \(prefix)_gradients_v(\(prefix)_model *m, int batch, int time, const void *const *inputs, const void *const *targets,\n"
        s += "                          const int32_t *lengths, double *loss) {\n"
        var args = ["m", "batch", "time"]
        for (i, p) in signature.inputs.enumerated() { args.append("(const \(p.type.element == .i32 ? "int32_t" : "float") *)inputs[\(i)]") }
        for (i, t) in signature.targets.enumerated() { args.append("(const \(t.type.element == .i32 ? "int32_t" : "float") *)targets[\(i)]") }
        if signature.inputs.isEmpty { s += "    (void)inputs;\n" }
        if signature.targets.isEmpty { s += "    (void)targets;\n" }
        args += ["lengths", "loss"]
        s += "    return \(prefix)_gradients(\(args.joined(separator: ", ")));\n}\n\n"
        s += "const float *\(prefix)_gradient(const \(prefix)_model *m, int index) {\n"
        s += "    if (!m->grads || index < 0 || index >= \(prefix)_parameter_count) return NULL;\n"
        s += "    return m->grads + \(prefix)_parameters[index].offset;\n}\n\n"
        s += """
        /* The optimizer's state for checkpoints: the two moment blocks (laid out like the
         * parameters; the momentum buffer is the first for SGD), and the step count. Allocated
         * here if no step ran yet, so a resumed run can fill them before its first step. */
        int \(prefix)_optimizer_state(\(prefix)_model *m, float **moment1, float **moment2, long **step) {
            if (!m->opt_m) {
                if (!(m->opt_m = rnnc_alloc_floats(\(prefix)_parameter_floats)) || !(m->opt_v = rnnc_alloc_floats(\(prefix)_parameter_floats))) {
                    rnnc_fail("out of memory for the optimizer state");
                    return -1;
                }
                memset(m->opt_m, 0, \(prefix)_parameter_floats * sizeof(float));
                memset(m->opt_v, 0, \(prefix)_parameter_floats * sizeof(float));
                m->opt_step = 0;
            }
            *moment1 = m->opt_m;
            *moment2 = m->opt_v;
            *step = &m->opt_step;
            return 0;
        }

        /* One training step: gradients, clipping (clip_grad_norm_), the optimizer's update of
         * every parameter (one pass over the parameter block), then the derived weights again. */
        int \(prefix)_train_step_v(\(prefix)_model *m, int batch, int time, const void *const *inputs, const void *const *targets,
                                   const int32_t *lengths, const rnnc_optimizer *optimizer, double *loss) {
            if (\(prefix)_gradients_v(m, batch, time, inputs, targets, lengths, loss) != 0) return -1;
            float *m1, *m2;
            long *count;
            if (\(prefix)_optimizer_state(m, &m1, &m2, &count) != 0) return -1;
            if (optimizer->clip_norm > 0.0f) rnnc_clip_grad_norm(m->grads, \(prefix)_parameter_floats, optimizer->clip_norm);
            m->opt_step += 1;
            rnnc_optimizer_step(optimizer, m->params, m->grads, m->opt_m, m->opt_v, \(prefix)_parameter_floats, m->opt_step);
            return \(prefix)_derive(m);
        }

        """
        s += trainingFloatsFunction(pieces, region: region)
        s += lossFunction(lossSpec, prediction: prediction, target: target.name)
        return s
    }

    /// A cross-entropy loss's labels, checked against the classes (over valid rows).
    private func labelCheck(_ lossSpec: LossSpec, prediction: ValueID, target: String) -> String {
        guard lossSpec.kind == .crossEntropy else { return "" }
        let predType = graph.type(of: prediction)
        let lossRows = predType.sequence ? "B * T" : "B"
        let classes = predType.width
        let tname = "tgt_\(CNames.identifier(target))"
        var s = "    for (int r = 0; r < \(lossRows); r++) {\n"
        if predType.sequence {
            s += "        if (lengths && r % T >= lengths[r / T]) continue;\n"
        }
        s += "        if (\(tname)[r] < 0 || \(tname)[r] >= \(classes)) { rnnc_fail(\"target '\(target)': label %d at flat position %d is out of range [0, \(classes))\", (int)\(tname)[r], r); return -1; }\n"
        s += "    }\n"
        return s
    }

    /// `NAME_loss_v`: the inference forward pass (its arena, no dropout, no history), then
    /// the loss on the prediction it leaves in `m->prediction`: what validation and
    /// `rnnc evaluate` need, at the cost of a forward pass instead of a training step.
    private func lossFunction(_ lossSpec: LossSpec, prediction: ValueID, target: String) -> String {
        let predType = graph.type(of: prediction)
        let tname = "tgt_\(CNames.identifier(target))"
        let targetIndex = signature.targets.firstIndex { $0.name == target }!
        let isInt = signature.targets[targetIndex].type.element == .i32
        var s = "/* The loss of one batch in evaluation mode: the forward pass of \(prefix)_run (dropout off,\n"
        s += " * nothing kept for a backward pass), then the \(lossSpec.kind.rawValue) loss. */\n"
        s += "int \(prefix)_loss_v(\(prefix)_model *m, int batch, int time, const void *const *inputs, const void *const *targets,\n"
        s += "                     const int32_t *lengths, double *loss) {\n"
        s += "    if (\(prefix)_run_v(m, batch, time, inputs, lengths) != 0) return -1;\n"
        s += "    const int B = batch;\n"
        s += hasSequenceInput ? "    const int T = time;\n" : "    const int T = 1;\n    (void)time;\n"
        s += "    (void)T;\n"
        s += "    const \(isInt ? "int32_t" : "float") *\(tname) = (const \(isInt ? "int32_t" : "float") *)targets[\(targetIndex)];\n"
        s += labelCheck(lossSpec, prediction: prediction, target: target)
        s += "    unsigned char *valid_rows = NULL;\n"
        if predType.sequence {
            s += "    if (lengths) {\n"
            s += "        if (m->valid_rows < (size_t)B * T) {\n"
            s += "            free(m->valid);\n"
            s += "            m->valid_rows = 0;\n"
            s += "            if (!(m->valid = malloc((size_t)B * T))) { rnnc_fail(\"out of memory\"); return -1; }\n"
            s += "            m->valid_rows = (size_t)B * T;\n"
            s += "        }\n"
            s += "        valid_rows = m->valid;\n"
            s += "        rnnc_length_mask(B, T, lengths, valid_rows);\n"
            s += "    }\n"
        }
        s += lossCall(lossSpec, prediction: prediction, values: "m->prediction", target: tname, gradient: "NULL")
        s += "    return 0;\n}\n\n"
        return s
    }

    /// `*loss = ...` for the prediction's values, the targets and the valid rows, writing the
    /// prediction's gradient to `gradient` (or not, for "NULL").
    private func lossCall(_ lossSpec: LossSpec, prediction: ValueID, values: String, target: String, gradient: String) -> String {
        let predType = graph.type(of: prediction)
        let rows = predType.sequence ? "B * T" : "B"
        switch lossSpec.kind {
        case .mse:
            return "    *loss = rnnc_mse_loss(\(rows), \(predType.featureCount), \(values), \(target), valid_rows, \(gradient));\n"
        case .crossEntropy:
            return "    *loss = rnnc_cross_entropy_loss(\(rows), \(predType.width), \(values), \(target), valid_rows, \(gradient));\n"
        }
    }

    /// The forward's packings and the backward's buffers (the plan's slots, then the
    /// transposed packings), which take the same memory in turn.
    private func sharedRegion(_ plan: BackwardPlan) -> SharedRegion {
        let forward = packedWeights.map { w -> (pointer: String, size: String) in
            let t = graph.type(of: w)
            return ("m->pk\(w.index)", "rnnc_round16(rnnc_packed_size(\(t.dims[0]), \(t.dims[1])))")
        }
        let transposed = transposedWeights.map { w -> (pointer: String, size: String) in
            let t = graph.type(of: w)
            return ("m->pkT\(w.index)", "rnnc_round16(rnnc_packed_size(\(t.dims[1]), \(t.dims[0])))")
        }
        let slots = plan.slotSizes.enumerated().map { (pointer: "bslot\($0.offset)", size: $0.element) }
        return SharedRegion(forward: forward, slots: slots, transposed: transposed)
    }

    /// `NAME_training_floats`: what a training step's arena holds, by kind, for a batch and
    /// sequence length (the same size expressions as the arena's), and the packed weights.
    private func trainingFloatsFunction(_ pieces: [(name: String, size: String)], region: SharedRegion) -> String {
        // Values (vN), histories and dropout masks; `valid` (the loss's row mask) is work.
        let saved = pieces.filter { p in
            p.name != "valid" && ["v", "hist", "mask"].contains(where: p.name.hasPrefix)
        }
        let work = pieces.filter { p in p.name != "shared" && !saved.contains(where: { $0.name == p.name }) }.map(\.size)
            + region.forwardScratch.map(\.size) + region.slots.map(\.size)
            + ProjectedEmbeddings(graph: graph).all.map { "(\($0.pays) ? (size_t)\($0.floats) : 0)" }
        func sum(_ ps: [String]) -> String {
            ps.isEmpty ? "0" : ps.map { "(double)\($0)" }.joined(separator: "\n             + ")
        }
        let packed = (region.forward + region.transposed).map(\.size)
        var s = "/* Floats a training step keeps for `batch` examples of `time` steps: out[0] the activations\n"
        s += " * saved for the backward pass, out[1] its work buffers (activation gradients, a window of\n"
        s += " * product gradients, scratch, projected embeddings' tables), out[2] the packed copies of the weights (forward and\n"
        s += " * transposed), out[3] the floats that the forward's packings and the backward's buffers\n"
        s += " * share (they take the same memory in turn): the step holds out[0] + out[1] + out[2] - out[3].\n"
        s += " * Parameters, gradients and each optimizer moment: NAME_parameter_floats. */\n"
        s += "int \(prefix)_training_floats(int batch, int time, double *out) {\n"
        s += "    const int B = batch;\n    const int T = time;\n    (void)B;\n    (void)T;\n"
        s += "    out[0] = \(sum(saved.map(\.size)));\n"
        s += "    out[1] = \(sum(work));\n"
        s += "    out[2] = \(sum(packed));\n"
        s += region.sizeDeclarations()
        s += "    out[3] = \(region.shared);\n"
        s += "    return 0;\n}\n\n"
        return s
    }

    /// Whether C text uses an identifier (not as part of a longer one).
    static func mentions(_ text: String, _ name: String) -> Bool {
        var rest = Substring(text)
        while let r = rest.range(of: name) {
            let before = r.lowerBound == rest.startIndex ? nil : rest[rest.index(before: r.lowerBound)]
            let after = r.upperBound == rest.endIndex ? nil : rest[r.upperBound]
            func isIdent(_ c: Character?) -> Bool { c.map { $0.isLetter || $0.isNumber || $0 == "_" } ?? false }
            if !isIdent(before) && !isIdent(after) { return true }
            rest = rest[r.upperBound...]
        }
        return false
    }

    /// The backward rule of one top-level op. `separate`: for a recurrence, the inputs of its
    /// streamed projections whose gradient it adds into `gpair<value>` instead of
    /// `g<value>` (ConcurrentRecurrences.BackwardBranches.separateScan).
    func backwardCode(_ op: Op, needs: Set<ValueID>, ptr: (ValueID) -> String, separate: Set<ValueID> = []) -> String {
        guard let r = op.results.first, needs.contains(r) else { return "" }
        if op.kind.isParameterPlumbing { return "" }
        let rt = graph.type(of: r)
        let rows = rowCount(rt)
        var s = "    /* d: \(opComment(op).replacingOccurrences(of: "\n     * ", with: " | ")) */\n"
        switch op.kind {
        case .linear(let bias):
            let x = op.operands[0], w = op.operands[1]
            let wt = graph.type(of: w)
            let (n, k) = (wt.dims[0], wt.dims[1])
            let streamed = StreamedProjections(graph: graph).results.contains(r)
            let indent = streamed ? "    " : ""
            if streamed {
                s += "    /* from RNNC_STREAM_MIN_BATCH examples the recurrence's backward did this, window by window */\n"
                s += "    if (B < RNNC_STREAM_MIN_BATCH) {\n"
            }
            if needs.contains(x) {
                s += "\(indent)    rnnc_gemm_ex(\(rows), \(k), \(n), g\(r.index), \(n), m->pkT\(w.index), NULL, g\(x.index), \(k), 1, threads);\n"
            }
            s += "\(indent)    rnnc_weight_gradient(\(rows), \(n), \(k), g\(r.index), \(n), \(ptr(x)), \(k), m->gw\(w.index), threads);\n"
            if bias { s += "\(indent)    rnnc_bias_gradient(\(rows), \(n), g\(r.index), \(n), m->gw\(op.operands[2].index));\n" }
            if streamed, let t = ProjectedEmbeddings(graph: graph).table(projecting: r) {
                // The table's gradient holds every step's: W's and E's gradients from its V rows.
                s += "    } else if (\(t.pays)) {\n"
                s += "        /* a projected embedding: \(CNames.comment(graph.name(of: w) ?? "W")) += dtable^T \(CNames.comment(t.tableName)), and \(CNames.comment(t.tableName))'s gradient += dtable W */\n"
                s += "        rnnc_weight_gradient(\(t.vocab), \(n), \(k), \(t.buffer), \(n), m->w\(t.weights.index), \(k), m->gw\(w.index), threads);\n"
                if needs.contains(x) {
                    s += "        rnnc_gemm_ex(\(t.vocab), \(k), \(n), \(t.buffer), \(n), m->pkT\(w.index), NULL, m->gw\(t.weights.index), \(k), 1, threads);\n"
                }
            }
            if streamed { s += "    }\n" }
        case .embedding:
            let table = op.operands[0], ids = op.operands[1]
            let d = rt.width
            let steps = rt.sequence ? "T" : "1"
            if let t = ProjectedEmbeddings(graph: graph).tables(of: r).first {
                s += "    /* with tables of its projections, their rules took this gradient from them */\n"
                s += "    if (!\(t.pays))\n"
            }
            s += "    for (int b = 0; b < B; b++) {\n"
            s += "        int len = \(rt.sequence ? "lengths ? lengths[b] : T" : "1");\n"
            s += "        for (int t = 0; t < len; t++) {\n"
            s += "            float *row = m->gw\(table.index) + (size_t)\(ptr(ids))[(size_t)b * \(steps) + t] * \(d);\n"
            s += "            const float *gr = g\(r.index) + ((size_t)b * \(steps) + t) * \(d);\n"
            s += "            for (int j = 0; j < \(d); j++) row[j] += gr[j];\n"
            s += "        }\n    }\n"
        case .concat:
            let a = op.operands[0], b = op.operands[1]
            let wa = graph.type(of: a).width, wb = graph.type(of: b).width
            s += "    for (size_t i = 0; i < (size_t)\(rows); i++) {\n"
            if needs.contains(a) { s += "        for (int j = 0; j < \(wa); j++) g\(a.index)[i * \(wa) + j] += g\(r.index)[i * \(wa + wb) + j];\n" }
            if needs.contains(b) { s += "        for (int j = 0; j < \(wb); j++) g\(b.index)[i * \(wb) + j] += g\(r.index)[i * \(wa + wb) + \(wa) + j];\n" }
            s += "    }\n"
        case .softmax:
            let x = op.operands[0]
            let w = rt.width
            s += "    for (size_t i = 0; i < (size_t)\(rows); i++) {\n"
            s += "        const float *y = v\(r.index) + i * \(w), *gy = g\(r.index) + i * \(w);\n"
            s += "        float dot = 0.0f;\n        for (int j = 0; j < \(w); j++) dot += gy[j] * y[j];\n"
            s += "        for (int j = 0; j < \(w); j++) g\(x.index)[i * \(w) + j] += y[j] * (gy[j] - dot);\n    }\n"
        case .dropout:
            let x = op.operands[0]
            s += "    for (size_t i = 0; i < (size_t)\(rows) * \(rt.width); i++) g\(x.index)[i] += g\(r.index)[i] * mask\(r.index)[i];\n"
        case .last:
            let seq = op.operands[0]
            let f = rt.featureCount
            s += "    for (int b = 0; b < B; b++) {\n"
            s += "        int t = (lengths ? lengths[b] : T) - 1;\n"
            s += "        for (int j = 0; j < \(f); j++) g\(seq.index)[((size_t)b * T + t) * \(f) + j] += g\(r.index)[(size_t)b * \(f) + j];\n"
            s += "    }\n"
        case .fused:
            let back = FusedBackwardEmitter(graph: graph)
            let width = graph.type(of: op.region!.ops.last!.results[0])
            let fusedRows = width.batched ? (width.sequence ? "B * T" : "B") : "1"
            var args = [fusedRows]
            for o in op.operands {
                let t = graph.type(of: o)
                args += [ptr(o), t.batched ? "\(t.featureCount)" : "0"]
            }
            for res in op.results { args += ["g\(res.index)", "\(graph.type(of: res).featureCount)"] }
            var reductions: [ValueID] = []
            for o in op.operands {
                let t = graph.type(of: o)
                if t.batched { args += ["g\(o.index)", "\(t.featureCount)"] }
                else if !t.dims.isEmpty {
                    args += ["scratch\(o.index)", "\(t.featureCount)"]
                    reductions.append(o)
                } else { args += ["NULL", "0"] }
            }
            args.append("threads")
            for o in reductions { s += "    memset(scratch\(o.index), 0, (size_t)\(fusedRows) * \(graph.type(of: o).featureCount) * sizeof(float));\n" }
            s += "    \(back.functionName(op))(\(args.joined(separator: ", ")));\n"
            for o in reductions {
                s += "    rnnc_bias_gradient(\(fusedRows), \(graph.type(of: o).featureCount), scratch\(o.index), \(graph.type(of: o).featureCount), m->gw\(o.index));\n"
            }
        case .scan:
            let i = r.index
            var args = ["m", "B", "T", "lengths", "hist\(i)", "g\(r.index)"]
            // A final state no rule differentiates into has no gradient: NULL (zero).
            args += op.results.dropFirst().map { f in
                graph.ops.contains { $0.operands.contains(f) && $0.results.contains(where: needs.contains) } ? "g\(f.index)" : "NULL"
            }
            args += op.operands.map { "g\($0.index)" }
            for (_, p) in StreamedProjections(graph: graph).of(op).sorted(by: { $0.key < $1.key }) {
                let u = p.operands[0]
                args += [ptr(u), needs.contains(u) ? "\(separate.contains(u) ? "gpair" : "g")\(u.index)" : "NULL"]
            }
            for (_, t) in ProjectedEmbeddings(graph: graph).of(op).sorted(by: { $0.key < $1.key }) {
                args += [ptr(t.ids), "\(t.pays) ? \(t.buffer) : NULL"]
                s += "    /* the projected embedding's gradient table, summed window by window */\n"
                s += "    if (\(t.pays)) memset(\(t.buffer), 0, (size_t)\(t.floats) * sizeof(float));\n"
            }
            args += ["bws\(i)", "hgy\(i)", "threads"]
            s += "    \(ScanBackwardEmitter(graph: graph, prefix: prefix).functionName(op))(\(args.joined(separator: ", ")));\n"
        default:
            s += "    /* no gradient rule for \(op.kind.mnemonic) */\n"
        }
        return s
    }
}
