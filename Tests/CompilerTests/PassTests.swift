import Compiler
import GraphIR
import XCTest

/// Each pass, on a case where it must fire and one where it must not.
final class PassTests: XCTestCase {
    func graph(_ text: String, passes: [any Pass]? = nil) throws -> Graph {
        var c = try Compilation(path: "t.rnn", text: text, optimize: passes == nil)
        if let passes { try PassPipeline(passes).run(&c.graph) }
        return c.graph
    }

    func scans(_ g: Graph) -> [Op] { g.ops.filter { if case .scan = $0.kind { return true } else { return false } } }
    func count(_ ops: [Op], _ kind: OpKind) -> Int { ops.filter { $0.kind == kind }.count }
    func linears(_ g: Graph) -> [Op] { g.ops.filter { if case .linear = $0.kind { return true } else { return false } } }

    /// The shape the issue asks for: one hoisted input product (3H x I over all steps), one
    /// recurrent product (3H x H) per step and one fused element-wise kernel per step.
    func assertGRUShape(_ g: Graph, hidden: Int, input: Int, file: StaticString = #filePath, line: UInt = #line) {
        let scan = scans(g)
        XCTAssertEqual(scan.count, 1, file: file, line: line)
        guard let body = scan.first?.region else { return }
        let hoisted = linears(g).filter { $0.kind == .linear(bias: false) }
        XCTAssertEqual(hoisted.count, 1, "one hoisted input product", file: file, line: line)
        if let h = hoisted.first {
            XCTAssertEqual(g.type(of: h.operands[1]).dims, [3 * hidden, input], file: file, line: line)
            XCTAssertTrue(g.type(of: h.results[0]).sequence, "computed for all steps", file: file, line: line)
        }
        let products = body.ops.filter { $0.kind == .matvec }
        XCTAssertEqual(products.count, 1, "one recurrent product per step", file: file, line: line)
        if let p = products.first { XCTAssertEqual(g.type(of: p.operands[0]).dims, [3 * hidden, hidden], file: file, line: line) }
        XCTAssertEqual(count(body.ops, .fused), 1, "one fused kernel per step", file: file, line: line)
        XCTAssertEqual(body.ops.count, 2, "nothing else inside the loop:\n\(Printer().print(g))", file: file, line: line)
    }

    func testGateGRUOptimizesToTheBuiltInGRUShape() throws {
        let gate = try Compilation(path: TestSupport.path("models/gate_gru.rnn")).graph
        assertGRUShape(gate, hidden: 256, input: 64)
        let builtin = try graph("""
        model g {
            input chars: int[time]
            emb = embedding(chars, vocab=256, dim=64)
            hidden = gru(emb, hidden=256)
            logits = dense(hidden, units=256)
            output probs = softmax(logits)
        }
        """)
        assertGRUShape(builtin, hidden: 256, input: 64)
    }

    func testFuseGatesUsesThePackedTensorForBuiltIns() throws {
        let g = try graph("model m {\n input x: float[time, 3]\n h = lstm(x, hidden=5)\n output h\n}\n")
        XCTAssertEqual(count(g.allOps(), .stackRows), 0, "the packed weight_hh is the stack: no copy")
        let product = scans(g)[0].region!.ops.first { $0.kind == .matvec }!
        let def = g.definingOps()[product.operands[0]]!
        XCTAssertEqual(def.kind, .param("h.weight_hh_l0"))
    }

    func testFuseGatesStacksUserWeightsOnce() throws {
        let g = try graph("""
        cell two(x: float[I], state h: float[H]) {
            param A: float[H, H]
            param C: float[H, H]
            h = tanh(A @ h) * sigmoid(C @ h) + x
        }
        model m { input x: float[time, 4]  y = two(x, H=4)  output y }
        """)
        XCTAssertEqual(count(g.ops, .stackRows), 1)
        XCTAssertEqual(count(scans(g)[0].region!.ops, .matvec), 1)
    }

    func testFuseGatesDoesNotFuseProductsOfDifferentVectors() throws {
        // Jordan: W_y @ y reads the state, W_o @ h reads a value computed in the step.
        let g = try graph(String(contentsOfFile: TestSupport.path("models/jordan.rnn"), encoding: .utf8),
                          passes: [FuseGates()])
        XCTAssertEqual(count(g.allOps(), .stackRows), 0)
        XCTAssertEqual(count(scans(g)[0].region!.ops, .matvec), 3)
    }

