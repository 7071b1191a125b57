/// A `.rnn` file held in memory, with the line table diagnostics need.
public struct SourceFile: Sendable {
    public let path: String
    public let text: [UInt8]
    /// Byte offset of the first character of each line.
    private let lineStarts: [Int]

    public init(path: String, text: String) {
        self.path = path
        self.text = Array(text.utf8)
        var starts = [0]
        for (i, byte) in self.text.enumerated() where byte == UInt8(ascii: "\n") { starts.append(i + 1) }
        self.lineStarts = starts
    }

    /// 1-based line and column of a byte offset.
    public func location(of offset: Int) -> SourceLocation {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return SourceLocation(line: lo + 1, column: offset - lineStarts[lo] + 1)
    }

    /// The text of a 1-based line, without its newline.
    public func lineText(_ line: Int) -> String {
        guard line >= 1, line <= lineStarts.count else { return "" }
        let start = lineStarts[line - 1]
        var end = line < lineStarts.count ? lineStarts[line] - 1 : text.count
        if end > start, end <= text.count, text[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return String(decoding: text[start..<max(start, end)], as: UTF8.self)
    }
}

public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public let line: Int
    public let column: Int
    public init(line: Int, column: Int) { self.line = line; self.column = column }
    public var description: String { "\(line):\(column)" }
}

/// A half-open byte range in a source file.
public struct SourceRange: Sendable, Hashable {
    public let start: Int
    public let end: Int
    public init(start: Int, end: Int) { self.start = start; self.end = max(start, end) }
    public func to(_ other: SourceRange) -> SourceRange { SourceRange(start: min(start, other.start), end: max(end, other.end)) }
}
