/// A recursive-descent parser for the `.rnn` language. It reports every error it finds:
/// after one, it skips to the start of the next statement and carries on.
public struct Parser {
    private var tokens: [Token]
    private var index = 0
    private let diagnostics: DiagnosticEngine

    /// Thrown inside a statement to unwind to the statement loop, which resynchronises.
    private struct Recover: Error {}

    /// Bounds on one expression, so that no input can exhaust the stack of the recursive
    /// parser or of the passes after it.
    static let maxNesting = 200
    static let maxExpressionNodes = 2000
    private var nesting = 0
    private var nodes = 0

    public init(file: SourceFile, diagnostics: DiagnosticEngine) {
        var lexer = Lexer(file: file, diagnostics: diagnostics)
        // Invalid characters were reported by the lexer; the parser never sees them.
        self.tokens = lexer.tokenize().filter { $0.kind != .invalid }
        self.diagnostics = diagnostics
    }

    public mutating func parse() -> SourceUnit {
        var cells: [CellDecl] = []
        var model: ModelDecl?
        while !check(.eof) {
            do {
                if check(.keyword(.cell)) {
                    if let model {
                        diagnostics.error(peek.range, "cells must be defined before the model '\(model.name.text)'")
                    }
                    cells.append(try cellDecl())
                } else if check(.keyword(.model)) {
                    let m = try modelDecl()
                    if let first = model {
                        diagnostics.error(m.name.range, "a file holds one model; '\(first.name.text)' was already defined")
                    } else {
                        model = m
                    }
                } else {
                    diagnostics.error(peek.range, "expected 'cell' or 'model', found \(describe(peek))")
                    throw Recover()
                }
            } catch {
                // Skip to the next top-level declaration.
                while !check(.eof), !check(.keyword(.cell)), !check(.keyword(.model)) { advance() }
            }
        }
        if model == nil, !diagnostics.hasErrors {
            diagnostics.error(peek.range, "the file defines no model (expected 'model NAME { ... }')")
        }
        return SourceUnit(cells: cells, model: model)
    }

    // MARK: Declarations

    private mutating func cellDecl() throws -> CellDecl {
        let start = advance().range
        let name = try expectName("a cell name")
        try expect(.lparen, "after the cell name")
        var parameters: [CellDecl.Parameter] = []
        if !check(.rparen) {
            repeat {
                let isState = match(.keyword(.state))
                let pname = try expectName("a parameter name")
                try expect(.colon, "after '\(pname.text)'")
                let type = try typeExpr()
                parameters.append(.init(name: pname, type: type, isState: isState))
            } while match(.comma)
        }
        try expect(.rparen, "to close the cell's inputs")
        try expect(.lbrace, "to open the cell body")
        var params: [CellDecl.Param] = []
        var body: [CellDecl.Assignment] = []
        while !check(.rbrace), !check(.eof) {
            do {
                if match(.keyword(.param)) {
                    let pname = try expectName("a parameter name")
                    try expect(.colon, "after '\(pname.text)'")
                    let type = try typeExpr()
                    var storage: (Name, Int)?
                    if match(.equal) {
                        let packed = try expectName("a packed tensor name")
                        try expect(.lbracket, "after '\(packed.text)'")
                        let chunkToken = try expect(.integer, "as the chunk index")
                        try expect(.rbracket, "after the chunk index")
                        storage = (packed, Int(chunkToken.text) ?? 0)
                    }
                    params.append(.init(name: pname, type: type, storage: storage))
                } else if check(.identifier) {
                    let target = advance()
                    try expect(.equal, "after '\(target.text)' (a cell body holds 'param' declarations and assignments)")
                    let value = try expression()
                    body.append(.init(name: Name(text: target.text, range: target.range), value: value))
                } else {
                    diagnostics.error(peek.range, "expected 'param' or an assignment in cell '\(name.text)', found \(describe(peek))")
                    throw Recover()
                }
            } catch {
                synchronizeStatement()
            }
        }
        let end = try expect(.rbrace, "to close cell '\(name.text)'").range
        return CellDecl(name: name, parameters: parameters, params: params, body: body, range: start.to(end))
    }

