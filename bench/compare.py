#!/usr/bin/env python3
"""rnnc against PyTorch and ONNX Runtime: the same shapes, same machine, one run, a table of ratios.

What it measures
----------------
For every mode, shape, cell and thread count it times one recurrent model (one layer, or two
for shape D) in rnnc and in the libraries a user would run instead:

  mode   peers
  infer  rnnc (libNAME.so in-process through ctypes: NAME_set_threads, NAME_run_v)
         PyTorch, its best eager CPU path: nn.RNN / nn.LSTM / nn.GRU(batch_first=True), eval(),
           torch.inference_mode(), torch.set_num_threads(n) (LSTM goes to oneDNN)
         ONNX Runtime: the same nn module exported with torch.onnx.export (TorchScript exporter,
           dynamo=False, opset 17: one ONNX RNN / LSTM / GRU node per layer), CPU provider,
           intra_op_num_threads = n, inter_op_num_threads = 1, sequential execution
         plain PyTorch loop (gate_gru only): a Python loop over the time steps computing the
           cell's equations with torch ops, as a user writes a cell of their own
  train  rnnc: one NAME_train_step_v call = forward, loss, backward, clip_grad_norm_(5), Adam
           (lr 1e-3), which is exactly what `rnnc bench --train` times (with
           --rnnc-train bench the script runs `rnnc bench DIR --train --json` instead)
         PyTorch: the same module, F.mse_loss on the output sequence (the model's
           `loss mse(h, y)`, mean over all elements, as bench/compare_train.py), backward,
           clip_grad_norm_(5), Adam(lr=1e-3, foreach=False) as in compare_train.py
         plain PyTorch loop (gate_gru only): the same step through the loop module

Cells: rnn (tanh), lstm, gru, and gate_gru, the GRU written gate by gate in
models/gate_gru.rnn (its `cell gate_gru` definition is read from that file and used as
`h = gate_gru(x, H=...)`, `layers=2` for shape D). Its fused-library peer is nn.GRU (and the
exported GRU for ONNX Runtime) with the same weights split into W_ir, W_iz, ...; its
plain-loop peer computes
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr);  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn));  h = (1 - z) * n + z * h
with F.linear, step by step.

Shapes (T, B, I, H[, layers]), as in ../shared/bench: A (100, 1, 256, 256),
B (100, 32, 256, 256), C (50, 64, 512, 512), D (128, 16, 64, 512, 2 layers),
E (100, 64, 1024, 1024); or any T,B,I,H[,L] on the command line.

How
---
Every side uses the same weights (nn module built with torch.manual_seed, written as
safetensors under rnnc's names) and the same input x [B, T, I] (and target y [B, T, H] for
training). Every (library, config, thread count) is timed in a fresh subprocess, never two
libraries in one process: their OpenMP pools (libomp for rnnc, libgomp for PyTorch, ORT's own)
spin after parallel regions and would steal the cores of the next one (see
bench/compare_infer.py). The rnnc and ONNX Runtime workers never import torch. The workers
alternate (rnnc, PyTorch, [plain loop,] [ORT], rnnc, ...) for --rounds rounds; each round
warms up (>= --warmup calls and >= 0.3 s, or a single call taking 2 s or more) and takes the
median of --reps timed calls (fewer when a call is slow: timing stops after --max-seconds
once --min-reps calls are in); a row's figure is the median of its round medians, and
`spread` (JSON) is max/min of them.

Checks, once per config: inference outputs of every peer against rnnc's (max abs diff,
printed; above --tolerance the row is flagged); for training, the loss of the first step
(same weights, same batch) of every peer against rnnc's.

SGEMM reference: at each thread count numpy's float32 1024x1024x1024 matmul is timed in its
own subprocess (OPENBLAS_NUM_THREADS = n), --rounds times, at the start of the run; rnnc's
GFLOP/s is reported as a percent of it.

FLOPs: forward = D * sum over layers of 2*T*B*G*H*(I_l + H), G = 4 lstm, 3 gru and gate_gru,
1 rnn, D = 2 directions with --bidirectional (else 1), I_l = I for the first layer and D*H
after; a training step counts 3x forward (as `rnnc bench` does).

Ratio = peer ms / rnnc ms against the faster peer (above 1: rnnc is faster); the peer is
named. For gate_gru the plain-loop column gives the loop's ms and, in parentheses, its ratio.

Usage (needs `pip install torch onnxruntime onnx numpy`; not run in CI; quiet machine):

    python3 bench/compare.py --rnnc .build/release/rnnc                 # everything: A-E, 4 cells, 1 and 2 threads, infer and train
    python3 bench/compare.py --no-build --shapes B --cells lstm gate_gru --threads 2 --modes infer
    python3 bench/compare.py --no-build --shapes 5,2,16,16 --reps 5 --rounds 1        # smoke test
    python3 bench/compare.py --no-build --shapes D 100,8,128,128,2 --json results.jsonl

The full run (the first command) makes about 800 worker processes and takes roughly 1 to 1.5
hours on the project's 2-core machine, most of it in shape E and in training; --shapes A B C D
leaves E out (about 25 minutes), --rounds 1 divides the time by about three.

Options: --shapes (letters A-E or T,B,I,H[,L]), --bidirectional (rnn, lstm, gru only), --cells, --threads, --modes infer train,
--rounds, --reps (timed calls per inference measurement, default 30), --train-reps (default
10), --min-reps, --max-seconds, --warmup, --seed, --tolerance, --json FILE (appends one JSON
line per row), --rnnc PATH (skip the build) or --no-build (.build/release/rnnc as it is),
--rnnc-train ctypes|bench, --keep (keep the temp dir).
"""
import argparse
import ctypes
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from compare_infer import RnncModel, build_rnnc, write_safetensors  # noqa: E402 (stdlib-only import)

