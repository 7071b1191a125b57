import GraphIR

/// Lowers a parsed model to GraphIR: resolves names, checks types and shapes, expands
/// built-in layers into prelude cells, and records the model's signature.
final class ModelLowering {
    private let unit: SourceUnit
    private let prelude: [String: CellDecl]
    private let file: SourceFile
    private let diagnostics: DiagnosticEngine
    private let builder: GraphBuilder
    private var signature: ModelSignature

    /// A named model value; recurrent layers also remember their final states for `last()`.
    private struct ModelValue {
        var id: ValueID
        var finalStates: [ValueID]? = nil
    }
    private var scope: [String: ModelValue] = [:]
    /// Names whose definition failed (and was reported): later uses stay silent.
    private var poisoned = Set<String>()
    private var targets: [String: TensorType] = [:]
    /// Parameters created by the statement being lowered, to give each layer its own name.
    private var layersInStatement: [String] = []

    init(unit: SourceUnit, prelude: [String: CellDecl], file: SourceFile, diagnostics: DiagnosticEngine) {
        self.unit = unit
        self.prelude = prelude
        self.file = file
        self.diagnostics = diagnostics
        let name = unit.model?.name.text ?? "model"
        self.builder = GraphBuilder(name: name)
        self.signature = ModelSignature(name: name)
    }

    func lower() -> (Graph, ModelSignature)? {
        guard let model = unit.model else { return nil }
        var cells: [String: CellDecl] = [:]
        for c in unit.cells {
            if cells[c.name.text] != nil || Self.builtinCalls.contains(c.name.text) {
                diagnostics.error(c.name.range, "cell '\(c.name.text)' is already defined")
                continue
            }
            cells[c.name.text] = c
        }
        userCells = cells

        for stmt in model.statements {
            layersInStatement = []
            currentRange = Self.range(of: stmt)
            switch stmt {
            case .input(let n, let t):
                guard checkNew(n) else { continue }
                guard let type = modelType(t, what: "input '\(n.text)'") else { continue }
                let v = builder.emit(.input(n.text), [], type, name: n.text, source: note(n.range))
                scope[n.text] = ModelValue(id: v)
                builder.graph.inputs.append((n.text, type))
                signature.inputs.append(.init(name: n.text, type: type, declared: text(t.range)))
            case .target(let n, let t):
                guard checkNew(n) else { continue }
                guard let type = modelType(t, what: "target '\(n.text)'") else { continue }
                targets[n.text] = type
                signature.targets.append(.init(name: n.text, type: type, declared: text(t.range)))
            case .binding(let n, let e):
                guard checkNew(n) else { continue }
                currentBinding = n.text
                guard var v = lowerExpr(e) else { poisoned.insert(n.text); continue }
                v.id = named(v.id, n.text)
                scope[n.text] = v
            case .output(let n, let e):
                let v: ModelValue?
                if let e {
                    guard checkNew(n) else { continue }
                    currentBinding = n.text
                    v = lowerExpr(e)
                    if let v { scope[n.text] = v; _ = named(v.id, n.text) } else { poisoned.insert(n.text) }
                } else if let existing = scope[n.text] {
                    v = existing
                } else if poisoned.contains(n.text) {
                    continue
                } else {
                    diagnostics.error(n.range, targets[n.text] != nil ? "'\(n.text)' is a target; outputs are computed from inputs" : "unknown name '\(n.text)'")
                    continue
                }
                guard let v else { continue }
                if signature.outputs.contains(where: { $0.name == n.text }) {
                    diagnostics.error(n.range, "output '\(n.text)' is declared twice")
                    continue
                }
                let t = builder.graph.type(of: v.id)
                guard t.batched, t.element == .f32 else {
                    diagnostics.error(n.range, "output '\(n.text)' must be a float value per example")
                    continue
                }
                builder.graph.outputs.append((n.text, v.id))
                signature.outputs.append(.init(name: n.text, type: t, declared: describe(t)))
            case .loss(let e, let range):
                lowerLoss(e, range: range)
            case .train(let entries, _):
                for (key, value) in entries {
                    guard Self.trainKeys.contains(key.text) else {
                        diagnostics.error(key.range, "unknown training setting '\(key.text)' (known: \(Self.trainKeys.sorted().joined(separator: ", ")))")
                        continue
                    }
                    if signature.train[key.text] != nil {
                        diagnostics.error(key.range, "training setting '\(key.text)' is given twice")
                    }
                    signature.train[key.text] = trainValue(value)
                }
            }
        }
        if signature.outputs.isEmpty, !diagnostics.hasErrors {
            diagnostics.error(model.name.range, "model '\(model.name.text)' declares no output (add 'output NAME')")
        }
        if diagnostics.hasErrors { return nil }
        var graph = builder.finish()
        // The loss reads its prediction: keep it through optimization for training.
        if let p = lossPrediction { graph.keepAlive = [p] }
        return (graph, signature)
    }

