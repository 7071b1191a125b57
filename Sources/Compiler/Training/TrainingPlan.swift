import GraphIR

/// The training graph as text (`rnnc ir --stage training`): the optimized forward graph,
/// what each recurrence keeps for the backward pass, and the backward pass as the list of
/// gradient rules the emitter applies, in order. Printed from the same tables the C
/// emitter uses, so what it shows is what runs.
public struct TrainingPlan {
    let graph: Graph
    let signature: ModelSignature

    public init(graph: Graph, signature: ModelSignature) {
        self.graph = graph
        self.signature = signature
    }

    public func print() -> String {
        var s = Printer().print(graph)
        let emitter = CEmitter(graph: graph, signature: signature, sourcePath: "", compilerVersion: "")
        s += "\ntraining {\n"
        guard let loss = signature.loss, let prediction = graph.keepAlive.first else {
            return s + "  # no loss: add 'loss mse(...)' or 'loss cross_entropy(...)' to train this model\n}\n"
        }
        if let reason = emitter.trainingUnsupportedReason() {
            return s + "  # cannot be trained yet: \(reason)\n}\n"
        }
        s += "  loss \(loss.kind.rawValue)(\(prediction), target \"\(loss.target)\") : mean over \(graph.type(of: prediction).sequence ? "every valid step of every example" : "every example")\n"
        let scanEmitter = ScanEmitter(graph: graph, prefix: "")
        let back = ScanBackwardEmitter(graph: graph, prefix: "")
        s += "  # memory kept for the backward pass, per time step and example (floats):\n"
        for op in graph.ops {
            guard case .scan = op.kind else { continue }
            let kept = scanEmitter.historyValues(op)
            let w = back.workspace(op)
            s += "  #   scan \(op.results[0]): history \(scanEmitter.historyWidth(op)) (\(kept.map(\.description).joined(separator: ", "))), "
            s += "backward workspace \(w.perExample) per example; product gradients and packed rows \(w.perWindowRow) per row of a window (about 256 steps x examples)\n"
        }
        s += "  # the forward's packed weights and workspaces, then the backward's buffers and transposed packings,\n"
        s += "  # take one region of the training arena in turn (SharedRegion)\n"
        s += "  backward {\n"
        let needs = emitter.valuesNeedingGradients()
        for op in graph.ops.reversed() {
            guard let r = op.results.first, needs.contains(r), !op.kind.isParameterPlumbing else { continue }
            s += "    " + rule(op, needs: needs) + "\n"
        }
        for op in graph.ops where op.kind == .stackRows {
            s += "    d(\(op.operands.map(\.description).joined(separator: ", "))) += rows of d\(op.results[0])  # stacked weights back to their parameters\n"
        }
        s += "  }\n}\n"
        return s
    }

    private func rule(_ op: Op, needs: Set<ValueID>) -> String {
        let r = op.results[0]
        let d = { (v: ValueID) in "d\(v)" }
        switch op.kind {
        case .linear(let bias):
            let (x, w) = (op.operands[0], op.operands[1])
            if StreamedProjections(graph: graph).results.contains(r) {
                return "\(d(w)) += \(d(r))^T \(x)\(bias ? ", \(d(op.operands[2])) += column sums of \(d(r))" : "")\(needs.contains(x) ? ", \(d(x)) += \(d(r)) \(w)" : "")"
                    + "  # from 4 examples on, inside the recurrence's backward: by window and by step"
                    + (ProjectedEmbeddings(graph: graph).table(projecting: r).map {
                        "; from B x T >= \($0.vocab) rows on, through the projected embedding's table: d\(r) summed by id into [\($0.vocab), \($0.width)] rows, then \(d(w)) and \(d($0.weights)) from those"
                    } ?? "")
            }
            var parts = ["\(d(w)) += \(d(r))^T \(x)  # one product over every row\(graph.type(of: r).sequence ? " and step" : "")"]
            if bias { parts.append("\(d(op.operands[2])) += column sums of \(d(r))") }
            if needs.contains(x) { parts.append("\(d(x)) += \(d(r)) \(w)") }
            return parts.joined(separator: "; ")
        case .embedding:
            return "\(d(op.operands[0]))[ids \(op.operands[1])] += \(d(r))  # rows of valid steps"
                + (ProjectedEmbeddings(graph: graph).tables(of: r).isEmpty ? "" : "; with its projections' tables, done by their rules")
        case .concat:
            return "\(d(op.operands[0])), \(d(op.operands[1])) += split of \(d(r))"
        case .softmax:
            return "\(d(op.operands[0])) += \(r) * (\(d(r)) - sum(\(d(r)) * \(r)))"
        case .last:
            return "\(d(op.operands[0]))[each example's last valid step] += \(d(r))"
        case .dropout:
            return "\(d(op.operands[0])) += \(d(r)) * the forward's mask (0 or 1/(1-rate))"
        case .fused:
            return "\(FusedBackwardEmitter(graph: graph).functionName(op))(\(op.operands.map(\.description).joined(separator: ", ")); \(op.results.map { d($0) }.joined(separator: ", ")))  # recompute, then \(op.region!.ops.filter { $0.kind.isElementwise }.count) rules of the derivative table in reverse"
        case .scan(let reverse):
            let region = op.region!
            let products = region.ops.filter { $0.kind == .matvec }
            var s = "reverse scan of \(r) (\(reverse ? "forward" : "backward") in time): seeds d(new states) from the next step and \(d(r)); per step "
            s += region.ops.reversed().compactMap { inner -> String? in
                switch inner.kind {
                case .fused: return FusedBackwardEmitter(graph: graph).functionName(inner)
                case .matvec: return "d\(inner.operands[1]) += d\(inner.results[0]) \(inner.operands[0])"
                case .concat: return "split"
                case .softmax: return "softmax'"
                default: return nil
                }
            }.joined(separator: ", ")
            s += "; then " + products.map { "d\($0.operands[0]) += sum over steps of d\($0.results[0])^T \($0.operands[1])" }.joined(separator: ", ")
            s += products.isEmpty ? "" : " (one product each, over T x B rows)"
            s += "; \(op.operands.map { d($0) }.joined(separator: ", ")) += step-input gradients"
            let byWindow = WindowBiasGradients(graph: graph).of(op)
            if !byWindow.isEmpty {
                s += "; " + byWindow.map {
                    "\(d($0.value)) += column sums of \(d($0.source))[\($0.offset)..<\($0.offset + graph.type(of: $0.value).featureCount)]"
                }.joined(separator: ", ") + " (by window, from its rows)"
            }
            let scratched = ScanBackwardEmitter(graph: graph, prefix: "").scratchBiases(op)
            if !scratched.isEmpty {
                s += "; " + scratched.map { d($0) }.joined(separator: ", ") + " += sums of a scratch row per example"
            }
            return s
        default:
            return "# no gradient rule for \(op.kind.mnemonic)"
        }
    }
}