# name: (T, B, I, H, layers), as ../shared/bench/pytorch_anchors.py
SHAPES = {
    "A": (100, 1, 256, 256, 1),
    "B": (100, 32, 256, 256, 1),
    "C": (50, 64, 512, 512, 1),
    "D": (128, 16, 64, 512, 2),
    "E": (100, 64, 1024, 1024, 1),
}
GATES = {"rnn": 1, "lstm": 4, "gru": 3, "gate_gru": 3}
GATE_GRU_FILE = os.path.join(REPO, "models", "gate_gru.rnn")
SGEMM_N = 1024
PEER_NAMES = {"torch": "PyTorch", "ort": "ORT", "loop": "plain loop"}


def fwd_flops(cell, T, B, I, H, L, D=1):
    """D directions (2: bidirectional, whose upper layers read both directions' outputs)."""
    g = GATES[cell]
    return D * sum(2 * T * B * g * H * ((I if l == 0 else D * H) + H) for l in range(L))


def time_calls(fn, reps, warmup=2, warmup_s=0.3, min_reps=5, max_s=None):
    """Warm up (>= warmup calls and >= warmup_s seconds; one call is enough once 2 s have gone),
    then time up to `reps` calls; stop early once `max_s` seconds of timed calls and at least
    `min_reps` calls are in."""
    t0 = time.perf_counter()
    n = 0
    while n < warmup or time.perf_counter() - t0 < warmup_s:
        fn()
        n += 1
        if time.perf_counter() - t0 >= 2.0:
            break
    times = []
    start = time.perf_counter()
    while len(times) < reps:
        a = time.perf_counter()
        fn()
        times.append(time.perf_counter() - a)
        if max_s and len(times) >= min_reps and time.perf_counter() - start >= max_s:
            break
    return times


# ------------------------------------------------------------------------------ models (parent)
def gate_gru_cell_source():
    """The `cell gate_gru ... }` definition of models/gate_gru.rnn, verbatim."""
    with open(GATE_GRU_FILE) as f:
        text = f.read()
    m = re.search(r"^cell gate_gru\(.*?^\}", text, re.S | re.M)
    if not m:
        raise SystemExit(f"no `cell gate_gru` definition in {GATE_GRU_FILE}")
    return m.group(0)


