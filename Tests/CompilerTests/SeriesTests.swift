import Compiler
import Foundation
import Runtime
import XCTest

/// `rnnc train --csv`, `rnnc run` in the series' units and `rnnc forecast`, on the bundled
/// sunspot series; and the CSV errors, each naming its row and column.
final class SeriesTests: XCTestCase {
    var work = ""
    override func setUp() { work = TestSupport.temporaryDirectory("series") }

    func testTrainRunAndForecastInTheSeriesUnits() throws {
        let model = TestSupport.path("models/price_rnn.rnn"), csv = TestSupport.path("data/sunspots_monthly.csv")
        let save = "\(work)/sun.safetensors"
        let r = TestSupport.runCLI(["train", model, "--csv", csv, "--column", "sunspots", "--window", "12", "--valid-fraction", "0.1",
                                    "--epochs", "3", "--save", save, "--plot", "\(work)/loss.svg", "--threads", "2"])
        XCTAssertEqual(r.status, 0, r.err)
        let meta = try Safetensors.read(path: save).metadata
        let scaling = try XCTUnwrap(SeriesScaling(metadata: meta))
        XCTAssertEqual(scaling.window, 12)
        // Fitted on the training part only (the first 90%).
        let values = try TimeSeries.read(csv: csv, column: "sunspots").values
        let trainPart = values[0..<scaling.validStart]
        XCTAssertEqual(scaling.mean, trainPart.reduce(0, +) / Double(trainPart.count), accuracy: 1e-9)
        XCTAssertEqual(scaling.validStart, values.count - Int(Double(values.count) * 0.1))

        // rnnc run takes a raw window and answers in sunspots.
        let window = Array(values[(scaling.validStart - 12)..<scaling.validStart]).map(Float.init)
        try Npy.write(NpyArray(shape: [1, 12, 1], storage: .float32(window)), to: "\(work)/w.npy")
        let run = TestSupport.runCLI(["run", model, "--weights", save, "--input", "window=\(work)/w.npy", "--out", work])
        XCTAssertEqual(run.status, 0, run.err)
        let y = try Npy.read(path: "\(work)/y.npy").asFloats()[0]
        XCTAssertGreaterThan(y, -50)
        XCTAssertLessThan(y, 300, "a sunspot number, not a standardized one")

        let f = TestSupport.runCLI(["forecast", model, "--weights", save, "--csv", csv, "--column", "sunspots", "--plot", "\(work)/f.svg"])
        XCTAssertEqual(f.status, 0, f.err)
        XCTAssertTrue(f.out.contains("last value  RMSE"), f.out)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(work)/f.svg"))
        XCTAssertTrue(try String(contentsOfFile: "\(work)/loss.svg", encoding: .utf8).hasPrefix("<svg"))
    }

    func testCSVErrorsNameRowAndColumn() throws {
        let model = TestSupport.path("models/price_rnn.rnn")
        try "month,value\n2000-01,1\n2000-02,two\n".write(toFile: "\(work)/bad.csv", atomically: true, encoding: .utf8)
        var r = TestSupport.runCLI(["train", model, "--csv", "\(work)/bad.csv", "--column", "value", "--window", "1", "--save", "\(work)/x.safetensors"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("row 3, column 'value': 'two' is not a number"), r.err)
        r = TestSupport.runCLI(["train", model, "--csv", "\(work)/bad.csv", "--column", "price", "--window", "1", "--save", "\(work)/x.safetensors"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("no column 'price' (columns: month, value)"), r.err)
        try "t,v\n1,1\n2,2\n3,3\n".write(toFile: "\(work)/short.csv", atomically: true, encoding: .utf8)
        r = TestSupport.runCLI(["train", model, "--csv", "\(work)/short.csv", "--column", "v", "--window", "5", "--save", "\(work)/x.safetensors"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("too few for windows of 5"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(work)/x.safetensors"))
    }
}
