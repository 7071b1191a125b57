import GraphIR

/// The activation arena, laid out at compile time.
///
/// Every top-level value that needs memory lives from the op that defines it to the last
/// op that reads it (outputs live to the end). Values whose lifetimes do not overlap share
/// a slot. Sizes scale with the run's batch B (and time T for sequences), so the plan holds
/// slot widths and the generated code turns them into offsets once per call:
/// `off += B * T * width` — no allocation happens after that.
///
/// The training step plans its backward buffers the same way (`BackwardPlan`), keyed by
/// their C names, with the stages of the backward pass as its op indices.
struct MemoryPlan<Key: Hashable> {
    /// B x width, B x T x width, or one window of a reverse scan: rnnc_window_steps(B, T) x B
    /// rows of width.
    enum Extent: Hashable { case perExample, perStep, perWindowRow }

    struct Slot {
        var extent: Extent
        var width: Int
        var freeAfter: Int
        /// A C condition on B and T outside which the slot is empty: it holds a hoisted input
        /// projection that recurrences compute step by step from RNNC_STREAM_MIN_BATCH
        /// examples on (`StreamedProjections`), or an embedding's rows that a projected
        /// embedding's table replaces (`ProjectedEmbeddings`). nil: always needed.
        var onlyWhen: String? = nil
    }

    private(set) var slots: [Slot] = []
    private(set) var slotOf: [Key: Int] = [:]

    /// `requests` in definition order: value, extent, floats per example (or per step), the
    /// op index that defines it and the last op index that reads it. Values `onlyWhen` a
    /// condition holds share slots only with values of the same condition.
    init(requests: [(value: Key, extent: Extent, width: Int, defined: Int, lastUse: Int)],
         onlyWhen: [Key: String] = [:]) {
        for r in requests {
            let condition = onlyWhen[r.value]
            // First fit among slots of the same kind that are free before this definition: of
            // the same condition, or always needed and already as wide (so sharing it costs
            // nothing in the calls where the value would have had no room).
            if let s = slots.indices.first(where: {
                slots[$0].extent == r.extent && slots[$0].freeAfter < r.defined
                    && (slots[$0].onlyWhen == condition || (slots[$0].onlyWhen == nil && r.width <= slots[$0].width))
            }) {
                slots[s].width = max(slots[s].width, r.width)
                slots[s].freeAfter = r.lastUse
                slotOf[r.value] = s
            } else {
                slotOf[r.value] = slots.count
                slots.append(Slot(extent: r.extent, width: r.width, freeAfter: r.lastUse, onlyWhen: condition))
            }
        }
    }

    /// Floats of the arena for a batch and sequence length, as a C expression.
    func sizeExpression() -> String {
        if slots.isEmpty { return "0" }
        return slots.indices.map(sizeExpression(ofSlot:)).joined(separator: " + ")
    }

    /// Floats of one slot, as a C expression of B and T.
    func sizeExpression(ofSlot i: Int) -> String {
        let slot = slots[i]
        return Self.sizeExpression(slot.extent, width: slot.width, onlyWhen: slot.onlyWhen)
    }

    /// Floats of `width` per row of an extent, as a C expression of B and T (0 where
    /// `onlyWhen` does not hold).
    static func sizeExpression(_ extent: Extent, width: Int, onlyWhen: String? = nil) -> String {
        let rows: String
        switch extent {
        case .perExample: rows = "(size_t)B"
        case .perStep: rows = "(size_t)B * T"
        case .perWindowRow: rows = "(size_t)rnnc_window_steps(B, T) * B"
        }
        let size = "rnnc_round16(\(rows) * \(width))"
        return onlyWhen.map { "(\($0) ? \(size) : 0)" } ?? size
    }
}