def model_source(name, cell, I, H, L, train, D=1):
    layers = (f", layers={L}" if L > 1 else "") + (", bidirectional=true" if D == 2 else "")
    if cell == "gate_gru":
        head, call = gate_gru_cell_source() + "\n\n", f"gate_gru(x, H={H}{layers})"
    else:
        head, call = "", f"{cell}(x, hidden={H}{layers})"
    lines = [f"model {name} {{", f"    input  x: float[time, {I}]"]
    if train:
        lines.append(f"    target y: float[time, {D * H}]")
    lines += [f"    h = {call}", "    output h"]
    if train:
        lines.append("    loss mse(h, y)")
    return head + "\n".join(lines) + "\n}\n"


def torch_module(cell, I, H, L, seed, D=1):
    """The fused PyTorch module; gate_gru's is nn.GRU (same function, same weights)."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU, "gate_gru": nn.GRU}[cell]
    return cls(I, H, num_layers=L, batch_first=True, bidirectional=D == 2)


def make_loop_module(gru):
    """The plain PyTorch loop over gate_gru's equations, with `gru`'s weights split by gate."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class GateGRULoop(nn.Module):
        def __init__(self):
            super().__init__()
            self.L = gru.num_layers
            for name, p in split_gru_weights(gru).items():
                self.register_parameter(name, nn.Parameter(torch.from_numpy(p.copy())))

        def forward(self, x):  # x [B, T, I] -> [B, T, H]
            for l in range(self.L):
                g = lambda n: getattr(self, f"{n}_l{l}")
                h = x.new_zeros(x.shape[0], g("W_hr").shape[1])
                outs = []
                for t in range(x.shape[1]):
                    xt = x[:, t]
                    r = torch.sigmoid(F.linear(xt, g("W_ir"), g("b_ir")) + F.linear(h, g("W_hr"), g("b_hr")))
                    z = torch.sigmoid(F.linear(xt, g("W_iz"), g("b_iz")) + F.linear(h, g("W_hz"), g("b_hz")))
                    n = torch.tanh(F.linear(xt, g("W_in"), g("b_in")) + r * F.linear(h, g("W_hn"), g("b_hn")))
                    h = (1 - z) * n + z * h
                    outs.append(h)
                x = torch.stack(outs, 1)
            return x

    return GateGRULoop()


def split_gru_weights(gru):
    """nn.GRU's state dict as gate_gru parameters, always with the layer suffix: {W_ir_l0: array, ...}."""
    sd = {k: v.detach().numpy() for k, v in gru.state_dict().items()}
    out = {}
    for l in range(gru.num_layers):
        for src, dst in (("weight_ih", "W_i"), ("weight_hh", "W_h"), ("bias_ih", "b_i"), ("bias_hh", "b_h")):
            parts = sd[f"{src}_l{l}"].reshape(3, -1, *sd[f"{src}_l{l}"].shape[1:])  # gates r, z, n
            for gate, arr in zip("rzn", parts):
                out[f"{dst}{gate}_l{l}"] = arr
    return out


def rnnc_state_dict(cell, mod):
    """The module's weights under rnnc's names for h = CELL(x, ...)."""
    if cell != "gate_gru":
        return {f"h.{k}": v.detach().numpy() for k, v in mod.state_dict().items()}
    w = split_gru_weights(mod)
    if mod.num_layers == 1:  # a one-layer user cell's parameters carry no _l0
        return {f"h.{k[:-3]}": v for k, v in w.items()}
    return {f"h.{k}": v for k, v in w.items()}


def export_onnx(mod, x, path):
    import contextlib
    import io
    import warnings

    import torch

    class OutputOnly(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x)[0]

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(OutputOnly(mod.eval()), (torch.from_numpy(x),), path, input_names=["x"],
                          output_names=["y"], opset_version=17, dynamo=False)


def compile_model(rnnc, d, name, source, env):
    src = os.path.join(d, f"{name}.rnn")
    with open(src, "w") as f:
        f.write(source)
    out = os.path.join(d, name)
    p = subprocess.run([rnnc, "compile", src, "-o", out], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"rnnc compile {src} failed:\n{p.stdout}{p.stderr}")
    with open(os.path.join(out, f"{name}.json")) as f:
        params = {q["name"]: q["shape"] for q in json.load(f)["parameters"]}
    return out, params