    func testHoistMovesOnlyProductsOfTheStepInput() throws {
        let g = try graph(String(contentsOfFile: TestSupport.path("models/jordan.rnn"), encoding: .utf8),
                          passes: [HoistInputProjection()])
        XCTAssertEqual(linears(g).count, 1, "W_x @ x is hoisted")
        let body = scans(g)[0].region!
        // W_y @ y (a state) and W_o @ h (computed from the state) must stay in the loop.
        XCTAssertEqual(count(body.ops, .matvec), 2)
    }

    func testHoistDoesNotMoveAProductOfAValueComputedFromTheInputAndAState() throws {
        let g = try graph("""
        cell c(x: float[I], state h: float[I]) {
            param W: float[I, I]
            h = tanh(W @ (x * h))
        }
        model m { input x: float[time, 4]  y = c(x)  output y }
        """, passes: [HoistInputProjection()])
        XCTAssertEqual(linears(g).count, 0)
        XCTAssertEqual(count(scans(g)[0].region!.ops, .matvec), 1)
    }

    func testFusePointwiseNeverFusesAcrossAProduct() throws {
        let g = try Compilation(path: TestSupport.path("models/jordan.rnn")).graph
        let body = scans(g)[0].region!
        // h = tanh(...) ; y = sigmoid(W_o @ h + b_o): two kernels with the product between.
        XCTAssertEqual(body.ops.map(\.kind.mnemonic), ["matvec", "fused_pointwise", "matvec", "fused_pointwise"])
    }

    func testFusePointwiseLeavesASingleProductAlone() throws {
        let g = try graph("""
        cell c(x: float[I], state h: float[H]) {
            param W: float[H, I]
            h = W @ x
        }
        model m { input x: float[time, 4]  y = c(x, H=3)  output y }
        """)
        XCTAssertEqual(count(scans(g)[0].region!.ops, .fused), 0, "no element-wise work, no kernel")
    }

    func testCommonSubexpressionsAreComputedOnce() throws {
        let g = try graph("""
        cell c(x: float[I], state h: float[H]) {
            param W: float[H, I]
            param U: float[H, H]
            a = tanh(U @ h)
            b = tanh(U @ h)
            h = a + b + W @ x
        }
        model m { input x: float[time, 4]  y = c(x, H=3)  output y }
        """, passes: [EliminateCommonSubexpressions()])
        let body = scans(g)[0].region!
        XCTAssertEqual(count(body.ops, .matvec), 2, "U @ h once, W @ x once")
        XCTAssertEqual(count(body.ops, .tanh), 1)
    }

    func testCSEKeepsDifferentOperations() throws {
        let g = try graph("""
        cell c(x: float[I], state h: float[H]) {
            param U: float[H, H]
            h = tanh(U @ h) - sigmoid(U @ h) + x
        }
        model m { input x: float[time, 4]  y = c(x, H=4)  output y }
        """, passes: [EliminateCommonSubexpressions()])
        let body = scans(g)[0].region!
        XCTAssertEqual(count(body.ops, .tanh), 1)
        XCTAssertEqual(count(body.ops, .sigmoid), 1)
    }

    func testConstantsFold() throws {
        let g = try graph("""
        cell c(x: float[I], state h: float[I]) {
            h = (1 - 0.5) * x + 2 * 3 * h
        }
        model m { input x: float[time, 4]  y = c(x)  output y }
        """, passes: [FoldConstants(), EliminateDeadValues()])
        let body = scans(g)[0].region!
        let constants = body.ops.compactMap { op -> Double? in if case .constant(let v) = op.kind { return v } else { return nil } }
        XCTAssertEqual(constants.sorted(), [0.5, 6])
        XCTAssertEqual(count(body.ops, .sub), 0)
    }

    func testConstantFoldingLeavesValuesThatDependOnInputs() throws {
        let g = try graph("""
        cell c(x: float[I], state h: float[I]) {
            h = 1 - x
        }
        model m { input x: float[time, 4]  y = c(x)  output y }
        """, passes: [FoldConstants()])
        XCTAssertEqual(count(scans(g)[0].region!.ops, .sub), 1)
    }

    func testDeadValuesAreRemovedButOutputsStay() throws {
        let g = try graph("""
        cell c(x: float[I], state h: float[H]) {
            param W: float[H, I]
            unused = exp(W @ x)
            h = tanh(W @ x)
        }
        model m { input x: float[time, 4]  y = c(x, H=3)  z = dense(x, units=2)  output y }
        """, passes: [EliminateDeadValues()])
        XCTAssertEqual(count(scans(g)[0].region!.ops, .exp), 0)
        XCTAssertEqual(linears(g).count, 0, "z is not an output")
        XCTAssertEqual(count(scans(g)[0].region!.ops, .tanh), 1)
    }

