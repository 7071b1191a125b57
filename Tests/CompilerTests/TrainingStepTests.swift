import Compiler
import Foundation
import Runtime
import XCTest

/// Short training runs against PyTorch, step for step: the cases under
/// Tests/Golden/training (Tests/Golden/make_training_golden.py; the loop is in
/// docs/PYTORCH_LOOP.md). Batches in order, no shuffling, dropout off; clip_grad_norm_ and
/// SGD / Adam / AdamW as torch.optim. Every step's loss within 1e-4 relative, and the final
/// weights within 1e-4 of PyTorch's (relative to max(1, |w|)).
final class TrainingStepTests: XCTestCase {
    func run(_ name: String) throws -> [String] {
        let dir = TestSupport.path("Tests/Golden/training/\(name)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/case.json"))) as! [String: Any]
        let tensors = (json["tensors"] as! [[String: Any]]).map {
            ($0["name"] as! String, ($0["shape"] as! [NSNumber]).map(\.intValue), ($0["scale"] as! NSNumber).doubleValue)
        }
        let build = try TestSupport.compile(TestSupport.path(json["model"] as! String))
        let weights = TestSupport.temporaryDirectory("tw-\(name)") + "/w.safetensors"
        try Safetensors.write(tensors.map { ($0.0, TestSupport.goldenTensor(name: $0.0, shape: $0.1, scale: $0.2)) }, metadata: [:], to: weights)
        let model = try CompiledModel(directory: build, weights: weights)
        model.setThreads(2)

        let o = json["optimizer"] as! [String: Any]
        let kind: CompiledModel.Optimizer.Kind = ["sgd": .sgd, "adam": .adam, "adamw": .adamw][o["kind"] as! String]!
        var optimizer = CompiledModel.Optimizer(kind: kind, lr: (o["lr"] as! NSNumber).floatValue)
        if let betas = o["betas"] as? [NSNumber] { optimizer.beta1 = betas[0].floatValue; optimizer.beta2 = betas[1].floatValue }
        if let eps = o["eps"] as? NSNumber { optimizer.eps = eps.floatValue }
        if let wd = o["weight_decay"] as? NSNumber { optimizer.weightDecay = wd.floatValue }
        if let momentum = o["momentum"] as? NSNumber { optimizer.momentum = momentum.floatValue }
        if let clip = json["clip_norm"] as? NSNumber { optimizer.clipNorm = clip.floatValue }

        let examples = (json["examples"] as! NSNumber).intValue
        let batch = (json["batch"] as! NSNumber).intValue
        let steps = (json["steps"] as! NSNumber).intValue
        func load(_ file: String) throws -> NpyArray { try Npy.read(path: "\(dir)/\(file)") }
        /// Rows [k * batch, (k + 1) * batch) of an array whose first axis is the example.
        func rows(_ a: NpyArray, _ k: Int, int: Bool) -> CompiledModel.Buffer {
            let per = a.shape.dropFirst().reduce(1, *)
            let range = (k * batch * per)..<((k + 1) * batch * per)
            if int { return .ints(a.asInt64()![range].map { Int32($0) }) }
            return .floats(Array(a.asFloats()[range]))
        }
        let inputData = try model.interface.inputs.map { (port: $0, array: try load("data_\($0.name).npy")) }
        let targetData = try model.interface.targets.map { (port: $0, array: try load("data_\($0.name).npy")) }
        let lengthData = (json["lengths"] as! Bool) ? try load("data_lengths.npy") : nil
        let time = inputData.first { $0.port.hasTime }?.array.shape[1] ?? 1

        let wantLosses = try load("losses.npy")
        let expectedLosses: [Double]
        switch wantLosses.storage {
        case .float64(let v): expectedLosses = v
        default: expectedLosses = wantLosses.asFloats().map(Double.init)
        }
        var failures: [String] = []
        for step in 0..<steps {
            let k = step % (examples / batch)
            let inputs = inputData.map { rows($0.array, k, int: $0.port.isInt) }
            let targets = targetData.map { rows($0.array, k, int: $0.port.isInt) }
            let lengths = lengthData.map { Array($0.asInt64()![(k * batch)..<((k + 1) * batch)].map { Int32($0) }) }
            let loss = try model.trainStep(batch: batch, time: time, inputs: inputs, targets: targets, lengths: lengths, optimizer: optimizer)
            if abs(loss - expectedLosses[step]) > 1e-4 * max(1, abs(expectedLosses[step])) {
                failures.append("\(name) step \(step): loss \(loss), PyTorch \(expectedLosses[step])")
            }
        }
        for (p, values) in zip(model.interface.parameters, try model.parameters()) {
            let want = try load("final_\(p.name).npy").asFloats()
            let err = zip(values, want).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            if !(err <= 1e-4) { failures.append("\(name).\(p.name): final weights differ by \(err) (relative)") }
        }
        return failures
    }

    func testTrainingRunsMatchPyTorchStepForStep() throws {
        let root = TestSupport.path("Tests/Golden/training")
        let names = try FileManager.default.contentsOfDirectory(atPath: root).filter {
            FileManager.default.fileExists(atPath: "\(root)/\($0)/case.json")
        }.sorted()
        XCTAssertGreaterThanOrEqual(names.count, 4)
        var failures: [String] = []
        for name in names {
            do { failures += try run(name) } catch { failures.append("\(name): \(error)") }
        }
        XCTAssert(failures.isEmpty, failures.joined(separator: "\n"))
    }
}