    // MARK: Names and types

    private var userCells: [String: CellDecl] = [:]
    private var currentBinding = ""

    static let builtinCalls: Set<String> = ["embedding", "rnn", "lstm", "gru", "dense", "last", "softmax", "concat",
                                            "tanh", "sigmoid", "relu", "exp", "log", "mse", "cross_entropy"]
    static let trainKeys: Set<String> = ["optimizer", "clip_norm", "batch", "bptt", "epochs", "seed", "valid_fraction", "lr"]

    private func checkNew(_ n: Name) -> Bool {
        if scope[n.text] != nil || targets[n.text] != nil || poisoned.contains(n.text) {
            diagnostics.error(n.range, "'\(n.text)' is already defined; each name is defined once")
            return false
        }
        return true
    }

    private func named(_ v: ValueID, _ name: String) -> ValueID {
        if builder.graph.name(of: v) == nil { builder.graph.setName(name, for: v) }
        return v
    }

    private func text(_ r: SourceRange) -> String {
        String(decoding: file.text[r.start..<min(r.end, file.text.count)], as: UTF8.self)
    }

    private func note(_ r: SourceRange) -> SourceNote {
        let loc = file.location(of: r.start)
        return SourceNote(line: loc.line, text: file.lineText(loc.line).trimmingSpaces())
    }

    private func modelType(_ t: TypeExpr, what: String) -> TensorType? {
        var dims: [Int] = []
        var sequence = false
        for (i, d) in t.dims.enumerated() {
            switch d {
            case .time:
                guard i == 0 else {
                    diagnostics.error(t.dimRanges[i], "'time' must be the first axis of \(what)")
                    return nil
                }
                sequence = true
            case .literal(let v): dims.append(v)
            case .symbol(let s):
                diagnostics.error(t.dimRanges[i], "size symbol '\(s)' in \(what): model types use integer sizes")
                return nil
            }
        }
        if t.element == .int, !dims.isEmpty {
            diagnostics.error(t.range, "\(what): integer inputs are token ids or labels, 'int[time]' or 'int'")
            return nil
        }
        return TensorType(t.element == .float ? .f32 : .i32, sequence: sequence, dims)
    }

    private func describe(_ t: TensorType) -> String {
        ElementwiseLowering(builder: builder, diagnostics: diagnostics, source: nil).describe(t)
    }

    // MARK: Expressions

    private func lowerExpr(_ e: Expr) -> ModelValue? {
        let ew = ElementwiseLowering(builder: builder, diagnostics: diagnostics, source: note(e.range))
        switch e {
        case .number(let v, _):
            return ModelValue(id: ew.constant(v))
        case .name(let n):
            if let v = scope[n.text] { return v }
            if poisoned.contains(n.text) { return nil }
            if targets[n.text] != nil {
                diagnostics.error(n.range, "'\(n.text)' is a target; targets are only read by the loss")
            } else {
                diagnostics.error(n.range, "unknown name '\(n.text)'")
            }
            return nil
        case .unary(_, let operand, _):
            guard let a = lowerFloat(operand) else { return nil }
            return ModelValue(id: ew.unary(.neg, a))
        case .binary(.matmul, _, _, let range):
            diagnostics.error(range, "'@' multiplies a cell's parameter by a vector; in a model, use dense(x, units=N)")
            return nil
        case .binary(let op, let lhs, let rhs, let range):
            let a = lowerFloat(lhs), b = lowerFloat(rhs)
            guard let a, let b, let v = ew.binary(op, a, b, range: range) else { return nil }
            return ModelValue(id: v)
        case .tuple(_, let range):
            diagnostics.error(range, "a tuple is only a value in a 'train' block")
            return nil
        case .call(let callee, let args, let range):
            return lowerCall(callee, args, range: range, ew: ew)
        }
    }

