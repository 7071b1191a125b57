/// An error in a file the user gave us (or one we could not read or write).
///
/// `description` is the whole user-facing message: it always names the file, and the
/// tensor / array / position where that helps the user find the problem. The CLI prints it
/// as is, so messages are written as complete sentences without a trailing period, e.g.
/// `weights.safetensors: tensor 'fc.weight' has shape [3, 4] (48 bytes) but data_offsets
/// cover 40 bytes`.
public struct FormatError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

extension FormatError {
    /// A name from a file as shown in a message: quoted, with control characters escaped
    /// so that a hostile file cannot put terminal escape sequences into our output.
    public static func quote(_ name: String, with quote: Character = "'") -> String {
        var out = String(quote)
        for scalar in name.unicodeScalars {
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        out.append(quote)
        return out
    }
}
