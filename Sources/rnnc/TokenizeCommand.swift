import ArgumentParser
import Foundation
import Runtime

/// `rnnc tokenize`: a CSV of labelled texts to the arrays `rnnc train --npy` reads, split
/// into a training and a held-out test part, with the vocabulary fitted on the training
/// part only.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Turn a CSV of labelled texts into word ids for --npy training: DIR/train, DIR/test, DIR/vocab.txt.",
        discussion: """
        Tokens are lower-cased words (letters and digits, apostrophes inside words kept) and \
        punctuation marks. Id 0 pads, id 1 is any word outside the vocabulary, ids 2.. are the \
        training part's words seen at least --min-count times, most frequent first. Each part gets INPUT.npy [N, T] (int32, \
        right-padded), lengths.npy and TARGET.npy; vocab.txt has one token per line, line i \
        holding id i.
        """
    )

    @Argument(help: "The CSV file (with a header row).") var csv: String
    @Option(help: "The column holding the text.") var textColumn: String = "text"
    @Option(help: "The column holding the class label (0, 1, ...).") var labelColumn: String = "label"
    @Option(help: "Ids in all, the two markers included: the model's embedding vocab.") var vocab: Int = 20000
    @Option(help: "Keep only words seen at least this often in the training part (the rest share the unknown id).") var minCount: Int = 2
    @Option(help: "The share of the rows held out as the test part.") var testFraction: Double = 0.1
    @Option(help: "Cut texts to this many tokens.") var maxLength: Int?
    @Option(help: "The seed of the shuffle before the split.") var seed: UInt64 = 1
    @Option(help: "The model input the ids feed.") var input: String = "words"
    @Option(help: "The model target the labels feed.") var target: String = "label"
    @Option(name: .shortAndLong, help: "The output directory.") var output: String

    func validate() throws {
        guard vocab >= 3 else { throw ValidationError("--vocab must be at least 3 (padding, unknown and one word)") }
        guard testFraction > 0, testFraction < 1 else { throw ValidationError("--test-fraction must be between 0 and 1") }
        if let maxLength, maxLength < 1 { throw ValidationError("--max-length must be at least 1") }
        guard minCount >= 1 else { throw ValidationError("--min-count must be at least 1") }
    }

    func run() {
        guarded {
            let all = try LabelledTexts.read(csv: csv, textColumn: textColumn, labelColumn: labelColumn).shuffled(seed: seed)
            let testCount = Int((Double(all.texts.count) * testFraction).rounded())
            guard testCount >= 1, testCount < all.texts.count else {
                throw FormatError("\(csv): \(all.texts.count) rows are too few to hold out \(testFraction) of them")
            }
            let train = all.slice(0..<(all.texts.count - testCount))
            let test = all.slice((all.texts.count - testCount)..<all.texts.count)
            let vocabulary = Vocabulary.fit(train.texts, size: vocab, minCount: minCount)
            // Everything goes to a temporary directory first, renamed into place at the end:
            // a failure never leaves half of a data set.
            let temporary = output + ".partial-\(getpid())"
            let fm = FileManager.default
            try? fm.removeItem(atPath: temporary)
            do {
                for (part, texts) in [("train", train), ("test", test)] {
                    try fm.createDirectory(atPath: "\(temporary)/\(part)", withIntermediateDirectories: true)
                    let arrays = texts.arrays(vocabulary, maxLength: maxLength)
                    try Npy.write(arrays.ids, to: "\(temporary)/\(part)/\(input).npy")
                    try Npy.write(arrays.lengths, to: "\(temporary)/\(part)/lengths.npy")
                    try Npy.write(arrays.labels, to: "\(temporary)/\(part)/\(target).npy")
                }
                try AtomicFile.write(Array((vocabulary.words.joined(separator: "\n") + "\n").utf8), to: "\(temporary)/vocab.txt")
                if fm.fileExists(atPath: output) { try fm.removeItem(atPath: output) }
                try fm.moveItem(atPath: temporary, toPath: output)
            } catch {
                try? fm.removeItem(atPath: temporary)
                throw error
            }
            let known = train.texts.flatMap { vocabulary.ids($0) }
            let unknownShare = Double(known.filter { $0 == Vocabulary.unknown }.count) / Double(max(1, known.count))
            let testIds = test.texts.flatMap { vocabulary.ids($0) }
            let testUnknown = Double(testIds.filter { $0 == Vocabulary.unknown }.count) / Double(max(1, testIds.count))
            print("\(all.texts.count) texts: \(train.texts.count) in \(output)/train, \(test.texts.count) in \(output)/test")
            print("vocabulary: \(vocabulary.size) ids (\(vocabulary.size - 2) words of \(Set(train.texts.joined()).count) in the training part); "
                  + String(format: "unknown tokens %.1f%% (train), %.1f%% (test)", unknownShare * 100, testUnknown * 100))
            print("longest text: \(all.texts.map(\.count).max()!) tokens\(maxLength.map { ", cut to \($0)" } ?? "")")
        }
    }
}