/// The training step's memory plan, from the library's own account (NAME_training_floats).
final class TrainingMemoryTests: XCTestCase {
    /// From RNNC_STREAM_MIN_BATCH (4) examples the hoisted input projection (4H floats per
    /// step and example for an LSTM) is saved once, in the recurrence's history, and its
    /// gradient lives in a window of the backward pass; below it, it is also a top-level
    /// value with a gradient of the same size. And the products' output gradients are kept
    /// for one window of about 256 rows (steps x examples), not for the whole sequence.
    func testTheInputProjectionIsSavedOnceAndProductGradientsForOneWindow() throws {
        let (model, build) = try TestSupport.load(modelText: """
        model lstm_memory {
            input  x: float[time, 16]
            target y: float[time, 32]
            h = lstm(x, hidden=32)
            output h
            loss mse(h, y)
        }
        """, name: "lstm_memory")
        // T = 64 fills a window at B = 4 (256 rows): a window never holds more steps than
        // the sequence, so from there on it stays the same size.
        let T = 64, H = 32
        let small = try XCTUnwrap(model.trainingMemory(batch: 2, time: T))
        let large = try XCTUnwrap(model.trainingMemory(batch: 4, time: T))
        // Per example: below the threshold the projection is saved twice (4H per step more).
        XCTAssertEqual(small.savedActivations / 2 - large.savedActivations / 4, Double(T * 4 * H), accuracy: 64)
        // Work buffers do not grow with the sequence beyond the loss's row mask (B*T), the
        // windows being full and the output's gradient written over the output (nothing
        // reads h after the loss): doubling T adds just the mask.
        let longer = try XCTUnwrap(model.trainingMemory(batch: 4, time: 2 * T))
        XCTAssertEqual(longer.workBuffers - large.workBuffers, Double(4 * T), accuracy: 64)
        // A sequence shorter than a window gets a window of its length: at T = 48, 16 steps
        // fewer of the window's rows and of the mask. A window row holds the gradients of
        // the recurrent product and of the streamed projection (4H each) and h packed for
        // the weight gradient (H rounded up to whole panels: 48 floats with AVX-512's
        // 48-column panels, 32 with AVX2's 16).
        let shorter = try XCTUnwrap(model.trainingMemory(batch: 4, time: T - 16))
        let packedRow = (large.workBuffers - shorter.workBuffers) / Double(4 * 16) - Double(4 * H + 4 * H + 1)
        XCTAssert([32.0, 48.0].contains { abs(packedRow - $0) < 1 }, "h packed: \(packedRow) floats per row")
        // x is a model input: its projection's backward needs no W_ih^T, only the recurrent
        // product's W_hh^T is packed (and repacked at every step).
        let c = try String(contentsOfFile: "\(build)/lstm_memory.c", encoding: .utf8)
        XCTAssertEqual(c.components(separatedBy: "rnnc_pack_weights_transposed(m->").count - 1, 1)
        // The library trains at that size with those buffers.
        let x = CompiledModel.Buffer.floats([Float](repeating: 0.1, count: 4 * T * 16))
        let y = CompiledModel.Buffer.floats([Float](repeating: 0.2, count: 4 * T * H))
        let result = try model.gradients(batch: 4, time: T, inputs: [x], targets: [y], lengths: nil)
        XCTAssert(result.loss.isFinite)
    }
}

