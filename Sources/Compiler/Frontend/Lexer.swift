/// Turns a source file into tokens. Comments run from `#` to the end of the line.
/// Bad characters become `.invalid` tokens with a diagnostic, so lexing never stops early.
public struct Lexer {
    private let file: SourceFile
    private let diagnostics: DiagnosticEngine
    private var pos = 0
    private var lineHasToken = false

    public init(file: SourceFile, diagnostics: DiagnosticEngine) {
        self.file = file
        self.diagnostics = diagnostics
    }

    public mutating func tokenize() -> [Token] {
        var tokens: [Token] = []
        while true {
            let token = next()
            tokens.append(token)
            if token.kind == .eof { return tokens }
        }
    }

    private var bytes: [UInt8] { file.text }

    private mutating func next() -> Token {
        skipTrivia()
        let start = pos
        guard pos < bytes.count else { return make(.eof, start) }
        let c = bytes[pos]
        pos += 1
        switch c {
        case UInt8(ascii: "("): return make(.lparen, start)
        case UInt8(ascii: ")"): return make(.rparen, start)
        case UInt8(ascii: "{"): return make(.lbrace, start)
        case UInt8(ascii: "}"): return make(.rbrace, start)
        case UInt8(ascii: "["): return make(.lbracket, start)
        case UInt8(ascii: "]"): return make(.rbracket, start)
        case UInt8(ascii: ","): return make(.comma, start)
        case UInt8(ascii: ":"): return make(.colon, start)
        case UInt8(ascii: "="): return make(.equal, start)
        case UInt8(ascii: "+"): return make(.plus, start)
        case UInt8(ascii: "-"): return make(.minus, start)
        case UInt8(ascii: "*"): return make(.star, start)
        case UInt8(ascii: "/"): return make(.slash, start)
        case UInt8(ascii: "@"): return make(.at, start)
        default:
            if isIdentStart(c) {
                while pos < bytes.count, isIdentContinue(bytes[pos]) { pos += 1 }
                let text = String(decoding: bytes[start..<pos], as: UTF8.self)
                if let k = Keyword(rawValue: text) { return make(.keyword(k), start) }
                return make(.identifier, start)
            }
            if isDigit(c) || (c == UInt8(ascii: ".") && pos < bytes.count && isDigit(bytes[pos])) {
                return number(start)
            }
            // Consume a whole UTF-8 sequence so the caret covers one character.
            while pos < bytes.count, bytes[pos] & 0xC0 == 0x80 { pos += 1 }
            let token = make(.invalid, start)
            diagnostics.error(token.range, "unexpected character '\(token.text)'")
            return token
        }
    }

    private mutating func number(_ start: Int) -> Token {
        var isFloat = bytes[start] == UInt8(ascii: ".")
        while pos < bytes.count, isDigit(bytes[pos]) { pos += 1 }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "."), !isFloat {
            isFloat = true
            pos += 1
            while pos < bytes.count, isDigit(bytes[pos]) { pos += 1 }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            var p = pos + 1
            if p < bytes.count, bytes[p] == UInt8(ascii: "+") || bytes[p] == UInt8(ascii: "-") { p += 1 }
            if p < bytes.count, isDigit(bytes[p]) {
                isFloat = true
                pos = p
                while pos < bytes.count, isDigit(bytes[pos]) { pos += 1 }
            }
        }
        if pos < bytes.count, isIdentStart(bytes[pos]) {
            while pos < bytes.count, isIdentContinue(bytes[pos]) { pos += 1 }
            let token = make(.invalid, start)
            diagnostics.error(token.range, "malformed number '\(token.text)'")
            return token
        }
        return make(isFloat ? .number : .integer, start)
    }

    private mutating func skipTrivia() {
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\n") {
                lineHasToken = false
                pos += 1
            } else if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\r") {
                pos += 1
            } else if c == UInt8(ascii: "#") {
                while pos < bytes.count, bytes[pos] != UInt8(ascii: "\n") { pos += 1 }
            } else {
                return
            }
        }
    }

    private mutating func make(_ kind: TokenKind, _ start: Int) -> Token {
        let startsLine = !lineHasToken
        lineHasToken = true
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        return Token(kind: kind, range: SourceRange(start: start, end: pos), text: text, startsLine: startsLine)
    }

    private func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
    private func isIdentStart(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) || c == UInt8(ascii: "_")
    }
    private func isIdentContinue(_ c: UInt8) -> Bool { isIdentStart(c) || isDigit(c) }
}
