import Compiler
import Foundation
import Runtime
import XCTest

/// Dropout between recurrent layers: inverted dropout in training steps, drawn from the
/// model's generator (so reproducible and checkpointed), and nothing in inference.
final class DropoutTests: XCTestCase {
    func testDropoutIsReproducibleFromItsGeneratorAndOffInInference() throws {
        let work = TestSupport.temporaryDirectory("dropout")
        try """
        model d {
            input  x: float[time, 4]
            target y: float[time, 3]
            h = gru(x, hidden=16, layers=2, dropout=0.5)
            p = dense(h, units=3)
            output p
            loss mse(p, y)
        }
        """.write(toFile: "\(work)/d.rnn", atomically: true, encoding: .utf8)
        let c = try Compilation(path: "\(work)/d.rnn")
        XCTAssertEqual(c.graph.ops.filter { $0.kind == .dropout(rate: 0.5) }.count, 1, "between the two layers only")
        let dir = try TestSupport.compile("\(work)/d.rnn")
        let m = try TestSupport.load(build: dir, name: "d", seed: 2)
        let x: [Float] = (0..<(3 * 5 * 4)).map { Float($0 % 9) / 9 - 0.4 }
        let y: [Float] = (0..<(3 * 5 * 3)).map { Float($0 % 5) / 5 }
        func gradients() throws -> [[Float]] {
            try m.gradients(batch: 3, time: 5, inputs: [.floats(x)], targets: [.floats(y)], lengths: nil).gradients
        }
        m.randomState = 12345
        let a = try gradients()
        m.randomState = 12345
        let b = try gradients()
        XCTAssertEqual(a, b, "the same generator state gives the same masks")
        m.randomState = 999
        XCTAssertNotEqual(try gradients(), a, "another state, other masks")
        m.setDropout(false)
        let off = try gradients()
        XCTAssertNotEqual(off, a)
        // Inference never drops: two runs agree, whatever the generator does in between.
        let r1 = try m.run(batch: 3, time: 5, inputs: [.floats(x)], lengths: nil)[0].values
        m.setDropout(true)
        _ = try gradients()
        let r2 = try m.run(batch: 3, time: 5, inputs: [.floats(x)], lengths: nil)[0].values
        XCTAssertEqual(r1, r2)
    }
}