    private mutating func modelDecl() throws -> ModelDecl {
        let start = advance().range
        let name = try expectName("a model name")
        try expect(.lbrace, "to open the model body")
        var statements: [ModelDecl.Statement] = []
        while !check(.rbrace), !check(.eof) {
            do {
                statements.append(try modelStatement())
            } catch {
                synchronizeStatement()
            }
        }
        let end = try expect(.rbrace, "to close model '\(name.text)'").range
        return ModelDecl(name: name, statements: statements, range: start.to(end))
    }

    private mutating func modelStatement() throws -> ModelDecl.Statement {
        switch peek.kind {
        case .keyword(.input), .keyword(.target):
            let isInput = advance().kind == .keyword(.input)
            let n = try expectName("a name")
            try expect(.colon, "after '\(n.text)'")
            let type = try typeExpr()
            return isInput ? .input(n, type) : .target(n, type)
        case .keyword(.output):
            advance()
            let n = try expectName("the output's name")
            if match(.equal) { return .output(n, try expression()) }
            return .output(n, nil)
        case .keyword(.loss):
            let start = advance().range
            let e = try expression()
            return .loss(e, start.to(e.range))
        case .keyword(.train):
            let start = advance().range
            try expect(.lbrace, "after 'train'")
            var entries: [(key: Name, value: Expr)] = []
            while !check(.rbrace), !check(.eof) {
                let key = try expectName("a training setting")
                try expect(.equal, "after '\(key.text)'")
                entries.append((key, try expression()))
            }
            let end = try expect(.rbrace, "to close 'train'").range
            return .train(entries, start.to(end))
        case .identifier:
            let target = advance()
            try expect(.equal, "after '\(target.text)'")
            return .binding(Name(text: target.text, range: target.range), try expression())
        default:
            diagnostics.error(peek.range, "expected a model statement (input, target, NAME = ..., output, loss, train), found \(describe(peek))")
            throw Recover()
        }
    }

    // MARK: Types

    private mutating func typeExpr() throws -> TypeExpr {
        let start = peek.range
        let element: TypeExpr.Element
        if match(.keyword(.float)) { element = .float }
        else if match(.keyword(.int)) { element = .int }
        else {
            diagnostics.error(peek.range, "expected a type ('float[...]' or 'int[...]'), found \(describe(peek))")
            throw Recover()
        }
        var dims: [TypeExpr.Dim] = []
        var ranges: [SourceRange] = []
        var end = start
        if match(.lbracket) {
            repeat {
                let t = peek
                switch t.kind {
                case .keyword(.time): dims.append(.time)
                case .integer:
                    guard let v = Int(t.text), v > 0 else {
                        diagnostics.error(t.range, "a size must be a positive integer")
                        throw Recover()
                    }
                    dims.append(.literal(v))
                case .identifier: dims.append(.symbol(t.text))
                default:
                    diagnostics.error(t.range, "expected a size (an integer, a size symbol or 'time'), found \(describe(t))")
                    throw Recover()
                }
                ranges.append(t.range)
                advance()
            } while match(.comma)
            end = try expect(.rbracket, "to close the shape").range
        }
        return TypeExpr(element: element, dims: dims, dimRanges: ranges, range: start.to(end))
    }

    // MARK: Expressions (precedence climbing: + - below * / @ below unary minus)

    private mutating func expression() throws -> Expr {
        if nesting == 0 { nodes = 0 }
        nesting += 1
        defer { nesting -= 1 }
        if nesting > Self.maxNesting {
            diagnostics.error(peek.range, "expression nested more than \(Self.maxNesting) levels deep")
            throw Recover()
        }
        return try additive()
    }

    private mutating func countNode() throws {
        nodes += 1
        if nodes == Self.maxExpressionNodes + 1 {
            diagnostics.error(peek.range, "expression has more than \(Self.maxExpressionNodes) terms; give parts of it names")
        }
        if nodes > Self.maxExpressionNodes { throw Recover() }
    }

    private mutating func additive() throws -> Expr {
        var lhs = try multiplicative()
        while check(.plus) || check(.minus) {
            let op: BinaryOp = advance().kind == .plus ? .add : .sub
            try countNode()
            let rhs = try multiplicative()
            lhs = .binary(op: op, lhs: lhs, rhs: rhs, range: lhs.range.to(rhs.range))
        }
        return lhs
    }

