#!/usr/bin/env python3
"""rnnc vs PyTorch: forward-pass (inference) time of one recurrent layer, same machine, one run.

For each cell (lstm, gru, rnn), shape (T, B, I, H) and thread count the script

  1. writes a one-layer model into a temp dir, e.g.
         model bench_lstm { input x: float[time, 256]  h = lstm(x, hidden=256)  output h }
     and compiles it with `rnnc compile` (rnnc is built first with
     `swift build -c release --product rnnc` in the repo root; a no-op when up to date),
  2. builds the matching nn.LSTM / nn.GRU / nn.RNN(batch_first=True) with torch.manual_seed,
     writes its state_dict as safetensors under rnnc's names (`h.weight_ih_l0`, ...), and a
     random input x [B, T, I], so both libraries run the same weights on the same data,
  3. times rnnc in-process (libNAME.so through ctypes: NAME_create, NAME_set_threads(m, n),
     then NAME_run_v) and PyTorch (module.eval(), torch.inference_mode(),
     torch.set_num_threads(n)) with the same scheme: warm-up runs, then the median of
     >= 20 runs timed with time.perf_counter,
  4. checks once per config that the two outputs agree (max abs diff is printed),
  5. prints a table: median ms of each, speed-up (torch ms / rnnc ms; > 1 means rnnc is
     faster), GFLOP/s with forward FLOPs = 2*T*B*G*H*(I+H) (G = 4 lstm, 3 gru, 1 rnn), the
     max abs difference of the outputs, and the spread of the round medians (see below).
     Both sides are batch first ([B, T, I]), rnnc's layout; PyTorch transposes internally.

Process layout (why subprocesses): every (library, config, thread count) is timed in its own
fresh Python subprocess, and the parent only compares medians. PyTorch's CPU build runs on GNU
OpenMP (libgomp) and MKL/oneDNN; rnnc's libraries on LLVM's libomp. In one process the two
runtimes keep separate thread pools, and libomp's workers spin-wait for KMP_BLOCKTIME (200 ms
by default) after every parallel region, so right after an rnnc run PyTorch's threads would
share the 2 cores with spinning rnnc workers (and the reverse, briefly, for libgomp). Checked
here with --inproc and with torch timed directly after rnnc runs: no difference stood out from
the neighbour noise of this shared 2-core machine (the >= 0.2 s warm-up outlasts the block
time), but isolated 100-270 ms outliers did appear after switches, and a process per library is
what /work/shared/bench/README.md prescribes, so subprocesses are the default and --inproc is
kept only to re-check. The rnnc worker never imports torch (numpy + ctypes only; numpy's
OpenBLAS is held to 1 thread, it does no arithmetic here), so it holds only libomp's pool.
To spread a noisy neighbour over both sides, the workers alternate (rnnc, torch, rnnc, torch,
...) for --rounds rounds; the headline is the median of the per-round medians (as the report of
/work/shared/bench/pytorch_anchors.py does), and `spread` is max/min of those round medians.

Usage (needs `pip install torch numpy`; not run in CI):

    python3 bench/compare_infer.py                       # lstm, gru, rnn at T=100 B=32 I=H=256, 1 and 2 threads
    python3 bench/compare_infer.py --cells lstm --threads 2
    python3 bench/compare_infer.py --shapes 100,32,256,256 50,64,512,512 --json results.jsonl
    python3 bench/compare_infer.py --inproc              # both libraries alternated in one process

Options: --cells, --shapes T,B,I,H ..., --threads N ..., --reps (timed runs, >= 20),
--warmup, --rounds, --json FILE (appends one JSON line per row), --rnnc PATH (skip the build
and use this binary), --no-build, --keep (keep the temp dir).
"""
import argparse
import ctypes
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
DEFAULT_SHAPE = (100, 32, 256, 256)  # T, B, I, H


def fwd_flops(cell, T, B, I, H):
    return 2 * T * B * GATES[cell] * H * (I + H)