def prepare(rnnc, mode, label, shape, cell, workdir, seed, env, D=1):
    """Compiles the model, writes weights, x (and y), and the ONNX export. Returns a config dict."""
    import numpy as np

    T, B, I, H, L = shape
    train = mode == "train"
    name = f"cmp_{cell}"
    d = os.path.join(workdir, f"{mode}_{cell}_T{T}_B{B}_I{I}_H{H}_L{L}_D{D}")
    os.makedirs(d, exist_ok=True)
    out, params = compile_model(rnnc, d, name, model_source(name, cell, I, H, L, train, D), env)
    mod = torch_module(cell, I, H, L, seed, D)
    sd = rnnc_state_dict(cell, mod)
    got = {k: list(v.shape) for k, v in sd.items()}
    if got != params:
        raise SystemExit(f"parameter mismatch for {cell}: rnnc {params} vs torch {got}")
    weights = os.path.join(d, "weights.safetensors")
    write_safetensors(weights, sd)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, I), dtype=np.float32)
    np.save(os.path.join(d, "x.npy"), x)
    if train:
        np.save(os.path.join(d, "y.npy"), rng.standard_normal((B, T, D * H), dtype=np.float32))
    cfg = {"mode": mode, "label": label, "cell": cell, "T": T, "B": B, "I": I, "H": H, "L": L, "D": D,
           "seed": seed, "dir": d, "name": name, "compiled": out,
           "lib": os.path.join(out, f"lib{name}.so"), "weights": weights}
    if not train:
        cfg["onnx"] = os.path.join(d, f"{name}.onnx")
        export_onnx(mod, x, cfg["onnx"])
    return cfg


# ------------------------------------------------------------------------------ workers (subprocesses)
class RnncOptimizer(ctypes.Structure):
    """rnnc_optimizer of NAME.h: int kind (1 = Adam), then seven floats."""
    _fields_ = [("kind", ctypes.c_int), ("lr", ctypes.c_float), ("beta1", ctypes.c_float),
                ("beta2", ctypes.c_float), ("eps", ctypes.c_float), ("weight_decay", ctypes.c_float),
                ("momentum", ctypes.c_float), ("clip_norm", ctypes.c_float)]


