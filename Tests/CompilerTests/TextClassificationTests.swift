import Compiler
import Foundation
import Runtime
import XCTest

/// `rnnc tokenize` (a CSV of labelled texts to --npy arrays), training a classifier on them
/// and `rnnc evaluate`; the tokenizer's rules; the CSV errors, each naming row and column.
final class TextClassificationTests: XCTestCase {
    var work = ""
    override func setUp() { work = TestSupport.temporaryDirectory("texts") }

    func testTokensAreLowercasedWordsAndPunctuation() {
        XCTAssertEqual(Vocabulary.tokens("The Rock's ''Conan'', don't -- 21st!"),
                       ["the", "rock's", "'", "'", "conan", "'", "'", ",", "don't", "-", "-", "21st", "!"])
        XCTAssertEqual(Vocabulary.tokens("  "), [])
    }

    func testVocabularyIsFittedByFrequencyWithAMinimumCount() {
        let v = Vocabulary.fit([["b", "a", "c"], ["a", "b", "d"], ["a"]], size: 10, minCount: 2)
        XCTAssertEqual(v.words, ["<pad>", "<unk>", "a", "b"])
        XCTAssertEqual(v.ids(["b", "zzz", "a"]), [3, Vocabulary.unknown, 2])
        XCTAssertEqual(Vocabulary.fit([["b", "a", "c"], ["a", "b"]], size: 3).words, ["<pad>", "<unk>", "a"], "ties: alphabetical")
    }

    func testTokenizeTrainAndEvaluateTheBundledReviews() throws {
        // The first 400 reviews of the bundled data set: a quick end-to-end run.
        let full = try String(contentsOfFile: TestSupport.path("data/movie_review_sentiment.csv"), encoding: .utf8)
        let csv = "\(work)/reviews.csv"
        try full.split(separator: "\n").prefix(401).joined(separator: "\n").write(toFile: csv, atomically: true, encoding: .utf8)
        let out = "\(work)/data"
        let t = TestSupport.runCLI(["tokenize", csv, "--vocab", "20000", "--test-fraction", "0.25", "-o", out])
        XCTAssertEqual(t.status, 0, t.err)
        XCTAssertTrue(t.out.contains("300 in \(out)/train, 100 in \(out)/test"), t.out)
        let words = try Npy.read(path: "\(out)/train/words.npy")
        let lengths = try XCTUnwrap(Npy.read(path: "\(out)/train/lengths.npy").asInt64())
        let labels = try XCTUnwrap(Npy.read(path: "\(out)/train/label.npy").asInt64())
        XCTAssertEqual(words.shape[0], 300)
        XCTAssertEqual(lengths.count, 300)
        XCTAssertTrue(Set(labels).isSubset(of: [0, 1]))
        let ids = try XCTUnwrap(words.asInt64())
        let T = words.shape[1]
        for (n, len) in lengths.enumerated() {
            XCTAssertTrue(ids[(n * T)..<(n * T + Int(len))].allSatisfy { $0 >= 1 }, "no padding inside a text")
            XCTAssertTrue(ids[(n * T + Int(len))..<((n + 1) * T)].allSatisfy { $0 == 0 }, "padding after it")
        }
        let vocab = try String(contentsOfFile: "\(out)/vocab.txt", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(Array(vocab.prefix(2)), ["<pad>", "<unk>"])
        XCTAssertLessThan(ids.max()!, Int64(vocab.count))

        let save = "\(work)/s.safetensors"
        let r = TestSupport.runCLI(["train", TestSupport.path("models/sentiment_gru.rnn"), "--npy", "\(out)/train", "--epochs", "1",
                                    "--batch", "50", "--valid-fraction", "0.2", "--save", save])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("valid accuracy") || r.out.contains("valid accuracy"), r.err)
        let e = TestSupport.runCLI(["evaluate", TestSupport.path("models/sentiment_gru.rnn"), "--weights", save, "--npy", "\(out)/test"])
        XCTAssertEqual(e.status, 0, e.err)
        XCTAssertTrue(e.out.hasPrefix("100 examples: loss "), e.out)
        XCTAssertTrue(e.out.contains("accuracy"), e.out)
    }

    func testBadCSVsNameTheRowAndColumn() throws {
        func tokenize(_ text: String, _ extra: [String] = []) -> (status: Int32, err: String) {
            let csv = "\(work)/bad.csv"
            try? text.write(toFile: csv, atomically: true, encoding: .utf8)
            let r = TestSupport.runCLI(["tokenize", csv, "-o", "\(work)/never"] + extra)
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(work)/never"), "no output on failure")
            return (r.status, r.err)
        }
        var r = tokenize("id,text\n1,good\n")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("no column 'label'"), r.err)
        r = tokenize("text,label\ngood,1\nbad,x\n")
        XCTAssertTrue(r.err.contains("row 3, column 'label': 'x' is not a class label"), r.err)
        r = tokenize("text,label\ngood,1\n\"\",0\n")
        XCTAssertTrue(r.err.contains("row 3, column 'text': the text is empty"), r.err)
        r = tokenize("text,label\ngood,1\n")
        XCTAssertTrue(r.err.contains("too few"), r.err)
        XCTAssertEqual(r.status, 1)
    }
}
