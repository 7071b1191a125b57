import GraphIR

/// The activation arena, laid out at compile time.
///
/// Every top-level value that needs memory lives from the op that defines it to the last
/// op that reads it (outputs live to the end). Values whose lifetimes do not overlap share
/// a slot. Sizes scale with the run's batch B (and time T for sequences), so the plan holds
/// slot widths and the generated code turns them into offsets once per call:
/// `off += B * T * width` — no allocation happens after that.
struct MemoryPlan {
    enum Extent: Hashable { case perExample, perStep }   // B x width, or B x T x width

    struct Slot {
        var extent: Extent
        var width: Int
        var freeAfter: Int
        /// Holds a hoisted input projection that recurrences compute step by step from
        /// RNNC_STREAM_MIN_BATCH examples on (`StreamedProjections`): empty for such batches.
        var onlyBelowStreamBatch = false
    }

    private(set) var slots: [Slot] = []
    private(set) var slotOf: [ValueID: Int] = [:]

    /// `requests` in definition order: value, extent, floats per example (or per step), the
    /// op index that defines it and the last op index that reads it. `streamed` values share
    /// slots only among themselves: those are sized only below the streaming threshold.
    init(requests: [(value: ValueID, extent: Extent, width: Int, defined: Int, lastUse: Int)],
         streamed: Set<ValueID> = []) {
        for r in requests {
            let onlyBelow = streamed.contains(r.value)
            // First fit among slots of the same kind that are free before this definition.
            if let s = slots.indices.first(where: {
                slots[$0].onlyBelowStreamBatch == onlyBelow && slots[$0].extent == r.extent && slots[$0].freeAfter < r.defined
            }) {
                slots[s].width = max(slots[s].width, r.width)
                slots[s].freeAfter = r.lastUse
                slotOf[r.value] = s
            } else {
                slotOf[r.value] = slots.count
                slots.append(Slot(extent: r.extent, width: r.width, freeAfter: r.lastUse, onlyBelowStreamBatch: onlyBelow))
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
        let size = "rnnc_round16(\(slot.extent == .perStep ? "(size_t)B * T" : "(size_t)B") * \(slot.width))"
        return slot.onlyBelowStreamBatch ? "(B < RNNC_STREAM_MIN_BATCH ? \(size) : 0)" : size
    }
}