class RnncTrainer(RnncModel):
    """compare_infer's ctypes wrapper plus NAME_train_step_v (what `rnnc bench --train` times)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        lib = ctypes.CDLL(cfg["lib"])
        self.step_v = getattr(lib, f"{cfg['name']}_train_step_v")
        self.step_v.restype = ctypes.c_int
        self.step_v.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p),
                                ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.POINTER(RnncOptimizer),
                                ctypes.POINTER(ctypes.c_double)]
        self.opt = RnncOptimizer(kind=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                                 momentum=0.0, clip_norm=5.0)

    def prepare_step(self, x, y, threads):
        """A no-argument callable running one training step; returns the loss before the update."""
        import numpy as np

        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.ascontiguousarray(y, dtype=np.float32)
        B, T = x.shape[0], x.shape[1]
        inputs = (ctypes.c_void_p * 1)(x.ctypes.data)
        targets = (ctypes.c_void_p * 1)(y.ctypes.data)
        self.set_threads(self.m, threads)
        loss = ctypes.c_double()
        step_v, m, opt = self.step_v, self.m, ctypes.byref(self.opt)

        def step():
            if step_v(m, B, T, inputs, targets, None, opt, ctypes.byref(loss)) != 0:
                raise RuntimeError(self.last_error().decode())
            return loss.value

        step.keep = (x, y)
        return step


def first_value(fn):
    """Wraps fn so that the value of its first call is kept in .first."""
    def call():
        v = fn()
        if not hasattr(call, "first"):
            call.first = v
        return v
    return call


def worker_sgemm(spec):
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.random((SGEMM_N, SGEMM_N), dtype=np.float32) for _ in range(2))
    c = np.empty((SGEMM_N, SGEMM_N), np.float32)
    times = time_calls(lambda: np.matmul(a, b, out=c), spec["reps"], warmup=3, warmup_s=0.3)
    info = None
    try:
        import threadpoolctl

        info = [{k: d.get(k) for k in ("internal_api", "num_threads", "version")}
                for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"]
    except ImportError:
        pass
    return {"times": times, "blas": info}


def worker(spec):
    """Subprocess entry: times one library on one config, prints one JSON line."""
    if spec["lib"] == "sgemm":
        print(json.dumps(worker_sgemm(spec)), flush=True)
        return
    import numpy as np

    cfg, lib, n = spec["cfg"], spec["lib"], spec["threads"]
    train = cfg["mode"] == "train"
    x = np.load(os.path.join(cfg["dir"], "x.npy"))
    y = np.load(os.path.join(cfg["dir"], "y.npy")) if train else None
    timing = dict(warmup=spec["warmup"], min_reps=spec["min_reps"], max_s=spec["max_seconds"])
    output = None
    if lib == "rnnc":
        if train:
            fn = first_value(RnncTrainer(cfg).prepare_step(x, y, n))
        else:
            model = RnncModel(cfg)
            fn = model.prepare_run(x, n)
            output = model.output
    elif lib == "ort":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = n
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(cfg["onnx"], so, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: x}
        res = {}

        def fn():
            res["y"] = sess.run(None, feed)[0]

        output = lambda: res["y"]
    else:  # torch, loop
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(n)
        mod = torch_module(cfg["cell"], cfg["I"], cfg["H"], cfg["L"], cfg["seed"], cfg["D"])
        if lib == "loop":
            mod = make_loop_module(mod)
        call = (lambda t: mod(t)) if lib == "loop" else (lambda t: mod(t)[0])
        xt = torch.from_numpy(x)
        if train:
            mod.train()
            yt = torch.from_numpy(y)
            params = list(mod.parameters())
            opt = torch.optim.Adam(params, lr=1e-3, foreach=False)

            def step():
                opt.zero_grad(set_to_none=True)
                loss = F.mse_loss(call(xt), yt)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 5.0)
                opt.step()
                return loss.item()

            fn = first_value(step)
        else:
            mod.eval()
            res = {}

            def fn():
                with torch.inference_mode():
                    res["y"] = call(xt)

            output = lambda: res["y"].numpy()
    times = time_calls(fn, spec["reps"], **timing)
    result = {"times": times}
    if train:
        result["loss"] = fn.first
    else:
        np.save(spec["out"], output())
    print(json.dumps(result), flush=True)


def run_worker(spec, threads_env=1):
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # each library sets its own thread count
        env.pop(k, None)
    env["OPENBLAS_NUM_THREADS"] = str(threads_env)  # numpy's BLAS: the SGEMM worker's only
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        what = spec["cfg"]["cell"] if "cfg" in spec else "sgemm"
        raise SystemExit(f"{spec['lib']} worker failed ({what}, threads={spec['threads']}):\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_rnnc_bench(cfg, threads, args, env):
    """`rnnc bench DIR --train --json`: rnnc's own timing (its own weights and data)."""
    cmd = [args.rnnc_path, "bench", cfg["compiled"], "--batch", str(cfg["B"]), "--seq", str(cfg["T"]),
           "--threads", str(threads), "--train", "--json", "--seconds", str(args.max_seconds)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stdout}{p.stderr}")
    rows = [json.loads(line) for line in p.stdout.splitlines() if line.strip().startswith("{")]
    r = next(r for r in rows if r["mode"] == "train")
    return {"times": [r["median_ms"] / 1e3], "min_s": r["min_ms"] / 1e3, "calls": r["runs"], "rnnc_bench": r}


# ------------------------------------------------------------------------------ driver
def measure_sgemm(threads, args):
    out = {}
    for n in threads:
        meds = []
        for _ in range(args.rounds):
            r = run_worker({"lib": "sgemm", "threads": n, "reps": 20}, threads_env=n)
            meds.append(statistics.median(r["times"]))
        m = statistics.median(meds)
        out[n] = {"gflops": 2 * SGEMM_N ** 3 / m / 1e9, "round_ms": [t * 1e3 for t in meds], "blas": r["blas"]}
        print(f"# numpy SGEMM {SGEMM_N}^3, {n} thread(s): {out[n]['gflops']:.1f} GFLOP/s "
              f"(rounds {', '.join(f'{t:.2f}' for t in out[n]['round_ms'])} ms)", file=sys.stderr, flush=True)
    return out


