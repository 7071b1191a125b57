/// The part of the training arena that the forward pass's packed weights and the backward
/// pass's buffers take in turn.
///
/// The forward pass reads the weights packed for its products (`m->pkN`) and its
/// recurrences' workspaces (`wsN`, their states step to step). The loss and the backward
/// pass read the gradients and windows of `BackwardPlan`'s slots and the weights packed
/// transposed (`m->pkTN`), and never the forward's. So while a model trains, the two sets
/// share memory: the forward's sit at the start of the region, and the backward's buffers
/// are carved from the same start once the forward is done. The region is the larger of the
/// two sets, not their sum.
///
/// The forward packings do not survive a backward pass, so the model marks them stale
/// (`m->pk_stale`). A training step packs them again after its update anyway (NAME_derive);
/// `NAME_run` and the next `NAME_gradients` pack them first if nothing did.
///
/// For the GRU at issue 4's shape C (T=50, B=64, I=H=512) the forward's packings and
/// workspace are 6.25 MB and the backward's buffers and W_hh^T 7.9 MB: a step holds 81.8 MB,
/// not 88.1.
struct SharedRegion {
    /// The forward packings: the model's pointer and its floats (a constant).
    var forward: [(pointer: String, size: String)]
    /// Buffers only the forward pass uses (the recurrences' workspaces), after the packings.
    var forwardScratch: [(pointer: String, size: String)] = []
    /// The backward's buffers: `BackwardPlan`'s slots (`bslotN`, declared here), then the
    /// transposed packings (model pointers); floats as C expressions of B and T.
    var slots: [(pointer: String, size: String)]
    var transposed: [(pointer: String, size: String)]
    var backward: [(pointer: String, size: String)] { slots + transposed }

    private static func sum(_ parts: [(pointer: String, size: String)]) -> String {
        parts.isEmpty ? "0" : parts.map(\.size).joined(separator: "\n        + ")
    }

    /// The two sets' floats, as C constants of B and T: `packed_floats` (the packings),
    /// `forward_floats` (with the forward's scratch) and `backward_floats`.
    func sizeDeclarations() -> String {
        var s = "    /* the shared region (SharedRegion): the forward's packings and scratch, then the backward's buffers, in turn */\n"
        s += "    const size_t packed_floats = \(Self.sum(forward));\n"
        s += "    const size_t forward_floats = packed_floats\(forwardScratch.map { " + \($0.size)" }.joined());\n"
        s += "    const size_t backward_floats = \(Self.sum(backward));\n"
        return s
    }

    /// Floats of the region: the larger of the two sets (after `sizeDeclarations`).
    var size: String { "rnnc_max_size(forward_floats, backward_floats)" }
    /// Floats the two sets share: what holding both at once would cost more.
    var shared: String { "(double)forward_floats + (double)backward_floats - (double)\(size)" }

    /// Forgets the region's forward packings when the arena is to be freed: their pointers
    /// would dangle. The next call that reads them allocates and packs them again (NAME_derive).
    func releaseBeforeReallocation() -> String {
        guard !forward.isEmpty else { return "" }
        var s = "        if (m->pk_in_arena) {  /* the packings move with the arena */\n"
        for f in forward { s += "            \(f.pointer) = NULL;\n" }
        s += "            m->pk_in_arena = 0;\n            m->pk_stale = 1;\n        }\n"
        return s
    }

    /// Points the forward packings into the region (freeing their own blocks the first time)
    /// and packs them if they moved or a backward pass wrote over them.
    func placeForward(at base: String, prefix: String) -> String {
        guard let first = forward.first else { return "" }
        var s = "    /* the forward's packed weights, at the start of the shared region (SharedRegion) */\n"
        s += "    if (\(first.pointer) != \(base)) {\n"
        s += "        if (!m->pk_in_arena) {\n"
        for f in forward { s += "            free(\(f.pointer));\n" }
        s += "        }\n"
        s += "        size_t at = 0;\n"
        for f in forward { s += "        \(f.pointer) = \(base) + at; at += \(f.size);\n" }
        s += "        (void)at;\n"
        s += "        m->pk_in_arena = 1;\n        m->pk_stale = 1;\n    }\n"
        s += Self.packIfStale(prefix: prefix)
        return s
    }

    /// Packs the forward's weights again if a backward pass wrote over them: what every
    /// forward (`NAME_run`, `NAME_gradients`) does first.
    static func packIfStale(prefix: String) -> String {
        "    if (m->pk_stale && \(prefix)_derive(m) != 0) return -1;\n"
    }

    /// The forward's scratch after its packings, and the backward's buffers from the
    /// region's start: declarations of the slots and the model's transposed-packing pointers.
    func carve(at base: String) -> String {
        var s = ""
        if !forwardScratch.isEmpty {
            s += "    /* the forward's own buffers, after its packings */\n"
            s += "    size_t at = packed_floats;\n"
            for b in forwardScratch { s += "    float *\(b.pointer) = \(base) + at; at += \(b.size);\n" }
            s += "    at = 0;\n"
        } else {
            s += "    size_t at = 0;\n"
        }
        s += "    /* the backward's buffers, over the forward's once the forward is done */\n"
        for b in slots { s += "    float *\(b.pointer) = \(base) + at; at += \(b.size);\n" }
        for b in transposed { s += "    \(b.pointer) = \(base) + at; at += \(b.size);\n" }
        s += "    (void)at;\n"
        return s
    }
}
