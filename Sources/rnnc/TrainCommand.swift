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
    @Option(help: "Byte-level text (not yet supported: needs truncated BPTT).") var text: String?
    @Option(help: "A CSV time series (not yet supported).") var csv: String?
    @Option(help: "Where to write the trained weights (and SAVE.optim, the optimizer state).") var save: String
    @Option(help: "Epochs.") var epochs: Int?
    @Option(help: "Batch size.") var batch: Int?
    @Option(help: "Learning rate.") var lr: Float?
    @Option(help: "sgd, adam or adamw.") var optimizer: String?
    @Option(name: .customLong("clip-norm"), help: "Clip the gradient norm (clip_grad_norm_).") var clipNorm: Float?
    @Option(help: "Truncated BPTT window (not yet supported).") var bptt: Int?
    @Option(help: "Seed for initialization and shuffling.") var seed: UInt64?
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(name: .customLong("no-shuffle"), help: "Take batches in order (then a run equals the PyTorch loop in docs/PYTORCH_LOOP.md step for step).") var noShuffle = false
    @Option(name: .customLong("valid-fraction"), help: "Keep the last fraction of the examples for validation.") var validFraction: Double?
    @Option(help: "Continue from a checkpoint written by --save.") var resume: String?
    @Option(help: "Append per-epoch metrics to this CSV file.") var log: String?

    func run() {
        guarded {
            if text != nil || csv != nil {
                throw ValidationError("--text and --csv are not supported yet by this version of rnnc (they need truncated BPTT and the CSV loader); export arrays and use --npy DIR")
            }
            if bptt != nil { throw ValidationError("--bptt (truncated BPTT) is not supported yet by this version of rnnc") }
            guard let npy else { throw ValidationError("give the training data with --npy DIR") }
            let defaults = try trainBlock()
            let dir = try ModelResolver.compiledDirectory(for: model)
            let interface = try ModelInterface.read(path: try interfacePath(dir))
            let settings = try makeSettings(defaults)

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
            let data = try TrainingData.loadNpyDirectory(npy, interface: interface)
            let interactive = isatty(STDERR_FILENO) != 0
            let trainer = try Trainer(model: compiled, data: data, settings: settings, savePath: save, logPath: log) { line in
                // A live progress line on a terminal; epoch summaries only in logs.
                if line.hasPrefix("\r") && !line.hasSuffix("\n") && !interactive { return }
                FileHandle.standardError.write(Data((interactive ? line : line.replacingOccurrences(of: "\r", with: "")).utf8))
            }
            if let resume { try trainer.resume(from: resume) }
            if !(try trainer.run()) { Foundation.exit(130) }
        }
    }

    /// The model's `train { }` settings, when MODEL is a .rnn file.
    func trainBlock() throws -> [String: TrainValue] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: model, isDirectory: &isDir), !isDir.boolValue else { return [:] }
        return try Compilation(path: model, optimize: false).signature.train
    }

    func makeSettings(_ block: [String: TrainValue]) throws -> TrainingSettings {
        func number(_ key: String) -> Double? { if case .number(let v)? = block[key] { return v } else { return nil } }
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
