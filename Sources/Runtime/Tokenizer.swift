import Foundation

/// Word-level tokens for text classifiers (`rnnc tokenize`): lower-cased words, and each
/// punctuation mark a token of its own. A word is a run of letters and digits, with
/// apostrophes inside it kept ("don't", "director's"); `''` (the movie-review data's
/// double quote) is punctuation, not part of a word.
///
/// Ids: 0 pads sequences to a common length (never a word: embedding row 0 is only read
/// past an example's length, where rnnc zeroes it anyway); 1 stands for every word outside
/// the vocabulary; 2, 3, ... are the words of the training texts seen at least `minCount`
/// times, most frequent first (ties in alphabetical order, so the vocabulary is
/// reproducible).
public struct Vocabulary: Sendable, Equatable {
    public static let padding: Int32 = 0
    public static let unknown: Int32 = 1

    /// words[id]; words[0] and words[1] are the padding and unknown markers.
    public var words: [String]
    private var index: [String: Int32]

    public init(words: [String]) {
        self.words = words
        var index: [String: Int32] = [:]
        for (i, w) in words.enumerated() where i >= 2 { index[w] = Int32(i) }
        self.index = index
    }

    public static func == (a: Vocabulary, b: Vocabulary) -> Bool { a.words == b.words }

    public var size: Int { words.count }

    /// The `size - 2` most frequent tokens of `texts` (at most `size` ids in all) among
    /// those seen at least `minCount` times. Leaving out the words seen once gives the
    /// unknown id training examples, so the words of new texts that the vocabulary lacks
    /// land on a trained embedding rather than an untouched random one.
    public static func fit(_ texts: [[String]], size: Int, minCount: Int = 1) -> Vocabulary {
        var counts: [String: Int] = [:]
        for text in texts { for token in text { counts[token, default: 0] += 1 } }
        let ranked = counts.filter { $0.value >= minCount }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        return Vocabulary(words: ["<pad>", "<unk>"] + ranked.prefix(max(0, size - 2)).map(\.key))
    }

    public func ids(_ tokens: [String]) -> [Int32] { tokens.map { index[$0] ?? Vocabulary.unknown } }

    /// The tokens of one text.
    public static func tokens(_ text: String) -> [String] {
        var out: [String] = []
        var word = ""
        let scalars = Array(text.lowercased().unicodeScalars)
        func isWordScalar(_ s: Unicode.Scalar) -> Bool { s.properties.isAlphabetic || s.properties.numericType != nil }
        for (i, s) in scalars.enumerated() {
            if isWordScalar(s) {
                word.unicodeScalars.append(s)
            } else if (s == "'" || s == "\u{2019}"), !word.isEmpty, i + 1 < scalars.count, isWordScalar(scalars[i + 1]) {
                word.unicodeScalars.append("'")   // an apostrophe inside a word
            } else {
                if !word.isEmpty { out.append(word); word = "" }
                if !s.properties.isWhitespace { out.append(String(s)) }
            }
        }
        if !word.isEmpty { out.append(word) }
        return out
    }
}

/// A labelled text data set read from a CSV file (a text column and an integer label
/// column), split into training and test parts and turned into the arrays `rnnc train
/// --npy` reads: ids right-padded to the longest text, lengths, labels.
public struct LabelledTexts: Sendable {
    public var texts: [[String]]
    public var labels: [Int32]

    /// Reads TEXT and LABEL columns. A missing column, a row without them, an empty text or
    /// a label that is not a whole number >= 0 is an error naming the row and column.
    public static func read(csv path: String, textColumn: String, labelColumn: String) throws -> LabelledTexts {
        let table = try CSVTable.read(path)
        let ti = try table.column(textColumn), li = try table.column(labelColumn)
        var out = LabelledTexts(texts: [], labels: [])
        for (row, cells) in table.rows {
            guard max(ti, li) < cells.count else {
                throw FormatError("\(path): row \(row) has \(cells.count) cells, too few for columns '\(textColumn)' and '\(labelColumn)'")
            }
            let cell = cells[li].trimmingCharacters(in: .whitespaces)
            guard let label = Int32(cell), label >= 0 else {
                throw FormatError("\(path): row \(row), column '\(labelColumn)': '\(cell)' is not a class label (a whole number >= 0)")
            }
            let tokens = Vocabulary.tokens(cells[ti])
            guard !tokens.isEmpty else { throw FormatError("\(path): row \(row), column '\(textColumn)': the text is empty") }
            out.texts.append(tokens)
            out.labels.append(label)
        }
        guard !out.texts.isEmpty else { throw FormatError("\(path): no rows after the header") }
        return out
    }

    /// The examples in a shuffled order (from the seed), so that a split is not the file's
    /// order (which may be sorted by label or source).
    public func shuffled(seed: UInt64) -> LabelledTexts {
        var rng = SeededGenerator(seed: seed)
        var order = Array(texts.indices)
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
        return LabelledTexts(texts: order.map { texts[$0] }, labels: order.map { labels[$0] })
    }

    public func slice(_ range: Range<Int>) -> LabelledTexts {
        LabelledTexts(texts: Array(texts[range]), labels: Array(labels[range]))
    }

    /// ids [N, T] (padded with 0, T the longest text, or maxLength if shorter; longer texts
    /// are cut to their first maxLength tokens), lengths [N], labels [N]; all int32.
    public func arrays(_ vocabulary: Vocabulary, maxLength: Int?) -> (ids: NpyArray, lengths: NpyArray, labels: NpyArray) {
        let longest = texts.map(\.count).max() ?? 1
        let T = min(longest, maxLength ?? longest)
        var ids = [Int32](repeating: Vocabulary.padding, count: texts.count * T)
        var lengths: [Int32] = []
        for (n, text) in texts.enumerated() {
            let row = vocabulary.ids(Array(text.prefix(T)))
            for (t, id) in row.enumerated() { ids[n * T + t] = id }
            lengths.append(Int32(row.count))
        }
        return (NpyArray(shape: [texts.count, T], storage: .int32(ids)),
                NpyArray(shape: [texts.count], storage: .int32(lengths)),
                NpyArray(shape: [texts.count], storage: .int32(labels)))
    }
}