def peers_for(mode, cell):
    peers = ["torch"]
    if cell == "gate_gru":
        peers.append("loop")
    if mode == "infer":
        peers.append("ort")
    return peers


def compare(cfg, threads, args, sgemm, env):
    """Alternates rnnc and its peers for args.rounds rounds; returns a result row."""
    import numpy as np

    mode = cfg["mode"]
    libs = ["rnnc"] + peers_for(mode, cfg["cell"])
    reps = args.reps if mode == "infer" else args.train_reps
    med = {lib: [] for lib in libs}
    mins = {lib: [] for lib in libs}
    results = {}
    for _ in range(args.rounds):
        for lib in libs:
            if lib == "rnnc" and mode == "train" and args.rnnc_train == "bench":
                r = run_rnnc_bench(cfg, threads, args, env)
            else:
                spec = {"lib": lib, "cfg": cfg, "threads": threads, "reps": reps, "warmup": args.warmup,
                        "min_reps": args.min_reps, "max_seconds": args.max_seconds,
                        "out": os.path.join(cfg["dir"], f"y_{lib}_{threads}.npy")}
                r = run_worker(spec)
            med[lib].append(statistics.median(r["times"]))
            mins[lib].append(r.get("min_s", min(r["times"])))
            results[lib] = r

    flops = fwd_flops(cfg["cell"], cfg["T"], cfg["B"], cfg["I"], cfg["H"], cfg["L"], cfg["D"]) * (3 if mode == "train" else 1)
    row = {k: cfg[k] for k in ("mode", "label", "cell", "T", "B", "I", "H", "L", "D")}
    row.update(threads=threads, flops=flops, rounds=args.rounds, reps=reps, peers=libs[1:])
    for lib in libs:
        m = statistics.median(med[lib])
        row[f"{lib}_ms"] = m * 1e3
        row[f"{lib}_gflops"] = flops / m / 1e9
        row[f"{lib}_round_ms"] = [t * 1e3 for t in med[lib]]
        row[f"{lib}_min_ms"] = min(mins[lib]) * 1e3
        row[f"{lib}_spread"] = max(med[lib]) / min(med[lib])
        row[f"{lib}_timed_calls"] = results[lib].get("calls", len(results[lib]["times"]))
    for lib in libs[1:]:
        row[f"ratio_{lib}"] = row[f"{lib}_ms"] / row["rnnc_ms"]
    best = min(libs[1:], key=lambda lib: row[f"{lib}_ms"])
    row.update(best_peer=best, ratio=row[f"{best}_ms"] / row["rnnc_ms"])
    row["sgemm_gflops"] = sgemm[threads]["gflops"]
    row["rnnc_pct_sgemm"] = 100 * row["rnnc_gflops"] / row["sgemm_gflops"]

    # agreement, once per config (the last round's outputs or first-step losses)
    if mode == "infer":
        y = np.load(os.path.join(cfg["dir"], f"y_rnnc_{threads}.npy"))
        for lib in libs[1:]:
            z = np.load(os.path.join(cfg["dir"], f"y_{lib}_{threads}.npy"))
            if z.shape != y.shape:
                raise SystemExit(f"output shapes differ: rnnc {y.shape} {lib} {z.shape}")
            row[f"diff_{lib}"] = float(np.max(np.abs(z - y)))
        row["max_abs_diff"] = max(row[f"diff_{lib}"] for lib in libs[1:])
    elif "loss" in results["rnnc"]:
        row["rnnc_loss"] = results["rnnc"]["loss"]
        for lib in libs[1:]:
            row[f"{lib}_loss"] = results[lib]["loss"]
            row[f"diff_{lib}"] = abs(results[lib]["loss"] - results["rnnc"]["loss"])
        row["max_abs_diff"] = max(row[f"diff_{lib}"] for lib in libs[1:])
    else:  # rnnc bench used its own weights and data: nothing to compare
        row["max_abs_diff"] = None
    row["ok"] = row["max_abs_diff"] is None or row["max_abs_diff"] <= args.tolerance
    return row


