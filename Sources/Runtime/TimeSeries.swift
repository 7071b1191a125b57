import Foundation

/// One numeric column of a CSV file, and the sliding windows a forecaster trains on.
public struct TimeSeries: Sendable {
    public var values: [Double]
    public var column: String

    /// Reads COLUMN of a CSV file with a header row. A missing column, or a cell that is
    /// not a number, is an error naming the row (1-based, the header being row 1) and column.
    public static func read(csv path: String, column: String) throws -> TimeSeries {
        let table = try CSVTable.read(path)
        let index = try table.column(column)
        var values: [Double] = []
        for (row, cells) in table.rows {
            guard index < cells.count else { throw FormatError("\(path): row \(row) has no column '\(column)' (\(cells.count) cells)") }
            let cell = cells[index].trimmingCharacters(in: .whitespaces)
            guard let v = Double(cell), v.isFinite else {
                throw FormatError("\(path): row \(row), column '\(column)': '\(cell)' is not a number")
            }
            values.append(v)
        }
        return TimeSeries(values: values, column: column)
    }
}

/// The standardization a forecaster is trained with: fitted on the training part of the
/// series only, stored in the weight file's metadata, and undone on the way out, so
/// `rnnc run` and `rnnc forecast` answer in the series' own units.
public struct SeriesScaling: Sendable, Equatable {
    public var mean: Double
    public var std: Double
    public var window: Int
    public var validStart: Int

    public init(fitting values: ArraySlice<Double>, window: Int, validStart: Int) {
        let mean = values.reduce(0, +) / Double(max(values.count, 1))
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(values.count, 1))
        self.mean = mean
        self.std = variance > 0 ? variance.squareRoot() : 1
        self.window = window
        self.validStart = validStart
    }

    public func scale(_ v: Double) -> Float { Float((v - mean) / std) }
    public func unscale(_ v: Float) -> Double { Double(v) * std + mean }

    public var metadata: [String: String] {
        ["rnnc_scale_mean": String(mean), "rnnc_scale_std": String(std), "rnnc_window": String(window), "rnnc_valid_start": String(validStart)]
    }

    public init?(metadata: [String: String]) {
        guard let mean = metadata["rnnc_scale_mean"].flatMap(Double.init), let std = metadata["rnnc_scale_std"].flatMap(Double.init),
              let window = metadata["rnnc_window"].flatMap(Int.init) else { return nil }
        self.mean = mean
        self.std = std
        self.window = window
        self.validStart = metadata["rnnc_valid_start"].flatMap(Int.init) ?? 0
    }

    /// Windows of `window` scaled values [M, window, 1] with the next value [M, 1] as
    /// target, for every target index in `targets`.
    public func windows(_ series: [Double], targets: Range<Int>) -> (inputs: [Float], next: [Float]) {
        var inputs: [Float] = [], next: [Float] = []
        for t in targets {
            inputs += series[(t - window)..<t].map(scale)
            next.append(scale(series[t]))
        }
        return (inputs, next)
    }
}
