import Foundation

/// Loss curves of one or several runs, as a self-contained HTML page of SVG charts (training
/// loss raw and smoothed, validation loss, learning rate, each against the optimiser step) and
/// as CSV for spreadsheets, pandas or any plotting tool.
///
/// Usage:
/// ```
/// let curves = LossCurves(runs: [try MetricsLog(runDirectory: "checkpoints/medical")])
/// try curves.html().write(toFile: "curves.html", atomically: true, encoding: .utf8)
/// ```
public struct LossCurves: Sendable {
    public var runs: [MetricsLog]
    /// Weight of the newest point in the smoothed training loss (TensorBoard's smoothing is 1 - this).
    public var smoothing: Double

    public init(runs: [MetricsLog], smoothing: Double = 0.6) {
        self.runs = runs
        self.smoothing = smoothing
    }

    static let colors = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7"]

    /// The CSV: a header, then one row per metrics line of every run, `run` first.
    public func csv() -> String {
        let header = "run,step,epoch,loss,lr,grad_norm,tokens_per_s,tokens_seen,val_loss,elapsed_s,time"
        func field(_ v: Double?) -> String { v.map { String($0) } ?? "" }
        func quoted(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        var rows = [header]
        for run in runs {
            for e in run.entries {
                rows.append([quoted(run.name), String(e.step), e.epoch.map(String.init) ?? "", field(e.loss), field(e.learningRate),
                             field(e.gradNorm), field(e.tokensPerSecond), e.tokensSeen.map(String.init) ?? "", field(e.validationLoss),
                             field(e.elapsedSeconds), quoted(e.time ?? "")].joined(separator: ","))
            }
        }
        return rows.joined(separator: "\n") + "\n"
    }

    /// Exponential moving average, as TensorBoard's smoothing slider, debiased at the start.
    func smoothed(_ values: [Double]) -> [Double] {
        var average = 0.0, weight = 0.0
        return values.map { v in
            average = (1 - smoothing) * average + smoothing * v
            weight = (1 - smoothing) * weight + smoothing
            return average / weight
        }
    }

    /// The page: one chart per quantity, one colour per run.
    public func html(title: String = "Loss curves") -> String {
        typealias Series = (label: String, color: String, points: [(Double, Double)], dashed: Bool, faint: Bool, markers: Bool)
        var training: [Series] = [], validation: [Series] = [], rates: [Series] = []
        for (i, run) in runs.enumerated() {
            let color = Self.colors[i % Self.colors.count]
            let losses = run.entries.compactMap { e in e.loss.map { (Double(e.step), $0) } }
            training.append((run.name + " (raw)", color, losses, false, true, false))
            training.append((run.name, color, Array(zip(losses.map(\.0), smoothed(losses.map(\.1)))), false, false, false))
            validation.append((run.name, color, run.entries.compactMap { e in e.validationLoss.map { (Double(e.step), $0) } }, false, false, true))
            rates.append((run.name, color, run.entries.compactMap { e in e.learningRate.map { (Double(e.step), $0) } }, false, false, false))
        }
        var page = "<!doctype html><html><head><meta charset='utf-8'><title>\(Self.escape(title))</title>"
        page += "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}figure{margin:1.5em 0}td,th{padding:2px 10px;text-align:left}</style></head><body>"
        page += "<h1>\(Self.escape(title))</h1><table><tr><th>run</th><th>steps</th><th>first loss</th><th>last loss</th><th>best validation</th><th>metrics</th></tr>"
        for (i, run) in runs.enumerated() {
            let losses = run.entries.compactMap(\.loss), validations = run.entries.compactMap(\.validationLoss)
            page += "<tr><td><span style='color:\(Self.colors[i % Self.colors.count])'>&#9632;</span> \(Self.escape(run.name))</td><td>\(run.entries.last?.step ?? 0)</td>"
            page += "<td>\(losses.first.map { String(format: "%.4f", $0) } ?? "-")</td><td>\(losses.last.map { String(format: "%.4f", $0) } ?? "-")</td>"
            page += "<td>\(validations.min().map { String(format: "%.4f", $0) } ?? "-")</td><td>\(Self.escape(run.path))</td></tr>"
        }
        page += "</table>"
        page += Self.chart(title: "Training loss (faint: per step; solid: smoothed, weight \(smoothing) on the newest step)", yLabel: "loss", series: training)
        page += Self.chart(title: "Validation loss", yLabel: "loss", series: validation)
        page += Self.chart(title: "Learning rate", yLabel: "lr", series: rates)
        page += "</body></html>\n"
        return page
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "'", with: "&#39;")
    }

