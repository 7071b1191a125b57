import ArgumentParser
import Foundation
import Runtime

/// `rnnc bench`: in-process timing of a compiled model on random data of a chosen shape —
/// inference, and with --train one training step (forward, loss, backward, Adam update).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time inference (and a training step with --train) in-process: ms, examples/s, GFLOP/s, peak memory."
    )

    @Argument(help: "A .rnn file or a compiled model directory.") var model: String
    @Option(help: "Batch size.") var batch: Int = 32
    @Option(help: "Sequence length.") var seq: Int = 100
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(help: "Also time a training step.") var train = false
    @Flag(help: "One JSON object per measurement.") var json = false
    @Option(help: "Minimum seconds of timed runs per measurement.") var seconds: Double = 1.0

    func validate() throws {
        guard batch >= 1, seq >= 1 else { throw ValidationError("--batch and --seq must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() {
        guarded {
            let dir = try ModelResolver.compiledDirectory(for: model)
            let interface = try ModelInterface.read(path: try interfacePath(dir))
            let weights = FileManager.default.temporaryDirectory.appendingPathComponent("rnnc-bench-\(getpid()).safetensors").path
            defer { unlink(weights) }
            try Safetensors.write(Initializer.initialize(interface, seed: 0), metadata: [:], to: weights)
            let compiled = try CompiledModel(directory: dir, weights: weights)
            let threadCount = threads ?? ProcessInfo.processInfo.activeProcessorCount
            compiled.setThreads(threadCount)
            var rng = SeededGenerator(seed: 1)
            func random(_ port: ModelInterface.Port, classes: Int? = nil) -> CompiledModel.Buffer {
                let count = batch * (port.hasTime ? seq : 1) * port.features.reduce(1, *)
                if port.isInt {
                    let n = max(1, classes ?? port.vocab ?? 2)
                    return .ints((0..<count).map { _ in Int32(rng.next() % UInt64(n)) })
                }
                return .floats((0..<count).map { _ in Float(rng.unit() * 2 - 1) })
            }
            let inputs = interface.inputs.map { random($0) }
            let forwardFlops = Double(batch) * (Double(seq) * Double(interface.flopsPerStep) + Double(interface.flopsPerExample))

            var modes: [(String, Double, () throws -> Void)] = [
                ("infer", forwardFlops, { try compiled.forward(batch: batch, time: seq, inputs: inputs, lengths: nil) })
            ]
            if train {
                let targets = interface.targets.map { random($0, classes: interface.lossClasses) }
                var optimizer = CompiledModel.Optimizer(kind: .adam, lr: 1e-3)
                optimizer.clipNorm = 5
                // A training step counts as three forward passes (forward, and the backward's two products per product).
                modes.append(("train", 3 * forwardFlops, {
                    _ = try compiled.trainStep(batch: batch, time: seq, inputs: inputs, targets: targets, lengths: nil, optimizer: optimizer)
                }))
            }
            for (mode, flops, body) in modes {
                for _ in 0..<3 { try body() }   // warm-up: arenas sized, caches and threads warm
                var times: [Double] = []
                let start = Date()
                while times.count < 10 || (Date().timeIntervalSince(start) < seconds && times.count < 1000) {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    try body()
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
                }
                times.sort()
                let median = times[times.count / 2]
                let gflops = flops / (median / 1000) / 1e9
                let rss = Self.peakResidentMB()
                let memory = mode == "train" ? trainingMemory(compiled, interface) : nil
                if json {
                    var fields = "\"model\": \"\(interface.model)\", \"mode\": \"\(mode)\", \"batch\": \(batch), \"seq\": \(seq), \"threads\": \(threadCount), \"median_ms\": \(Self.fmt(median)), \"min_ms\": \(Self.fmt(times[0])), \"runs\": \(times.count), \"examples_per_s\": \(Self.fmt(Double(batch) / median * 1000)), \"gflops\": \(Self.fmt(gflops)), \"peak_rss_mb\": \(Self.fmt(rss))"
                    if let memory { fields += ", " + memory.json }
                    print("{\(fields)}")
                } else {
                    print("\(interface.model) \(mode): batch \(batch), seq \(seq), \(threadCount) thread\(threadCount == 1 ? "" : "s"): median \(Self.fmt(median)) ms over \(times.count) runs (min \(Self.fmt(times[0]))), \(Self.fmt(Double(batch) / median * 1000)) examples/s, \(Self.fmt(gflops)) GFLOP/s, peak memory \(Self.fmt(rss)) MB")
                    if let memory { print("  " + memory.text) }
                }
            }
        }
    }

    static func fmt(_ v: Double) -> String { String(format: "%.3f", v) }

    /// The training step's memory by kind, from the library's own account (MB), and its
    /// ratio to the bound of issue 4: weights, optimizer state and saved activations.
    struct MemoryReport {
        var parameters, optimizer, gradients, saved, work, packed: Double
        /// Memory counted twice above: the forward's packed weights and workspaces and the
        /// backward's work buffers take it in turn.
        var shared: Double
        var total: Double { parameters + optimizer + gradients + saved + work + packed - shared }
        var bound: Double { parameters + optimizer + saved }
        var json: String {
            "\"weights_mb\": \(fmt(parameters)), \"optimizer_mb\": \(fmt(optimizer)), \"gradients_mb\": \(fmt(gradients)), "
                + "\"saved_activations_mb\": \(fmt(saved)), \"work_buffers_mb\": \(fmt(work)), \"packed_weights_mb\": \(fmt(packed)), \"shared_in_turn_mb\": \(fmt(shared)), "
                + "\"training_mb\": \(fmt(total)), \"memory_ratio\": \(fmt(total / bound))"
        }
        var text: String {
            "training memory \(fmt(total)) MB: weights \(fmt(parameters)), optimizer moments \(fmt(optimizer)), gradients \(fmt(gradients)), "
                + "saved activations \(fmt(saved)), work buffers \(fmt(work)), packed weights \(fmt(packed)), less \(fmt(shared)) that the forward's and the backward's buffers take in turn; "
                + "\(String(format: "%.2f", total / bound))x weights + optimizer + saved activations"
        }
    }

    func trainingMemory(_ compiled: CompiledModel, _ interface: ModelInterface) -> MemoryReport? {
        guard let m = compiled.trainingMemory(batch: batch, time: seq) else { return nil }
        let mb = 4.0 / 1_048_576
        let params = Double(interface.parameters.reduce(0) { $0 + $1.shape.reduce(1, *) }) * mb
        return MemoryReport(parameters: params, optimizer: 2 * params, gradients: params, saved: m.savedActivations * mb,
                            work: m.workBuffers * mb, packed: m.packedWeights * mb, shared: m.sharedInTurn * mb)
    }

    /// The process's peak resident memory (VmHWM), in MB.
    static func peakResidentMB() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return kb / 1024
        }
        return 0
    }
}