def time_runs(fn, warmup, reps, warmup_time=0.2):
    """Warm up (at least `warmup` calls and `warmup_time` seconds), then time `reps` calls."""
    t0 = time.perf_counter()
    n = 0
    while n < warmup or time.perf_counter() - t0 < warmup_time:
        fn()
        n += 1
    times = []
    for _ in range(reps):
        a = time.perf_counter()
        fn()
        times.append(time.perf_counter() - a)
    return times


# ------------------------------------------------------------------------------ setup (parent)
def build_rnnc():
    print("building rnnc: swift build -c release --product rnnc", file=sys.stderr, flush=True)
    p = subprocess.run(["swift", "build", "-c", "release", "--product", "rnnc"], cwd=REPO,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"swift build failed (rerun, or pass --no-build / --rnnc PATH):\n{p.stdout}{p.stderr}")
    out = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.strip()
    return os.path.join(out, "rnnc")


def write_safetensors(path, tensors):
    """tensors: {name: float32 numpy array}. 8-byte LE header length, JSON header, raw data."""
    import numpy as np

    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        for b in blobs:
            f.write(b)


def torch_module(cell, I, H, seed):
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
    return cls(I, H, batch_first=True).eval()


def prepare(rnnc, cell, shape, workdir, seed):
    """Compile the model, write weights (from the PyTorch module) and the input. Returns a config dict."""
    import numpy as np

    T, B, I, H = shape
    name = f"bench_{cell}"
    d = os.path.join(workdir, f"{cell}_T{T}_B{B}_I{I}_H{H}")
    os.makedirs(d, exist_ok=True)
    src = os.path.join(d, f"{name}.rnn")
    with open(src, "w") as f:
        f.write(f"model {name} {{\n    input x: float[time, {I}]\n"
                f"    h = {cell}(x, hidden={H})\n    output h\n}}\n")
    out = os.path.join(d, "out")
    subprocess.run([rnnc, "compile", src, "-o", out], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(out, f"{name}.json")) as f:
        params = {p["name"]: p["shape"] for p in json.load(f)["parameters"]}

    sd = {f"h.{k}": v.detach().numpy() for k, v in torch_module(cell, I, H, seed).state_dict().items()}
    if {k: list(v.shape) for k, v in sd.items()} != params:
        raise SystemExit(f"parameter mismatch for {cell}: rnnc {params} vs torch "
                         f"{ {k: list(v.shape) for k, v in sd.items()} }")
    weights = os.path.join(d, "weights.safetensors")
    write_safetensors(weights, sd)
    x = np.random.default_rng(seed).standard_normal((B, T, I), dtype=np.float32)
    np.save(os.path.join(d, "x.npy"), x)
    return {"cell": cell, "T": T, "B": B, "I": I, "H": H, "seed": seed, "dir": d, "name": name,
            "lib": os.path.join(out, f"lib{name}.so"), "weights": weights}


# ------------------------------------------------------------------------------ the two sides
class RnncModel:
    """libNAME.so through ctypes."""

    def __init__(self, cfg):
        lib = ctypes.CDLL(cfg["lib"])
        n = cfg["name"]
        self.create = getattr(lib, f"{n}_create")
        self.create.restype, self.create.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
        self.destroy = getattr(lib, f"{n}_destroy")
        self.destroy.argtypes = [ctypes.c_void_p]
        self.set_threads = getattr(lib, f"{n}_set_threads")
        self.set_threads.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self.run_v = getattr(lib, f"{n}_run_v")
        self.run_v.restype = ctypes.c_int
        self.run_v.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                               ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
        self.output_v = getattr(lib, f"{n}_output_v")
        self.output_v.restype = ctypes.POINTER(ctypes.c_float)
        self.output_v.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int64),
                                  ctypes.POINTER(ctypes.c_int)]
        self.last_error = getattr(lib, f"{n}_last_error")
        self.last_error.restype = ctypes.c_char_p
        self.m = self.create(cfg["weights"].encode())
        if not self.m:
            raise RuntimeError(f"{n}_create: {self.last_error().decode()}")

    def prepare_run(self, x, threads):
        """Returns a no-argument callable that runs the forward pass on x (kept alive by it)."""
        import numpy as np

        x = np.ascontiguousarray(x, dtype=np.float32)
        B, T = x.shape[0], x.shape[1]
        inputs = (ctypes.c_void_p * 1)(x.ctypes.data)
        self.set_threads(self.m, threads)
        run_v, m = self.run_v, self.m

        def run():
            if run_v(m, B, T, inputs, None) != 0:
                raise RuntimeError(self.last_error().decode())

        run.keep = x
        return run

    def output(self, index=0):
        import numpy as np

        shape = (ctypes.c_int64 * 8)()
        rank = ctypes.c_int()
        p = self.output_v(self.m, index, shape, ctypes.byref(rank))
        if not p:
            raise RuntimeError(self.last_error().decode())
        dims = tuple(shape[i] for i in range(rank.value))
        return np.ctypeslib.as_array(p, shape=dims).copy()