    /// "Nice" tick values covering [low, high]: steps of 1, 2 or 5 times a power of ten.
    static func ticks(_ low: Double, _ high: Double, count: Int = 5) -> [Double] {
        guard low.isFinite, high.isFinite, high > low else { return [low] }
        // A range too narrow to label apart (equal losses but for rounding) gets its two ends.
        guard high - low > max(abs(low), abs(high)) * 1e-9 else { return [low, high] }
        let raw = (high - low) / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        // The candidate whose tick count is closest to `count`.
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.min { abs((high - low) / $0 - Double(count)) < abs((high - low) / $1 - Double(count)) } ?? raw
        // Ticks by index, not by adding `step` to a running value: when the range is tiny next to
        // its values (two equal losses but for the last bit), `t + step == t` and adding would
        // never end (it filled memory after a 2-step DPO run whose loss stayed at ln 2).
        let first = ceil(low / step), last = floor(high / step + 1e-9)
        guard step > 0, first.isFinite, last.isFinite, last >= first, last - first <= 1000 else { return [low, high] }
        return stride(from: first, through: last, by: 1).map { $0 * step }
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        return abs(v) < 1e-2 || abs(v) >= 1e5 ? String(format: "%.1e", v) : String(format: "%g", (v * 1e6).rounded() / 1e6)
    }

    static func chart(title: String, yLabel: String,
                      series: [(label: String, color: String, points: [(Double, Double)], dashed: Bool, faint: Bool, markers: Bool)]) -> String {
        let all = series.flatMap(\.points)
        guard !all.isEmpty else { return "<figure><figcaption><b>\(escape(title))</b>: no data</figcaption></figure>" }
        let width = 860.0, height = 280.0, left = 70.0, right = 20.0, top = 30.0, bottom = 40.0
        let xs = all.map(\.0), ys = all.map(\.1)
        var (x0, x1) = (xs.min()!, xs.max()!)
        var (y0, y1) = (ys.min()!, ys.max()!)
        if x1 == x0 { x0 -= 1; x1 += 1 }
        if y1 == y0 { let pad = max(abs(y0) * 0.05, 1e-9); y0 -= pad; y1 += pad }
        let pad = (y1 - y0) * 0.05
        y0 -= pad; y1 += pad
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (width - left - right) }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom) }
        var svg = "<svg xmlns='http://www.w3.org/2000/svg' width='\(Int(width))' height='\(Int(height))' font-family='sans-serif' font-size='11'>"
        svg += "<text x='\(left)' y='16' font-weight='bold' font-size='13'>\(escape(title))</text>"
        for t in ticks(y0, y1) {
            svg += String(format: "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#eee'/>", left, py(t), width - right, py(t))
            svg += String(format: "<text x='%.1f' y='%.1f' text-anchor='end'>%@</text>", left - 6, py(t) + 4, label(t))
        }
        for t in ticks(x0, x1) {
            svg += String(format: "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ccc'/>", px(t), height - bottom, px(t), height - bottom + 4)
            svg += String(format: "<text x='%.1f' y='%.1f' text-anchor='middle'>%@</text>", px(t), height - bottom + 16, label(t))
        }
        svg += String(format: "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#888'/>", left, height - bottom, width - right, height - bottom)
        svg += String(format: "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#888'/>", left, top, left, height - bottom)
        svg += "<text x='\(Int(width - right))' y='\(Int(height - 6))' text-anchor='end'>step</text>"
        svg += "<text x='14' y='\(Int(top + 10))' transform='rotate(-90 14 \(Int(top + 10)))' text-anchor='end'>\(escape(yLabel))</text>"
        for s in series where !s.points.isEmpty {
            let d = s.points.enumerated().map { i, p in String(format: "%@%.1f,%.1f", i == 0 ? "M" : "L", px(p.0), py(p.1)) }.joined()
            svg += "<path class='curve' d='\(d)' fill='none' stroke='\(s.color)' stroke-width='\(s.faint ? 1 : 2)'\(s.faint ? " stroke-opacity='0.3'" : "")><title>\(escape(s.label))</title></path>"
            if s.markers {
                for p in s.points { svg += String(format: "<circle cx='%.1f' cy='%.1f' r='3' fill='%@'/>", px(p.0), py(p.1), s.color) }
            }
        }
        svg += "</svg>"
        let legend = series.filter { !$0.faint }.map { "<span style='color:\($0.color)'>&#9632;</span> \(escape($0.label))" }.joined(separator: " &nbsp; ")
        return "<figure>\(svg)<figcaption>\(legend)</figcaption></figure>"
    }

    /// For tests: `smoothed` and `ticks`.
    public func smoothedForTesting(_ values: [Double]) -> [Double] { smoothed(values) }
    public static func ticksForTesting(_ low: Double, _ high: Double) -> [Double] { ticks(low, high) }
}
