import ArgumentParser
import Foundation
import Runtime

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Summarize a .npy array (shape, range); for [B, T, 256] byte distributions, the likeliest bytes as text."
    )

    @Argument(help: "The .npy file.") var file: String

    func run() {
        guarded {
            let a = try Npy.read(path: file)
            let v = a.asFloats()
            let finite = v.filter(\.isFinite)
            let mean = finite.isEmpty ? 0 : finite.reduce(0, +) / Float(finite.count)
            print("\(file): \(a.dtype.rawValue) [\(a.shape.map(String.init).joined(separator: ", "))], min \(finite.min() ?? 0), max \(finite.max() ?? 0), mean \(mean)"
                  + (finite.count < v.count ? ", \(v.count - finite.count) not finite" : ""))
            // A distribution over bytes at every step: show the argmax of each step as text.
            if a.shape.count == 3, a.shape[2] == 256 {
                let (b, t) = (a.shape[0], a.shape[1])
                for example in 0..<min(b, 4) {
                    var bytes: [UInt8] = []
                    for step in 0..<t {
                        let row = v[((example * t + step) * 256)..<((example * t + step + 1) * 256)]
                        let best = row.indices.max { row[$0] < row[$1] }! - row.startIndex
                        bytes.append(UInt8(best))
                    }
                    let text = bytes.map { (32..<127).contains($0) || $0 == 10 ? Character(UnicodeScalar($0)) : "?" }
                    print("example \(example), likeliest next byte at each step:\n\(String(text))")
                }
            }
        }
    }
}
