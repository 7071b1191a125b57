#!/usr/bin/env python3
"""Writes the training golden cases under Tests/Golden/training/ from PyTorch.

Each case is a short training run (20 optimizer steps) of a model with one
`loss` line, from the deterministic weights of make_golden.py, on a few
examples taken in order (no shuffle): the loss of every step and every
parameter after the last step. This is the loop `rnnc train --no-shuffle` must
reproduce step for step (see README.md, "Training runs", and
docs/PYTORCH_LOOP.md):

    for step in range(steps):
        k = step % (examples // batch)              # batches in order
        rows = slice(k * batch, (k + 1) * batch)
        optimizer.zero_grad()
        loss = loss_fn(model(data[rows]), targets[rows])   # float32, train mode
        loss.backward()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()

The stored run is torch's own float32 run. The script checks that the same run
in float64 lands within 1e-5 of it (10x inside the test tolerance: the case does
not hinge on float32 rounding), that a hand-written optimizer and clipping (the
formulas of docs/PYTORCH_LOOP.md) equal torch.optim in float64, and that a run
rebuilt from the written files alone gives the stored numbers bit for bit.

Usage: python3 Tests/Golden/make_training_golden.py
Needs torch and numpy. The output is byte-identical from run to run.
"""

import json
import math
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_golden as mg  # noqa: E402  (weights, cells, helpers)
import make_gradient_golden as gg  # noqa: E402  (reference models, losses, .rnn parsing)

GOLDEN = mg.GOLDEN
ROOT = mg.ROOT
TRAINING = GOLDEN / "training"
DATA_SEED = 20250302
STEPS = 20

# Test tolerance (README): final weights max |rnnc - torch| / max(1, |torch|)
# <= 1e-4, losses relative 1e-4. The float64 twin run must land 10x inside.
TOLERANCE = 1e-4
F64_CHECK = 1e-5
# The hand-written optimizer equals torch.optim (both float64) to this.
MANUAL_CHECK = 1e-10
# No step's gradient norm within this fraction of clip_norm.
CLIP_MARGIN = 1e-3
# Case size limit (bytes).
CASE_LIMIT = 100 * 1024


# ----------------------------------------------------------------------------
# Reference models (sub-module names are the .rnn names). jordan, price_rnn and
# gru_bi_lengths reuse the gradient script's references.

class TrainCharLSTM(nn.Module):  # Tests/Golden/models/train_char_lstm.rnn
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(32, 8)
        self.hidden = nn.LSTM(8, 16, num_layers=2, dropout=0.0, batch_first=True)
        self.logits = nn.Linear(16, 32)

    def forward(self, inp, lengths):
        hidden, _ = gg.run_layer(self.hidden, self.emb(inp["chars"]), lengths)
        logits = self.logits(hidden)
        return {"logits": logits, "probs": torch.softmax(logits, dim=-1)}


class TrainGateGRU(nn.Module):  # Tests/Golden/models/train_gate_gru.rnn
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(24, 6)
        self.hidden = mg.CellLayer(mg.gate_gru_params(8), [8], mg.gate_gru_step, 6)
        self.logits = nn.Linear(8, 24)

    def forward(self, inp, lengths):
        hidden, _ = self.hidden(self.emb(inp["chars"]), lengths)
        logits = self.logits(hidden)
        return {"logits": logits, "probs": torch.softmax(logits, dim=-1)}


# ----------------------------------------------------------------------------
# The cases. Inputs as in make_golden.py: ("seq", F) float32 N(0, 1),
# ("ids", V, numpy dtype) uniform ids. Float targets are N(0, 1), or uniform in
# [0, 1) with float_targets="uniform" (sigmoid outputs); int labels are uniform
# over the classes. `lengths` lists one length per example.

def focused(name):
    return "Tests/Golden/models/%s.rnn" % name


def adam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    return {"kind": "adam", "lr": lr, "betas": list(betas), "eps": eps,
            "weight_decay": weight_decay}