    private mutating func multiplicative() throws -> Expr {
        var lhs = try unary()
        while check(.star) || check(.slash) || check(.at) {
            let kind = advance().kind
            let op: BinaryOp = kind == .star ? .mul : kind == .slash ? .div : .matmul
            try countNode()
            let rhs = try unary()
            lhs = .binary(op: op, lhs: lhs, rhs: rhs, range: lhs.range.to(rhs.range))
        }
        return lhs
    }

    private mutating func unary() throws -> Expr {
        if check(.minus) {
            let start = advance().range
            try countNode()
            nesting += 1
            defer { nesting -= 1 }
            if nesting > Self.maxNesting {
                diagnostics.error(start, "expression nested more than \(Self.maxNesting) levels deep")
                throw Recover()
            }
            let operand = try unary()
            return .unary(op: .negate, operand: operand, range: start.to(operand.range))
        }
        return try primary()
    }

    private mutating func primary() throws -> Expr {
        let t = peek
        try countNode()
        switch t.kind {
        case .integer, .number:
            advance()
            guard let v = Double(t.text) else {
                diagnostics.error(t.range, "malformed number '\(t.text)'")
                throw Recover()
            }
            return .number(v, t.range)
        case .identifier:
            advance()
            let name = Name(text: t.text, range: t.range)
            guard match(.lparen) else { return .name(name) }
            var args: [CallArgument] = []
            if !check(.rparen) {
                repeat {
                    if check(.identifier), peekNext.kind == .equal {
                        let label = advance()
                        advance()
                        args.append(CallArgument(label: Name(text: label.text, range: label.range), value: try expression()))
                    } else {
                        args.append(CallArgument(label: nil, value: try expression()))
                    }
                } while match(.comma)
            }
            let end = try expect(.rparen, "to close the call to '\(t.text)'").range
            return .call(callee: name, args: args, range: t.range.to(end))
        case .lparen:
            advance()
            var items = [try expression()]
            while match(.comma) { items.append(try expression()) }
            let end = try expect(.rparen, "to close the parenthesis").range
            return items.count == 1 ? items[0] : .tuple(items, t.range.to(end))
        default:
            diagnostics.error(t.range, "expected an expression, found \(describe(t))")
            throw Recover()
        }
    }

    // MARK: Token helpers

    private var peek: Token { tokens[index] }
    private var peekNext: Token { tokens[min(index + 1, tokens.count - 1)] }

    private func check(_ kind: TokenKind) -> Bool { peek.kind == kind }

    @discardableResult
    private mutating func advance() -> Token {
        let t = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return t
    }

    private mutating func match(_ kind: TokenKind) -> Bool {
        if check(kind) { advance(); return true }
        return false
    }

    @discardableResult
    private mutating func expect(_ kind: TokenKind, _ context: String) throws -> Token {
        if check(kind) { return advance() }
        // A token missing at the end of a line is reported there, not on the next line.
        if peek.startsLine, index > 0 {
            let end = tokens[index - 1].range.end
            diagnostics.error(SourceRange(start: end, end: end + 1), "expected \(kind) \(context)")
        } else {
            diagnostics.error(peek.range, "expected \(kind) \(context), found \(describe(peek))")
        }
        throw Recover()
    }

    private mutating func expectName(_ what: String) throws -> Name {
        if check(.identifier) {
            let t = advance()
            return Name(text: t.text, range: t.range)
        }
        diagnostics.error(peek.range, "expected \(what), found \(describe(peek))")
        throw Recover()
    }

    private func describe(_ t: Token) -> String {
        switch t.kind {
        case .eof: return "the end of the file"
        case .keyword: return "'\(t.text)'"
        default: return "'\(t.text)'"
        }
    }

    /// Skips to the first token that can begin a statement on a new line, or to a '}'.
    private mutating func synchronizeStatement() {
        if !check(.eof), !check(.rbrace), !startsStatement(peek) { advance() }
        while !check(.eof) {
            if peek.kind == .rbrace || startsStatement(peek) { return }
            advance()
        }
    }

    private func startsStatement(_ t: Token) -> Bool {
        guard t.startsLine else { return false }
        switch t.kind {
        case .keyword(.param), .keyword(.input), .keyword(.target), .keyword(.output),
             .keyword(.loss), .keyword(.train), .keyword(.cell), .keyword(.model):
            return true
        case .identifier:
            return peekNext.kind == .equal && tokens[index].range == t.range
        default:
            return false
        }
    }
}