    private func lowerFloat(_ e: Expr) -> ValueID? {
        guard let v = lowerExpr(e) else { return nil }
        let t = builder.graph.type(of: v.id)
        guard t.element == .f32 else {
            diagnostics.error(e.range, "expected a float value, got \(describe(t)); token ids go through embedding()")
            return nil
        }
        return v.id
    }

    // MARK: Calls

    private func lowerCall(_ callee: Name, _ args: [CallArgument], range: SourceRange, ew: ElementwiseLowering) -> ModelValue? {
        let src = note(range)
        if let kind = ElementwiseLowering.unaryFunctions[callee.text] {
            let a = CallArguments(callee, args, range, diagnostics)
            guard let x = a.positional(0, count: 1), a.noLabels(), let v = lowerFloat(x) else { return nil }
            return ModelValue(id: ew.unary(kind, v))
        }
        switch callee.text {
        case "softmax":
            let a = CallArguments(callee, args, range, diagnostics)
            guard let x = a.positional(0, count: 1), a.noLabels(), let v = lowerFloat(x) else { return nil }
            return ModelValue(id: builder.emit(.softmax, [v], builder.graph.type(of: v), source: src))
        case "concat":
            let a = CallArguments(callee, args, range, diagnostics)
            guard let x = a.positional(0, count: 2), let y = a.positional(1, count: 2), a.noLabels(),
                  let u = lowerFloat(x), let v = lowerFloat(y) else { return nil }
            let tu = builder.graph.type(of: u), tv = builder.graph.type(of: v)
            guard tu.batched, tv.batched, tu.sequence == tv.sequence, tu.dims.dropLast() == tv.dims.dropLast(), !tu.dims.isEmpty else {
                diagnostics.error(range, "concat joins values that differ only in their last axis; got \(describe(tu)) and \(describe(tv))")
                return nil
            }
            return ModelValue(id: builder.emit(.concat, [u, v], tu.with(dims: tu.dims.dropLast() + [tu.width + tv.width]), source: src))
        case "last":
            let a = CallArguments(callee, args, range, diagnostics)
            guard let x = a.positional(0, count: 1), a.noLabels(), let v = lowerExpr(x) else { return nil }
            if let finals = v.finalStates {
                if finals.count == 1 { return ModelValue(id: finals[0]) }
                let t0 = builder.graph.type(of: finals[0]), t1 = builder.graph.type(of: finals[1])
                return ModelValue(id: builder.emit(.concat, finals, t0.with(dims: [t0.width + t1.width]), source: src, label: "forward and backward final states"))
            }
            let t = builder.graph.type(of: v.id)
            guard t.sequence else {
                diagnostics.error(x.range, "last() takes a sequence, got \(describe(t))")
                return nil
            }
            return ModelValue(id: builder.emit(.last, [v.id], t.with(sequence: false), source: src))
        case "embedding":
            return lowerEmbedding(callee, args, range: range, src: src)
        case "dense":
            return lowerDense(callee, args, range: range, src: src)
        case "rnn", "lstm", "gru":
            return lowerRecurrent(callee, args, range: range, src: src)
        case "mse", "cross_entropy":
            diagnostics.error(callee.range, "'\(callee.text)' is a loss; write it as 'loss \(callee.text)(...)'")
            return nil
        default:
            if userCells[callee.text] != nil { return lowerRecurrent(callee, args, range: range, src: src) }
            diagnostics.error(callee.range, "unknown layer or function '\(callee.text)'")
            return nil
        }
    }

