import Compiler
import Foundation
import Runtime
import XCTest

/// `rnnc train --npy` as a user runs it: equal to the PyTorch loop with --no-shuffle,
/// resumable after SIGKILL with the weights of an uninterrupted run, and clear errors.
final class TrainCommandTests: XCTestCase {
    var work = ""
    override func setUp() { work = TestSupport.temporaryDirectory("train") }

    /// A small sequence regressor and N random examples of it in DIR.
    func makeData(examples: Int, time: Int, seed: UInt64 = 3) throws -> (model: String, data: String) {
        let model = "\(work)/reg.rnn"
        try """
        model reg {
            input  x: float[time, 6]
            target y: float[time, 2]
            h = lstm(x, hidden=48)
            p = dense(h, units=2)
            output p
            loss mse(p, y)
        }
        """.write(toFile: model, atomically: true, encoding: .utf8)
        let data = "\(work)/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        var rng = SeededGenerator(seed: seed)
        let x = (0..<(examples * time * 6)).map { _ in Float(rng.unit() * 2 - 1) }
        let y = (0..<(examples * time * 2)).map { _ in Float(rng.unit() - 0.5) }
        try Npy.write(NpyArray(shape: [examples, time, 6], storage: .float32(x)), to: "\(data)/x.npy")
        try Npy.write(NpyArray(shape: [examples, time, 2], storage: .float32(y)), to: "\(data)/y.npy")
        return (model, data)
    }