def ms(v):
    return f"{v:.4f}" if v < 0.1 else f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 1000 else f"{v:.0f}"


def shape_text(row):
    dims = f"{row['T']},{row['B']},{row['I']},{row['H']}" + (f",L{row['L']}" if row["L"] > 1 else "") + \
        (" bidirectional" if row.get("D", 1) == 2 else "")
    return f"{row['label']} {dims}" if row["label"] else dims


def table(rows, mode):
    infer = mode == "infer"
    head = ["shape", "cell", "threads", "rnnc ms", "PyTorch ms"] + (["ORT ms"] if infer else []) + \
           ["plain-loop ms (ratio)", "ratio vs faster peer", "rnnc GFLOP/s", "% of SGEMM",
            "max abs diff" if infer else "first-loss diff"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|"]
    for r in rows:
        loop = f"{ms(r['loop_ms'])} ({r['ratio_loop']:.2f}x)" if "loop_ms" in r else "-"
        diff = "n/a" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.1e}" + ("" if r["ok"] else " (!)")
        cells = [shape_text(r), r["cell"], str(r["threads"]), ms(r["rnnc_ms"]), ms(r["torch_ms"])]
        if infer:
            cells.append(ms(r["ort_ms"]))
        cells += [loop, f"{r['ratio']:.2f}x ({PEER_NAMES[r['best_peer']]})", f"{r['rnnc_gflops']:.1f}",
                  f"{r['rnnc_pct_sgemm']:.0f}%", diff]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_shape(s):
    if s.upper() in SHAPES:
        return s.upper(), SHAPES[s.upper()]
    try:
        parts = [int(p) for p in s.replace("x", ",").split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (4, 5) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"shape '{s}' is neither a letter A-E nor T,B,I,H[,L]")
    return "", tuple(parts) + ((1,) if len(parts) == 4 else ())


