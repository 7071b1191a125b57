#!/usr/bin/env python3
"""Training-step time: rnnc against PyTorch, same shapes, same machine, one run.

Needs `pip install torch`; not run in CI. For each cell and thread count it times, in
separate processes (their thread pools would disturb each other):
  - rnnc: `rnnc bench MODEL --train --json` (forward, loss, backward, Adam with clipping),
  - PyTorch: the same single recurrent layer (nn.LSTM / nn.GRU / nn.RNN, batch_first) with
    an MSE loss on its output, Adam (foreach=False), clip_grad_norm_,
and prints the median step times and their ratio (above 1: rnnc is faster).

    python3 bench/compare_train.py [--cells lstm gru rnn] [--threads 1 2] [--shape T B I H]
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


def torch_step_ms(cell, T, B, I, H, threads, reps=10):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](I, H, batch_first=True)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3, foreach=False)
    x = torch.randn(B, T, I)
    y = torch.randn(B, T, H)
    times = []
    for i in range(reps + 3):
        t0 = time.perf_counter()
        opt.zero_grad()
        out, _ = layer(x)
        loss = torch.nn.functional.mse_loss(out, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(layer.parameters(), 5.0)
        opt.step()
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def rnnc_step_ms(cell, T, B, I, H, threads):
    rnnc = os.path.join(ROOT, ".build", "release", "rnnc")
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, "m.rnn")
        with open(model, "w") as f:
            f.write(f"model bench_{cell} {{\n input x: float[time, {I}]\n target y: float[time, {H}]\n"
                    f" h = {cell}(x, hidden={H})\n output h\n loss mse(h, y)\n}}\n")
        env = dict(os.environ, RNNC_CACHE=os.path.join(d, "cache"))
        out = subprocess.run([rnnc, "bench", model, "--batch", str(B), "--seq", str(T), "--threads", str(threads),
                              "--train", "--json", "--seconds", "2"], capture_output=True, text=True, env=env, check=True).stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return next(r["median_ms"] for r in rows if r["mode"] == "train")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", nargs="+", default=["lstm", "gru", "rnn"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--shape", nargs=4, type=int, default=[100, 32, 256, 256], metavar=("T", "B", "I", "H"))
    ap.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        cell, T, B, I, H, threads = args.worker[0], *map(int, args.worker[1:])
        print(torch_step_ms(cell, T, B, I, H, threads))
        return
    T, B, I, H = args.shape
    print(f"training step (forward, mse loss, backward, clip 5, Adam), T={T} B={B} I={I} H={H}")
    print("cell  threads  rnnc ms  torch ms  speed-up")
    for cell in args.cells:
        for threads in args.threads:
            r = rnnc_step_ms(cell, T, B, I, H, threads)
            t = float(subprocess.run([sys.executable, __file__, "--worker", cell, str(T), str(B), str(I), str(H), str(threads)],
                                     capture_output=True, text=True, check=True).stdout)
            print(f"{cell:4}  {threads:7}  {r:7.1f}  {t:8.1f}  {t / r:7.2f}x")


if __name__ == "__main__":
    main()
