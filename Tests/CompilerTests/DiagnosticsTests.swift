import Compiler
import XCTest

/// Each class of bad model (LANGUAGE.md section 2) gets `file:line:col: error:`, the source
/// line and a caret; the parser recovers and reports every error, not only the first.
final class DiagnosticsTests: XCTestCase {
    /// The rendered diagnostics of a model that must fail to compile.
    func errors(_ text: String, file: String = "m.rnn") -> String {
        do {
            _ = try Compilation(path: file, text: text)
            XCTFail("expected compile errors")
            return ""
        } catch let e as CompileError {
            return e.rendered
        } catch {
            XCTFail("unexpected error \(error)")
            return ""
        }
    }

    func testSyntaxErrorsAreAllReportedWithLineColumnAndCaret() {
        let text = """
        model m {
            input x: float[time, 4]
            h = lstm(x, hidden=8
            y = dense(h, units=2)
            output y
            output z = y + * 2
        }
        """
        let out = errors(text)
        XCTAssertTrue(out.contains("m.rnn:3:25: error: expected ')' to close the call to 'lstm'\n    h = lstm(x, hidden=8\n                        ^\n"), out)
        XCTAssertTrue(out.contains("m.rnn:6:20: error: expected an expression, found '*'"), out)
    }

    func testInvalidCharacterAndMalformedNumber() {
        let out = errors("model m {\n    input x: float[time, 4]\n    y = dense(x, units=2) $\n    z = 3x\n    output y\n}\n")
        XCTAssertTrue(out.contains("m.rnn:3:27: error: unexpected character '$'"), out)
        XCTAssertTrue(out.contains("m.rnn:4:9: error: malformed number '3x'"), out)
    }

    func testUnknownLayerAndFunction() {
        let out = errors("""
        model m {
            input x: float[time, 4]
            h = lstn(x, hidden=8)
            y = dense(x, units=2)
            z = tanhh(y)
            output y
        }
        """)
        XCTAssertTrue(out.contains("m.rnn:3:9: error: unknown layer or function 'lstn'"), out)
        XCTAssertTrue(out.contains("m.rnn:5:9: error: unknown layer or function 'tanhh'"), out)
    }

    func testUnknownFunctionInsideACell() {
        let out = errors("""
        cell c(x: float[I], state h: float[H]) {
            param W: float[H, I]
            h = softplus(W @ x)
        }
        model m {
            input x: float[time, 4]
            y = c(x, H=3)
            output y
        }
        """)
        XCTAssertTrue(out.contains("m.rnn:3:9: error: unknown function 'softplus' in a cell"), out)
    }

    func testShapeMismatchInsideACell() {
        let out = errors("""
        cell c(x: float[I], state h: float[H]) {
            param W: float[H, I]
            param U: float[H, 5]
            param b: float[4]
            h = tanh(W @ x + b)
            u = U @ h
        }
        model m {
            input x: float[time, 4]
            y = c(x, H=8)
            output y
        }
        """)
        XCTAssertTrue(out.contains("m.rnn:5:14: error: shape mismatch: float[8] + float[4]\n    h = tanh(W @ x + b)\n             ^~~~~~~~~\n"), out)
        XCTAssertTrue(out.contains("m.rnn:6:9: error: shape mismatch: U is float[8, 5] but the vector is float[8]"), out)
        // The failed binding does not cascade into "unknown name" errors.
        XCTAssertFalse(out.contains("unknown name"), out)
    }

    func testUnboundAndConflictingSizeSymbols() {
        let out = errors("""
        cell c(x: float[I], state h: float[H]) {
            param W: float[H, I]
            h = tanh(W @ x)
        }
        model m {
            input x: float[time, 4]
            y = c(x)
            z = c(x, H=3, I=5)
            output y
        }
        """)
        XCTAssertTrue(out.contains("m.rnn:1:36: error: size symbol 'H' of cell 'c' is not bound"), out)
        XCTAssertTrue(out.contains("m.rnn:7:9: note: bind it where the cell is used"), out)
        XCTAssertTrue(out.contains("m.rnn:8:9: error: size symbol 'I' is bound to 5 but the input has 4 features"), out)
    }

    func testStateAssignedTwiceOrNever() {
        let out = errors("""
        cell c(x: float[I], state h: float[H], state u: float[H]) {
            param W: float[H, I]
            h = tanh(W @ x)
            h = tanh(W @ x + h)
        }
        model m {
            input x: float[time, 4]
            y = c(x, H=3)
            output y
        }
        """)
        XCTAssertTrue(out.contains("m.rnn:4:5: error: state 'h' is assigned twice"), out)
        XCTAssertTrue(out.contains("m.rnn:1:46: error: state 'u' is never assigned in cell 'c'"), out)
    }

    func testModelLevelMistakes() {
        let out = errors("""
        model m {
            input x: float[time, 4]
            target t: float[time, 2]
            y = dense(x, units=2, activation=gelu)
            h = lstm(x, hidden=8, layer=2)
            x = dense(x, units=3)
            output q = t * 2
            loss mse(y, t)
        }
        """)
        XCTAssertTrue(out.contains("m.rnn:4:38: error: 'activation' must be one of none, tanh, relu, sigmoid, softmax"), out)
        XCTAssertTrue(out.contains("m.rnn:5:27: error: 'lstm' has no argument named 'layer'"), out)
        XCTAssertTrue(out.contains("m.rnn:6:5: error: 'x' is already defined"), out)
        XCTAssertTrue(out.contains("m.rnn:7:16: error: 't' is a target; targets are only read by the loss"), out)
    }

    func testTheFiveExamplesCompile() throws {
        for name in ["char_lstm", "gate_gru", "jordan", "price_rnn", "sentiment_gru"] {
            XCTAssertNoThrow(try Compilation(path: TestSupport.path("models/\(name).rnn")), name)
        }
    }

    func testExamplesAreTheSpecsUnmodified() throws {
        let spec = TestSupport.path("../shared/spec/examples")
        guard FileManager.default.fileExists(atPath: spec) else { throw XCTSkip("../shared is not beside the checkout") }
        for name in ["char_lstm", "gate_gru", "jordan", "price_rnn", "sentiment_gru"] {
            let ours = try String(contentsOfFile: TestSupport.path("models/\(name).rnn"), encoding: .utf8)
            let theirs = try String(contentsOfFile: "\(spec)/\(name).rnn", encoding: .utf8)
            XCTAssertEqual(ours, theirs, "models/\(name).rnn differs from the spec's example")
        }
    }
}

import Foundation
