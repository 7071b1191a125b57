#!/usr/bin/env python3
"""The bundled example models against the same models in PyTorch and ONNX Runtime.

compare.py measures one recurrent layer at a time; this script measures whole models as a
user ships them: the files in models/, compiled unmodified, against the PyTorch module a
user would write for each (state_dict names as in Tests/Golden/make_golden.py):

  model          what it is                                           PyTorch side
  sentiment_gru  embedding 20000x128, bidirectional GRU H=128,        nn.Embedding -> nn.GRU(bidirectional)
                 dense(last(h)) to 2 classes, softmax / cross-entropy -> cat(h_n[-2], h_n[-1]) -> nn.Linear
  price_rnn      two ReLU Elman layers H=50 on one feature,            nn.RNN(1, 50, num_layers=2, relu)
                 dense(last(h2)) to 1, mse                            -> h_n[-1] -> nn.Linear
  jordan         a user cell (the output fed back), H=32, O=4, mse    a plain PyTorch loop over the steps
  char_lstm      embedding 256x64, 2-layer LSTM H=256 (dropout 0.2),  nn.Embedding -> nn.LSTM(2 layers)
                 dense to 256 on every step, cross-entropy            -> nn.Linear
  word_lm        bench/models/word_lm.rnn, not an example: embedding  nn.Embedding -> nn.LSTM(2 layers)
                 10000x200, 2-layer LSTM H=200, dense to 10000 on     -> nn.Linear
                 every step (the Penn Treebank "small" size: run it
                 with --batches 20 --seq 20), cross-entropy

  infer  rnnc: `rnnc bench MODEL --json` (the model's outputs, in-process, median over >= 1 s)
         PyTorch: eval(), torch.inference_mode(), the model's outputs (softmax where the model
           outputs probabilities); ONNX Runtime: that module exported (TorchScript exporter,
           opset 17; the loop of the user cell is traced, one node per step), CPU provider,
           intra_op_num_threads = n, sequential
  train  rnnc: `rnnc bench MODEL --train --json`: forward, loss, backward,
           clip_grad_norm_(5), Adam(lr=1e-3), which is what the PyTorch step does, with
           Adam(foreach=False); dropout on in both

Both sides take random inputs of the same shape (token ids for the embeddings) and random
weights; the golden tests hold rnnc's numbers for these models to PyTorch's, so this script
times and does not compare outputs. Every side runs in its own process (their OpenMP
runtimes would disturb each other); rounds alternate the sides and each figure is the
median of the round medians; the ratio is the faster peer's time over rnnc's.

    python3 bench/compare_models.py [--models ...] [--batches 1 32] [--seq 100]
                                    [--threads 1 2] [--modes infer train] [--rounds 3]

Needs `pip install torch onnxruntime onnx`; not run in CI.
"""
import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUNDLED = ["sentiment_gru", "price_rnn", "jordan", "char_lstm"]
MODELS = BUNDLED + ["word_lm"]
# The models whose input and target are token ids: their vocabulary.
VOCAB = {"char_lstm": 256, "word_lm": 10000}


def model_path(name):
    """models/NAME.rnn, or for the models only benchmarks use, bench/models/NAME.rnn."""
    shipped = os.path.join(ROOT, "models", f"{name}.rnn")
    return shipped if os.path.exists(shipped) else os.path.join(HERE, "models", f"{name}.rnn")


# ------------------------------------------------------------------------------ PyTorch modules

def torch_module(name):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class SentimentGRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20000, 128)
            self.h = nn.GRU(128, 128, bidirectional=True, batch_first=True)
            self.logits = nn.Linear(256, 2)

        def forward(self, words):
            _, h_n = self.h(self.emb(words))
            logits = self.logits(torch.cat([h_n[-2], h_n[-1]], dim=-1))
            return logits if self.training else torch.softmax(logits, dim=-1)

        def loss(self, out, target):
            return F.cross_entropy(out, target)

    class PriceRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.h = nn.RNN(1, 50, num_layers=2, nonlinearity="relu", batch_first=True)
            self.y = nn.Linear(50, 1)

        def forward(self, window):
            _, h_n = self.h(window)
            return self.y(h_n[-1])

        def loss(self, out, target):
            return F.mse_loss(out, target)

    class Jordan(nn.Module):
        """The cell of models/jordan.rnn, step by step, as a user writes it in PyTorch."""

        def __init__(self, I=8, H=32, O=4):
            super().__init__()
            self.W_x = nn.Parameter(torch.randn(H, I) * 0.1)
            self.W_y = nn.Parameter(torch.randn(H, O) * 0.1)
            self.b_h = nn.Parameter(torch.zeros(H))
            self.W_o = nn.Parameter(torch.randn(O, H) * 0.1)
            self.b_o = nn.Parameter(torch.zeros(O))

        def forward(self, x):
            y = x.new_zeros(x.shape[0], self.W_o.shape[0])
            ys = []
            for t in range(x.shape[1]):
                h = torch.tanh(F.linear(x[:, t], self.W_x) + F.linear(y, self.W_y, self.b_h))
                y = torch.sigmoid(F.linear(h, self.W_o, self.b_o))
                ys.append(y)
            return torch.stack(ys, dim=1)

        def loss(self, out, target):
            return F.mse_loss(out, target)

    class TokenLSTM(nn.Module):
        """An embedding, a 2-layer LSTM and a dense layer over the vocabulary at every step:
        char_lstm and word_lm."""

        def __init__(self, vocab, dim, hidden, dropout):
            super().__init__()
            self.vocab = vocab
            self.emb = nn.Embedding(vocab, dim)
            self.hidden = nn.LSTM(dim, hidden, num_layers=2, dropout=dropout, batch_first=True)
            self.logits = nn.Linear(hidden, vocab)

        def forward(self, tokens):
            h, _ = self.hidden(self.emb(tokens))
            logits = self.logits(h)
            return logits if self.training else torch.softmax(logits, dim=-1)

        def loss(self, out, target):
            return F.cross_entropy(out.reshape(-1, self.vocab), target.reshape(-1))

    torch.manual_seed(0)
    return {"sentiment_gru": SentimentGRU, "price_rnn": PriceRNN, "jordan": Jordan,
            "char_lstm": lambda: TokenLSTM(VOCAB[name], 64, 256, 0.2),
            "word_lm": lambda: TokenLSTM(VOCAB[name], 200, 200, 0.0)}[name]()