    func testNoShuffleEqualsThePyTorchLoop() throws {
        // The golden jordan_adam run: 10 epochs of 2 batches, Adam, clipping, no shuffling.
        let golden = TestSupport.path("Tests/Golden/training/jordan_adam")
        let data = "\(work)/jordan"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(golden)/data_x.npy", toPath: "\(data)/x.npy")
        try FileManager.default.copyItem(atPath: "\(golden)/data_t.npy", toPath: "\(data)/t.npy")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(golden)/case.json"))) as! [String: Any]
        let tensors = (json["tensors"] as! [[String: Any]]).map {
            ($0["name"] as! String, TestSupport.goldenTensor(name: $0["name"] as! String, shape: ($0["shape"] as! [NSNumber]).map(\.intValue),
                                                             scale: ($0["scale"] as! NSNumber).doubleValue))
        }
        try Safetensors.write(tensors, metadata: [:], to: "\(work)/init.safetensors")
        let r = TestSupport.runCLI(["train", TestSupport.path("models/jordan.rnn"), "--weights", "\(work)/init.safetensors", "--npy", data,
                                    "--save", "\(work)/out.safetensors", "--epochs", "10", "--batch", "3", "--optimizer", "adam",
                                    "--lr", "0.01", "--clip-norm", "0.0242", "--no-shuffle", "--log", "\(work)/log.csv"])
        XCTAssertEqual(r.status, 0, r.err)
        let trained = try Safetensors.read(path: "\(work)/out.safetensors")
        for (name, _) in tensors {
            let want = try Npy.read(path: "\(golden)/final_\(name).npy").asFloats()
            XCTAssertLessThanOrEqual(TestSupport.maxAbsDifference(trained[name]!.data, want), 1e-4, name)
        }
        let log = try String(contentsOfFile: "\(work)/log.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(log.count, 11, "a header and one line per epoch")
    }

    func testResumeAfterSIGKILLEndsWithTheWeightsOfAnUninterruptedRun() throws {
        let (model, data) = try makeData(examples: 480, time: 30)
        let common = ["train", model, "--npy", data, "--epochs", "6", "--batch", "8", "--seed", "11", "--threads", "2", "--lr", "0.003"]
        let straight = TestSupport.runCLI(common + ["--save", "\(work)/straight.safetensors"])
        XCTAssertEqual(straight.status, 0, straight.err)

        // Start the same run, kill it hard once a checkpoint past epoch 2 exists.
        let killed = "\(work)/killed.safetensors"
        let p = try TestSupport.launchCLI(common + ["--save", killed])
        var sawCheckpoint = false
        for _ in 0..<3000 {
            if let f = try? Safetensors.read(path: killed), let e = f.metadata["rnnc_epoch"].flatMap(Int.init), e >= 2 {
                sawCheckpoint = true
                break
            }
            usleep(5_000)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        try XCTSkipUnless(sawCheckpoint && p.terminationReason == .uncaughtSignal, "the run ended before it could be killed")
        let epochAtKill = Int(try Safetensors.read(path: killed).metadata["rnnc_epoch"]!)!
        XCTAssertLessThan(epochAtKill, 6)

        let resumed = TestSupport.runCLI(common + ["--save", killed, "--resume", killed])
        XCTAssertEqual(resumed.status, 0, resumed.err)
        XCTAssertTrue(resumed.err.contains("resuming at epoch"), resumed.err)
        let a = try Safetensors.read(path: "\(work)/straight.safetensors"), b = try Safetensors.read(path: killed)
        for (name, t) in a.tensors { XCTAssertEqual(t.data, b[name]!.data, "\(name) differs after resuming") }
    }

    func testClassifiersReportValidationAccuracy() throws {
        let model = "\(work)/cls.rnn"
        try """
        model cls {
            input  x: float[time, 3]
            target label: int
            h = gru(x, hidden=8)
            logits = dense(last(h), units=2)
            output probs = softmax(logits)
            loss cross_entropy(logits, label)
        }
        """.write(toFile: model, atomically: true, encoding: .utf8)
        // The label says whether the first feature sums to more than zero: easy to learn.
        let (n, t) = (240, 6)
        var rng = SeededGenerator(seed: 5)
        let x = (0..<(n * t * 3)).map { _ in Float(rng.unit() * 2 - 1) }
        let labels = (0..<n).map { i in Int64((0..<t).map { x[(i * t + $0) * 3] }.reduce(0, +) > 0 ? 1 : 0) }
        let data = "\(work)/cls"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try Npy.write(NpyArray(shape: [n, t, 3], storage: .float32(x)), to: "\(data)/x.npy")
        try Npy.write(NpyArray(shape: [n], storage: .int64(labels)), to: "\(data)/label.npy")
        let r = TestSupport.runCLI(["train", model, "--npy", data, "--save", "\(work)/cls.safetensors", "--epochs", "12", "--batch", "16",
                                    "--lr", "0.02", "--valid-fraction", "0.25", "--log", "\(work)/cls.csv", "--seed", "1"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("valid accuracy"), r.err)
        let last = try String(contentsOfFile: "\(work)/cls.csv", encoding: .utf8).split(separator: "\n").last!
        let accuracy = Double(last.split(separator: ",", omittingEmptySubsequences: false)[4])!
        XCTAssertGreaterThan(accuracy, 0.75, "the classifier learns the rule: \(last)")
    }

    func testBadTrainingInputs() throws {
        let (model, data) = try makeData(examples: 4, time: 5)
        // A data set too short for one batch after the validation split.
        var r = TestSupport.runCLI(["train", model, "--npy", data, "--save", "\(work)/a.safetensors", "--valid-fraction", "0.5", "--batch", "3", "--epochs", "1"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("too few for a training batch"), r.err)
        // A missing array names the file.
        try FileManager.default.removeItem(atPath: "\(data)/y.npy")
        r = TestSupport.runCLI(["train", model, "--npy", data, "--save", "\(work)/a.safetensors"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("y.npy"), r.err)
    }

    func testALossThatBecomesNaNStopsAndKeepsTheLastGoodCheckpoint() throws {
        let (model, data) = try makeData(examples: 16, time: 5)
        let save = "\(work)/w.safetensors"
        var r = TestSupport.runCLI(["train", model, "--npy", data, "--save", save, "--epochs", "1", "--batch", "4"])
        XCTAssertEqual(r.status, 0, r.err)
        let good = try FileBytes.read(save)
        // A learning rate that blows the weights up: the loss turns infinite or NaN.
        r = TestSupport.runCLI(["train", model, "--npy", data, "--save", save, "--epochs", "50", "--batch", "4", "--lr", "1e30",
                                "--optimizer", "sgd", "--weights", save])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("the loss became"), r.err)
        XCTAssertTrue(r.err.contains("last good checkpoint"), r.err)
        let after = try Safetensors.read(path: save)
        XCTAssertTrue(after.tensors.allSatisfy { $0.tensor.data.allSatisfy(\.isFinite) }, "the checkpoint holds finite weights")
        _ = good
    }

    func testAnUnwritableSaveIsAnErrorAndTheCheckpointOfAnotherModelIsNamed() throws {
        let (model, data) = try makeData(examples: 8, time: 4)
        var r = TestSupport.runCLI(["train", model, "--npy", data, "--save", "/nonexistent/dir/w.safetensors", "--epochs", "1", "--batch", "4"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("/nonexistent/dir/w.safetensors"), r.err)
        // A checkpoint from a different model.
        let other = "\(work)/other.rnn"
        try "model other {\n input x: float[time, 6]\n target y: float[time, 2]\n p = dense(x, units=2)\n output p\n loss mse(p, y)\n}\n"
            .write(toFile: other, atomically: true, encoding: .utf8)
        r = TestSupport.runCLI(["train", other, "--npy", data, "--save", "\(work)/o.safetensors", "--epochs", "1", "--batch", "4"])
        XCTAssertEqual(r.status, 0, r.err)
        r = TestSupport.runCLI(["train", model, "--npy", data, "--save", "\(work)/m.safetensors", "--resume", "\(work)/o.safetensors", "--batch", "4"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("missing tensor") || r.err.contains("checkpoint of model"), r.err)
    }
}
