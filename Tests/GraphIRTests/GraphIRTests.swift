import GraphIR
import XCTest

/// The IR's own invariants: printing is deterministic and readable, and the verifier
/// rejects graphs that break SSA or op signatures.
final class GraphIRTests: XCTestCase {
    /// y = tanh(x W^T) over a sequence, built by hand.
    func smallGraph() -> Graph {
        var g = Graph(name: "small")
        let x = g.newValue(TensorType(.f32, sequence: true, [4]), name: "x")
        let w = g.newValue(.param([3, 4]), name: "d.weight")
        let y = g.newValue(TensorType(.f32, sequence: true, [3]), name: "y")
        let z = g.newValue(TensorType(.f32, sequence: true, [3]), name: "z")
        g.ops = [
            Op(.input("x"), [], results: [x], source: SourceNote(line: 2, text: "input x: float[time, 4]")),
            Op(.param("d.weight"), [], results: [w]),
            Op(.linear(bias: false), [x, w], results: [y], source: SourceNote(line: 3, text: "y = dense(x, units=3)")),
            Op(.tanh, [y], results: [z]),
        ]
        g.outputs = [("z", z)]
        return g
    }

    func testPrinterIsStableAndShowsTypesNamesAndLines() {
        let text = Printer().print(smallGraph())
        XCTAssertEqual(text, """
        model small {
          %0 = input "x" : f32[B,T,4]  # line 2
          %1 = param "d.weight" : f32[3,4]
          %2 = linear_nobias %0, %1 : f32[B,T,3]  # y; line 3
          %3 = tanh %2 : f32[B,T,3]  # z
          output "z" = %3 : f32[B,T,3]
        }

        """)
        XCTAssertEqual(text, Printer().print(smallGraph()))
    }

    func testVerifierAcceptsAWellFormedGraph() throws {
        try Verifier().verify(smallGraph())
    }

    func testVerifierRejectsAValueDefinedTwice() {
        var g = smallGraph()
        g.ops.append(Op(.tanh, [ValueID(2)], results: [ValueID(3)]))
        XCTAssertThrowsError(try Verifier().verify(g)) { XCTAssertTrue("\($0)".contains("defined twice")) }
    }

    func testVerifierRejectsAMisShapedProduct() {
        var g = smallGraph()
        let bad = g.newValue(.param([3, 5]))
        g.ops.insert(Op(.param("bad"), [], results: [bad]), at: 2)
        g.ops[3].operands[1] = bad
        XCTAssertThrowsError(try Verifier().verify(g)) { XCTAssertTrue("\($0)".contains("cannot give")) }
    }

    func testVerifierRejectsAnUndefinedOutput() {
        var g = smallGraph()
        g.outputs = [("nope", ValueID(99))]
        XCTAssertThrowsError(try Verifier().verify(g))
    }
}