def torch_data(name, B, T):
    """The model's input and target, shaped as the .rnn file declares them."""
    import torch

    g = torch.Generator().manual_seed(1)
    if name == "sentiment_gru":
        return torch.randint(0, 20000, (B, T), generator=g), torch.randint(0, 2, (B,), generator=g)
    if name == "price_rnn":
        return torch.randn(B, T, 1, generator=g), torch.randn(B, 1, generator=g)
    if name == "jordan":
        return torch.randn(B, T, 8, generator=g), torch.rand(B, T, 4, generator=g)
    V = VOCAB[name]
    return torch.randint(0, V, (B, T), generator=g), torch.randint(0, V, (B, T), generator=g)


def timed(fn, seconds=1.0, warmup=3):
    """Median ms of fn after warm-up, over at least 10 runs and `seconds` (as rnnc bench)."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < 10 or (time.perf_counter() - start < seconds and len(times) < 1000):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def torch_ms(name, mode, B, T, n):
    import torch

    torch.set_num_threads(n)
    mod = torch_module(name)
    x, y = torch_data(name, B, T)
    if mode == "infer":
        mod.eval()

        def fn():
            with torch.inference_mode():
                mod(x)
        return timed(fn)
    mod.train()
    opt = torch.optim.Adam(mod.parameters(), lr=1e-3, foreach=False)

    def step():
        opt.zero_grad()
        mod.loss(mod(x), y).backward()
        torch.nn.utils.clip_grad_norm_(mod.parameters(), 5.0)
        opt.step()
    return timed(step)


def ort_ms(name, B, T, n):
    import onnxruntime as ort
    import torch

    mod = torch_module(name).eval()
    x, _ = torch_data(name, B, T)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"{name}.onnx")
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(mod, (x,), path, input_names=["x"], output_names=["y"], opset_version=17,
                              dynamo=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads = n
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy()}
        return timed(lambda: sess.run(None, feed))


# ------------------------------------------------------------------------------ rnnc

def rnnc_ms(rnnc, name, mode, B, T, n, cache):
    cmd = [rnnc, "bench", model_path(name), "--batch", str(B), "--seq", str(T),
           "--threads", str(n), "--json"] + (["--train"] if mode == "train" else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env=dict(os.environ, RNNC_CACHE=cache)).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return next(r["median_ms"] for r in rows if r["mode"] == mode)


def worker(side, name, mode, B, T, n):
    cmd = [sys.executable, __file__, "--worker", side, name, mode, str(B), str(T), str(n)]
    return float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", choices=MODELS, default=BUNDLED)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    ap.add_argument("--seq", type=int, default=100)
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--modes", nargs="+", choices=["infer", "train"], default=["infer", "train"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rnnc", default=os.path.join(ROOT, ".build", "release", "rnnc"))
    ap.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        side, name, mode, B, T, n = args.worker
        B, T, n = int(B), int(T), int(n)
        print(torch_ms(name, mode, B, T, n) if side == "torch" else ort_ms(name, B, T, n))
        return

    import torch
    print(f"# rnnc {args.rnnc}; torch {torch.__version__}; {args.rounds} rounds; T={args.seq}; "
          "ms are medians of round medians")
    print("| model | mode | batch | threads | rnnc ms | PyTorch ms | ORT ms | vs faster peer |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as cache:
        for name in args.models:
            for mode in args.modes:
                for B in args.batches:
                    for n in args.threads:
                        sides = ["rnnc", "torch"] + (["ort"] if mode == "infer" else [])
                        got = {s: [] for s in sides}
                        for _ in range(args.rounds):
                            for s in sides:
                                got[s].append(rnnc_ms(args.rnnc, name, mode, B, args.seq, n, cache) if s == "rnnc"
                                              else worker(s, name, mode, B, args.seq, n))
                        med = {s: statistics.median(v) for s, v in got.items()}
                        peer = min(v for s, v in med.items() if s != "rnnc")
                        ort = f"{med['ort']:.3f}" if "ort" in med else "-"
                        print(f"| {name} | {mode} | {B} | {n} | {med['rnnc']:.3f} | {med['torch']:.3f} | {ort} | "
                              f"{peer / med['rnnc']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
