import ArgumentParser
import Compiler
import Foundation
import Runtime

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on arrays (--npy DIR): Adam, AdamW or SGD, clipping, checkpoints, resume."
    )

    @Argument(help: "A .rnn file (its train { } block gives the defaults) or a compiled model directory.") var model: String
    @Option(help: "Initial weights (default: rnnc init with --seed).") var weights: String?
    @Option(help: "Directory with NAME.npy for every input and target, and optionally lengths.npy.") var npy: String?
    @Option(help: "Byte-level text for a language model (int[time] input, the next byte as target), read as --batch streams in --bptt windows.") var text: String?
    @Option(help: "A CSV time series: the --column to forecast, in sliding windows of --window values.") var csv: String?
    @Option(help: "The CSV column (with --csv).") var column: String?
    @Option(help: "Values per window (with --csv).") var window: Int?
    @Option(help: "Write the loss curves as SVG.") var plot: String?
    @Option(name: .customLong("valid-every"), help: "Also validate every N steps, logged with the elapsed time (with --text, the streams' state then restarts from zero).") var validEvery: Int?
    @Option(help: "Where to write the trained weights (and SAVE.optim, the optimizer state).") var save: String
    @Option(help: "Epochs.") var epochs: Int?
    @Option(help: "Batch size.") var batch: Int?
    @Option(help: "Learning rate.") var lr: Float?
    @Option(help: "sgd, adam or adamw.") var optimizer: String?
    @Option(name: .customLong("clip-norm"), help: "Clip the gradient norm (clip_grad_norm_).") var clipNorm: Float?
    @Option(help: "Truncated BPTT window for --text (steps back-propagated; the state carries on).") var bptt: Int?
    @Option(help: "Seed for initialization and shuffling.") var seed: UInt64?
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(name: .customLong("no-shuffle"), help: "Take batches in order (then a run equals the PyTorch loop in docs/PYTORCH_LOOP.md step for step).") var noShuffle = false
    @Option(name: .customLong("valid-fraction"), help: "Keep the last fraction of the examples for validation.") var validFraction: Double?
    @Option(help: "Continue from a checkpoint written by --save.") var resume: String?
    @Option(help: "Append per-epoch metrics to this CSV file.") var log: String?

    func run() {
        guarded {
            guard [npy, text, csv].compactMap({ $0 }).count == 1 else {
                throw ValidationError("give the training data with one of --npy DIR, --text FILE or --csv FILE --column C --window N")
            }
            let defaults = try trainBlock()
            let dir = try ModelResolver.compiledDirectory(for: model)
            let interface = try ModelInterface.read(path: try interfacePath(dir))
            var settings = try makeSettings(defaults)

            // Weights: the checkpoint's when resuming, else the given file, else fresh ones.
            let initial: String
            var temporary: String?
            if let resume {
                initial = resume
            } else if let weights {
                initial = weights
            } else {
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("rnnc-init-\(getpid()).safetensors").path
                try Safetensors.write(Initializer.initialize(interface, seed: settings.seed), metadata: [:], to: path)
                initial = path
                temporary = path
            }
            defer { if let temporary { unlink(temporary) } }
            let compiled = try CompiledModel(directory: dir, weights: initial)
            if let threads { compiled.setThreads(threads) }
            var extra: [String: String] = [:]
            settings.validEvery = max(0, validEvery ?? 0)
            let source: Trainer.Source
            if let csv {
                guard let column, let window, window >= 1 else { throw ValidationError("--csv needs --column NAME and --window N") }
                let (data, scaling, validWindows) = try seriesSource(csv, column: column, window: window, interface: interface, settings: settings)
                source = .arrays(data)
                settings.validExamples = validWindows
                extra = scaling.metadata
            } else if let npy {
                if bptt != nil { throw ValidationError("--bptt applies to --text streams") }
                source = .arrays(try TrainingData.loadNpyDirectory(npy, interface: interface))
            } else {
                source = try textSource(text!, interface: interface, settings: settings, window: bptt ?? defaults.number("bptt").map { Int($0) } ?? 128)
            }
            let interactive = isatty(STDERR_FILENO) != 0
            let trainer = try Trainer(model: compiled, source: source, settings: settings, savePath: save, logPath: log) { line in
                // A live progress line on a terminal; epoch summaries only in logs.
                if line.hasPrefix("\r") && !line.hasSuffix("\n") && !interactive { return }
                FileHandle.standardError.write(Data((interactive ? line : line.replacingOccurrences(of: "\r", with: "")).utf8))
            }
            trainer.extraMetadata = extra
            if let resume { try trainer.resume(from: resume) }
            let finished = try trainer.run()
            if let plot {
                let svg = SVGPlot.lines(title: "\(interface.model): loss per epoch", xLabel: "epoch", yLabel: "loss",
                                        series: [.init(name: "training", values: trainer.history.map(\.trainLoss), color: "#1f77b4"),
                                                 .init(name: "validation", values: trainer.history.compactMap(\.validLoss), color: "#d62728")],
                                        xStart: 1)
                try AtomicFile.write(Array(svg.utf8), to: plot)
            }
            if !finished { Foundation.exit(130) }
        }
    }

    /// A forecaster's series: windows of scaled values (scaling fitted on the training part),
    /// the windows whose target lies in the last --valid-fraction kept for validation.
    func seriesSource(_ file: String, column: String, window: Int, interface: ModelInterface,
                      settings: TrainingSettings) throws -> (TrainingData, SeriesScaling, Int) {
        guard interface.inputs.count == 1, interface.targets.count == 1, !interface.inputs[0].isInt, interface.inputs[0].hasTime,
              interface.inputs[0].features == [1], !interface.targets[0].hasTime, interface.targets[0].features == [1] else {
            throw ValidationError("--csv trains a one-step forecaster: one float[time, 1] input and one float[1] target (model '\(interface.model)' differs)")
        }
        let series = try TimeSeries.read(csv: file, column: column)
        let n = series.values.count
        let validValues = Int(Double(n) * settings.validFraction)
        let validStart = n - validValues
        guard validStart - window >= settings.batch else {
            throw FormatError("\(file): \(n) values of '\(column)' (\(validStart) for training) are too few for windows of \(window) and a batch of \(settings.batch)")
        }
        let scaling = SeriesScaling(fitting: series.values[0..<validStart], window: window, validStart: validStart)
        let train = scaling.windows(series.values, targets: window..<validStart)
        let valid = scaling.windows(series.values, targets: max(window, validStart)..<n)
        let count = train.next.count + valid.next.count
        let data = TrainingData(inputs: [(interface.inputs[0], NpyArray(shape: [count, window, 1], storage: .float32(train.inputs + valid.inputs)))],
                                targets: [(interface.targets[0], NpyArray(shape: [count, 1], storage: .float32(train.next + valid.next)))],
                                lengths: nil, count: count, time: window)
        return (data, scaling, valid.next.count)
    }

    /// A byte-level language model's text: the last --valid-fraction for validation.
    func textSource(_ file: String, interface: ModelInterface, settings: TrainingSettings, window: Int) throws -> Trainer.Source {
        guard interface.inputs.count == 1, interface.targets.count == 1, interface.inputs[0].isInt, interface.inputs[0].hasTime,
              interface.targets[0].isInt, interface.targets[0].hasTime else {
            throw ValidationError("--text trains a byte-level language model: one int[time] input and one int[time] target (model '\(interface.model)' has other inputs or targets)")
        }
        if let vocab = interface.inputs[0].vocab, vocab < 256 {
            throw ValidationError("--text feeds bytes (0...255) but input '\(interface.inputs[0].name)' has a vocabulary of \(vocab)")
        }
        let bytes = try FileBytes.read(file)
        let validBytes = Int(Double(bytes.count) * settings.validFraction)
        let train = try TextStreams(bytes: Array(bytes.prefix(bytes.count - validBytes)), streams: settings.batch, window: window, file: file, role: "training")
        var valid: TextStreams?
        if validBytes > 0 {
            let tail = Array(bytes.suffix(validBytes))
            let streams = max(1, min(settings.batch, (tail.count - 1) / window))
            valid = try TextStreams(bytes: tail, streams: streams, window: window, file: file, role: "validation")
        }
        return .text(train: train, valid: valid)
    }

    /// The model's `train { }` settings, when MODEL is a .rnn file.
    func trainBlock() throws -> TrainBlock {
        TrainBlock(values: try trainValues())
    }

    func trainValues() throws -> [String: TrainValue] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: model, isDirectory: &isDir), !isDir.boolValue else { return [:] }
        return try Compilation(path: model, optimize: false).signature.train
    }

    func makeSettings(_ train: TrainBlock) throws -> TrainingSettings {
        let block = train.values
        let number = train.number
        // The optimizer: flags over the train block over Adam(lr=0.001).
        var kind = CompiledModel.Optimizer.Kind.adam
        var o = CompiledModel.Optimizer(kind: .adam, lr: 0.001)
        if case .call(let name, let named, let positional)? = block["optimizer"] {
            guard let k = ["sgd": CompiledModel.Optimizer.Kind.sgd, "adam": .adam, "adamw": .adamw][name] else {
                throw ValidationError("unknown optimizer '\(name)' in the train block (sgd, adam, adamw)")
            }
            kind = k
            o = CompiledModel.Optimizer(kind: k, lr: 0.001)
            if k == .adamw { o.weightDecay = 0.01 }
            let order = k == .sgd ? ["lr", "momentum", "weight_decay"] : ["lr", "betas", "eps", "weight_decay"]
            var values = named
            for (i, v) in positional.enumerated() where i < order.count { values[order[i]] = v }
            for (key, value) in values {
                switch (key, value) {
                case ("lr", .number(let v)): o.lr = Float(v)
                case ("momentum", .number(let v)): o.momentum = Float(v)
                case ("weight_decay", .number(let v)): o.weightDecay = Float(v)
                case ("eps", .number(let v)): o.eps = Float(v)
                case ("betas", .tuple(let t)) where t.count == 2:
                    if case .number(let b1) = t[0], case .number(let b2) = t[1] { o.beta1 = Float(b1); o.beta2 = Float(b2) }
                default: throw ValidationError("optimizer setting '\(key)' of \(name) is not understood")
                }
            }
        }
        if let optimizer {
            guard let k = ["sgd": CompiledModel.Optimizer.Kind.sgd, "adam": .adam, "adamw": .adamw][optimizer] else {
                throw ValidationError("--optimizer must be sgd, adam or adamw")
            }
            if k != kind {
                let keepLR = o.lr
                o = CompiledModel.Optimizer(kind: k, lr: keepLR)
                if k == .adamw { o.weightDecay = 0.01 }
            }
        }
        if let v = number("lr") { o.lr = Float(v) }
        if let lr { o.lr = lr }
        if let v = number("clip_norm") { o.clipNorm = Float(v) }
        if let clipNorm { o.clipNorm = clipNorm }
        let settings = TrainingSettings(
            epochs: epochs ?? number("epochs").map { Int($0) } ?? 10,
            batch: batch ?? number("batch").map { Int($0) } ?? 32,
            optimizer: o,
            shuffle: !noShuffle,
            seed: seed ?? number("seed").map { UInt64($0) } ?? 0,
            validFraction: validFraction ?? number("valid_fraction") ?? 0)
        guard settings.validFraction >= 0, settings.validFraction < 1 else { throw ValidationError("--valid-fraction must be in [0, 1)") }
        guard o.lr > 0 else { throw ValidationError("--lr must be positive") }
        return settings
    }
}

/// The settings of a model's `train { }` block.
struct TrainBlock {
    var values: [String: TrainValue]
    func number(_ key: String) -> Double? { if case .number(let v)? = values[key] { return v } else { return nil } }
}