def adamw(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    return {"kind": "adamw", "lr": lr, "betas": list(betas), "eps": eps,
            "weight_decay": weight_decay}


def sgd(lr, momentum=0.0, weight_decay=0.0):
    return {"kind": "sgd", "lr": lr, "momentum": momentum, "weight_decay": weight_decay}


def case(name, model, description, build, examples, batch, time, inputs, optimizer,
         clip_norm, lengths=None, float_targets="normal"):
    return dict(name=name, model=model, description=description, build=build,
                examples=examples, batch=batch, time=time, inputs=inputs,
                optimizer=optimizer, clip_norm=clip_norm, lengths=lengths,
                float_targets=float_targets)


CASE_LIST = [
    case("jordan_adam", "models/jordan.rnn",
         "example: Jordan network user cell, mse on the sequence; Adam with its defaults, "
         "clipping at 0.0242", gg.JordanNet, 6, 3, 7, [("x", "seq", 8)],
         adam(lr=0.01), clip_norm=0.0242, float_targets="uniform"),
    case("price_rnn_sgd_momentum", "models/price_rnn.rnn",
         "example: two stacked ReLU RNNs, dense on last(), mse on [B, 1]; SGD with momentum "
         "0.9 and weight decay, clipping at 1.0", gg.PriceRNN, 6, 3, 8,
         [("window", "seq", 1)], sgd(lr=0.02, momentum=0.9, weight_decay=0.001), clip_norm=1.0),
    case("price_rnn_adam", "models/price_rnn.rnn",
         "example: price_rnn with its own train block's optimizer, adam(lr=0.001); no clipping; "
         "4 batches of 2", gg.PriceRNN, 8, 2, 6, [("window", "seq", 1)],
         adam(lr=0.001), clip_norm=None),
    case("char_lstm_adam", focused("train_char_lstm"),
         "embedding, 2-layer LSTM, dense, cross-entropy over batch x time; Adam with "
         "betas=(0.85, 0.98), eps=1e-7, weight_decay=0.01 (L2, added to the gradient), "
         "clipping at 0.22", TrainCharLSTM, 6, 3, 8, [("chars", "ids", 32, np.int64)],
         adam(lr=0.01, betas=(0.85, 0.98), eps=1e-7, weight_decay=0.01), clip_norm=0.22),
    case("gate_gru_adamw", focused("train_gate_gru"),
         "embedding, GRU as a user cell (hidden 8), dense, cross-entropy over batch x time; "
         "AdamW with weight_decay=0.05 (decoupled), clipping at 0.3", TrainGateGRU, 8, 2, 7,
         [("chars", "ids", 24, np.int64)], adamw(lr=0.01, weight_decay=0.05), clip_norm=0.3),
    case("gru_bi_lengths_sgd", focused("train_gru_bi_lengths"),
         "bidirectional GRU with lengths, cross-entropy on dense(last(h)); plain SGD "
         "(momentum 0), no clipping; 5 batches of 2", gg.GRUBiLengths, 10, 2, 7,
         [("x", "seq", 5)], sgd(lr=0.1), clip_norm=None,
         lengths=[2, 7, 5, 7, 1, 4, 6, 3, 7, 5]),
]


# ----------------------------------------------------------------------------
# Optimizers.

def torch_optimizer(params, cfg):
    """torch.optim, the simple per-parameter loop (foreach=False), defaults otherwise."""
    if cfg["kind"] == "adam":
        return torch.optim.Adam(params, lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=cfg["eps"],
                                weight_decay=cfg["weight_decay"], amsgrad=False, foreach=False)
    if cfg["kind"] == "adamw":
        return torch.optim.AdamW(params, lr=cfg["lr"], betas=tuple(cfg["betas"]),
                                 eps=cfg["eps"], weight_decay=cfg["weight_decay"],
                                 amsgrad=False, foreach=False)
    if cfg["kind"] == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"], dampening=0,
                               weight_decay=cfg["weight_decay"], nesterov=False, foreach=False)
    raise ValueError(cfg["kind"])


