import Foundation

/// What one training run does: its data, batches, optimizer and stopping rules.
public struct TrainingSettings: Sendable {
    public var epochs: Int
    public var batch: Int
    public var optimizer: CompiledModel.Optimizer
    public var shuffle: Bool
    public var seed: UInt64
    public var validFraction: Double
    /// The number of validation examples, when the data fixes it (the windows whose target
    /// lies in a series' tail); otherwise the last validFraction of the examples.
    public var validExamples: Int? = nil
    /// Also validate every this many steps (0: at the end of epochs only), logged with the
    /// time since the run started: for learning curves against wall-clock time. In text
    /// runs the training streams' carried state restarts from zero after each of these.
    public var validEvery: Int = 0

    public init(epochs: Int, batch: Int, optimizer: CompiledModel.Optimizer, shuffle: Bool, seed: UInt64, validFraction: Double) {
        self.epochs = epochs
        self.batch = batch
        self.optimizer = optimizer
        self.shuffle = shuffle
        self.seed = seed
        self.validFraction = validFraction
    }
}

/// Set by the SIGINT handler; the loop checks it between steps.
nonisolated(unsafe) private var interruptRequested: sig_atomic_t = 0

/// The training loop: batches in order or shuffled per epoch from the seed, one library
/// training step each, validation loss every epoch, a checkpoint after every epoch and on
/// Ctrl-C. Checkpoints are two files, each written atomically (temporary file, fsync,
/// rename): SAVE (the weights, loadable by `rnnc run`) and SAVE.optim (the optimizer's
/// moments); both carry the position in the run, so `--resume SAVE` continues exactly
/// where the checkpoint was taken and ends with the weights of an uninterrupted run.
public final class Trainer {
    public struct Position: Sendable, Equatable {
        public var epoch: Int        // epochs finished
        public var batchInEpoch: Int // batches of the current epoch finished
        public var step: Int         // optimizer steps taken
    }

    public struct EpochRecord: Sendable {
        public var epoch: Int
        public var step: Int
        public var trainLoss: Double
        public var validLoss: Double?
        /// For classifiers (a cross-entropy loss): the share of valid positions whose
        /// likeliest class is the label.
        public var validAccuracy: Double?
        public var seconds: Double
        public var examplesPerSecond: Double
    }

    /// Examples as arrays (shuffled per epoch unless --no-shuffle), or a text as streams
    /// read in order, window by window, with the state carried between windows.
    public enum Source {
        case arrays(TrainingData)
        case text(train: TextStreams, valid: TextStreams?)
    }

    let model: CompiledModel
    let source: Source
    let settings: TrainingSettings
    let savePath: String
    let logPath: String?
    /// Written into every checkpoint's weights (a forecaster's scaling, say).
    public var extraMetadata: [String: String] = [:]
    let report: (String) -> Void
    public private(set) var position = Position(epoch: 0, batchInEpoch: 0, step: 0)
    public private(set) var history: [EpochRecord] = []
    /// The streams' states at a checkpoint taken mid-epoch, restored when the run resumes.
    private var resumedCarry: (batch: Int, values: [Float])?

    public init(model: CompiledModel, source: Source, settings: TrainingSettings, savePath: String,
                logPath: String?, report: @escaping (String) -> Void) throws {
        guard settings.batch >= 1, settings.epochs >= 0 else { throw FormatError("--batch must be at least 1 and --epochs at least 0") }
        self.model = model
        self.source = source
        self.settings = settings
        self.savePath = savePath
        self.logPath = logPath
        self.report = report
        if case .arrays(let data) = source, trainCount < settings.batch {
            throw FormatError("the data set has \(data.count) examples, \(trainCount) for training after keeping \(validCount) for validation: too few for a training batch of \(settings.batch)")
        }
        if case .text = source { model.setStateful(true) }
        // Dropout's generator starts from the seed, so runs are reproducible.
        model.randomState = settings.seed &* 0x9E37_79B9_7F4A_7C15 | 1
    }

