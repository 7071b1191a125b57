/// One problem found in a user's file.
public struct Diagnostic: Sendable, Hashable {
    public enum Severity: String, Sendable { case error, warning, note }
    public let severity: Severity
    public let range: SourceRange
    public let message: String

    public init(_ severity: Severity, _ range: SourceRange, _ message: String) {
        self.severity = severity
        self.range = range
        self.message = message
    }
}

/// Collects diagnostics for one file and renders them the way compilers do:
/// `file:line:col: error: message`, the source line, and a caret under the place.
public final class DiagnosticEngine {
    public let file: SourceFile
    public private(set) var diagnostics: [Diagnostic] = []

    public init(file: SourceFile) { self.file = file }

    public var hasErrors: Bool { errorCount > 0 }
    public var errorCount: Int { diagnostics.filter { $0.severity == .error }.count }

    public func error(_ range: SourceRange, _ message: String) {
        // One error per place is enough: recovery can otherwise repeat itself.
        if diagnostics.contains(where: { $0.range.start == range.start && $0.severity == .error }) { return }
        diagnostics.append(Diagnostic(.error, range, message))
    }

    public func note(_ range: SourceRange, _ message: String) {
        diagnostics.append(Diagnostic(.note, range, message))
    }

    public func render() -> String {
        diagnostics.map(render).joined()
    }

    public func render(_ d: Diagnostic) -> String {
        let loc = file.location(of: d.range.start)
        var line = file.lineText(loc.line)
        var column = loc.column
        // A very long line is shown as a window around the place, so the caret stays visible.
        let window = 120
        if line.utf8.count > window * 2 {
            let bytes = Array(line.utf8)
            let start = max(0, column - 1 - window / 2)
            let end = min(bytes.count, start + window)
            line = (start > 0 ? "..." : "") + String(decoding: bytes[start..<end], as: UTF8.self) + (end < bytes.count ? "..." : "")
            column = column - start + (start > 0 ? 3 : 0)
        }
        let width = max(1, min(d.range.end - d.range.start, max(1, line.utf8.count - column + 1), 80))
        let caret = String(repeating: " ", count: max(0, column - 1)) + "^" + String(repeating: "~", count: width - 1)
        return "\(file.path):\(loc.line):\(loc.column): \(d.severity.rawValue): \(d.message)\n\(line)\n\(caret)\n"
    }
}

/// Thrown when a file has errors; `description` is the rendered list.
public struct CompileError: Error, CustomStringConvertible {
    public let diagnostics: [Diagnostic]
    public let rendered: String
    public var description: String { rendered }
}
