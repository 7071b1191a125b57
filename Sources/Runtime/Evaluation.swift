/// Scoring a model on examples in evaluation mode: the mean loss and, for classifiers,
/// the accuracy. Shared by validation during training and by `rnnc evaluate`.
extension CompiledModel {
    /// The output holding class scores, for a classifier (a cross-entropy loss on integer
    /// labels): the output as wide as the loss's classes, with the target's time axis.
    public var classScoresOutput: Int? {
        let classes = interface.lossClasses
        guard classes > 0, let target = interface.targets.first, target.isInt else { return nil }
        return interface.outputs.firstIndex { $0.features == [classes] && $0.hasTime == target.hasTime }
    }

    /// Correct and counted positions of one batch: the argmax of the scores against the
    /// labels, over each example's valid steps.
    public func classificationCounts(batch: Int, time: Int, inputs: [Buffer], labels: Buffer, lengths: [Int32]?,
                                     output: Int) throws -> (correct: Int, total: Int) {
        let scores = try run(batch: batch, time: time, inputs: inputs, lengths: lengths)[output].values
        return classificationCounts(batch: batch, scores: scores, labels: labels, lengths: lengths)
    }

    /// The same from class scores already computed (`[B, (T,) classes]`).
    public func classificationCounts(batch: Int, scores: [Float], labels: Buffer, lengths: [Int32]?) -> (correct: Int, total: Int) {
        guard case .ints(let y) = labels else { return (0, 0) }
        let classes = interface.lossClasses
        let steps = y.count / batch
        var correct = 0, total = 0
        for b in 0..<batch {
            for t in 0..<steps where lengths == nil || steps == 1 || t < Int(lengths![b]) {
                let row = (b * steps + t) * classes
                var best = 0
                for c in 1..<classes where scores[row + c] > scores[row + best] { best = c }
                if best == Int(y[b * steps + t]) { correct += 1 }
                total += 1
            }
        }
        return (correct, total)
    }

    /// The mean loss over examples `range` of `data` (in batches of `batch`, dropout off),
    /// and the accuracy for classifiers: one forward pass per batch gives both.
    public func evaluate(_ data: TrainingData, range: Range<Int>, batch: Int) throws -> (loss: Double, accuracy: Double?) {
        let scoring = classScoresOutput
        var sum = 0.0, correct = 0, total = 0
        var start = range.lowerBound
        while start < range.upperBound {
            let indices = Array(start..<min(start + batch, range.upperBound))
            let b = data.batch(indices)
            let result = try evaluationLoss(batch: indices.count, time: data.time, inputs: b.inputs, targets: b.targets,
                                            lengths: b.lengths)
            sum += result.loss * Double(indices.count)
            if let scoring, let labels = b.targets.first {
                let r = classificationCounts(batch: indices.count, scores: result.outputs[scoring].values, labels: labels,
                                             lengths: b.lengths)
                correct += r.correct
                total += r.total
            }
            start += batch
        }
        return (sum / Double(max(1, range.count)), total > 0 ? Double(correct) / Double(total) : nil)
    }
}