class ManualOptimizer:
    """The update rules of docs/PYTORCH_LOOP.md, written out (checks the docs)."""

    def __init__(self, params, cfg):
        self.params = list(params)
        self.cfg = cfg
        self.t = 0
        self.m = [None] * len(self.params)  # adam: first moment; sgd: momentum buffer
        self.v = [None] * len(self.params)

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        cfg = self.cfg
        lr, wd = cfg["lr"], cfg["weight_decay"]
        self.t += 1
        for i, p in enumerate(self.params):
            g = p.grad
            if cfg["kind"] == "sgd":
                if wd != 0:
                    g = g + wd * p
                if cfg["momentum"] != 0:
                    if self.m[i] is None:
                        self.m[i] = g.clone()           # first step: buf = g
                    else:
                        self.m[i] = cfg["momentum"] * self.m[i] + g
                    g = self.m[i]
                p -= lr * g
                continue
            b1, b2 = cfg["betas"]
            if self.m[i] is None:
                self.m[i] = torch.zeros_like(p)
                self.v[i] = torch.zeros_like(p)
            if cfg["kind"] == "adamw":
                p *= 1 - lr * wd                        # decoupled decay, before the update
            elif wd != 0:
                g = g + wd * p                          # adam: L2 added to the gradient
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            bc1 = 1 - b1 ** self.t
            bc2 = 1 - b2 ** self.t
            denom = self.v[i].sqrt() / math.sqrt(bc2) + cfg["eps"]
            p -= (lr / bc1) * self.m[i] / denom


def manual_clip(params, max_norm):
    """Total 2-norm over all gradients; scale by min(max_norm / (norm + 1e-6), 1)."""
    grads = [p.grad for p in params]
    total = torch.sqrt(sum((g * g).sum() for g in grads))
    coef = min(max_norm / (float(total) + 1e-6), 1.0)
    for g in grads:
        g.mul_(coef)
    return total


# ----------------------------------------------------------------------------
# Data and the run.