    /// The last part of the examples is kept for validation.
    var validCount: Int {
        guard case .arrays(let data) = source else { return 0 }
        if let fixed = settings.validExamples { return fixed }
        return Int((Double(data.count) * settings.validFraction).rounded(.down))
    }
    var trainCount: Int {
        switch source {
        case .arrays(let data): return data.count - validCount
        case .text(let train, _): return train.windows * train.streams
        }
    }
    var batchesPerEpoch: Int {
        switch source {
        case .arrays: return (trainCount + settings.batch - 1) / settings.batch
        case .text(let train, _): return train.windows
        }
    }

    /// One training step on batch b of the epoch's order; returns its loss and example count.
    func trainBatch(_ b: Int, order: [Int]) throws -> (loss: Double, examples: Int) {
        switch source {
        case .arrays(let data):
            let indices = Array(order[(b * settings.batch)..<min((b + 1) * settings.batch, order.count)])
            let batch = data.batch(indices)
            let loss = try model.trainStep(batch: indices.count, time: data.time, inputs: batch.inputs, targets: batch.targets,
                                           lengths: batch.lengths, optimizer: settings.optimizer)
            return (loss, indices.count)
        case .text(let train, _):
            let (inputs, targets) = train.batch(b)
            let loss = try model.trainStep(batch: train.streams, time: train.window, inputs: [.ints(inputs)], targets: [.ints(targets)],
                                           lengths: nil, optimizer: settings.optimizer)
            return (loss, train.streams)
        }
    }

