/// A byte-level text as B contiguous streams read in windows of K steps, for truncated
/// backpropagation through time: window w of stream b is bytes [b*L + w*K, b*L + w*K + K)
/// with the next byte of each as its target. The state after a window is where the next
/// window of the same stream starts (carried, not back-propagated through), so a language
/// model reads the whole text as B streams.
public struct TextStreams: Sendable {
    public let bytes: [UInt8]
    public let streams: Int
    public let window: Int
    /// Bytes per stream (each stream also reads one byte past its end, as the last target).
    public var streamLength: Int { (bytes.count - 1) / streams }
    public var windows: Int { streamLength / window }

    public init(bytes: [UInt8], streams: Int, window: Int, file: String, role: String) throws {
        guard streams >= 1, window >= 1 else { throw FormatError("--batch and --bptt must be at least 1") }
        self.bytes = bytes
        self.streams = streams
        self.window = window
        if windows < 1 {
            throw FormatError("\(file): \(bytes.count) bytes of \(role) text are too short for \(streams) streams of one \(window)-step window each (need at least \(streams * window + 1)); lower --batch or --bptt")
        }
    }

    /// Inputs and targets of window w, [B, K] each, as token ids.
    public func batch(_ w: Int) -> (inputs: [Int32], targets: [Int32]) {
        var inputs = [Int32](repeating: 0, count: streams * window)
        var targets = inputs
        for b in 0..<streams {
            let start = b * streamLength + w * window
            for t in 0..<window {
                inputs[b * window + t] = Int32(bytes[start + t])
                targets[b * window + t] = Int32(bytes[start + t + 1])
            }
        }
        return (inputs, targets)
    }
}
