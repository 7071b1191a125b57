import GraphIR

/// Turns one use of a cell (one layer, one direction) into a `scan` op whose region is the
/// cell body, checking the body's names and shapes on the way.
struct CellLowering {
    /// How a cell's parameters are named in the weight file for this layer and direction.
    struct Naming {
        var layer: String        // the model binding, e.g. "hidden"
        var suffix: String       // "", "_l0", "_l1_reverse", ...
        func stored(_ local: String) -> String { "\(layer).\(local)\(suffix)" }
    }

    let builder: GraphBuilder
    let diagnostics: DiagnosticEngine
    let file: SourceFile
    /// Where the cell is used, for errors about its bindings and for source notes.
    let useRange: SourceRange
    let source: SourceNote
    /// True for prelude cells, whose source is not the user's file.
    let isBuiltin: Bool

    private func error(_ r: SourceRange, _ message: String) {
        diagnostics.error(isBuiltin ? useRange : r, message)
    }

    /// Size symbols bound for this use (inferred from the input or given at the use site).
    func resolve(_ type: TypeExpr, _ bindings: [String: Int], what: String) -> [Int]? {
        var dims: [Int] = []
        for (i, d) in type.dims.enumerated() {
            switch d {
            case .literal(let v): dims.append(v)
            case .symbol(let s):
                guard let v = bindings[s] else {
                    error(type.dimRanges[i], "size symbol '\(s)' of \(what) is not bound")
                    diagnostics.note(useRange, "bind it where the cell is used, e.g. '\(s)=...'")
                    return nil
                }
                dims.append(v)
            case .time:
                error(type.dimRanges[i], "'time' is not allowed inside a cell: a cell describes one step")
                return nil
            }
        }
        return dims
    }

