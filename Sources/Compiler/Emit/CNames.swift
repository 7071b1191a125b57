import Foundation
import GraphIR

/// Spelling of C identifiers and literals in generated code.
enum CNames {
    /// A C identifier from a model or tensor name: letters, digits and '_' only.
    static func identifier(_ s: String) -> String {
        var out = ""
        for ch in s.unicodeScalars {
            if (ch >= "a" && ch <= "z") || (ch >= "A" && ch <= "Z") || (ch >= "0" && ch <= "9") || ch == "_" {
                out.unicodeScalars.append(ch)
            } else {
                out += "_"
            }
        }
        if let f = out.unicodeScalars.first, f >= "0" && f <= "9" { out = "_" + out }
        return out.isEmpty ? "_" : out
    }

    /// A float literal that reads back as exactly the same float.
    static func floatLiteral(_ v: Double) -> String {
        let f = Float(v)
        if f.isNaN { return "NAN" }
        if f.isInfinite { return f < 0 ? "-INFINITY" : "INFINITY" }
        var s = "\(f)"
        if !s.contains(".") && !s.contains("e") { s += ".0" }
        return s + "f"
    }

    /// Text safe inside a C block comment.
    static func comment(_ s: String) -> String {
        s.replacingOccurrences(of: "*/", with: "* /")
    }

    static func shape(_ t: TensorType) -> String {
        var axes: [String] = []
        if t.batched { axes.append("B") }
        if t.sequence { axes.append("T") }
        axes += t.dims.map(String.init)
        return "[" + axes.joined(separator: ", ") + "]"
    }
}

