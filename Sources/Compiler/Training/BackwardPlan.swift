/// Where the buffers of a training step's backward half live: slots of the training arena,
/// shared by lifetime.
///
/// The backward half is a list of stages: the loss (stage 0), then one rule per op in
/// reverse order. Its buffers are the activations' gradients (`g<value>`) and each reverse
/// scan's workspace and window (`bws<scan>`, `hgy<scan>`). A buffer lives from the first
/// stage that names it (the loss, or the rule of a value's last consumer) to the last (the
/// rule of the op that defined the value, which reads its gradient). Buffers whose lives do
/// not overlap share a slot, as activations do in inference (`MemoryPlan`).
///
/// Rules sum into gradients (+=), so a gradient is zeroed just before its first stage,
/// unless that is the loss, which writes its gradient whole. A reverse scan writes its
/// workspace before reading it.
///
/// In a stack of layers the gradients form a chain (logits, hidden, dropout, hidden,
/// embedding for char_lstm) of which at most two are alive at once, and the layers' reverse
/// scans run one after the other.
struct BackwardPlan {
    struct Buffer {
        var name: String
        var extent: MemoryPlan<String>.Extent
        var width: Int
        /// A C condition outside which the buffer is empty (`MemoryPlan.Slot.onlyWhen`).
        var onlyWhen: String? = nil
        /// Summed into, so zeroed before its first stage (after the loss).
        var zeroed = true
    }

    private let plan: MemoryPlan<String>
    /// Planned buffers, in order of their first stage, with it.
    private let lives: [(buffer: Buffer, first: Int)]

    /// `stages`: the C text of each stage. A buffer no stage names needs no room.
    /// `together`: runs of stages that may run at the same time (two recurrences' rules
    /// side by side: `ConcurrentRecurrences`); a buffer named in one lives for all of it,
    /// and is zeroed before its first stage.
    init(buffers: [Buffer], stages: [String], together: [ClosedRange<Int>] = []) {
        var lives: [(buffer: Buffer, order: Int, first: Int, last: Int)] = []
        for (order, b) in buffers.enumerated() {
            let named = stages.indices.filter { CEmitter.mentions(stages[$0], b.name) }
            guard var first = named.first, var last = named.last else { continue }
            for run in together {
                if run.contains(first) { first = run.lowerBound }
                if run.contains(last) { last = run.upperBound }
            }
            lives.append((b, order, first, last))
        }
        // First fit in order of first stage (MemoryPlan's requests come in definition order).
        lives.sort { ($0.first, $0.order) < ($1.first, $1.order) }
        plan = MemoryPlan(requests: lives.map { ($0.buffer.name, $0.buffer.extent, $0.buffer.width, $0.first, $0.last) },
                          onlyWhen: Dictionary(uniqueKeysWithValues: lives.compactMap { l in l.buffer.onlyWhen.map { (l.buffer.name, $0) } }))
        self.lives = lives.map { ($0.buffer, $0.first) }
    }

    /// Floats of each slot, as C expressions of B and T: the training arena's pieces
    /// `bslot0`, `bslot1`, ...
    var slotSizes: [String] { plan.slots.indices.map(plan.sizeExpression(ofSlot:)) }

    /// Each buffer's name for its slot.
    func declarations() -> String {
        var s = "    /* the backward pass's buffers: slots shared by lifetime (BackwardPlan) */\n"
        for (b, _) in lives { s += "    float *\(b.name) = bslot\(plan.slotOf[b.name]!);\n" }
        return s
    }

    /// Zeroing of the gradients whose life starts at `stage` (a rule; the loss writes its
    /// gradient whole).
    func zeroing(before stage: Int) -> String {
        guard stage > 0 else { return "" }
        var s = ""
        for (b, first) in lives where first == stage && b.zeroed {
            let size = MemoryPlan<String>.sizeExpression(b.extent, width: b.width, onlyWhen: b.onlyWhen)
            s += "    memset(\(b.name), 0, \(size) * sizeof(float));\n"
        }
        return s
    }
}