def versions():
    v = {"python": platform.python_version()}
    for mod in ("torch", "onnxruntime", "numpy"):
        try:
            v[mod] = __import__(mod).__version__
        except ImportError:
            v[mod] = None
    try:
        with open("/proc/cpuinfo") as f:
            v["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        v["cpu"] = ""
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="+", type=parse_shape, default=[parse_shape(k) for k in SHAPES],
                    metavar="A-E|T,B,I,H[,L]")
    ap.add_argument("--cells", nargs="+", default=list(GATES), choices=list(GATES))
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--modes", nargs="+", default=["infer", "train"], choices=["infer", "train"])
    ap.add_argument("--rounds", type=int, default=3, help="alternations of rnnc and its peers per row")
    ap.add_argument("--reps", type=int, default=30, help="timed calls per inference measurement")
    ap.add_argument("--train-reps", type=int, default=10, help="timed steps per training measurement")
    ap.add_argument("--min-reps", type=int, default=5, help="timed calls kept even past --max-seconds")
    ap.add_argument("--max-seconds", type=float, default=6.0,
                    help="stop timing a measurement after this long once --min-reps calls are in")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up calls (and at least 0.3 s)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bidirectional", action="store_true",
                    help="bidirectional layers (rnn, lstm, gru): both directions, outputs concatenated")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="flag rows whose outputs differ by more")
    ap.add_argument("--json", metavar="FILE", help="append one JSON line per row")
    ap.add_argument("--rnnc", help="rnnc binary to use (skips the build)")
    ap.add_argument("--no-build", action="store_true", help="use .build/release/rnnc as it is")
    ap.add_argument("--rnnc-train", choices=["ctypes", "bench"], default="ctypes",
                    help="time rnnc's training step through NAME_train_step_v in-process (default, same "
                         "weights and batch as PyTorch, loss checked) or with `rnnc bench --train --json`")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (models, weights, outputs)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    if min(args.threads) < 1 or args.rounds < 1 or args.reps < 1 or args.train_reps < 1 or args.min_reps < 1:
        ap.error("--threads, --rounds, --reps, --train-reps and --min-reps must be at least 1")
    if args.bidirectional and "gate_gru" in args.cells:
        ap.error("--bidirectional: gate_gru's weights have no reverse names here; use --cells rnn lstm gru")
    if args.rnnc:
        args.rnnc_path = os.path.abspath(args.rnnc)
    elif args.no_build:
        args.rnnc_path = os.path.join(REPO, ".build", "release", "rnnc")
    else:
        args.rnnc_path = build_rnnc()
    if not os.access(args.rnnc_path, os.X_OK):
        ap.error(f"no rnnc binary at {args.rnnc_path}")

    import torch  # weights and the ONNX export, in this (otherwise idle) process only

    torch.set_num_threads(1)
    if "infer" in args.modes:
        try:
            import onnx  # noqa: F401 (torch.onnx.export needs it)
            import onnxruntime  # noqa: F401
        except ImportError as e:
            raise SystemExit(f"{e}: pip install onnxruntime onnx (or --modes train)")
    v = versions()
    workdir = tempfile.mkdtemp(prefix="rnnc-compare-")
    env = dict(os.environ, RNNC_CACHE=os.path.join(workdir, "cache"))
    print(f"# rnnc {args.rnnc_path}; torch {v['torch']}; onnxruntime {v['onnxruntime']}; numpy {v['numpy']}; "
          f"python {v['python']}; {v['cpu']}, {os.cpu_count()} cpus; load avg {os.getloadavg()[0]:.2f}; "
          f"median of {args.rounds} round medians", file=sys.stderr, flush=True)
    rows = []
    try:
        sgemm = measure_sgemm(args.threads, args)
        for mode in args.modes:
            for label, shape in args.shapes:
                for cell in args.cells:
                    cfg = prepare(args.rnnc_path, mode, label, shape, cell, workdir, args.seed, env,
                                  2 if args.bidirectional else 1)
                    for n in args.threads:
                        row = compare(cfg, n, args, sgemm, env)
                        row.update(ts=time.strftime("%Y-%m-%dT%H:%M:%S"), versions=v,
                                   rnnc_train=args.rnnc_train if mode == "train" else None,
                                   sgemm_round_ms=sgemm[n]["round_ms"], load_avg=os.getloadavg()[0])
                        rows.append(row)
                        peers = "  ".join(f"{PEER_NAMES[p]} {ms(row[p + '_ms'])} ms" for p in row["peers"])
                        diff = "n/a" if row["max_abs_diff"] is None else f"{row['max_abs_diff']:.1e}"
                        print(f"  {mode} {shape_text(row)} {cell} {n}t: rnnc {ms(row['rnnc_ms'])} ms  {peers}  "
                              f"ratio {row['ratio']:.2f}x  diff {diff}  spread rnnc "
                              f"{row['rnnc_spread']:.2f}", file=sys.stderr, flush=True)
                        if args.json:
                            with open(args.json, "a") as f:
                                f.write(json.dumps(row) + "\n")
    finally:
        if args.keep:
            print(f"# kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    sg = ", ".join(f"{n} thread{'s' if n > 1 else ''} {sgemm[n]['gflops']:.1f}" for n in args.threads)
    print(f"rnnc vs PyTorch {v['torch']} and ONNX Runtime {v['onnxruntime']}; {v['cpu']}; "
          f"numpy SGEMM {SGEMM_N}^3 GFLOP/s: {sg}.")
    print("Ratio = peer ms / rnnc ms against the faster peer (above 1: rnnc is faster); "
          f"median of {args.rounds} round medians.")
    titles = {"infer": "Inference (forward pass)",
              "train": "Training step (forward, MSE loss, backward, clip 5, Adam; a step counts 3x forward FLOPs)"
                       + (" (rnnc: `rnnc bench --train`)" if args.rnnc_train == "bench" else "")}
    for mode in args.modes:
        mrows = [r for r in rows if r["mode"] == mode]
        if mrows:
            print(f"\n### {titles[mode]}\n")
            print(table(mrows, mode))
    bad = [r for r in rows if not r["ok"]]
    if bad:
        print(f"\n{len(bad)} row(s) differ by more than {args.tolerance} (marked (!))")
        sys.exit(1)


if __name__ == "__main__":
    main()