    /// Emits the parameters and the scan. Returns the scan's results: the output sequence
    /// (the first state at every step) and each state's final value.
    func lower(cell: CellDecl, input: ValueID, reverse: Bool, bindings: [String: Int],
               naming: Naming, registerParameter: (String, [Int], ModelSignature.Initializer) -> Void)
        -> (sequence: ValueID, finals: [ValueID])?
    {
        let g = { self.builder.graph }
        let errorsBefore = diagnostics.errorCount
        let states = cell.parameters.filter(\.isState)
        let stepInputs = cell.parameters.filter { !$0.isState }
        guard let firstState = states.first else {
            error(cell.name.range, "cell '\(cell.name.text)' has no state; declare one with 'state NAME: float[...]'")
            return nil
        }
        guard stepInputs.count == 1 else {
            error(cell.name.range, "cell '\(cell.name.text)' must take exactly one step input before its states (it has \(stepInputs.count))")
            return nil
        }
        let inputWidth = g().type(of: input).width

        // Shapes of the step input and the states.
        guard let xDims = resolve(stepInputs[0].type, bindings, what: "cell '\(cell.name.text)'") else { return nil }
        guard xDims == [inputWidth] else {
            error(useRange, "cell '\(cell.name.text)' expects steps of float[\(xDims.map(String.init).joined(separator: ", "))] but its input has \(inputWidth) features")
            return nil
        }
        var stateDims: [[Int]] = []
        for s in states {
            guard let d = resolve(s.type, bindings, what: "cell '\(cell.name.text)'") else { return nil }
            guard d.count == 1, s.type.element == .float else {
                error(s.type.range, "a state must be a float vector, float[N]")
                return nil
            }
            stateDims.append(d)
        }

        // Initialization as PyTorch: U(-1/sqrt(S), 1/sqrt(S)), S the first state's size.
        let bound = 1.0 / Double(stateDims[0][0]).squareRoot()

        // Parameters: one model-level value each; packed storage is loaded once and chunked.
        var env: [String: ValueID] = [:]
        var packedValues: [String: ValueID] = [:]
        let chunkCounts = Dictionary(grouping: cell.params.compactMap { $0.storage?.packed.text }, by: { $0 }).mapValues(\.count)
        for p in cell.params {
            guard env[p.name.text] == nil, !cell.parameters.contains(where: { $0.name.text == p.name.text }) else {
                error(p.name.range, "'\(p.name.text)' is declared twice in cell '\(cell.name.text)'")
                continue
            }
            guard let dims = resolve(p.type, bindings, what: "cell '\(cell.name.text)'") else { continue }
            if dims.reduce(1.0, { $0 * Double($1) }) > Double(ModelLowering.maxParameterCount) {
                error(p.type.range, "parameter '\(p.name.text)' would have more than \(ModelLowering.maxParameterCount) elements")
                continue
            }
            guard (1...2).contains(dims.count), p.type.element == .float else {
                error(p.type.range, "a parameter must be a float vector or matrix")
                continue
            }
            if let (packed, chunk) = p.storage {
                let n = chunkCounts[packed.text] ?? 1
                let packedDims = [dims[0] * n] + dims.dropFirst()
                let storedName = naming.stored(packed.text)
                let whole: ValueID
                if let v = packedValues[packed.text] {
                    guard g().type(of: v).dims == packedDims else {
                        error(p.type.range, "chunks of '\(packed.text)' must all have the same shape")
                        continue
                    }
                    whole = v
                } else {
                    whole = builder.emit(.param(storedName), [], .param(packedDims), name: storedName)
                    registerParameter(storedName, packedDims, .uniform(bound: bound))
                    packedValues[packed.text] = whole
                }
                env[p.name.text] = builder.emit(.paramChunk(index: chunk, of: n), [whole], .param(dims),
                                                name: "\(naming.layer).\(p.name.text)")
            } else {
                let storedName = naming.stored(p.name.text)
                env[p.name.text] = builder.emit(.param(storedName), [], .param(dims), name: storedName)
                registerParameter(storedName, dims, .uniform(bound: bound))
            }
        }

        // The per-step region: arguments are the step input and the states' previous values.
        builder.beginRegion()
        let xArg = builder.value(TensorType(.f32, [inputWidth]), name: stepInputs[0].name.text)
        let prevArgs = zip(states, stateDims).map { s, d in builder.value(TensorType(.f32, d), name: s.name.text) }
        env[stepInputs[0].name.text] = xArg
        for (s, v) in zip(states, prevArgs) { env[s.name.text] = v }

        let paramNames = Set(cell.params.map(\.name.text))
        let stateIndex = Dictionary(uniqueKeysWithValues: states.enumerated().map { ($1.name.text, $0) })
        var newStates: [ValueID?] = Array(repeating: nil, count: states.count)
        var temporaries = Set<String>()
        var poisoned = Set<String>()   // names whose definition failed: uses stay silent
        var ew = ElementwiseLowering(builder: builder, diagnostics: diagnostics, source: source)
        if isBuiltin { ew.reportAt = useRange }

        for stmt in cell.body {
            let target = stmt.name.text
            // A user cell's ops point at their own equation; a built-in's at the layer's use.
            if !isBuiltin {
                let loc = file.location(of: stmt.name.range.start)
                ew.source = SourceNote(line: loc.line, text: file.lineText(loc.line).trimmingSpaces())
            }
            let value = lowerExpr(stmt.value, env: env, params: paramNames, ew: ew, cellName: cell.name.text, poisoned: poisoned)
            if value == nil { poisoned.insert(target) }
            if let i = stateIndex[target] {
                if newStates[i] != nil {
                    error(stmt.name.range, "state '\(target)' is assigned twice; each state is assigned exactly once per step")
                    continue
                }
                guard let value else { newStates[i] = prevArgs[i]; continue }
                let t = g().type(of: value)
                guard t.dims == stateDims[i], t.batched else {
                    error(stmt.value.range, "state '\(target)' is \(ew.describe(g().type(of: prevArgs[i]))) but is assigned \(ew.describe(t))")
                    newStates[i] = prevArgs[i]
                    continue
                }
                builder.graph.setName(target, for: value)
                newStates[i] = value
                env[target] = value
            } else if paramNames.contains(target) || target == stepInputs[0].name.text {
                error(stmt.name.range, "cannot assign to '\(target)': it is a \(paramNames.contains(target) ? "parameter" : "step input")")
            } else if temporaries.contains(target) {
                error(stmt.name.range, "'\(target)' is assigned twice in cell '\(cell.name.text)'")
            } else {
                temporaries.insert(target)
                if let value {
                    builder.graph.setName(target, for: value)
                    env[target] = value
                }
            }
        }
        for (i, s) in states.enumerated() where newStates[i] == nil {
            error(s.name.range, "state '\(s.name.text)' is never assigned in cell '\(cell.name.text)'")
        }
        let regionOps = builder.endRegion()
        if diagnostics.errorCount > errorsBefore { return nil }

        let seqType = TensorType(.f32, sequence: true, stateDims[0])
        let out = builder.value(seqType, name: "\(naming.layer)\(naming.suffix)")
        let finals = zip(states, stateDims).map { s, d in
            builder.value(TensorType(.f32, d), name: "\(naming.layer)\(naming.suffix).\(s.name.text)_final")
        }
        let region = Region(arguments: [xArg] + prevArgs, ops: regionOps, yields: newStates.map { $0! })
        let label = "cell \(cell.name.text)" + (naming.suffix.isEmpty ? "" : ", \(naming.suffix.dropFirst())") + ", first state \(firstState.name.text)"
        builder.append(Op(.scan(reverse: reverse), [input], results: [out] + finals, region: region, source: source, label: label))
        return (out, finals)
    }

