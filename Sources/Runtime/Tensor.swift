// Tensor: the dense float32 array that weights and activations travel in, plus the
// little-endian element packing that both file formats (safetensors, .npy) share.

/// A dense float32 tensor, row-major (C order).
public struct Tensor: Equatable, Sendable {
    public var shape: [Int]
    public var data: [Float]

    /// `data.count` must equal the product of `shape` (1 for a scalar, shape `[]`).
    /// Callers that hold untrusted shapes check with `Tensor.elementCount(_:)` first.
    public init(shape: [Int], data: [Float]) {
        precondition(Tensor.elementCount(shape) == data.count,
                     "Tensor shape \(shape) does not match \(data.count) elements")
        self.shape = shape
        self.data = data
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        guard let count = Tensor.elementCount(shape) else {
            preconditionFailure("invalid tensor shape \(shape)")
        }
        self.init(shape: shape, data: [Float](repeating: 0, count: count))
    }

    /// The number of elements.
    public var count: Int { data.count }

    /// The number of elements a shape holds, or nil if a dimension is negative or the
    /// product overflows `Int`. Never traps, so parsers can use it on hostile input.
    public static func elementCount(_ shape: [Int]) -> Int? {
        var product = 1
        for dim in shape {
            guard dim >= 0 else { return nil }
            let (p, overflow) = product.multipliedReportingOverflow(by: dim)
            if overflow { return nil }
            product = p
        }
        return product
    }
}

/// Conversion between arrays of fixed-width numbers and their little-endian bytes.
///
/// Both formats store elements little-endian and unaligned; copying whole buffers with
/// memcpy is what makes multi-hundred-megabyte weight files load quickly, and the byte
/// reversal keeps the code correct on a big-endian host.
enum ElementBytes {
    /// Decodes `count` elements of `T` stored at `bytes[offset...]`.
    /// The caller guarantees `offset + count * MemoryLayout<T>.size <= bytes.count`.
    static func decode<T: BitwiseCopyable & Numeric>(
        _ type: T.Type, from bytes: [UInt8], offset: Int, count: Int, swap: Bool = hostIsBigEndian
    ) -> [T] {
        let size = MemoryLayout<T>.size
        precondition(offset >= 0 && count >= 0 && offset + count * size <= bytes.count)
        var result = [T](repeating: 0, count: count)
        result.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { src in
                if count > 0 {
                    dst.baseAddress!.copyMemory(from: src.baseAddress! + offset, byteCount: count * size)
                }
            }
            if swap { reverseEach(dst, size: size) }
        }
        return result
    }

    /// Appends the little-endian bytes of `values` to `bytes`.
    static func append<T: BitwiseCopyable>(_ values: [T], to bytes: inout [UInt8]) {
        let size = MemoryLayout<T>.size
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: values.count * size))
        bytes.withUnsafeMutableBytes { dst in
            values.withUnsafeBytes { src in
                let target = UnsafeMutableRawBufferPointer(rebasing: dst[start...])
                target.copyMemory(from: src)
                if hostIsBigEndian { reverseEach(target, size: size) }
            }
        }
    }

    /// Whether the machine stores numbers big-endian (then every element is byte-reversed).
    static var hostIsBigEndian: Bool {
        #if _endian(big)
        return true
        #else
        return false
        #endif
    }

    private static func reverseEach(_ buffer: UnsafeMutableRawBufferPointer, size: Int) {
        guard size > 1 else { return }
        var start = 0
        while start + size <= buffer.count {
            var i = start, j = start + size - 1
            while i < j {
                buffer.swapAt(i, j)
                i += 1
                j -= 1
            }
            start += size
        }
    }
}
