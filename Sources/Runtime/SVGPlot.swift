/// A small SVG line chart: axes with a few labelled ticks and one polyline per series.
/// Enough for loss curves and forecast-against-actual plots, readable in any browser.
public enum SVGPlot {
    public struct Series {
        public var name: String
        public var values: [Double]
        public var color: String
        public init(name: String, values: [Double], color: String) { self.name = name; self.values = values; self.color = color }
    }

    public static func lines(title: String, xLabel: String, yLabel: String, series: [Series], xStart: Double = 0) -> String {
        let (w, h, left, right, top, bottom) = (800.0, 420.0, 70.0, 20.0, 40.0, 50.0)
        let finite = series.flatMap(\.values).filter(\.isFinite)
        var lo = finite.min() ?? 0, hi = finite.max() ?? 1
        if hi - lo < 1e-12 { lo -= 1; hi += 1 }
        let count = max(2, series.map(\.values.count).max() ?? 2)
        func x(_ i: Int) -> Double { left + (w - left - right) * Double(i) / Double(count - 1) }
        func y(_ v: Double) -> Double { top + (h - top - bottom) * (1 - (v - lo) / (hi - lo)) }
        func fmt(_ v: Double) -> String {
            abs(v) >= 1000 || (abs(v) < 0.01 && v != 0) ? String(format: "%.2e", v) : String(format: "%.3g", v)
        }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(w / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>\n"
        s += "<line x1=\"\(left)\" y1=\"\(h - bottom)\" x2=\"\(w - right)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        for k in 0...4 {
            let v = lo + (hi - lo) * Double(k) / 4
            s += "<text x=\"\(left - 6)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(fmt(v))</text>\n"
            s += "<line x1=\"\(left)\" y1=\"\(y(v))\" x2=\"\(w - right)\" y2=\"\(y(v))\" stroke=\"#ddd\"/>\n"
            let i = (count - 1) * k / 4
            s += "<text x=\"\(x(i))\" y=\"\(h - bottom + 18)\" text-anchor=\"middle\">\(fmt(xStart + Double(i)))</text>\n"
        }
        s += "<text x=\"\(w / 2)\" y=\"\(h - 10)\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        s += "<text x=\"16\" y=\"\(h / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(h / 2))\">\(escape(yLabel))</text>\n"
        for (n, line) in series.enumerated() {
            let points = line.values.enumerated().filter { $0.element.isFinite }.map { "\(String(format: "%.1f", x($0.offset))),\(String(format: "%.1f", y($0.element)))" }
            s += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"1.5\" points=\"\(points.joined(separator: " "))\"/>\n"
            s += "<text x=\"\(w - right - 150)\" y=\"\(top + 16 * Double(n + 1))\" fill=\"\(line.color)\">\(escape(line.name))</text>\n"
        }
        return s + "</svg>\n"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}

import Foundation