    private func lowerExpr(_ e: Expr, env: [String: ValueID], params: Set<String>, ew: ElementwiseLowering, cellName: String,
                           poisoned: Set<String> = []) -> ValueID? {
        // Read the graph through the builder each time: lowering operands adds values.
        var g: Graph { builder.graph }
        switch e {
        case .number(let v, _):
            return ew.constant(v)
        case .name(let n):
            guard let v = env[n.text] else {
                if poisoned.contains(n.text) { return nil }
                error(n.range, "'\(n.text)' is not defined in cell '\(cellName)'")
                return nil
            }
            if params.contains(n.text), g.type(of: v).dims.count == 2 {
                error(n.range, "matrix parameter '\(n.text)' can only be used as the left operand of '@'")
                return nil
            }
            return v
        case .unary(_, let operand, _):
            guard let a = lowerExpr(operand, env: env, params: params, ew: ew, cellName: cellName, poisoned: poisoned) else { return nil }
            return ew.unary(.neg, a)
        case .binary(.matmul, let lhs, let rhs, let range):
            guard case .name(let wName) = lhs, params.contains(wName.text), let w = env[wName.text],
                  builder.graph.type(of: w).dims.count == 2 else {
                error(lhs.range, "the left operand of '@' must be a matrix parameter of the cell")
                return nil
            }
            guard let v = lowerExpr(rhs, env: env, params: params, ew: ew, cellName: cellName, poisoned: poisoned) else { return nil }
            let wt = builder.graph.type(of: w), vt = builder.graph.type(of: v)
            guard vt.batched, vt.dims.count == 1, vt.dims[0] == wt.dims[1] else {
                error(range, "shape mismatch: \(wName.text) is float[\(wt.dims[0]), \(wt.dims[1])] but the vector is \(ew.describe(vt))")
                return nil
            }
            let vName = builder.graph.name(of: v) ?? "(...)"
            return builder.emit(.matvec, [w, v], TensorType(.f32, [wt.dims[0]]), name: "\(wName.text) @ \(vName)", source: ew.source)
        case .binary(let op, let lhs, let rhs, let range):
            let a = lowerExpr(lhs, env: env, params: params, ew: ew, cellName: cellName, poisoned: poisoned)
            let b = lowerExpr(rhs, env: env, params: params, ew: ew, cellName: cellName, poisoned: poisoned)
            guard let a, let b else { return nil }
            return ew.binary(op, a, b, range: range)
        case .call(let callee, let args, let range):
            let values = args.map { arg -> ValueID? in
                if let label = arg.label {
                    error(label.range, "'\(callee.text)' takes no named arguments inside a cell")
                    return nil
                }
                return lowerExpr(arg.value, env: env, params: params, ew: ew, cellName: cellName, poisoned: poisoned)
            }
            if let kind = ElementwiseLowering.unaryFunctions[callee.text] {
                guard args.count == 1 else {
                    error(range, "'\(callee.text)' takes one argument, got \(args.count)")
                    return nil
                }
                guard let a = values[0] else { return nil }
                return ew.unary(kind, a)
            }
            switch callee.text {
            case "softmax":
                guard args.count == 1 else { error(range, "'softmax' takes one argument"); return nil }
                guard let a = values[0] else { return nil }
                return builder.emit(.softmax, [a], g.type(of: a), source: ew.source)
            case "concat":
                guard args.count == 2 else { error(range, "'concat' takes two arguments"); return nil }
                guard let a = values[0], let b = values[1] else { return nil }
                let ta = g.type(of: a), tb = g.type(of: b)
                guard ta.batched, tb.batched, ta.dims.count == 1, tb.dims.count == 1 else {
                    error(range, "'concat' joins two vectors, got \(ew.describe(ta)) and \(ew.describe(tb))")
                    return nil
                }
                return builder.emit(.concat, [a, b], TensorType(.f32, [ta.width + tb.width]), source: ew.source)
            default:
                error(callee.range, "unknown function '\(callee.text)' in a cell (available: tanh, sigmoid, relu, exp, log, softmax, concat)")
                return nil
            }
        case .tuple(_, let range):
            error(range, "a tuple is not a value inside a cell")
            return nil
        }
    }
}
