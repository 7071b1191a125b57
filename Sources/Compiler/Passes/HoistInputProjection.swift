import GraphIR

/// `hoist-input-projection`: a product `W @ x` whose vector is the step input depends on
/// no state, so it is computed for every time step at once, before the loop, as one
/// matrix-matrix product [B*T, K] x [K, N]; the loop then reads one row per step.
/// Products of a state (or of anything computed from one) must stay inside the loop.
public struct HoistInputProjection: Pass {
    public let name = "hoist-input-projection"
    public init() {}

    public func run(_ graph: inout Graph) {
        var i = 0
        while i < graph.ops.count {
            guard case .scan = graph.ops[i].kind, var region = graph.ops[i].region else { i += 1; continue }
            let stepInputCount = graph.ops[i].operands.count
            let stepArgs = Array(region.arguments.prefix(stepInputCount))
            var hoisted: [Op] = []
            var newOperands: [ValueID] = []
            var newArgs: [ValueID] = []
            var replacements: [ValueID: ValueID] = [:]
            var kept: [Op] = []
            for op in region.ops {
                guard op.kind == .matvec, let argIndex = stepArgs.firstIndex(of: op.operands[1]) else {
                    kept.append(op)
                    continue
                }
                let sequence = graph.ops[i].operands[argIndex]
                let w = op.operands[0]
                let n = graph.type(of: w).dims[0]
                let seqType = graph.type(of: sequence).with(dims: [n])
                let projected = graph.newValue(seqType, name: graph.name(of: op.results[0]).map { "\($0), all steps" })
                hoisted.append(Op(.linear(bias: false), [sequence, w], results: [projected], source: op.source,
                                  label: "input projection hoisted out of the time loop"))
                let arg = graph.newValue(TensorType(.f32, [n]), name: graph.name(of: op.results[0]))
                newOperands.append(projected)
                newArgs.append(arg)
                replacements[op.results[0]] = arg
            }
            guard !hoisted.isEmpty else { i += 1; continue }
            region.ops = kept
            // Step inputs come first among the region's arguments, then the states.
            region.arguments = Array(region.arguments.prefix(stepInputCount)) + newArgs
                + Array(region.arguments.dropFirst(stepInputCount))
            graph.ops[i].region = region
            graph.ops[i].operands += newOperands
            graph.ops.insert(contentsOf: hoisted, at: i)
            graph.replaceUses(replacements)
            i += hoisted.count + 1
        }
    }
}