    private func layerName(_ range: SourceRange) -> String? {
        if !layersInStatement.isEmpty {
            diagnostics.error(range, "'\(currentBinding)' already names a layer in this statement; give this layer its own name (NAME = layer(...))")
            return nil
        }
        layersInStatement.append(currentBinding)
        return currentBinding
    }

    /// The largest parameter rnnc accepts (2^31 - 1 floats, 8 GiB): sizes stay within
    /// int range in the generated C and within memory when weights are made.
    static let maxParameterCount = Int(Int32.max)

    private func register(_ name: String, _ shape: [Int], _ initializer: ModelSignature.Initializer) {
        let (count, overflow) = shape.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d)
            return (p, acc.1 || o)
        }
        if overflow || count > Self.maxParameterCount {
            diagnostics.error(currentRange, "parameter '\(name)' would have \(overflow ? "more than 2^63" : String(count)) elements; rnnc's limit is \(Self.maxParameterCount)")
        }
        signature.parameters.append(.init(name: name, shape: shape, initializer: initializer))
    }

    /// The statement being lowered, for errors that belong to it as a whole.
    private var currentRange = SourceRange(start: 0, end: 0)

    private func lowerEmbedding(_ callee: Name, _ args: [CallArgument], range: SourceRange, src: SourceNote) -> ModelValue? {
        let a = CallArguments(callee, args, range, diagnostics)
        guard a.allowOnly(["vocab", "dim"]), let x = a.positional(0, count: 1),
              let vocab = a.int("vocab", required: true), let dim = a.int("dim", required: true),
              let ids = lowerExpr(x) else { return nil }
        let t = builder.graph.type(of: ids.id)
        guard t.element == .i32 else {
            diagnostics.error(x.range, "embedding() takes token ids (int[time] or int), got \(describe(t))")
            return nil
        }
        guard let name = layerName(range) else { return nil }
        let table = builder.emit(.param("\(name).weight"), [], .param([vocab, dim]), name: "\(name).weight")
        register("\(name).weight", [vocab, dim], .normal(std: 1))
        return ModelValue(id: builder.emit(.embedding, [table, ids.id], TensorType(.f32, sequence: t.sequence, [dim]), source: src))
    }

    private func lowerDense(_ callee: Name, _ args: [CallArgument], range: SourceRange, src: SourceNote) -> ModelValue? {
        let a = CallArguments(callee, args, range, diagnostics)
        guard a.allowOnly(["units", "activation"]), let x = a.positional(0, count: 1),
              let units = a.int("units", required: true),
              let activation = a.choice("activation", ["none", "tanh", "relu", "sigmoid", "softmax"], default: "none"),
              let v = lowerFloat(x) else { return nil }
        let t = builder.graph.type(of: v)
        guard t.batched, !t.dims.isEmpty else {
            diagnostics.error(x.range, "dense() needs a value with features, got \(describe(t))")
            return nil
        }
        guard let name = layerName(range) else { return nil }
        let fanIn = t.width
        let w = builder.emit(.param("\(name).weight"), [], .param([units, fanIn]), name: "\(name).weight")
        let b = builder.emit(.param("\(name).bias"), [], .param([units]), name: "\(name).bias")
        let bound = 1.0 / Double(fanIn).squareRoot()
        register("\(name).weight", [units, fanIn], .uniform(bound: bound))
        register("\(name).bias", [units], .uniform(bound: bound))
        let outType = t.with(dims: t.dims.dropLast() + [units])
        var y = builder.emit(.linear(bias: true), [v, w, b], outType, source: src)
        switch activation {
        case "tanh": y = builder.emit(.tanh, [y], outType, source: src)
        case "relu": y = builder.emit(.relu, [y], outType, source: src)
        case "sigmoid": y = builder.emit(.sigmoid, [y], outType, source: src)
        case "softmax": y = builder.emit(.softmax, [y], outType, source: src)
        default: break
        }
        return ModelValue(id: y)
    }

    /// rnn / lstm / gru and user cells: `layers` stacked, each one or two directions.
    private func lowerRecurrent(_ callee: Name, _ args: [CallArgument], range: SourceRange, src: SourceNote) -> ModelValue? {
        let a = CallArguments(callee, args, range, diagnostics)
        let isBuiltin = ["rnn", "lstm", "gru"].contains(callee.text)
        let cell: CellDecl
        var bindings: [String: Int] = [:]
        if isBuiltin {
            var allowed: Set<String> = ["hidden", "layers", "bidirectional", "dropout"]
            if callee.text == "rnn" { allowed.insert("activation") }
            guard a.allowOnly(allowed), let hidden = a.int("hidden", required: true) else { return nil }
            bindings["H"] = hidden
            var cellName = callee.text
            if callee.text == "rnn" {
                guard let act = a.choice("activation", ["tanh", "relu"], default: "tanh") else { return nil }
                cellName = "rnn_\(act)"
            }
            guard let c = prelude[cellName] else { preconditionFailure("prelude lacks \(cellName)") }
            cell = c
        } else {
            cell = userCells[callee.text]!
            let symbols = Self.sizeSymbols(of: cell)
            for arg in args {
                guard let label = arg.label else { continue }
                if ["layers", "bidirectional", "dropout"].contains(label.text) { continue }
                guard symbols.contains(label.text) else {
                    diagnostics.error(label.range, "cell '\(cell.name.text)' has no size symbol or setting '\(label.text)' (size symbols: \(symbols.sorted().joined(separator: ", ")); settings: layers, bidirectional, dropout)")
                    return nil
                }
                guard let v = a.int(label.text, required: true) else { return nil }
                bindings[label.text] = v
            }
        }
        guard let layers = a.int("layers", required: false, default: 1),
              let bidirectional = a.bool("bidirectional", default: false),
              let dropout = a.number("dropout", default: 0) else { return nil }
        guard layers >= 1 else { diagnostics.error(range, "layers must be at least 1"); return nil }
        guard dropout >= 0, dropout < 1 else { diagnostics.error(range, "dropout must be in [0, 1)"); return nil }
        guard let x = a.positional(0, count: 1), let input = lowerFloat(x) else { return nil }
        let inputType = builder.graph.type(of: input)
        guard inputType.sequence, inputType.batched, inputType.dims.count == 1 else {
            diagnostics.error(x.range, "\(callee.text)() reads a sequence of vectors, float[time, N]; got \(describe(inputType))")
            return nil
        }
        guard let name = layerName(range) else { return nil }

        let lowering = CellLowering(builder: builder, diagnostics: diagnostics, file: file, useRange: range, source: src, isBuiltin: isBuiltin)
        let suffixed = isBuiltin || layers > 1 || bidirectional
        var current = input
        var finals: [ValueID] = []
        for layer in 0..<layers {
            var layerBindings = bindings
            let width = builder.graph.type(of: current).width
            if let firstInput = cell.parameters.first(where: { !$0.isState }),
               case .symbol(let s)? = firstInput.type.dims.first, firstInput.type.dims.count == 1 {
                if let bound = layerBindings[s], bound != width, !isBuiltin {
                    diagnostics.error(range, "size symbol '\(s)' is bound to \(bound) but the input has \(width) features" + (layer > 0 ? " (layer \(layer) reads the previous layer's output)" : ""))
                    return nil
                }
                layerBindings[s] = width
            }
            var outputs: [ValueID] = []
            finals = []
            for reverse in bidirectional ? [false, true] : [false] {
                let suffix = suffixed ? "_l\(layer)" + (reverse ? "_reverse" : "") : ""
                let naming = CellLowering.Naming(layer: name, suffix: suffix)
                guard let r = lowering.lower(cell: cell, input: current, reverse: reverse, bindings: layerBindings,
                                             naming: naming, registerParameter: register) else { return nil }
                outputs.append(r.sequence)
                finals.append(r.finals[0])
            }
            if outputs.count == 2 {
                let t = builder.graph.type(of: outputs[0])
                current = builder.emit(.concat, outputs, t.with(dims: [t.width * 2]), source: src, label: "forward and backward outputs")
            } else {
                current = outputs[0]
            }
            if dropout > 0, layer < layers - 1 {
                // As nn.LSTM / nn.GRU: on every layer's output but the last, in training only.
                current = builder.emit(.dropout(rate: dropout), [current], builder.graph.type(of: current),
                                       name: "\(name)_l\(layer)_dropped", source: src, label: "training only")
            }
        }
        return ModelValue(id: current, finalStates: finals)
    }

    static func range(of stmt: ModelDecl.Statement) -> SourceRange {
        switch stmt {
        case .input(let n, let t), .target(let n, let t): return n.range.to(t.range)
        case .binding(let n, let e): return n.range.to(e.range)
        case .output(let n, let e): return e.map { n.range.to($0.range) } ?? n.range
        case .loss(_, let r), .train(_, let r): return r
        }
    }

    static func sizeSymbols(of cell: CellDecl) -> Set<String> {
        var s = Set<String>()
        for t in cell.parameters.map(\.type) + cell.params.map(\.type) {
            for d in t.dims { if case .symbol(let n) = d { s.insert(n) } }
        }
        return s
    }

    // MARK: Loss and training settings

    private func lowerLoss(_ e: Expr, range: SourceRange) {
        guard case .call(let callee, let args, let callRange) = e else {
            diagnostics.error(e.range, "expected a loss: mse(prediction, target) or cross_entropy(logits, labels)")
            return
        }
        guard let kind = LossSpec.Kind(rawValue: callee.text) else {
            diagnostics.error(callee.range, "unknown loss '\(callee.text)' (known: mse, cross_entropy)")
            return
        }
        if signature.loss != nil {
            diagnostics.error(range, "the model already has a loss")
            return
        }
        let a = CallArguments(callee, args, callRange, diagnostics)
        guard let p = a.positional(0, count: 2), let t = a.positional(1, count: 2), a.noLabels() else { return }
        currentBinding = "loss"
        guard let pred = lowerFloat(p) else { return }
        guard case .name(let tn) = t, let tt = targets[tn.text] else {
            diagnostics.error(t.range, "the second argument of \(callee.text) must be a target declared with 'target NAME: TYPE'")
            return
        }
        let pt = builder.graph.type(of: pred)
        switch kind {
        case .mse:
            guard tt.element == .f32, tt.dims == pt.dims, tt.sequence == pt.sequence else {
                diagnostics.error(callRange, "mse compares equal shapes; prediction is \(describe(pt)), target '\(tn.text)' is \(describe(tt))")
                return
            }
        case .crossEntropy:
            guard tt.element == .i32, pt.dims.count == 1, tt.sequence == pt.sequence else {
                diagnostics.error(callRange, "cross_entropy takes logits float[C] (or float[time, C]) and int labels of the same length; got \(describe(pt)) and \(describe(tt))")
                return
            }
        }
        let predName = builder.graph.name(of: pred) ?? "loss_input"
        signature.loss = LossSpec(kind: kind, prediction: predName, target: tn.text)
        lossPrediction = pred
    }

    /// The value the loss reads, kept alive through optimization for training.
    private(set) var lossPrediction: ValueID?

    private func trainValue(_ e: Expr) -> TrainValue? {
        switch e {
        case .number(let v, _): return .number(v)
        case .unary(_, .number(let v, _), _): return .number(-v)
        case .name(let n): return .name(n.text)
        case .tuple(let items, _):
            let vs = items.compactMap(trainValue)
            return vs.count == items.count ? .tuple(vs) : nil
        case .call(let c, let args, _):
            var named: [String: TrainValue] = [:]
            var positional: [TrainValue] = []
            for a in args {
                guard let v = trainValue(a.value) else { return nil }
                if let l = a.label { named[l.text] = v } else { positional.append(v) }
            }
            return .call(c.text, named, positional)
        default:
            diagnostics.error(e.range, "a training setting is a number, a name, a tuple or a call like adam(lr=0.001)")
            return nil
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
