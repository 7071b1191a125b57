#!/usr/bin/env python3
"""A whole model's training step: char_lstm in rnnc against the same PyTorch module.

The model is models/char_lstm.rnn with its hidden size set by --hidden (the issues' shape
is H=512; the bundled file has 256): a byte embedding (256 -> 64), a 2-layer LSTM with
dropout 0.2 between the layers, a dense layer to 256 byte scores, cross-entropy over every
position, gradient clipping at 5 and Adam (lr 0.002). One step = forward, loss, backward,
clipping, update, on a batch of B windows of T bytes.

  rnnc:    `rnnc bench MODEL --train --json` (in-process; median over at least 2 s)
  PyTorch: nn.Embedding -> nn.LSTM(num_layers=2, dropout=0.2, batch_first=True) ->
           nn.Linear, F.cross_entropy, clip_grad_norm_(5), Adam(foreach=False); median of
           10 timed steps after 3 warm-up steps, torch.set_num_threads(n)

Each side runs in its own process (their OpenMP runtimes would disturb each other); the
rounds alternate rnnc and PyTorch and the figure is the median of the round medians.

    python3 bench/compare_char_lstm.py [--hidden 512] [--batch 32] [--seq 128] [--threads 1 2] [--rounds 3]

Needs `pip install torch`; not run in CI.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def model_text(hidden):
    with open(os.path.join(ROOT, "models", "char_lstm.rnn")) as f:
        text = f.read()
    return text.replace("hidden=256", f"hidden={hidden}")


def torch_step_ms(hidden, B, T, threads, reps=10):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(256, 64)
            self.hidden = nn.LSTM(64, hidden, num_layers=2, dropout=0.2, batch_first=True)
            self.logits = nn.Linear(hidden, 256)

        def forward(self, x):
            h, _ = self.hidden(self.emb(x))
            return self.logits(h)

    model = CharLSTM().train()
    opt = torch.optim.Adam(model.parameters(), lr=0.002, foreach=False)
    x = torch.randint(0, 256, (B, T))
    y = torch.randint(0, 256, (B, T))
    times = []
    for i in range(reps + 3):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def rnnc_step_ms(rnnc, hidden, B, T, threads):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "char_lstm.rnn")
        with open(path, "w") as f:
            f.write(model_text(hidden))
        env = dict(os.environ, RNNC_CACHE=os.path.join(d, "cache"))
        out = subprocess.run([rnnc, "bench", path, "--batch", str(B), "--seq", str(T), "--threads", str(threads),
                              "--train", "--json", "--seconds", "2"], capture_output=True, text=True, env=env,
                             check=True).stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return next(r["median_ms"] for r in rows if r["mode"] == "train")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rnnc", default=os.path.join(ROOT, ".build", "release", "rnnc"))
    ap.add_argument("--worker", nargs=4, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(torch_step_ms(*args.worker))
        return
    print(f"char_lstm training step: embedding 256x64, 2-layer LSTM H={args.hidden} (dropout 0.2), dense 256, "
          f"cross-entropy, clip 5, Adam; B={args.batch} T={args.seq}; median of {args.rounds} round medians")
    print("| threads | rnnc ms | PyTorch ms | speed-up |")
    print("|---|---:|---:|---:|")
    for n in args.threads:
        r, t = [], []
        for _ in range(args.rounds):
            r.append(rnnc_step_ms(args.rnnc, args.hidden, args.batch, args.seq, n))
            worker = [sys.executable, __file__, "--worker", str(args.hidden), str(args.batch), str(args.seq), str(n)]
            t.append(float(subprocess.run(worker, capture_output=True, text=True, check=True).stdout))
        rm, tm = statistics.median(r), statistics.median(t)
        print(f"| {n} | {rm:.1f} | {tm:.1f} | {tm / rm:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
