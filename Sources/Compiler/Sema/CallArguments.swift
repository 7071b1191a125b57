/// Reads a call's positional and `key = value` arguments, reporting misuse at the argument.
struct CallArguments {
    let callee: Name
    let args: [CallArgument]
    let range: SourceRange
    let diagnostics: DiagnosticEngine

    init(_ callee: Name, _ args: [CallArgument], _ range: SourceRange, _ diagnostics: DiagnosticEngine) {
        self.callee = callee
        self.args = args
        self.range = range
        self.diagnostics = diagnostics
    }

    private var positionals: [CallArgument] { args.filter { $0.label == nil } }

    /// The i-th positional argument, checking there are exactly `count` of them.
    func positional(_ i: Int, count: Int) -> Expr? {
        let p = positionals
        guard p.count == count else {
            diagnostics.error(range, "'\(callee.text)' takes \(count) positional argument\(count == 1 ? "" : "s"), got \(p.count)")
            return nil
        }
        return p[i].value
    }

    func noLabels() -> Bool {
        if let l = args.first(where: { $0.label != nil })?.label {
            diagnostics.error(l.range, "'\(callee.text)' has no argument named '\(l.text)'")
            return false
        }
        return true
    }

    func allowOnly(_ names: Set<String>) -> Bool {
        var seen = Set<String>()
        for a in args {
            guard let l = a.label else { continue }
            guard names.contains(l.text) else {
                diagnostics.error(l.range, "'\(callee.text)' has no argument named '\(l.text)' (expected \(names.sorted().joined(separator: ", ")))")
                return false
            }
            guard seen.insert(l.text).inserted else {
                diagnostics.error(l.range, "argument '\(l.text)' is given twice")
                return false
            }
        }
        return true
    }

    private func labeled(_ name: String) -> CallArgument? { args.first { $0.label?.text == name } }

    func int(_ name: String, required: Bool, default value: Int? = nil) -> Int? {
        guard let a = labeled(name) else {
            if required {
                diagnostics.error(range, "'\(callee.text)' needs '\(name)=...'")
                return nil
            }
            return value
        }
        guard case .number(let v, let r) = a.value, v == v.rounded(), v >= 1, v < 1e9 else {
            diagnostics.error(a.value.range, "'\(name)' must be a positive integer")
            return nil
        }
        _ = r
        return Int(v)
    }

    func number(_ name: String, default value: Double) -> Double? {
        guard let a = labeled(name) else { return value }
        guard case .number(let v, _) = a.value else {
            diagnostics.error(a.value.range, "'\(name)' must be a number")
            return nil
        }
        return v
    }

    func bool(_ name: String, default value: Bool) -> Bool? {
        guard let a = labeled(name) else { return value }
        guard case .name(let n) = a.value, n.text == "true" || n.text == "false" else {
            diagnostics.error(a.value.range, "'\(name)' must be true or false")
            return nil
        }
        return n.text == "true"
    }

    func choice(_ name: String, _ options: [String], default value: String) -> String? {
        guard let a = labeled(name) else { return value }
        guard case .name(let n) = a.value, options.contains(n.text) else {
            diagnostics.error(a.value.range, "'\(name)' must be one of \(options.joined(separator: ", "))")
            return nil
        }
        return n.text
    }
}
