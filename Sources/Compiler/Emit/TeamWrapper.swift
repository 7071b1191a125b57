/// The C function that runs a top-level fused kernel (forward or backward) on a team:
/// `NAME(rows, ..., threads)` forks a team when the kernel has at least 4096 elements and
/// gives each thread its share of `NAME_part`. Inside a time loop the loop's team calls
/// the `_part` itself.
struct TeamWrapper {
    /// How a kernel's work is shared: by rows, or by rows and (when there are fewer rows
    /// than threads) 16-float blocks of columns. A backward kernel sums into its inputs'
    /// gradients along a row, so only the forward ones split columns.
    enum Split { case rows, rowsAndColumns }

    let name: String
    let params: [String]      // the part's parameters after its block bounds
    let argNames: [String]    // the names they are passed on with
    let width: Int            // floats per row
    let split: Split

    func emit() -> String {
        let list = (["int rows"] + params + ["int threads"]).joined(separator: ",\n" + String(repeating: " ", count: name.count + 13))
        var s = "static void \(name)(\(list)) {\n"
        s += "    int team = (size_t)rows * \(width) >= 4096 ? threads : 1;  /* fewer elements: not worth a fork */\n"
        s += "    #pragma omp parallel num_threads(team) if (team > 1)\n"
        s += "    {\n"
        switch split {
        case .rowsAndColumns:
            s += "        int b0, b1, j0, j1;\n"
            s += "        rnnc_split_rows_cols(rows, \(width), rnnc_thread_id(), rnnc_thread_count(), &b0, &b1, &j0, &j1);\n"
            s += "        \(name)_part(" + (["b0", "b1", "j0", "j1"] + argNames).joined(separator: ", ") + ");\n"
        case .rows:
            s += "        int b0, b1;\n"
            s += "        rnnc_split(rows, rnnc_thread_id(), rnnc_thread_count(), &b0, &b1);\n"
            s += "        \(name)_part(" + (["b0", "b1"] + argNames).joined(separator: ", ") + ");\n"
        }
        s += "    }\n}\n"
        return s
    }
}