    /// The order of training examples in an epoch: derived from the seed and the epoch
    /// alone, so a resumed run sees the same batches.
    func order(epoch: Int) -> [Int] {
        guard case .arrays = source else { return [] }
        var indices = Array(0..<trainCount)
        guard settings.shuffle else { return indices }
        var rng = SeededGenerator(seed: settings.seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        for i in stride(from: indices.count - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            indices.swapAt(i, j)
        }
        return indices
    }

    /// Restores the state a checkpoint recorded (weights are loaded with the model).
    public func resume(from checkpoint: String) throws {
        let optim = try Safetensors.read(path: checkpoint + ".optim")
        let weights = try Safetensors.read(path: checkpoint)
        func recorded(_ meta: [String: String], _ file: String) throws -> Position {
            guard let e = meta["rnnc_epoch"].flatMap(Int.init), let b = meta["rnnc_batch"].flatMap(Int.init),
                  let s = meta["rnnc_step"].flatMap(Int.init) else {
                throw FormatError("\(file): not an rnnc training checkpoint (no position in its metadata)")
            }
            return Position(epoch: e, batchInEpoch: b, step: s)
        }
        let p = try recorded(weights.metadata, checkpoint)
        guard try recorded(optim.metadata, checkpoint + ".optim") == p else {
            throw FormatError("\(checkpoint) and \(checkpoint).optim are from different points of a run")
        }
        if let model = weights.metadata["rnnc_model"], model != self.model.interface.model {
            throw FormatError("\(checkpoint) is a checkpoint of model '\(model)', not '\(self.model.interface.model)'")
        }
        var first: [[Float]] = [], second: [[Float]] = []
        for p in model.interface.parameters {
            guard let a = optim["m.\(p.name)"], let b = optim["v.\(p.name)"], a.shape == p.shape, b.shape == p.shape else {
                throw FormatError("\(checkpoint).optim: no optimizer state of shape [\(p.shape.map(String.init).joined(separator: ", "))] for '\(p.name)'")
            }
            first.append(a.data)
            second.append(b.data)
        }
        try model.setOptimizerState(first: first, second: second, step: p.step)
        if case .text = source, p.batchInEpoch > 0, let carry = optim["rnnc.carry"], carry.shape.count == 2 {
            resumedCarry = (carry.shape[0], carry.data)
        }
        if let rng = weights.metadata["rnnc_rng"].flatMap({ UInt64($0) }) { model.randomState = rng }
        self.position = p
        report("resuming at epoch \(p.epoch + 1), batch \(p.batchInEpoch + 1) (step \(p.step))")
    }

    /// Runs to the last epoch (or to Ctrl-C). Returns false when interrupted.
    @discardableResult
    public func run() throws -> Bool {
        interruptRequested = 0
        let previous = signal(SIGINT) { _ in interruptRequested = 1 }
        defer { signal(SIGINT, previous) }
        if position.epoch == 0 && position.batchInEpoch == 0, let logPath {
            try AtomicFile.write(Array("epoch,step,train_loss,valid_loss,valid_accuracy,seconds,examples_per_second,elapsed_seconds\n".utf8), to: logPath)
        }
        let start = Date()
        while position.epoch < settings.epochs {
            let epochStart = Date()
            let order = self.order(epoch: position.epoch)
            var lossSum = 0.0, examples = 0
            // Streams start every epoch from zero states (a resumed epoch starts there too).
            model.resetState()
            if let carry = resumedCarry {
                try model.setCarriedState(batch: carry.batch, values: carry.values)
                resumedCarry = nil
            }
            for b in position.batchInEpoch..<batchesPerEpoch {
                let (loss, count) = try trainBatch(b, order: order)
                let indices = 0..<count
                guard loss.isFinite else {
                    throw FormatError("the loss became \(loss) at epoch \(position.epoch + 1), step \(position.step + 1); "
                        + "stopping. The last good checkpoint is \(savePath) (lower --lr or set --clip-norm)")
                }
                lossSum += loss * Double(indices.count)
                examples += indices.count
                position.batchInEpoch = b + 1
                position.step += 1
                let elapsed = Date().timeIntervalSince(epochStart)
                let rate = Double(examples) / max(elapsed, 1e-9)
                let remaining = Double((settings.epochs - position.epoch) * trainCount - examples) / max(rate, 1e-9)
                report("\repoch \(position.epoch + 1)/\(settings.epochs)  step \(b + 1)/\(batchesPerEpoch)  loss \(String(format: "%.4f", loss))  \(String(format: "%.0f", rate)) examples/s  \(Self.duration(remaining)) left")
                if settings.validEvery > 0, position.step % settings.validEvery == 0, b + 1 < batchesPerEpoch {
                    let (vl, va) = try validation()
                    let at = Date().timeIntervalSince(start)
                    try appendLog(EpochRecord(epoch: position.epoch, step: position.step, trainLoss: lossSum / Double(max(examples, 1)),
                                              validLoss: vl, validAccuracy: va, seconds: Date().timeIntervalSince(epochStart),
                                              examplesPerSecond: Double(examples) / max(Date().timeIntervalSince(epochStart), 1e-9)), elapsed: at)
                }
                if interruptRequested != 0 {
                    try checkpoint()
                    report("\ninterrupted: checkpoint written to \(savePath); continue with --resume \(savePath)\n")
                    return false
                }
            }
            let (validLoss, validAccuracy) = try validation()
            let seconds = Date().timeIntervalSince(epochStart)
            let record = EpochRecord(epoch: position.epoch + 1, step: position.step, trainLoss: lossSum / Double(max(examples, 1)),
                                     validLoss: validLoss, validAccuracy: validAccuracy, seconds: seconds,
                                     examplesPerSecond: Double(examples) / max(seconds, 1e-9))
            history.append(record)
            position.epoch += 1
            position.batchInEpoch = 0
            try checkpoint()
            try appendLog(record, elapsed: Date().timeIntervalSince(start))
            report("\repoch \(record.epoch)/\(settings.epochs)  train loss \(String(format: "%.4f", record.trainLoss))"
                + (validLoss.map { "  valid loss \(String(format: "%.4f", $0))" } ?? "")
                + (validAccuracy.map { "  valid accuracy \(String(format: "%.2f%%", $0 * 100))" } ?? "")
                + "  \(String(format: "%.1f", seconds)) s  \(String(format: "%.0f", record.examplesPerSecond)) examples/s\n")
        }
        report("trained \(settings.epochs) epochs, \(position.step) steps in \(Self.duration(Date().timeIntervalSince(start))); weights in \(savePath)\n")
        return true
    }

    /// Validation runs in evaluation mode (no dropout): the mean loss, and the accuracy for
    /// classifiers.
    func validation() throws -> (loss: Double?, accuracy: Double?) {
        model.setDropout(false)
        defer { model.setDropout(true) }
        let scoring = model.classScoresOutput
        var correct = 0, total = 0
        if case .text(_, let valid) = source {
            guard let valid else { return (nil, nil) }
            var sum = 0.0
            model.resetState()
            for w in 0..<valid.windows {
                let (inputs, targets) = valid.batch(w)
                sum += try model.gradients(batch: valid.streams, time: valid.window, inputs: [.ints(inputs)], targets: [.ints(targets)], lengths: nil).loss
            }
            if let scoring {
                model.resetState()
                for w in 0..<valid.windows {
                    let (inputs, targets) = valid.batch(w)
                    let r = try model.classificationCounts(batch: valid.streams, time: valid.window, inputs: [.ints(inputs)], labels: .ints(targets), lengths: nil, output: scoring)
                    correct += r.correct
                    total += r.total
                }
            }
            model.resetState()
            return (sum / Double(valid.windows), total > 0 ? Double(correct) / Double(total) : nil)
        }
        guard case .arrays(let data) = source, validCount > 0 else { return (nil, nil) }
        let r = try model.evaluate(data, range: trainCount..<data.count, batch: settings.batch)
        return (r.loss, r.accuracy)
    }

    /// Writes SAVE.optim, then SAVE; each atomically. Both record the position.
    func checkpoint() throws {
        let meta = ["rnnc_model": model.interface.model, "rnnc_epoch": String(position.epoch),
                    "rnnc_batch": String(position.batchInEpoch), "rnnc_step": String(position.step),
                    "rnnc_rng": String(model.randomState)]
        let state = try model.optimizerState()
        var moments: [(String, Tensor)] = []
        for (i, p) in model.interface.parameters.enumerated() {
            moments.append(("m.\(p.name)", Tensor(shape: p.shape, data: state.first[i])))
            moments.append(("v.\(p.name)", Tensor(shape: p.shape, data: state.second[i])))
        }
        // A stream read in windows carries its states between them: a checkpoint taken in
        // the middle of an epoch keeps them, so the run resumes exactly there.
        if case .text = source, let carried = model.carriedState() {
            moments.append(("rnnc.carry", Tensor(shape: [carried.batch, carried.values.count / carried.batch], data: carried.values)))
        }
        try Safetensors.write(moments, metadata: meta, to: savePath + ".optim")
        let weights = zip(model.interface.parameters, try model.parameters()).map { ($0.name, Tensor(shape: $0.shape, data: $1)) }
        try Safetensors.write(weights, metadata: meta.merging(extraMetadata) { a, _ in a }, to: savePath)
    }

    func appendLog(_ r: EpochRecord, elapsed: Double) throws {
        guard let logPath else { return }
        var bytes = (try? FileBytes.read(logPath)) ?? []
        let line = "\(r.epoch),\(r.step),\(r.trainLoss),\(r.validLoss.map { String($0) } ?? ""),\(r.validAccuracy.map { String($0) } ?? ""),\(String(format: "%.3f", r.seconds)),\(String(format: "%.1f", r.examplesPerSecond)),\(String(format: "%.1f", elapsed))\n"
        bytes += Array(line.utf8)
        try AtomicFile.write(bytes, to: logPath)
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