class TorchModel:
    def __init__(self, cfg):
        import torch

        self.torch = torch
        self.mod = torch_module(cfg["cell"], cfg["I"], cfg["H"], cfg["seed"])
        self.y = None

    def prepare_run(self, x, threads):
        torch = self.torch
        torch.set_num_threads(threads)
        xt = torch.from_numpy(x)
        mod = self

        def run():
            with torch.inference_mode():
                mod.y, _ = mod.mod(xt)

        return run

    def output(self, index=0):
        return self.y.numpy().copy()


def measure(lib, cfg, threads, warmup, reps, model=None):
    """Times one library on one config; returns (times in seconds, output array)."""
    import numpy as np

    x = np.load(os.path.join(cfg["dir"], "x.npy"))
    if model is None:
        model = RnncModel(cfg) if lib == "rnnc" else TorchModel(cfg)
    run = model.prepare_run(x, threads)
    times = time_runs(run, warmup, reps)
    return times, model.output()


def worker(spec):
    """Subprocess entry: time one library, save its output, print the times as one JSON line."""
    import numpy as np

    cfg = spec["cfg"]
    times, y = measure(spec["lib"], cfg, spec["threads"], spec["warmup"], spec["reps"])
    np.save(spec["out"], y)
    print(json.dumps({"times": times}), flush=True)


def run_worker(lib, cfg, threads, args, out_npy):
    spec = {"lib": lib, "cfg": cfg, "threads": threads, "warmup": args.warmup, "reps": args.reps,
            "out": out_npy}
    env = dict(os.environ)
    # Neither side is pinned by the environment; each sets its own thread count.
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(k, None)
    env["OPENBLAS_NUM_THREADS"] = "1"  # numpy only loads and saves arrays in the workers
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{lib} worker failed ({cfg['cell']} threads={threads}):\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])["times"]


# ------------------------------------------------------------------------------ driver
def compare(cfg, threads, args, inproc_models=None):
    """Alternates rnnc and torch for args.rounds rounds; returns a result row."""
    import numpy as np

    med = {"rnnc": [], "torch": []}
    allt = {"rnnc": [], "torch": []}
    outs = {}
    for r in range(args.rounds):
        for lib in ("rnnc", "torch"):
            if inproc_models is not None:
                times, y = measure(lib, cfg, threads, args.warmup, args.reps, inproc_models[lib])
            else:
                path = os.path.join(cfg["dir"], f"y_{lib}_{threads}.npy")
                times = run_worker(lib, cfg, threads, args, path)
                y = np.load(path)
            med[lib].append(statistics.median(times))
            allt[lib] += times
            outs[lib] = y
    if outs["rnnc"].shape != outs["torch"].shape:
        raise SystemExit(f"output shapes differ: rnnc {outs['rnnc'].shape} torch {outs['torch'].shape}")
    diff = float(np.max(np.abs(outs["rnnc"] - outs["torch"])))
    flops = fwd_flops(cfg["cell"], cfg["T"], cfg["B"], cfg["I"], cfg["H"])
    row = {k: cfg[k] for k in ("cell", "T", "B", "I", "H")}
    row.update(threads=threads, flops=flops, max_abs_diff=diff, rounds=args.rounds, reps=args.reps,
               mode="inproc" if inproc_models is not None else "subprocess")
    for lib in ("rnnc", "torch"):
        m = statistics.median(med[lib])
        row[f"{lib}_ms"] = m * 1e3
        row[f"{lib}_gflops"] = flops / m / 1e9
        row[f"{lib}_round_ms"] = [t * 1e3 for t in med[lib]]
        row[f"{lib}_min_ms"] = min(allt[lib]) * 1e3
    row["speedup"] = row["torch_ms"] / row["rnnc_ms"]
    return row


