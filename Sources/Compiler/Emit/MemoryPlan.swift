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
    }

    private(set) var slots: [Slot] = []
    private(set) var slotOf: [ValueID: Int] = [:]

    /// `requests` in definition order: value, extent, floats per example (or per step), the
    /// op index that defines it and the last op index that reads it.
    init(requests: [(value: ValueID, extent: Extent, width: Int, defined: Int, lastUse: Int)]) {
        for r in requests {
            // First fit among slots of the same extent that are free before this definition.
            if let s = slots.indices.first(where: { slots[$0].extent == r.extent && slots[$0].freeAfter < r.defined }) {
                slots[s].width = max(slots[s].width, r.width)
                slots[s].freeAfter = r.lastUse
                slotOf[r.value] = s
            } else {
                slotOf[r.value] = slots.count
                slots.append(Slot(extent: r.extent, width: r.width, freeAfter: r.lastUse))
            }
        }
    }

    /// Floats of the arena for a batch and sequence length, as a C expression.
    func sizeExpression() -> String {
        if slots.isEmpty { return "0" }
        return slots.map { "rnnc_round16(\($0.extent == .perStep ? "(size_t)B * T" : "(size_t)B") * \($0.width))" }
            .joined(separator: " + ")
    }
}
