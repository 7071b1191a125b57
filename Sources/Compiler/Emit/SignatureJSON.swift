import Foundation
import GraphIR

/// NAME.json: the model's interface for tools (inputs, targets, outputs, parameters).
enum SignatureJSON {
    static func emit(_ sig: ModelSignature, graph: Graph, compilerVersion: String, sourceHash: String) -> String {
        func port(_ p: ModelSignature.Port) -> String {
            var shape = ["\"B\""]
            if p.type.sequence { shape.append("\"T\"") }
            shape += p.type.dims.map(String.init)
            return "{\"name\": \(quote(p.name)), \"dtype\": \"\(p.type.element == .i32 ? "int32" : "float32")\", \"shape\": [\(shape.joined(separator: ", "))], \"declared\": \(quote(p.declared))}"
        }
        var s = "{\n"
        s += "  \"model\": \(quote(sig.name)),\n"
        s += "  \"compiler\": \(quote("rnnc \(compilerVersion)")),\n"
        s += "  \"source_hash\": \(quote(sourceHash)),\n"
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
            s += ",\n  \"loss\": {\"kind\": \(quote(loss.kind.rawValue)), \"prediction\": \(quote(loss.prediction)), \"target\": \(quote(loss.target))}"
        }
        s += "\n}\n"
        return s
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
