import Compiler
import Foundation
import Runtime
import XCTest

/// Stateful runs (the state carried between calls), truncated BPTT on text, and sampling.
final class StreamTests: XCTestCase {
    var work = ""
    override func setUp() { work = TestSupport.temporaryDirectory("stream") }

    func tinyLM() throws -> String {
        let model = "\(work)/lm.rnn"
        try """
        model lm {
            input  chars: int[time]
            target next:  int[time]
            emb    = embedding(chars, vocab=256, dim=8)
            hidden = lstm(emb, hidden=24, layers=2)
            logits = dense(hidden, units=256)
            output probs = softmax(logits)
            loss cross_entropy(logits, next)
            train {
                optimizer = adam(lr=0.01)
                batch = 4
                bptt = 16
                epochs = 2
            }
        }
        """.write(toFile: model, atomically: true, encoding: .utf8)
        return model
    }

    func testAStatefulRunContinuesWhereTheLastCallEnded() throws {
        let model = try tinyLM()
        let dir = try TestSupport.compile(model)
        let m = try TestSupport.load(build: dir, name: "lm", seed: 4)
        let ids: [Int32] = (0..<(2 * 10)).map { Int32(($0 * 31 + 7) % 256) }
        let whole = try m.run(batch: 2, time: 10, inputs: [.ints(ids)], lengths: nil)[0].values
        // The same sequences in two halves, the state carried across.
        m.setStateful(true)
        var halves: [[Int32]] = [[], []]
        for b in 0..<2 { halves[0] += ids[(b * 10)..<(b * 10 + 4)]; halves[1] += ids[(b * 10 + 4)..<(b * 10 + 10)] }
        let first = try m.run(batch: 2, time: 4, inputs: [.ints(halves[0])], lengths: nil)[0].values
        let second = try m.run(batch: 2, time: 6, inputs: [.ints(halves[1])], lengths: nil)[0].values
        var joined: [Float] = []
        for b in 0..<2 { joined += first[(b * 4 * 256)..<((b + 1) * 4 * 256)]; joined += second[(b * 6 * 256)..<((b + 1) * 6 * 256)] }
        XCTAssertLessThanOrEqual(TestSupport.maxAbsDifference(whole, joined), 1e-6)
        // And reset starts from zero again.
        m.resetState()
        let again = try m.run(batch: 2, time: 4, inputs: [.ints(halves[0])], lengths: nil)[0].values
        XCTAssertEqual(again, first)
    }

    /// Ctrl-C in the middle of an epoch of a text run: the checkpoint keeps the streams'
    /// carried states, and the resumed run ends with the weights of an uninterrupted one.
    func testAnInterruptInTheMiddleOfAStreamResumesExactly() throws {
        let model = try tinyLM()
        // 600 KB: an epoch of about 9,000 steps, 2 s in a release build on the 2-core machine
        // (200 KB ended before the interrupt once training steps got faster).
        let text = Array(try FileBytes.read(TestSupport.path("data/shakespeare_tragedies.txt")).prefix(600_000))
        try AtomicFile.write(text, to: "\(work)/t.txt")
        let common = ["train", model, "--text", "\(work)/t.txt", "--epochs", "1", "--valid-fraction", "0.05", "--threads", "1"]
        let straight = TestSupport.runCLI(common + ["--save", "\(work)/straight.safetensors"])
        XCTAssertEqual(straight.status, 0, straight.err)

        let cut = "\(work)/cut.safetensors"
        let p = try TestSupport.launchCLI(common + ["--save", cut])
        // The model is compiled and cached by the run above: this one is training within a
        // fraction of a second, and takes a few.
        usleep(900_000)
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let meta = try Safetensors.read(path: cut).metadata
        let batch = Int(meta["rnnc_batch"] ?? "0") ?? 0
        try XCTSkipUnless(batch > 0, "the run ended before it could be interrupted")
        XCTAssertNotNil(try Safetensors.read(path: cut + ".optim")["rnnc.carry"], "the carried states are checkpointed")

        let resumed = TestSupport.runCLI(common + ["--save", cut, "--resume", cut])
        XCTAssertEqual(resumed.status, 0, resumed.err)
        XCTAssertTrue(resumed.err.contains("resuming at epoch 1, batch \(batch + 1)"), resumed.err)
        let a = try Safetensors.read(path: "\(work)/straight.safetensors"), b = try Safetensors.read(path: cut)
        for (name, t) in a.tensors { XCTAssertEqual(t.data, b[name]!.data, "\(name) differs after resuming") }
    }

    func testTextTrainingLearnsAndGenerationIsReproducible() throws {
        let model = try tinyLM()
        let text = Array(try FileBytes.read(TestSupport.path("data/shakespeare_tragedies.txt")).prefix(6000))
        try AtomicFile.write(text, to: "\(work)/t.txt")
        let save = "\(work)/lm.safetensors"
        let r = TestSupport.runCLI(["train", model, "--text", "\(work)/t.txt", "--save", save, "--valid-fraction", "0.1",
                                    "--log", "\(work)/log.csv", "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.err)
        let logLines = try String(contentsOfFile: "\(work)/log.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        let losses = logLines.map { $0.split(separator: ",", omittingEmptySubsequences: false) }.map { Double($0[2])! }
        XCTAssertEqual(losses.count, 2)
        XCTAssertLessThan(losses[1], losses[0], "the training loss falls")
        XCTAssertLessThan(losses[1], log(256.0), "better than uniform over bytes")
        let g1 = TestSupport.runCLI(["generate", model, "--weights", save, "--prime", "KING.", "--length", "50", "--seed", "9"])
        let g2 = TestSupport.runCLI(["generate", model, "--weights", save, "--prime", "KING.", "--length", "50", "--seed", "9"])
        XCTAssertEqual(g1.status, 0, g1.err)
        XCTAssertEqual(g1.out, g2.out, "the same seed gives the same text")
        XCTAssertTrue(g1.out.hasPrefix("KING."))
        XCTAssertEqual(g1.out.utf8.count, 5 + 50 + 1)
    }

    func testTextShorterThanOneWindowIsAnError() throws {
        let model = try tinyLM()
        try AtomicFile.write(Array("To be, or not".utf8), to: "\(work)/short.txt")
        let r = TestSupport.runCLI(["train", model, "--text", "\(work)/short.txt", "--save", "\(work)/x.safetensors"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("too short"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(work)/x.safetensors"))
    }
}