    func testVerifierRejectsAUseBeforeDefinition() {
        var g = Graph(name: "bad")
        let a = g.newValue(TensorType(.f32, [3]))
        let b = g.newValue(TensorType(.f32, [3]))
        g.ops = [Op(.tanh, [a], results: [b])]
        XCTAssertThrowsError(try Verifier().verify(g))
    }

    func testTrainingPlanShowsReverseScanAndOneWeightGradientProductEach() throws {
        let c = try Compilation(path: TestSupport.path("models/gate_gru.rnn"))
        let plan = TrainingPlan(graph: c.graph, signature: c.signature).print()
        XCTAssertTrue(plan.contains("loss cross_entropy("), plan)
        // The recurrent weight gradient: one product over all steps, after the reverse scan.
        XCTAssertTrue(plan.contains("reverse scan of"), plan)
        XCTAssertTrue(plan.contains("(one product each, over T x B rows)"), plan)
        // The hoisted input product's weight gradient: one product over every row and step.
        XCTAssertTrue(plan.contains("one product over every row and step"), plan)
        // Stacked user weights get their gradients back, and the unused softmax output none.
        XCTAssertTrue(plan.contains("stacked weights back to their parameters"), plan)
        // The forward's and the backward's buffers take one region in turn.
        XCTAssertTrue(plan.contains("take one region of the training arena in turn (SharedRegion)"), plan)
        XCTAssertFalse(plan.contains("sum(d"), "no backward work for the softmax output the loss does not read")
    }

    /// A bias added to a product (or to a step input) has that value's gradient, row by
    /// row: the backward sums it from the window's rows, with no per-example scratch. A
    /// bias that enters otherwise (multiplied here) keeps its scratch.
    func testBiasGradientsComeFromTheWindowsRowsWhereTheyCan() throws {
        let gru = try Compilation(path: TestSupport.path("models/gate_gru.rnn"))
        let plan = TrainingPlan(graph: gru.graph, signature: gru.signature).print()
        for b in ["b_ir", "b_iz", "b_in", "b_hr", "b_hz", "b_hn"] {
            guard let v = gru.graph.values.firstIndex(where: { $0.name == "hidden.\(b)" }) else { return XCTFail("no hidden.\(b)") }
            XCTAssertTrue(plan.contains("d%\(v) += column sums of d%"), "\(b):\n\(plan)")
        }
        XCTAssertFalse(plan.contains("scratch row per example"), plan)

        let text = """
        cell scaled(x: float[I], state h: float[H]) {
            param W: float[H, I]
            param U: float[H, H]
            param b: float[H]
            param a: float[H]
            h = tanh(W @ x + U @ h + b) * sigmoid(a * h)
        }
        model m {
            input  x: float[time, 3]
            target y: float[time, 4]
            h = scaled(x, H=4)
            output h
            loss mse(h, y)
        }
        """
        let c = try Compilation(path: "t.rnn", text: text)
        let p = TrainingPlan(graph: c.graph, signature: c.signature).print()
        guard let a = c.graph.values.firstIndex(where: { $0.name == "h.a" }),
              let b = c.graph.values.firstIndex(where: { $0.name == "h.b" }) else { return XCTFail(Printer().print(c.graph)) }
        XCTAssertTrue(p.contains("d%\(b) += column sums of d%"), p)
        XCTAssertTrue(p.contains("d%\(a) += sums of a scratch row per example"), p)
    }

    func testOptimizedIRIsStableText() throws {
        let text = try String(contentsOfFile: TestSupport.path("models/gate_gru.rnn"), encoding: .utf8)
        let a = Printer().print(try Compilation(path: "models/gate_gru.rnn", text: text).graph)
        let b = Printer().print(try Compilation(path: "models/gate_gru.rnn", text: text).graph)
        XCTAssertEqual(a, b)
        let snapshot = TestSupport.path("Tests/CompilerTests/Snapshots/gate_gru.optimized.ir")
        if ProcessInfo.processInfo.environment["RNNC_UPDATE_SNAPSHOTS"] != nil {
            try a.write(toFile: snapshot, atomically: true, encoding: .utf8)
        }
        XCTAssertEqual(a, try String(contentsOfFile: snapshot, encoding: .utf8),
                       "optimized IR changed; if intended, rerun with RNNC_UPDATE_SNAPSHOTS=1 and review the diff")
    }
}

import Foundation
