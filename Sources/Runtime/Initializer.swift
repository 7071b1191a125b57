/// `rnnc init`: PyTorch's default initialization for every parameter, from one seed.
///
/// Distributions are PyTorch's (nn.Linear and the recurrent layers: U(-1/sqrt(k), 1/sqrt(k));
/// nn.Embedding: N(0, 1); user cells: U(-1/sqrt(S), 1/sqrt(S)) with S the first state's
/// size). The numbers come from rnnc's own generator: reproducible for a seed, not the same
/// draws as torch.manual_seed.
public enum Initializer {
    public static func initialize(_ interface: ModelInterface, seed: UInt64) -> [(String, Tensor)] {
        var rng = SeededGenerator(seed: seed)
        return interface.parameters.map { p in
            let count = p.shape.reduce(1, *)
            var data = [Float](repeating: 0, count: count)
            for i in 0..<count {
                data[i] = p.normal ? Float(rng.normal() * p.scale) : Float((rng.unit() * 2 - 1) * p.scale)
            }
            return (p.name, Tensor(shape: p.shape, data: data))
        }
    }
}
