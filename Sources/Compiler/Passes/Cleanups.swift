import Foundation
import GraphIR

/// `fold-constants`: element-wise ops on constants become constants, so `1 - 0.5` costs
/// nothing per step. Ops reading any non-constant value are left alone.
public struct FoldConstants: Pass {
    public let name = "fold-constants"
    public init() {}

    public func run(_ graph: inout Graph) {
        var constants: [ValueID: Double] = [:]
        func fold(_ ops: [Op]) -> [Op] {
            var out: [Op] = []
            for var op in ops {
                if var region = op.region {
                    region.ops = fold(region.ops)
                    op.region = region
                }
                if case .constant(let v) = op.kind { constants[op.results[0]] = v }
                if op.kind.isElementwise, let values = Optional(op.operands.compactMap({ constants[$0] })),
                   values.count == op.operands.count, let folded = Self.evaluate(op.kind, values) {
                    let r = op.results[0]
                    constants[r] = folded
                    out.append(Op(.constant(folded), [], results: [r], source: op.source))
                    continue
                }
                out.append(op)
            }
            return out
        }
        graph.ops = fold(graph.ops)
    }

    static func evaluate(_ kind: OpKind, _ v: [Double]) -> Double? {
        // Fold in single precision: the generated code would have computed in float.
        let f = v.map { Float($0) }
        let r: Float
        switch kind {
        case .add: r = f[0] + f[1]
        case .sub: r = f[0] - f[1]
        case .mul: r = f[0] * f[1]
        case .div: r = f[0] / f[1]
        case .neg: r = -f[0]
        case .tanh: r = Foundation.tanh(f[0])
        case .sigmoid: r = 1 / (1 + Foundation.exp(-f[0]))
        case .relu: r = max(0, f[0])
        case .exp: r = Foundation.exp(f[0])
        case .log: r = Foundation.log(f[0])
        default: return nil
        }
        return Double(r)
    }
}

/// `cse`: an op that repeats an earlier one (same kind, same operands, same scope) is
/// replaced by the earlier result. Scans and fused kernels are never merged.
public struct EliminateCommonSubexpressions: Pass {
    public let name = "cse"
    public init() {}

    private struct Key: Hashable {
        var kind: OpKind
        var operands: [ValueID]
    }

    public func run(_ graph: inout Graph) {
        var replacements: [ValueID: ValueID] = [:]
        func visit(_ ops: [Op], seen outer: [Key: ValueID]) -> [Op] {
            var seen = outer
            var out: [Op] = []
            for var op in ops {
                op.operands = op.operands.map { replacements[$0] ?? $0 }
                if var region = op.region {
                    // A region may read parameters from outside, nothing else: a constant
                    // or activation of the model is not visible inside a step.
                    let visible = seen.filter { key, _ in key.kind.isParameterPlumbing }
                    region.ops = visit(region.ops, seen: visible)
                    region.yields = region.yields.map { replacements[$0] ?? $0 }
                    op.region = region
                    out.append(op)
                    continue
                }
                guard op.results.count == 1 else { out.append(op); continue }
                if case .input = op.kind { out.append(op); continue }
                var key = Key(kind: op.kind, operands: op.operands)
                // Addition and multiplication commute.
                if op.kind == .add || op.kind == .mul { key.operands.sort() }
                if let earlier = seen[key] {
                    replacements[op.results[0]] = earlier
                    continue
                }
                seen[key] = op.results[0]
                out.append(op)
            }
            return out
        }
        graph.ops = visit(graph.ops, seen: [:])
        graph.replaceUses(replacements)
    }
}

/// `dce`: removes ops whose results nobody reads, and step inputs a scan no longer reads
/// (after hoisting, the raw input often is not). Inputs stay: they are the interface.
public struct EliminateDeadValues: Pass {
    public let name = "dce"
    public init() {}

    private func pruneScanInputs(_ graph: inout Graph) -> Bool {
        var changed = false
        for i in graph.ops.indices {
            guard case .scan = graph.ops[i].kind, var region = graph.ops[i].region else { continue }
            var read = Set<ValueID>()
            for op in region.ops { read.formUnion(op.operands); if let r = op.region { for o in r.ops { read.formUnion(o.operands) } } }
            read.formUnion(region.yields)
            var keep: [Int] = []
            for (k, _) in graph.ops[i].operands.enumerated() where read.contains(region.arguments[k]) { keep.append(k) }
            // A scan keeps at least one step input: it gives the loop its length.
            if keep.isEmpty { keep = [0] }
            guard keep.count < graph.ops[i].operands.count else { continue }
            let n = graph.ops[i].operands.count
            region.arguments = keep.map { region.arguments[$0] } + Array(region.arguments.dropFirst(n))
            graph.ops[i].operands = keep.map { graph.ops[i].operands[$0] }
            graph.ops[i].region = region
            changed = true
        }
        return changed
    }

    public func run(_ graph: inout Graph) {
        while true {
            let uses = graph.useCounts()
            var removed = false
            func sweep(_ ops: [Op]) -> [Op] {
                var out: [Op] = []
                for var op in ops {
                    if case .input = op.kind { out.append(op); continue }
                    if !op.results.contains(where: { uses[$0, default: 0] > 0 }) {
                        removed = true
                        continue
                    }
                    if var region = op.region {
                        region.ops = sweep(region.ops)
                        op.region = region
                    }
                    out.append(op)
                }
                return out
            }
            graph.ops = sweep(graph.ops)
            removed = pruneScanInputs(&graph) || removed
            if !removed { return }
        }
    }
}