def make_data(spec, model, targets):
    """Inputs, targets and lengths for all N examples, batch first (torch tensors)."""
    generator = torch.Generator().manual_seed(DATA_SEED)
    full = dict(spec, batch=spec["examples"])
    arrays = mg.make_inputs(full, generator)
    lengths = None
    if spec["lengths"] is not None:
        lengths = torch.tensor(spec["lengths"], dtype=torch.int64)
        assert len(lengths) == spec["examples"]
        assert all(1 <= n <= spec["time"] for n in spec["lengths"])
        assert spec["time"] in spec["lengths"]
        # Every batch has a padded example.
        for k in range(spec["examples"] // spec["batch"]):
            assert min(spec["lengths"][k * spec["batch"]:(k + 1) * spec["batch"]]) < spec["time"]
    with torch.no_grad():
        probe = model(arrays, lengths)
    out = {}
    for tname, declared in targets.items():
        kind, shape, _ = gg.target_shape(declared, spec["examples"], spec["time"])
        if kind == "float":
            if spec["float_targets"] == "uniform":
                out[tname] = torch.rand(*shape, generator=generator)
            else:
                out[tname] = torch.randn(*shape, generator=generator)
        else:
            classes = probe[spec["loss"][1]].shape[-1]
            out[tname] = torch.randint(0, classes, shape, generator=generator)
    return arrays, out, lengths


def build(spec, tensors):
    model = spec["build"]()
    state = {t["name"]: torch.from_numpy(mg.weight_values(t["name"], t["shape"], t["scale"]))
             for t in tensors}
    model.load_state_dict(state, strict=True)
    return model


def formula_tensors(spec):
    model = spec["build"]()
    tensors = []
    for pname, param in model.state_dict().items():
        shape = list(param.shape)
        tensors.append({"name": pname, "shape": shape, "scale": mg.default_scale(shape)})
    names = [n for n, _ in model.named_parameters()]
    assert names == [t["name"] for t in tensors], "every state_dict entry is a parameter"
    return tensors


def run(spec, tensors, arrays, targets, lengths, dtype, manual=False):
    """The training loop. Returns (losses, grad norms, clipped flags, final weights)."""
    model = build(spec, tensors).to(dtype)
    model.train()  # dropout p = 0 everywhere: train mode changes nothing else here
    params = list(model.parameters())
    names = [n for n, _ in model.named_parameters()]
    optimizer = (ManualOptimizer if manual else torch_optimizer)(params, spec["optimizer"])
    clip = spec["clip_norm"]
    per_epoch = spec["examples"] // spec["batch"]
    fn, pred, tname = spec["loss"]
    losses, norms, clipped = [], [], []
    for step in range(spec["steps"]):
        k = step % per_epoch
        rows = slice(k * spec["batch"], (k + 1) * spec["batch"])
        inp = {n: (v[rows].to(dtype) if v.is_floating_point() else v[rows])
               for n, v in arrays.items()}
        tgt = targets[tname][rows]
        tgt = tgt.to(dtype) if tgt.is_floating_point() else tgt
        lens = None if lengths is None else lengths[rows]

        optimizer.zero_grad()
        values = model(inp, lens)
        loss = gg.compute_loss(fn, values[pred], tgt, spec["sequence"], lens)
        loss.backward()
        assert all(p.grad is not None for p in params)
        if clip is not None:
            if manual:
                total = manual_clip(params, clip)
                flag = clip / (float(total) + 1e-6) < 1
            else:
                total = torch.nn.utils.clip_grad_norm_(params, clip, foreach=False)
                flag = bool(clip / (total + 1e-6) < 1)
        else:
            total = torch.nn.utils.get_total_norm([p.grad for p in params], foreach=False)
            flag = False
        optimizer.step()
        losses.append(float(loss.detach()))
        norms.append(float(total))
        clipped.append(flag)
    final = {n: p.detach().clone() for n, p in zip(names, params)}
    return losses, norms, clipped, final


def weight_error(a, b):
    """max |a - b| / max(1, |b|) over all parameters."""
    return max(float(((a[n].double() - b[n].double()).abs()
                      / b[n].double().abs().clamp(min=1.0)).max()) for n in b)


def loss_error(a, b):
    return max(abs(x - y) / abs(y) for x, y in zip(a, b))


# ----------------------------------------------------------------------------
# Generation.

def prepare(spec):
    """Adds the parsed loss and step count to a case spec."""
    inputs, outputs, targets, (fn, pred, tname) = gg.parse_model(spec["model"])
    assert inputs == [item[0] for item in spec["inputs"]], (spec["name"], inputs)
    kind, _, sequence = gg.target_shape(targets[tname], 1, spec["time"])
    assert (kind == "float") == (fn == "mse"), spec["name"]
    assert spec["examples"] % spec["batch"] == 0, spec["name"]
    per_epoch = spec["examples"] // spec["batch"]
    assert STEPS % per_epoch == 0, (spec["name"], "steps must be whole epochs")
    return dict(spec, loss=(fn, pred, tname), sequence=sequence, targets=targets,
                steps=STEPS, epochs=STEPS // per_epoch)


def check_train_block(spec):
    """A Tests/Golden/models/train_*.rnn's train block states its case's settings."""
    if "/train_" not in spec["model"]:
        return
    text = (ROOT / spec["model"]).read_text()
    block = re.search(r"^\s*train\s*\{(.*?)\}", text, re.M | re.S).group(1)
    settings = dict(re.findall(r"^\s*(\w+)\s*=\s*(.+?)\s*$", block, re.M))
    kind, args = re.fullmatch(r"(\w+)\((.*)\)", settings.pop("optimizer")).groups()
    args = re.sub(r"\(([^()]*)\)", lambda m: "[" + m.group(1) + "]", args)
    given = {"kind": kind}
    for key, value in re.findall(r"(\w+)\s*=\s*(\[[^\]]*\]|[^,]+)", args):
        given[key] = json.loads(value)
    cfg = spec["optimizer"]
    defaults = {"adam": adam(0), "adamw": adamw(0), "sgd": sgd(0)}[kind]
    assert dict(defaults, **given) == cfg, (spec["name"], given, cfg)
    want = {"batch": spec["batch"], "epochs": spec["epochs"]}
    if spec["clip_norm"] is not None:
        want["clip_norm"] = spec["clip_norm"]
    assert {k: json.loads(v) for k, v in settings.items()} == want, (spec["name"], settings)


def optimizer_json(cfg):
    keys = ["kind", "lr", "betas", "eps", "weight_decay"] if cfg["kind"] != "sgd" else \
        ["kind", "lr", "momentum", "weight_decay"]
    assert set(cfg) == set(keys), cfg
    return {k: cfg[k] for k in keys}


def generate(spec):
    spec = prepare(spec)
    name = spec["name"]
    check_train_block(spec)
    tensors = formula_tensors(spec)
    arrays, targets, lengths = make_data(spec, build(spec, tensors), spec["targets"])

    losses, norms, clipped, final = run(spec, tensors, arrays, targets, lengths, torch.float32)
    assert all(math.isfinite(x) for x in losses), name

    # float64: the case does not hinge on float32 rounding.
    losses64, norms64, clipped64, final64 = run(spec, tensors, arrays, targets, lengths,
                                                torch.float64)
    f64_loss = loss_error(losses, losses64)
    f64_weight = weight_error(final, final64)
    assert f64_loss <= F64_CHECK, (name, f64_loss)
    assert f64_weight <= F64_CHECK, (name, f64_weight)
    assert clipped == clipped64, name
    # No step's gradient norm is near the clipping threshold (clipped_steps is
    # stable under rounding), and clipping acts on most steps but not all.
    clip = spec["clip_norm"]
    if clip is not None:
        clip_margin = min(abs(n - clip) / clip for n in norms)
        assert clip_margin > CLIP_MARGIN, (name, clip_margin)
        assert spec["steps"] // 2 < sum(clipped) < spec["steps"], (name, sum(clipped))
    # The documented update rules equal torch.optim.
    lossesm, normsm, clippedm, finalm = run(spec, tensors, arrays, targets, lengths,
                                            torch.float64, manual=True)
    assert loss_error(lossesm, losses64) <= MANUAL_CHECK, name
    assert weight_error(finalm, final64) <= MANUAL_CHECK, (name, weight_error(finalm, final64))
    assert clippedm == clipped64, name
    # Training moved every parameter.
    start = build(spec, tensors).state_dict()
    moved = {n: float((final[n] - start[n]).abs().max()) for n in final}
    assert all(m > 0 for m in moved.values()), (name, moved)

    folder = TRAINING / name
    folder.mkdir(parents=True)
    for iname, value in arrays.items():
        mg.save_npy(folder / ("data_%s.npy" % iname), value.numpy())
    for tname, value in targets.items():
        array = value.numpy().astype(np.float32 if value.is_floating_point() else np.int64)
        mg.save_npy(folder / ("data_%s.npy" % tname), array)
    if lengths is not None:
        mg.save_npy(folder / "data_lengths.npy", lengths.numpy())
    mg.save_npy(folder / "losses.npy", np.array(losses, dtype=np.float64))
    mg.save_npy(folder / "grad_norms.npy", np.array(norms, dtype=np.float64))
    for pname, value in final.items():
        mg.save_npy(folder / ("final_%s.npy" % pname), value.numpy().astype(np.float32))
    fn, _, tname = spec["loss"]
    meta = {
        "model": spec["model"],
        "description": spec["description"],
        "examples": spec["examples"],
        "batch": spec["batch"],
        "time": spec["time"],
        "steps": spec["steps"],
        "epochs": spec["epochs"],
        "inputs": list(arrays),
        "targets": [tname],
        "lengths": lengths is not None,
        "loss": fn,
        "optimizer": optimizer_json(spec["optimizer"]),
        "clip_norm": spec["clip_norm"],
        "clipped_steps": sum(clipped),
        "tensors": tensors,
        "float64_loss_rel_err": float("%.2e" % f64_loss),
        "float64_weight_err": float("%.2e" % f64_weight),
    }
    (folder / "case.json").write_text(json.dumps(meta, indent=2) + "\n")
    read_back(folder, spec)

    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size < CASE_LIMIT, (name, size)
    opt = spec["optimizer"]["kind"]
    print("%-24s N=%-2d B=%d T=%d %-13s %-5s clip=%-4s clipped=%2d/%d loss %.4f -> %.4f "
          "norm %.3g..%.3g f64 %.1e/%.1e %5.1f KB"
          % (name, spec["examples"], spec["batch"], spec["time"], fn, opt,
             spec["clip_norm"], sum(clipped), spec["steps"], losses[0], losses[-1],
             min(norms), max(norms), f64_loss, f64_weight, size / 1024))
    return size


def read_back(folder, spec):
    """Rebuilds the run from the files alone (as a test would) and compares bit for bit."""
    meta = json.loads((folder / "case.json").read_text())
    files = {"case.json", "losses.npy", "grad_norms.npy"}
    arrays, targets = {}, {}
    for n in meta["inputs"]:
        arrays[n] = torch.from_numpy(np.load(folder / ("data_%s.npy" % n)))
        files.add("data_%s.npy" % n)
    for n in meta["targets"]:
        targets[n] = torch.from_numpy(np.load(folder / ("data_%s.npy" % n)))
        files.add("data_%s.npy" % n)
    lengths = None
    if meta["lengths"]:
        lengths = torch.from_numpy(np.load(folder / "data_lengths.npy"))
        assert lengths.dtype == torch.int64 and lengths.shape == (meta["examples"],)
        files.add("data_lengths.npy")
    for v in list(arrays.values()) + list(targets.values()):
        assert v.shape[0] == meta["examples"]
    cfg = dict(meta["optimizer"])
    rebuilt = dict(spec, examples=meta["examples"], batch=meta["batch"], steps=meta["steps"],
                   optimizer=cfg, clip_norm=meta["clip_norm"])
    losses, norms, clipped, final = run(rebuilt, meta["tensors"], arrays, targets, lengths,
                                        torch.float32)
    stored = np.load(folder / "losses.npy")
    assert stored.dtype == np.float64 and stored.shape == (meta["steps"],)
    assert np.array_equal(stored, np.array(losses))
    assert np.array_equal(np.load(folder / "grad_norms.npy"), np.array(norms))
    assert sum(clipped) == meta["clipped_steps"]
    for t in meta["tensors"]:
        got = np.load(folder / ("final_%s.npy" % t["name"]))
        assert got.dtype == np.float32 and list(got.shape) == t["shape"]
        assert np.array_equal(got, final[t["name"]].numpy())
        files.add("final_%s.npy" % t["name"])
    assert files == {p.name for p in folder.iterdir()}, folder


def self_check():
    # clip_grad_norm_ (foreach=False) and the hand-written clipping agree, and
    # the clip coefficient is min(max_norm / (norm + 1e-6), 1).
    g = torch.Generator().manual_seed(11)
    ps = [nn.Parameter(torch.randn(3, 4, generator=g, dtype=torch.float64)) for _ in range(2)]
    qs = [nn.Parameter(p.detach().clone()) for p in ps]
    for p, q in zip(ps, qs):
        p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64)
        q.grad = p.grad.clone()
    a = torch.nn.utils.clip_grad_norm_(ps, 0.5, foreach=False)
    b = manual_clip(qs, 0.5)
    assert torch.allclose(a, b, rtol=1e-14)
    assert all(torch.allclose(p.grad, q.grad, rtol=1e-14) for p, q in zip(ps, qs))


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    mg.self_check()
    gg.self_check()
    self_check()
    names = [spec["name"] for spec in CASE_LIST]
    assert len(names) == len(set(names))
    kinds = {spec["optimizer"]["kind"] for spec in CASE_LIST}
    assert kinds == {"adam", "adamw", "sgd"}
    if TRAINING.exists():
        shutil.rmtree(TRAINING)
    TRAINING.mkdir(parents=True)
    total = sum(generate(spec) for spec in CASE_LIST)
    print("wrote %d cases to %s (%.0f KB)" % (len(CASE_LIST), TRAINING.relative_to(ROOT),
                                              total / 1024))
    return 0


if __name__ == "__main__":
    sys.exit(main())
