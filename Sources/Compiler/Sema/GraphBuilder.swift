import GraphIR

/// Appends ops to a graph, into the top-level list or into the region being built.
final class GraphBuilder {
    var graph: Graph
    private var blocks: [[Op]] = [[]]

    init(name: String) { graph = Graph(name: name) }

    func value(_ type: TensorType, name: String? = nil) -> ValueID { graph.newValue(type, name: name) }

    @discardableResult
    func emit(_ kind: OpKind, _ operands: [ValueID], _ type: TensorType, name: String? = nil,
              source: SourceNote? = nil, label: String? = nil) -> ValueID {
        let r = value(type, name: name)
        append(Op(kind, operands, results: [r], source: source, label: label))
        return r
    }

    func append(_ op: Op) { blocks[blocks.count - 1].append(op) }

    func beginRegion() { blocks.append([]) }
    func endRegion() -> [Op] { blocks.removeLast() }

    func finish() -> Graph {
        precondition(blocks.count == 1, "unbalanced regions")
        graph.ops = blocks[0]
        return graph
    }
}
