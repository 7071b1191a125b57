import ArgumentParser
import Foundation
import Runtime

struct ForecastCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecast",
        abstract: "One-step forecasts over a series' validation tail, in its own units, against the naive last-value forecast."
    )

    @Argument(help: "A forecaster (.rnn or compiled directory) trained with rnnc train --csv.") var model: String
    @Option(help: "Its trained weights (they carry the scaling and window).") var weights: String
    @Option(help: "The CSV file.") var csv: String
    @Option(help: "The column to forecast.") var column: String
    @Option(help: "Write actual against predicted as SVG.") var plot: String?
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func run() {
        guarded {
            let dir = try ModelResolver.compiledDirectory(for: model)
            let compiled = try CompiledModel(directory: dir, weights: weights)
            if let threads { compiled.setThreads(threads) }
            guard let scaling = SeriesScaling(metadata: try Safetensors.read(path: weights).metadata) else {
                throw FormatError("\(weights) has no series scaling: train the model with rnnc train --csv")
            }
            let series = try TimeSeries.read(csv: csv, column: column).values
            let start = scaling.validStart > scaling.window && scaling.validStart < series.count ? scaling.validStart
                : max(scaling.window, series.count - series.count / 10)
            guard start < series.count else { throw FormatError("\(csv): no values past the training part to forecast") }
            let windows = scaling.windows(series, targets: start..<series.count)
            let out = try compiled.run(batch: windows.next.count, time: scaling.window, inputs: [.floats(windows.inputs)], lengths: nil)[0]
            let predicted = out.values.map { scaling.unscale($0) }
            let actual = Array(series[start...])
            let naive = Array(series[(start - 1)..<(series.count - 1)])
            func rmse(_ p: [Double]) -> Double { (zip(p, actual).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Double(actual.count)).squareRoot() }
            func mae(_ p: [Double]) -> Double { zip(p, actual).map { abs($0 - $1) }.reduce(0, +) / Double(actual.count) }
            print("forecast of '\(column)' over values \(start)..<\(series.count) (\(actual.count) one-step forecasts, window \(scaling.window)):")
            print(String(format: "  model       RMSE %.4f  MAE %.4f", rmse(predicted), mae(predicted)))
            print(String(format: "  last value  RMSE %.4f  MAE %.4f", rmse(naive), mae(naive)))
            print(rmse(predicted) < rmse(naive) ? "  the model beats the naive forecast" : "  the model does not beat the naive forecast")
            if let plot {
                let svg = SVGPlot.lines(title: "\(column): actual and one-step forecasts", xLabel: "index in the series", yLabel: column,
                                        series: [.init(name: "actual", values: actual, color: "#222222"),
                                                 .init(name: "rnnc forecast", values: predicted, color: "#d62728"),
                                                 .init(name: "last value", values: naive, color: "#aaaaaa")],
                                        xStart: Double(start))
                try AtomicFile.write(Array(svg.utf8), to: plot)
                print("wrote \(plot)")
            }
        }
    }
}
