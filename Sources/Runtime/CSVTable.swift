import Foundation

/// A CSV file with a header row, read whole: the column names and each data row's cells.
/// Rows are numbered as a spreadsheet shows them (the header is row 1), so errors about a
/// cell can name its row and column.
public struct CSVTable: Sendable {
    public var path: String
    public var columns: [String]
    /// (row number, cells) for every data row; trailing blank lines are dropped.
    public var rows: [(number: Int, cells: [String])]

    public static func read(_ path: String) throws -> CSVTable {
        let text = String(decoding: try FileBytes.read(path), as: UTF8.self)
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        while let last = lines.last, last.trimmingCharacters(in: .whitespaces).isEmpty { lines.removeLast() }
        guard let header = lines.first else { throw FormatError("\(path): the file is empty") }
        return CSVTable(path: path, columns: fields(header),
                        rows: lines.dropFirst().enumerated().map { ($0.offset + 2, fields($0.element)) })
    }

    /// The index of a column, or an error listing the columns there are.
    public func column(_ name: String) throws -> Int {
        guard let i = columns.firstIndex(of: name) else {
            throw FormatError("\(path): no column '\(name)' (columns: \(columns.joined(separator: ", ")))")
        }
        return i
    }

    /// Splits a CSV line on commas outside double quotes.
    static func fields(_ line: Substring) -> [String] {
        var out: [String] = [], cell = "", quoted = false
        for ch in line {
            if ch == "\"" { quoted.toggle() } else if ch == "," && !quoted { out.append(cell); cell = "" } else if ch != "\r" { cell.append(ch) }
        }
        out.append(cell)
        return out
    }
}