HEADER = ("cell", "T", "B", "I", "H", "thr", "rnnc ms", "torch ms", "speed-up", "rnnc GF/s", "torch GF/s",
          "max|diff|", "spread r/t")


def fmt_row(r):
    return (r["cell"], r["T"], r["B"], r["I"], r["H"], r["threads"], f"{r['rnnc_ms']:.2f}",
            f"{r['torch_ms']:.2f}", f"{r['speedup']:.2f}x", f"{r['rnnc_gflops']:.1f}",
            f"{r['torch_gflops']:.1f}", f"{r['max_abs_diff']:.1e}", f"{spread(r, 'rnnc')}/{spread(r, 'torch')}")


def spread(r, lib):
    """max/min of the per-round medians: how much the machine moved during the row."""
    m = r[f"{lib}_round_ms"]
    return f"{max(m) / min(m):.2f}"


def print_table(rows):
    cells = [tuple(str(c) for c in HEADER)] + [tuple(str(c) for c in fmt_row(r)) for r in rows]
    w = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    for j, c in enumerate(cells):
        print("  ".join(s.rjust(w[i]) for i, s in enumerate(c)))
        if j == 0:
            print("  ".join("-" * x for x in w))


def parse_shape(s):
    parts = [int(p) for p in s.replace("x", ",").split(",")]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"shape '{s}' is not T,B,I,H")
    return tuple(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", nargs="+", default=["lstm", "gru", "rnn"], choices=list(GATES))
    ap.add_argument("--shapes", nargs="+", type=parse_shape, default=[DEFAULT_SHAPE], metavar="T,B,I,H")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--reps", type=int, default=30, help="timed runs per measurement (>= 20)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="alternations rnnc/torch per row")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--inproc", action="store_true",
                    help="time both libraries alternately in this process (see the docstring)")
    ap.add_argument("--json", metavar="FILE", help="append one JSON line per row")
    ap.add_argument("--rnnc", help="rnnc binary to use (skips the build)")
    ap.add_argument("--no-build", action="store_true", help="use .build/release/rnnc as it is")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (models, weights, outputs)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    if args.reps < 20:
        ap.error("--reps must be at least 20")

    if args.rnnc:
        rnnc = args.rnnc
    elif args.no_build:
        rnnc = os.path.join(REPO, ".build", "release", "rnnc")
    else:
        rnnc = build_rnnc()

    import torch

    workdir = tempfile.mkdtemp(prefix="rnnc-compare-")
    print(f"# rnnc {rnnc}; torch {torch.__version__}; python {platform.python_version()}; "
          f"{os.cpu_count()} cpus; mode {'inproc' if args.inproc else 'subprocess'}; "
          f"median of {args.rounds} round medians x {args.reps} runs; load avg {os.getloadavg()[0]:.2f}",
          flush=True)
    rows = []
    try:
        for shape in args.shapes:
            for cell in args.cells:
                cfg = prepare(rnnc, cell, shape, workdir, args.seed)
                models = {"rnnc": RnncModel(cfg), "torch": TorchModel(cfg)} if args.inproc else None
                for n in args.threads:
                    row = compare(cfg, n, args, models)
                    row["ts"] = time.strftime("%Y-%m-%dT%H:%M:%S")
                    row["torch_version"] = torch.__version__
                    rows.append(row)
                    print("  " + "  ".join(f"{h}={v}" for h, v in zip(HEADER, fmt_row(row))),
                          file=sys.stderr, flush=True)
                    if args.json:
                        with open(args.json, "a") as f:
                            f.write(json.dumps(row) + "\n")
    finally:
        if args.keep:
            print(f"# kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print_table(rows)


if __name__ == "__main__":
    main()
