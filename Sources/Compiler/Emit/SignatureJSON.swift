import Foundation
import GraphIR

/// NAME.json: the model's interface for tools (inputs, targets, outputs, parameters).
enum SignatureJSON {
    static func emit(_ sig: ModelSignature, graph: Graph, compilerVersion: String, sourceHash: String) -> String {
        let vocab = CEmitter(graph: graph, signature: sig, sourcePath: "", compilerVersion: "").vocabularies
        func port(_ p: ModelSignature.Port) -> String {
            var shape = ["\"B\""]
            if p.type.sequence { shape.append("\"T\"") }
            shape += p.type.dims.map(String.init)
            let extra = vocab[p.name].map { ", \"vocab\": \($0)" } ?? ""
            return "{\"name\": \(quote(p.name)), \"dtype\": \"\(p.type.element == .i32 ? "int32" : "float32")\", \"shape\": [\(shape.joined(separator: ", "))], \"declared\": \(quote(p.declared))\(extra)}"
        }
        let flops = forwardFlops(graph)
        var s = "{\n"
        s += "  \"model\": \(quote(sig.name)),\n"
        s += "  \"compiler\": \(quote("rnnc \(compilerVersion)")),\n"
        s += "  \"source_hash\": \(quote(sourceHash)),\n"
        s += "  \"flops\": {\"per_example_step\": \(flops.perStep), \"per_example\": \(flops.perExample)},\n"
        s += "  \"inputs\": [" + sig.inputs.map { "\n    " + port($0) }.joined(separator: ",") + "\n  ],\n"
        s += "  \"targets\": [" + sig.targets.map { "\n    " + port($0) }.joined(separator: ",") + "\n  ],\n"
        s += "  \"outputs\": [" + sig.outputs.map { "\n    " + port($0) }.joined(separator: ",") + "\n  ],\n"
        s += "  \"parameters\": [" + sig.parameters.map { p in
            let initializer: String
            switch p.initializer {
            case .uniform(let bound): initializer = "\"init\": \"uniform\", \"bound\": \(bound)"
            case .normal(let std): initializer = "\"init\": \"normal\", \"std\": \(std)"
            }
            return "\n    {\"name\": \(quote(p.name)), \"dtype\": \"F32\", \"shape\": [\(p.shape.map(String.init).joined(separator: ", "))], \(initializer)}"
        }.joined(separator: ",") + "\n  ]"
        if let loss = sig.loss {
            let classes = graph.keepAlive.first.map { graph.type(of: $0).width } ?? 0
            s += ",\n  \"loss\": {\"kind\": \(quote(loss.kind.rawValue)), \"prediction\": \(quote(loss.prediction)), \"target\": \(quote(loss.target)), \"classes\": \(classes)}"
        }
        s += "\n}\n"
        return s
    }

    /// Multiply-add FLOPs of the forward pass (2 per multiply-add of every product), per
    /// example and time step (sequence work) and per example (the rest).
    static func forwardFlops(_ graph: Graph) -> (perStep: Int, perExample: Int) {
        var perStep = 0, perExample = 0
        for op in graph.ops {
            switch op.kind {
            case .linear:
                let w = graph.type(of: op.operands[1]).dims
                let rows = graph.type(of: op.results[0]).dims.dropLast().reduce(1, *)
                let f = 2 * w[0] * w[1] * rows
                if graph.type(of: op.results[0]).sequence { perStep += f } else { perExample += f }
            case .scan:
                for inner in op.region!.ops where inner.kind == .matvec {
                    let w = graph.type(of: inner.operands[0]).dims
                    perStep += 2 * w[0] * w[1]
                }
            default: break
            }
        }
        return (perStep, perExample)
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
