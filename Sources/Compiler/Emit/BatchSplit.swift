import GraphIR

/// A recurrence in inference run as shares of its examples: each thread runs the whole time
/// loop on its own rows, on one thread, with no barrier, where every share has enough rows
/// to take the whole batch's paths and the threads' copies of the weights fit the caches
/// (`rnnc_batch_split` decides at run time, from B, the thread count and the weights' size,
/// and says what was measured). Split by columns instead, a step waits at a barrier, which
/// costs as much as the arithmetic of a small step (H = 64).
/// Stateful runs keep the whole batch (a carried state's rows are state by state, not
/// example by example), and so do recurrences that run beside another
/// (`ConcurrentRecurrences`), which already have a thread each.
struct BatchSplit {
    let graph: Graph

    /// Bytes of weights the recurrence reads at every step: its step's products' (the
    /// recurrent weights) and those of the input projections it computes step by step.
    func weightBytes(scan: Op, streamed: [Op]) -> Int {
        let recurrent = scan.region?.ops.filter { $0.kind == .matvec }.map { $0.operands[0] } ?? []
        let projections = streamed.map { $0.operands[1] }
        return (recurrent + projections).reduce(0) { $0 + 4 * graph.type(of: $1).featureCount }
    }

    /// The C that runs `share` (one thread's call of the recurrence, on rows [b0, b1)) on
    /// every thread when the split pays, and `whole` (the call on the whole batch, on the
    /// team) when it does not.
    func code(scan: Op, streamed: [Op], share: String, whole: String) -> String {
        var s = "    if (!m->stateful && rnnc_batch_split(threads, B, \(weightBytes(scan: scan, streamed: streamed)))) {\n"
        s += "        /* each thread its share of the examples through every step, with no barrier (rnnc_batch_split) */\n"
        s += "        #pragma omp parallel num_threads(threads)\n"
        s += "        {\n"
        s += "            int b0, b1;\n"
        s += "            rnnc_split(B, rnnc_thread_id(), rnnc_thread_count(), &b0, &b1);\n"
        s += "            " + share.trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
        s += "        }\n"
        s += "    } else\n"
        s += "        " + whole.trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
        return s
    }
}
