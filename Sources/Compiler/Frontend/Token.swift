/// The tokens of the `.rnn` language.
public enum TokenKind: Sendable, Hashable {
    case identifier
    case integer
    case number       // has a fraction or exponent
    case lparen, rparen, lbrace, rbrace, lbracket, rbracket
    case comma, colon, equal
    case plus, minus, star, slash, at
    case keyword(Keyword)
    case eof
    case invalid
}

public enum Keyword: String, Sendable, CaseIterable {
    case cell, model, state, param, input, target, output, loss, train
    case float, int, time
}

public struct Token: Sendable {
    public let kind: TokenKind
    public let range: SourceRange
    public let text: String
    /// True when no other token precedes this one on its line; the parser uses it to
    /// resynchronise after an error at the start of the next statement.
    public let startsLine: Bool
}

extension TokenKind: CustomStringConvertible {
    public var description: String {
        switch self {
        case .identifier: return "a name"
        case .integer: return "an integer"
        case .number: return "a number"
        case .lparen: return "'('"
        case .rparen: return "')'"
        case .lbrace: return "'{'"
        case .rbrace: return "'}'"
        case .lbracket: return "'['"
        case .rbracket: return "']'"
        case .comma: return "','"
        case .colon: return "':'"
        case .equal: return "'='"
        case .plus: return "'+'"
        case .minus: return "'-'"
        case .star: return "'*'"
        case .slash: return "'/'"
        case .at: return "'@'"
        case .keyword(let k): return "'\(k.rawValue)'"
        case .eof: return "the end of the file"
        case .invalid: return "an invalid character"
        }
    }
}
