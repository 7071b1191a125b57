#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A compiled model library (libNAME.so) opened in this process, with its weights loaded.
///
/// Calls go through the generic entry points every generated library exports
/// (NAME_create, NAME_run_v, NAME_output_v, ...), found with dlsym.
public final class CompiledModel {
    public let interface: ModelInterface
    private let handle: UnsafeMutableRawPointer
    private let model: OpaquePointer

    private typealias CreateFn = @convention(c) (UnsafePointer<CChar>?) -> OpaquePointer?
    private typealias DestroyFn = @convention(c) (OpaquePointer?) -> Void
    private typealias ThreadsFn = @convention(c) (OpaquePointer?, Int32) -> Void
    private typealias RunFn = @convention(c) (OpaquePointer?, Int32, Int32, UnsafePointer<UnsafeRawPointer?>?, UnsafePointer<Int32>?) -> Int32
    private typealias OutputFn = @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<Int64>?, UnsafeMutablePointer<Int32>?) -> UnsafePointer<Float>?
    private typealias ErrorFn = @convention(c) () -> UnsafePointer<CChar>?

    private let destroyFn: DestroyFn
    private let threadsFn: ThreadsFn
    private let runFn: RunFn
    private let outputFn: OutputFn
    private let errorFn: ErrorFn
    private typealias GradientsFn = @convention(c) (OpaquePointer?, Int32, Int32, UnsafePointer<UnsafeRawPointer?>?,
                                                    UnsafePointer<UnsafeRawPointer?>?, UnsafePointer<Int32>?, UnsafeMutablePointer<Double>?) -> Int32
    private typealias GradientFn = @convention(c) (OpaquePointer?, Int32) -> UnsafePointer<Float>?
    private let gradientsFn: GradientsFn?
    private let gradientFn: GradientFn?
    private typealias TrainStepFn = @convention(c) (OpaquePointer?, Int32, Int32, UnsafePointer<UnsafeRawPointer?>?,
                                                    UnsafePointer<UnsafeRawPointer?>?, UnsafePointer<Int32>?,
                                                    UnsafeRawPointer?, UnsafeMutablePointer<Double>?) -> Int32
    private let trainStepFn: TrainStepFn?
    private let lossFn: GradientsFn?
    private typealias StateFn = @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafeMutablePointer<Float>?>?,
                                                UnsafeMutablePointer<UnsafeMutablePointer<Float>?>?, UnsafeMutablePointer<UnsafeMutablePointer<Int>?>?) -> Int32
    private let stateFn: StateFn?
    private typealias FlagFn = @convention(c) (OpaquePointer?, Int32) -> Void
    private typealias ResetFn = @convention(c) (OpaquePointer?) -> Void
    private let statefulFn: FlagFn?
    private let dropoutFn: FlagFn?
    private typealias RngFn = @convention(c) (OpaquePointer?) -> UnsafeMutablePointer<UInt64>?
    private let rngFn: RngFn?
    private let resetFn: ResetFn?
    private let parameterFn: GradientFn?
    private typealias CarryWidthFn = @convention(c) () -> Int32
    private typealias GetCarryFn = @convention(c) (OpaquePointer?, UnsafeMutablePointer<Float>?) -> Int32
    private typealias SetCarryFn = @convention(c) (OpaquePointer?, Int32, UnsafePointer<Float>?) -> Int32
    private let carryWidthFn: CarryWidthFn?
    private typealias TrainingFloatsFn = @convention(c) (Int32, Int32, UnsafeMutablePointer<Double>?) -> Int32
    private let trainingFloatsFn: TrainingFloatsFn?
    private let getCarryFn: GetCarryFn?
    private let setCarryFn: SetCarryFn?

    /// Opens DIR (holding NAME.json and libNAME.so) and loads the weights.
    public init(directory: String, weights: String) throws {
        let fm = Directory.listing(directory)
        guard let json = fm.first(where: { $0.hasSuffix(".json") }) else {
            throw FormatError("\(directory): not a compiled model (no NAME.json); run 'rnnc compile' first")
        }
        interface = try ModelInterface.read(path: "\(directory)/\(json)")
        let name = interface.model.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" }.reduce("") { $0 + String($1) }
        let library = "\(directory)/lib\(name).so"
        guard let h = dlopen(library, RTLD_NOW | RTLD_LOCAL) else {
            throw FormatError("cannot load \(library): \(String(cString: dlerror()))")
        }
        handle = h
        func symbol<T>(_ s: String, _: T.Type) throws -> T {
            guard let p = dlsym(h, "\(name)_\(s)") else { throw FormatError("\(library) lacks \(name)_\(s); compile the model again") }
            return unsafeBitCast(p, to: T.self)
        }
        let create = try symbol("create", CreateFn.self)
        destroyFn = try symbol("destroy", DestroyFn.self)
        threadsFn = try symbol("set_threads", ThreadsFn.self)
        runFn = try symbol("run_v", RunFn.self)
        outputFn = try symbol("output_v", OutputFn.self)
        errorFn = try symbol("last_error", ErrorFn.self)
        gradientsFn = try? symbol("gradients_v", GradientsFn.self)
        gradientFn = try? symbol("gradient", GradientFn.self)
        trainStepFn = try? symbol("train_step_v", TrainStepFn.self)
        lossFn = try? symbol("loss_v", GradientsFn.self)
        stateFn = try? symbol("optimizer_state", StateFn.self)
        statefulFn = try? symbol("set_stateful", FlagFn.self)
        dropoutFn = try? symbol("set_dropout", FlagFn.self)
        rngFn = try? symbol("rng_state", RngFn.self)
        resetFn = try? symbol("reset_state", ResetFn.self)
        parameterFn = try? symbol("parameter", GradientFn.self)
        carryWidthFn = try? symbol("carry_width", CarryWidthFn.self)
        trainingFloatsFn = try? symbol("training_floats", TrainingFloatsFn.self)
        getCarryFn = try? symbol("get_carry", GetCarryFn.self)
        setCarryFn = try? symbol("set_carry", SetCarryFn.self)
        guard let m = weights.withCString({ create($0) }) else {
            let message = errorFn().map { String(cString: $0) } ?? "unknown error"
            dlclose(h)
            throw FormatError(message)
        }
        model = m
    }

    deinit {
        destroyFn(model)
        // The library stays mapped: OpenMP worker threads may still reference its code.
    }

    public func setThreads(_ n: Int) { threadsFn(model, Int32(n)) }

    /// Stateful calls start every recurrence where the previous call left it (a stream read
    /// window by window, text generated step by step); `resetState` starts from zero again.
    public func setStateful(_ on: Bool) { statefulFn?(model, on ? 1 : 0) }
    public func resetState() { resetFn?(model) }

    /// What a training step keeps for a batch and sequence length, in floats (nil if the
    /// model cannot be trained, or its library predates the report).
    public struct TrainingMemory {
        public var savedActivations: Double
        public var workBuffers: Double
        public var packedWeights: Double
        /// Floats counted twice above: the forward's packed weights and workspaces and the
        /// backward's work buffers take the same memory in turn.
        public var sharedInTurn: Double = 0
        /// What the step holds besides parameters, gradients and optimizer moments.
        public var total: Double { savedActivations + workBuffers + packedWeights - sharedInTurn }
    }

    public func trainingMemory(batch: Int, time: Int) -> TrainingMemory? {
        guard let trainingFloatsFn else { return nil }
        var out = [Double](repeating: 0, count: 4)
        guard trainingFloatsFn(Int32(batch), Int32(time), &out) == 0 else { return nil }
        return TrainingMemory(savedActivations: out[0], workBuffers: out[1], packedWeights: out[2], sharedInTurn: out[3])
    }

    /// The states a stateful model carries into its next call: the batch they are held
    /// for and batch x (per-example floats) values; nil when none are held.
    public func carriedState() -> (batch: Int, values: [Float])? {
        guard let getCarryFn, let carryWidthFn else { return nil }
        let batch = Int(getCarryFn(model, nil))
        guard batch > 0 else { return nil }
        var values = [Float](repeating: 0, count: batch * Int(carryWidthFn()))
        _ = values.withUnsafeMutableBufferPointer { getCarryFn(model, $0.baseAddress) }
        return (batch, values)
    }

    /// Restores carried states (as `carriedState` gave them) into a stateful model.
    public func setCarriedState(batch: Int, values: [Float]) throws {
        guard let setCarryFn, let carryWidthFn else { throw FormatError("this library cannot restore carried states; compile the model again") }
        guard batch >= 1, values.count == batch * Int(carryWidthFn()) else {
            throw FormatError("carried state: \(values.count) values for \(batch) examples of \(carryWidthFn()) floats each")
        }
        let status = values.withUnsafeBufferPointer { setCarryFn(model, Int32(batch), $0.baseAddress) }
        if status != 0 { throw FormatError(errorFn().map { String(cString: $0) } ?? "set_carry failed") }
    }

    /// Whether training steps apply the model's dropout (on by default; off to evaluate).
    public func setDropout(_ on: Bool) { dropoutFn?(model, on ? 1 : 0) }

    /// The state of dropout's random generator, for seeding and checkpoints.
    public var randomState: UInt64 {
        get { rngFn?(model)?.pointee ?? 0 }
        set { rngFn?(model)?.pointee = newValue }
    }

    /// One input of a call: int32 token ids or floats, laid out batch first.
    public enum Buffer {
        case ints([Int32])
        case floats([Float])
    }

    /// Runs a batch; returns each output's shape and values.
    public func run(batch: Int, time: Int, inputs: [Buffer], lengths: [Int32]?) throws -> [(shape: [Int], values: [Float])] {
        try forward(batch: batch, time: time, inputs: inputs, lengths: lengths)
        return try currentOutputs()
    }

    /// The forward pass alone: its outputs stay in the library's buffers, where a C caller
    /// reads them (`NAME_output`), rather than copied into Swift arrays as `run` returns
    /// them. `rnnc bench` times this: word_lm's 16 MB of probabilities took 7% to 9% of its
    /// inference to copy (an Intel Xeon, perf).
    public func forward(batch: Int, time: Int, inputs: [Buffer], lengths: [Int32]?) throws {
        precondition(inputs.count == interface.inputs.count)
        // Keep every buffer alive and pinned while the C code reads it.
        let status: Int32 = withPinned(inputs) { pointers in
            pointers.withUnsafeBufferPointer { ptrs in
                if let lengths {
                    return lengths.withUnsafeBufferPointer { runFn(model, Int32(batch), Int32(time), ptrs.baseAddress, $0.baseAddress) }
                }
                return runFn(model, Int32(batch), Int32(time), ptrs.baseAddress, nil)
            }
        }
        guard status == 0 else { throw FormatError(errorFn().map { String(cString: $0) } ?? "run failed") }
    }

    /// Forward, loss and backward for one batch: the loss and every parameter's gradient
    /// (in the order of the interface's parameters). Dropout applies unless `setDropout(false)`.
    public func gradients(batch: Int, time: Int, inputs: [Buffer], targets: [Buffer], lengths: [Int32]?) throws
        -> (loss: Double, gradients: [[Float]])
    {
        guard let gradientsFn, let gradientFn else { throw FormatError("this library was compiled without training support") }
        var loss = 0.0
        let status = withTrainingArrays(inputs, targets, lengths) { ip, tp, lp in
            gradientsFn(model, Int32(batch), Int32(time), ip, tp, lp, &loss)
        }
        guard status == 0 else { throw FormatError(errorFn().map { String(cString: $0) } ?? "gradients failed") }
        let grads = try interface.parameters.enumerated().map { i, p -> [Float] in
            guard let g = gradientFn(model, Int32(i)) else { throw FormatError("no gradient for \(p.name)") }
            return Array(UnsafeBufferPointer(start: g, count: p.shape.reduce(1, *)))
        }
        return (loss, grads)
    }

    /// The loss of one batch in evaluation mode (the forward pass alone, dropout off) and the
    /// outputs of that pass. Libraries compiled before `NAME_loss_v` existed fall back to a
    /// gradients call (dropout off) and a run.
    public func evaluationLoss(batch: Int, time: Int, inputs: [Buffer], targets: [Buffer], lengths: [Int32]?) throws
        -> (loss: Double, outputs: [(shape: [Int], values: [Float])])
    {
        guard let lossFn else {
            setDropout(false)
            defer { setDropout(true) }
            let loss = try gradients(batch: batch, time: time, inputs: inputs, targets: targets, lengths: lengths).loss
            return (loss, try run(batch: batch, time: time, inputs: inputs, lengths: lengths))
        }
        var loss = 0.0
        let status = withTrainingArrays(inputs, targets, lengths) { ip, tp, lp in
            lossFn(model, Int32(batch), Int32(time), ip, tp, lp, &loss)
        }
        guard status == 0 else { throw FormatError(errorFn().map { String(cString: $0) } ?? "loss failed") }
        return (loss, try currentOutputs())
    }

    /// The outputs the last forward pass left.
    private func currentOutputs() throws -> [(shape: [Int], values: [Float])] {
        var results: [(shape: [Int], values: [Float])] = []
        for i in interface.outputs.indices {
            var shape = [Int64](repeating: 0, count: 8)
            var rank: Int32 = 0
            guard let p = outputFn(model, Int32(i), &shape, &rank) else { throw FormatError("output \(i) missing") }
            let dims = shape.prefix(Int(rank)).map { Int($0) }
            results.append((dims, Array(UnsafeBufferPointer(start: p, count: dims.reduce(1, *)))))
        }
        return results
    }

    /// The settings of one optimizer step, laid out as the C struct `rnnc_optimizer`.
    public struct Optimizer: Sendable {
        public enum Kind: Int32, Sendable { case sgd = 0, adam = 1, adamw = 2 }
        public var kind: Kind
        public var lr: Float
        public var beta1: Float = 0.9
        public var beta2: Float = 0.999
        public var eps: Float = 1e-8
        public var weightDecay: Float = 0
        public var momentum: Float = 0
        public var clipNorm: Float = 0

        public init(kind: Kind, lr: Float) { self.kind = kind; self.lr = lr }
    }

    /// One training step (gradients, clipping, update); returns the loss before the update.
    public func trainStep(batch: Int, time: Int, inputs: [Buffer], targets: [Buffer], lengths: [Int32]?,
                          optimizer: Optimizer) throws -> Double {
        guard let trainStepFn else { throw FormatError("this library was compiled without training support") }
        // The C struct: int kind; then seven floats, 4-byte aligned, no padding.
        var raw = [UInt32](repeating: 0, count: 8)
        raw[0] = UInt32(bitPattern: optimizer.kind.rawValue)
        for (i, f) in [optimizer.lr, optimizer.beta1, optimizer.beta2, optimizer.eps, optimizer.weightDecay,
                       optimizer.momentum, optimizer.clipNorm].enumerated() { raw[i + 1] = f.bitPattern }
        var loss = 0.0
        let status: Int32 = raw.withUnsafeBytes { opt in
            withTrainingArrays(inputs, targets, lengths) { ip, tp, lp in
                trainStepFn(model, Int32(batch), Int32(time), ip, tp, lp, opt.baseAddress, &loss)
            }
        }
        guard status == 0 else { throw FormatError(errorFn().map { String(cString: $0) } ?? "training step failed") }
        return loss
    }

    /// The optimizer state as per-parameter tensors (first and second moments) and the step
    /// count, for checkpoints.
    public func optimizerState() throws -> (first: [[Float]], second: [[Float]], step: Int) {
        let (a, b, step) = try statePointers()
        return (slices(a), slices(b), step.pointee)
    }

    /// Restores a checkpoint's optimizer state (shapes as `optimizerState()` gives them).
    public func setOptimizerState(first: [[Float]], second: [[Float]], step: Int) throws {
        let (a, b, count) = try statePointers()
        for (i, offset) in parameterOffsets().enumerated() {
            guard first[i].count == interface.parameters[i].shape.reduce(1, *), second[i].count == first[i].count else {
                throw FormatError("optimizer state for '\(interface.parameters[i].name)' has the wrong size")
            }
            first[i].withUnsafeBufferPointer { (a + offset).update(from: $0.baseAddress!, count: $0.count) }
            second[i].withUnsafeBufferPointer { (b + offset).update(from: $0.baseAddress!, count: $0.count) }
        }
        count.pointee = step
    }

    private func statePointers() throws -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int>) {
        guard let stateFn else { throw FormatError("this library was compiled without training support") }
        var a: UnsafeMutablePointer<Float>?, b: UnsafeMutablePointer<Float>?, step: UnsafeMutablePointer<Int>?
        guard stateFn(model, &a, &b, &step) == 0, let a, let b, let step else {
            throw FormatError(errorFn().map { String(cString: $0) } ?? "no optimizer state")
        }
        return (a, b, step)
    }

    /// Offsets of each parameter in the parameter block: sizes rounded up to 16 floats.
    private func parameterOffsets() -> [Int] {
        var offset = 0
        return interface.parameters.map { p in
            defer { offset += (p.shape.reduce(1, *) + 15) / 16 * 16 }
            return offset
        }
    }

    private func slices(_ base: UnsafeMutablePointer<Float>) -> [[Float]] {
        zip(interface.parameters, parameterOffsets()).map { p, offset in
            Array(UnsafeBufferPointer(start: base + offset, count: p.shape.reduce(1, *)))
        }
    }

    /// The current values of every parameter (after loading or training).
    public func parameters() throws -> [[Float]] {
        guard let parameterFn else { throw FormatError("this library does not expose its parameters") }
        return try interface.parameters.enumerated().map { i, p in
            guard let v = parameterFn(model, Int32(i)) else { throw FormatError("no parameter \(p.name)") }
            return Array(UnsafeBufferPointer(start: v, count: p.shape.reduce(1, *)))
        }
    }

    /// Pins the inputs, targets and lengths of a training call for the C code to read.
    private func withTrainingArrays(_ inputs: [Buffer], _ targets: [Buffer], _ lengths: [Int32]?,
                                    _ body: (UnsafePointer<UnsafeRawPointer?>?, UnsafePointer<UnsafeRawPointer?>?, UnsafePointer<Int32>?) -> Int32) -> Int32 {
        withPinned(inputs) { inputPointers in
            withPinned(targets) { targetPointers in
                inputPointers.withUnsafeBufferPointer { ip in
                    targetPointers.withUnsafeBufferPointer { tp in
                        guard let lengths else { return body(ip.baseAddress, tp.baseAddress, nil) }
                        return lengths.withUnsafeBufferPointer { body(ip.baseAddress, tp.baseAddress, $0.baseAddress) }
                    }
                }
            }
        }
    }

    private func withPinned<R>(_ buffers: [Buffer], _ body: ([UnsafeRawPointer?]) -> R) -> R {
        func go(_ i: Int, _ acc: [UnsafeRawPointer?]) -> R {
            if i == buffers.count { return body(acc) }
            switch buffers[i] {
            case .ints(let a): return a.withUnsafeBytes { go(i + 1, acc + [$0.baseAddress]) }
            case .floats(let a): return a.withUnsafeBytes { go(i + 1, acc + [$0.baseAddress]) }
            }
        }
        return go(0, [])
    }
}

/// Directory listing without Foundation's overhead in the runtime's hot path.
enum Directory {
    static func listing(_ path: String) -> [String] {
        guard let d = opendir(path) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}