extension TrainingMemoryTests {
    /// In a stack of layers the activations' gradients form a chain, and the backward plan
    /// gives them slots by lifetime: three LSTM layers need two [B, T, H] gradient slots
    /// (the one read and the one written by a layer's reverse scan), not three, and their
    /// reverse scans share one workspace. The dense layer's output gradient is written over
    /// its output. Trained against PyTorch by the golden gradient tests (two-layer cases).
    func testGradientsOfAStackShareSlotsByLifetime() throws {
        let (model, build) = try TestSupport.load(modelText: """
        model stack3 {
            input  x: float[time, 16]
            target y: float[time, 8]
            h = lstm(x, hidden=32, layers=3)
            z = dense(h, units=8)
            output z
            loss mse(z, y)
        }
        """, name: "stack3")
        let B = 4, T = 64, H = 32  // T fills a window (see the test above)
        let short = try XCTUnwrap(model.trainingMemory(batch: B, time: T))
        let long = try XCTUnwrap(model.trainingMemory(batch: B, time: 2 * T))
        // Per T: two gradient slots of H and the loss's row mask.
        XCTAssertEqual(long.workBuffers - short.workBuffers, Double(B * T * (2 * H + 1)), accuracy: 64)
        let c = try String(contentsOfFile: "\(build)/stack3.c", encoding: .utf8)
        XCTAssert(c.contains("(BackwardPlan)"))
        // "float *bws53 = bslot3;": the slot of each reverse scan's workspace.
        let workspaceSlots = c.split(separator: "\n").filter { $0.contains("float *bws") && $0.contains("= bslot") }
            .map { $0.split(separator: "=")[1].trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(workspaceSlots.count, 3, "one workspace per reverse scan")
        XCTAssertEqual(Set(workspaceSlots).count, 1, "the reverse scans run one after another and share a slot")
        // It trains with that plan: finite loss, and gradients for every layer.
        let x = CompiledModel.Buffer.floats((0..<(B * T * 16)).map { Float($0 % 7) * 0.05 - 0.15 })
        let y = CompiledModel.Buffer.floats([Float](repeating: 0.2, count: B * T * 8))
        let result = try model.gradients(batch: B, time: T, inputs: [x], targets: [y], lengths: nil)
        XCTAssert(result.loss.isFinite)
    }
}

extension TrainingMemoryTests {
    /// The forward's packed weights and the backward's buffers take the same memory in turn
    /// (`SharedRegion`): the backward writes over the packings, so whatever reads them next
    /// packs them again. Runs after a gradients call, gradients twice in a row, and a larger
    /// batch (the arena moves) all give the same bits as a model that never trained.
    func testForwardPackingsAndBackwardBuffersTakeTheSameMemoryInTurn() throws {
        let text = """
        model turns {
            input  x: float[time, 16]
            target y: float[time, 8]
            h = gru(x, hidden=32)
            z = dense(h, units=8)
            output z
            loss mse(z, y)
        }
        """
        let (model, build) = try TestSupport.load(modelText: text, name: "turns")
        let T = 12
        func data(_ b: Int) -> (x: CompiledModel.Buffer, y: CompiledModel.Buffer) {
            (.floats((0..<(b * T * 16)).map { Float($0 % 11) * 0.03 - 0.15 }),
             .floats((0..<(b * T * 8)).map { Float($0 % 5) * 0.1 - 0.2 }))
        }
        let (x4, y4) = data(4), (x8, y8) = data(8)
        let before = try model.run(batch: 4, time: T, inputs: [x4], lengths: nil)[0].values
        let first = try model.gradients(batch: 4, time: T, inputs: [x4], targets: [y4], lengths: nil)
        XCTAssertEqual(try model.run(batch: 4, time: T, inputs: [x4], lengths: nil)[0].values, before, "run after a backward pass")
        let again = try model.gradients(batch: 4, time: T, inputs: [x4], targets: [y4], lengths: nil)
        XCTAssertEqual(again.loss, first.loss)
        XCTAssertEqual(again.gradients, first.gradients, "gradients twice in a row")
        _ = try model.gradients(batch: 8, time: T, inputs: [x8], targets: [y8], lengths: nil)
        XCTAssertEqual(try model.run(batch: 4, time: T, inputs: [x4], lengths: nil)[0].values, before, "run after the arena moved")
        XCTAssertEqual(try model.gradients(batch: 4, time: T, inputs: [x4], targets: [y4], lengths: nil).gradients, first.gradients)

        // The account: work buffers and packings (W_ih, W_hh and the dense layer's, then
        // W_hh^T), less what the forward's and the backward's take in turn.
        let memory = try XCTUnwrap(model.trainingMemory(batch: 8, time: T))
        XCTAssertGreaterThan(memory.sharedInTurn, 0)
        XCTAssertLessThan(memory.sharedInTurn, memory.packedWeights)
        XCTAssertEqual(memory.total, memory.savedActivations + memory.workBuffers + memory.packedWeights - memory.sharedInTurn)
        let c = try String(contentsOfFile: "\(build)/turns.c", encoding: .utf8)
        XCTAssert(c.contains("m->pk_stale = 1;"), "the backward marks the packings stale")
        XCTAssert(c.contains("if (m->pk_stale && turns_derive(m) != 0) return -1;"), "runs pack them again")
    }
}

final class TrainingForwardTests: XCTestCase {
    /// The gradients function returns no outputs: an output the loss does not read (a
    /// softmax beside an mse on h) is not computed, but what a recurrence reads is, even
    /// when the loss does not read that recurrence (its carried state lives on).
    func testOutputsTheLossDoesNotReadAreNotComputedButRecurrencesAre() throws {
        let build = try TestSupport.compile(modelText: """
        model aux {
            input  x: float[time, 8]
            target y: float[time, 16]
            h = lstm(x, hidden=16)
            a = dense(x, units=8)
            g = gru(a, hidden=8)
            output h
            output g
            output p = softmax(h)
            loss mse(h, y)
        }
        """, name: "aux")
        let c = try String(contentsOfFile: "\(build)/aux.c", encoding: .utf8)
        let start = try XCTUnwrap(c.range(of: "int aux_gradients("))
        let end = try XCTUnwrap(c.range(of: "/* backward:", range: start.upperBound..<c.endIndex))
        let forward = String(c[start.upperBound..<end.lowerBound])
        XCTAssert(forward.contains("/* not needed for the loss: line 9: output p = softmax(h)"), forward)
        XCTAssertFalse(forward.contains("rnnc_softmax_rows"), forward)
        XCTAssertFalse(forward.contains("not needed for the loss: line 5"), "the gru reads the dense layer")
        XCTAssertEqual(forward.components(separatedBy: "_train(m, B, T").count - 1, 2, "both recurrences run")
    }
}
