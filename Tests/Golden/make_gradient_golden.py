#!/usr/bin/env python3
"""Writes the gradient golden cases under Tests/Golden/gradients/ from PyTorch.

Each case is a model (.rnn) with one `loss` line, inputs, targets, the loss
value and the gradient of the loss with respect to every parameter, with the
deterministic weights of make_golden.py (see README.md, "Gradients").

The reference runs in float64: the float32 formula weights and float32 inputs
are cast to float64, the module runs in double, autograd gives the gradients,
which are stored as float32. Dropout is off (p = 0) in every case.

Usage: python3 Tests/Golden/make_gradient_golden.py
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
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_golden as mg  # noqa: E402  (the forward script: weights, cells, helpers)
from make_golden import CellLayer, mv, run_builtin  # noqa: E402

GOLDEN = mg.GOLDEN
ROOT = mg.ROOT
GRADIENTS = GOLDEN / "gradients"
INPUT_SEED = 20240917

# Gradients are stored by rows (see store_gradient) for tensors of more than
# SPARSE_LIMIT elements whose rows are mostly zero (embeddings: the rows that
# are not zero), and for the other tensors of more than DENSE_LIMIT elements
# (every k-th row).
DENSE_LIMIT = 16384
SPARSE_LIMIT = 4096

# Self-check: torch in float32 must agree with the float64 reference to this
# fraction of each tensor's largest gradient, 10x inside the test tolerance.
TOLERANCE = 1e-4
F32_CHECK = 1e-5
# Self-check: no relu input closer than this to the kink (float32 rounding
# must not be able to flip a relu between rnnc and the reference).
RELU_MARGIN = 1e-5


# ----------------------------------------------------------------------------
# relu kink check. While RECORD is on, every relu the references compute goes
# through checked_relu, and ReLU nn.RNN layers run as an equivalent CellLayer
# (make_golden's self-check shows the cell driver equals packed nn.RNN).

RELU_INPUTS = []
RECORD = [False]
_TORCH_RELU = torch.relu


def checked_relu(v):
    if RECORD[0]:
        RELU_INPUTS.append(float(v.detach().abs().min()))
    return _TORCH_RELU(v)


def elman_relu_step(p, x, states):
    (h,) = states
    return (checked_relu(mv(p["weight_ih"], x) + p["bias_ih"]
                         + mv(p["weight_hh"], h) + p["bias_hh"]),)


def run_layer(module, x, lengths):
    """run_builtin, except for ReLU nn.RNN while recording relu inputs."""
    if not (RECORD[0] and isinstance(module, nn.RNN) and module.nonlinearity == "relu"):
        return run_builtin(module, x, lengths)
    size = module.hidden_size
    cell = CellLayer(lambda I: [("weight_ih", (size, I)), ("weight_hh", (size, size)),
                                ("bias_ih", (size,)), ("bias_hh", (size,))],
                     [size], elman_relu_step, module.input_size, layers=module.num_layers,
                     bidirectional=module.bidirectional)
    # The cell uses the module's own Parameter objects, so gradients reach them.
    for layer in range(module.num_layers):
        for direction in range(2 if module.bidirectional else 1):
            suffix = "_l%d" % layer + ("_reverse" if direction else "")
            for pname in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                cell.register_parameter(pname + cell.suffix(layer, direction),
                                        getattr(module, pname + suffix))
    reference = run_builtin(module, x, lengths)
    result = cell(x, lengths)
    for a, b in zip(reference, result):
        assert torch.allclose(a, b, atol=1e-12, rtol=0)
    return result


def cell_relu(step):
    """A make_golden cell step whose torch.relu calls go through checked_relu."""
    def wrapped(p, x, states):
        torch.relu = checked_relu
        try:
            return step(p, x, states)
        finally:
            torch.relu = _TORCH_RELU
    return wrapped


# ----------------------------------------------------------------------------
# Reference models. Sub-module names are the .rnn names (state_dict names are
# rnnc's parameter names). forward(inputs, lengths) -> {name: tensor} holding
# the model's outputs and the loss's prediction value.

class CharLSTM(nn.Module):  # models/char_lstm.rnn (dropout=0.2 off)
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(256, 64)
        self.hidden = nn.LSTM(64, 256, num_layers=2, batch_first=True)
        self.logits = nn.Linear(256, 256)

    def forward(self, inp, lengths):
        hidden, _ = run_layer(self.hidden, self.emb(inp["chars"]), lengths)
        logits = self.logits(hidden)
        return {"logits": logits, "probs": torch.softmax(logits, dim=-1)}


class GateGRULM(nn.Module):  # models/gate_gru.rnn
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(256, 64)
        self.hidden = CellLayer(mg.gate_gru_params(256), [256], mg.gate_gru_step, 64)
        self.logits = nn.Linear(256, 256)

    def forward(self, inp, lengths):
        hidden, _ = self.hidden(self.emb(inp["chars"]), lengths)
        logits = self.logits(hidden)
        return {"logits": logits, "probs": torch.softmax(logits, dim=-1)}


class JordanNet(nn.Module):  # models/jordan.rnn
    def __init__(self):
        super().__init__()
        self.y = CellLayer(mg.jordan_params(32, 4), [4], mg.jordan_step, 8)

    def forward(self, inp, lengths):
        y, _ = self.y(inp["x"], lengths)
        return {"y": y}


class PriceRNN(nn.Module):  # models/price_rnn.rnn
    def __init__(self):
        super().__init__()
        self.h1 = nn.RNN(1, 50, nonlinearity="relu", batch_first=True)
        self.h2 = nn.RNN(50, 50, nonlinearity="relu", batch_first=True)
        self.y = nn.Linear(50, 1)

    def forward(self, inp, lengths):
        h1, _ = run_layer(self.h1, inp["window"], lengths)
        _, h2_last = run_layer(self.h2, h1, lengths)
        return {"y": self.y(h2_last)}


class SentimentGRU(nn.Module):  # models/sentiment_gru.rnn
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20000, 128)
        self.h = nn.GRU(128, 128, bidirectional=True, batch_first=True)
        self.logits = nn.Linear(256, 2)

    def forward(self, inp, lengths):
        _, h_last = run_layer(self.h, self.emb(inp["words"].long()), lengths)
        logits = self.logits(h_last)
        return {"logits": logits, "probs": torch.softmax(logits, dim=-1)}


class Recurrent(nn.Module):
    """grad_rnn_tanh, rnn_relu, grad_lstm_lengths: h = layer(x), loss on h."""

    def __init__(self, module, with_last=False):
        super().__init__()
        self.h = module
        self.with_last = with_last

    def forward(self, inp, lengths):
        h, final = run_layer(self.h, inp["x"], lengths)
        out = {"h": h}
        if self.with_last:
            out["final"] = final
        return out


class RecurrentDense(nn.Module):
    """grad_lstm_l2_bi (y = dense(h)) and grad_gru_l2_bi (logits = dense(h))."""

    def __init__(self, module, units, head):
        super().__init__()
        self.h = module
        self.head = head
        setattr(self, head, nn.Linear(module.hidden_size * 2 if module.bidirectional
                                      else module.hidden_size, units))

    def forward(self, inp, lengths):
        h, _ = run_layer(self.h, inp["x"], lengths)
        value = getattr(self, self.head)(h)
        if self.head == "y":
            return {"y": value}
        return {"logits": value, "probs": torch.softmax(value, dim=-1)}


class GRUBiLengths(nn.Module):  # Tests/Golden/models/grad_gru_bi_lengths.rnn
    def __init__(self):
        super().__init__()
        self.h = nn.GRU(5, 6, bidirectional=True, batch_first=True)
        self.logits = nn.Linear(12, 3)

    def forward(self, inp, lengths):
        _, final = run_layer(self.h, inp["x"], lengths)
        logits = self.logits(final)
        return {"logits": logits, "probs": torch.softmax(logits, dim=-1), "final": final}


class StackedLengths(nn.Module):  # Tests/Golden/models/grad_stacked_lengths.rnn
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 5)
        self.l = nn.LSTM(5, 6, batch_first=True)
        self.g = nn.GRU(6, 5, bidirectional=True, batch_first=True)
        self.logits = nn.Linear(10, 4)

    def forward(self, inp, lengths):
        l, _ = run_layer(self.l, self.emb(inp["ids"].long()), lengths)
        g, _ = run_layer(self.g, l, lengths)
        logits = self.logits(g)
        return {"logits": logits, "probs": torch.softmax(logits, dim=-1)}


class EmbeddingGRU(nn.Module):  # Tests/Golden/models/grad_embedding_gru.rnn
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.h = nn.GRU(4, 6, batch_first=True)
        self.logits = nn.Linear(6, 5)

    def forward(self, inp, lengths):
        h, _ = run_layer(self.h, self.emb(inp["tokens"].long()), lengths)
        logits = self.logits(h)
        return {"logits": logits, "probs": torch.softmax(logits, dim=-1)}


class EmbeddingBiGRU(nn.Module):  # Tests/Golden/models/grad_embedding_bigru.rnn
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(12, 4)
        self.h = nn.GRU(4, 5, bidirectional=True, batch_first=True)
        self.logits = nn.Linear(10, 5)

    def forward(self, inp, lengths):
        h, _ = run_layer(self.h, self.emb(inp["ids"].long()), lengths)
        logits = self.logits(h)
        return {"logits": logits, "probs": torch.softmax(logits, dim=-1)}


class StackedLayers(nn.Module):  # Tests/Golden/models/stacked_layers.rnn
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(40, 5)
        self.l = nn.LSTM(5, 6, batch_first=True)
        self.g = nn.GRU(6, 7, bidirectional=True, batch_first=True)
        self.logits = nn.Linear(14, 8)

    def forward(self, inp, lengths):
        l, _ = run_layer(self.l, self.emb(inp["tokens"].long()), lengths)
        g, _ = run_layer(self.g, l, lengths)
        logits = self.logits(g)
        return {"logits": logits, "probs": torch.softmax(logits, dim=-1)}


class LastLengths(nn.Module):  # Tests/Golden/models/last_lengths.rnn
    def __init__(self):
        super().__init__()
        self.l = nn.LSTM(5, 6, num_layers=2, batch_first=True)
        self.r = nn.RNN(5, 5, nonlinearity="relu", bidirectional=True, batch_first=True)
        self.logits = nn.Linear(6 + 10, 3)

    def forward(self, inp, lengths):
        _, l_last = run_layer(self.l, inp["x"], lengths)
        _, r_last = run_layer(self.r, inp["x"], lengths)
        logits = self.logits(torch.cat([l_last, r_last], dim=-1))
        return {"logits": logits, "probs": torch.softmax(logits, dim=-1), "l_last": l_last}


class CellOps(nn.Module):  # Tests/Golden/models/grad_cell_ops.rnn
    def __init__(self):
        super().__init__()
        self.s = CellLayer(mg.mix_params(6), [6, 6], cell_relu(mg.mix_step), 5)
        self.d = nn.Linear(5, 3)

    def forward(self, inp, lengths):
        x = inp["x"]
        s, _ = self.s(x, lengths)
        d = self.d(x)
        z = (-s * 2 + torch.log(1 + torch.exp(s)) / 3
             - torch.sigmoid(s) * checked_relu(torch.tanh(s)))
        return {"s": s, "logits": torch.cat([z, d], dim=-1)}


class CellL2Bi(nn.Module):  # Tests/Golden/models/grad_cell_l2_bi.rnn
    def __init__(self):
        super().__init__()
        self.y = CellLayer(mg.leaky_params(6), [6, 6], mg.leaky_step, 5, layers=2,
                           bidirectional=True)

    def forward(self, inp, lengths):
        y, _ = self.y(inp["x"], lengths)
        return {"y": y}


class EmbeddingDense(nn.Module):  # Tests/Golden/models/grad_embedding.rnn
    def __init__(self):
        super().__init__()
        self.e = nn.Embedding(50, 6)
        self.d = nn.Linear(6, 8)
        self.logits = nn.Linear(8, 5)

    def forward(self, inp, lengths):
        d = checked_relu(self.d(self.e(inp["ids"].long())))
        logits = self.logits(d)
        return {"logits": logits, "probs": torch.softmax(logits, dim=-1)}


class DenseSeq(nn.Module):  # Tests/Golden/models/grad_dense_seq.rnn
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(5, 6)
        self.h = nn.RNN(6, 6, nonlinearity="tanh", batch_first=True)
        self.b = nn.Linear(6, 6)
        self.c = nn.Linear(6, 6)
        self.d = nn.Linear(6, 5)
        self.y = nn.Linear(5, 3)

    def forward(self, inp, lengths):
        a = torch.tanh(self.a(inp["x"]))
        h, _ = run_layer(self.h, a, lengths)
        b = torch.sigmoid(self.b(h))
        c = checked_relu(self.c(b))
        d = self.d(c)
        return {"y": torch.softmax(self.y(d), dim=-1)}


# ----------------------------------------------------------------------------
# The cases. Inputs as in make_golden.py: ("seq", F), ("vec", F),
# ("ids", V, numpy dtype). Targets: the names of the model's `target` lines;
# their shapes come from the declarations, int labels range over the classes
# (the last axis of the loss's prediction).

def focused(name):
    return "Tests/Golden/models/%s.rnn" % name


def case(name, model, description, batch, time, inputs, build, lengths=None):
    return dict(name=name, model=model, description=description, batch=batch, time=time,
                inputs=inputs, build=build, lengths=lengths)


SEQ5 = [("x", "seq", 5)]

CASE_LIST = [
    case("char_lstm", "models/char_lstm.rnn",
         "example: embedding, 2-layer LSTM (its dropout=0.2 off), dense; cross-entropy over "
         "batch x time", 3, 6, [("chars", "ids", 256, np.int64)], CharLSTM),
    case("gate_gru", "models/gate_gru.rnn",
         "example: GRU written as a user cell (hand-written loop); cross-entropy over batch x time",
         3, 5, [("chars", "ids", 256, np.int64)], GateGRULM),
    case("jordan", "models/jordan.rnn",
         "example: Jordan network user cell, output fed back; mse on the sequence",
         3, 7, [("x", "seq", 8)], JordanNet),
    case("price_rnn", "models/price_rnn.rnn",
         "example: two stacked ReLU RNNs, dense on last(); mse on [B, 1]",
         3, 7, [("window", "seq", 1)], PriceRNN),
    case("sentiment_gru", "models/sentiment_gru.rnn",
         "example: bidirectional GRU classifier with lengths, int32 tokens; cross-entropy on an "
         "int label; embedding gradient stored as sparse rows",
         3, 6, [("words", "ids", 20000, np.int32)], SentimentGRU, lengths=[6, 3, 1]),
    case("rnn_tanh", focused("grad_rnn_tanh"), "tanh RNN, mse on the output sequence",
         3, 7, SEQ5, lambda: Recurrent(nn.RNN(5, 6, nonlinearity="tanh", batch_first=True))),
    case("rnn_relu", focused("rnn_relu"), "ReLU RNN, mse on the output sequence",
         3, 7, SEQ5, lambda: Recurrent(nn.RNN(5, 7, nonlinearity="relu", batch_first=True))),
    case("lstm_l2_bi", focused("grad_lstm_l2_bi"),
         "LSTM, 2 layers, bidirectional, dense on every step; mse on the sequence",
         3, 7, SEQ5,
         lambda: RecurrentDense(nn.LSTM(5, 6, num_layers=2, bidirectional=True,
                                        batch_first=True), 3, "y")),
    case("gru_l2_bi", focused("grad_gru_l2_bi"),
         "GRU, 2 layers, bidirectional, dense logits; cross-entropy over batch x time",
         3, 7, SEQ5,
         lambda: RecurrentDense(nn.GRU(5, 7, num_layers=2, bidirectional=True,
                                       batch_first=True), 4, "logits")),
    case("lstm_lengths", focused("grad_lstm_lengths"),
         "LSTM with lengths; mse on the sequence over the valid steps only",
         4, 7, SEQ5, lambda: Recurrent(nn.LSTM(5, 6, batch_first=True), with_last=True),
         lengths=[7, 3, 1, 5]),
    # Wide enough that the time loops, forward and backward, run on a team of threads.
    case("lstm_team_lengths", focused("grad_lstm_team_lengths"),
         "LSTM with H=96 (a team of threads) and lengths; mse on the sequence",
         3, 5, [("x", "seq", 24)], lambda: Recurrent(nn.LSTM(24, 96, batch_first=True)),
         lengths=[5, 2, 4]),
    case("lstm_team_rows", focused("grad_lstm_team_rows"),
         "LSTM with 12 examples and H=64 (products split by panel and row tile) and lengths; "
         "mse on the sequence", 12, 4, [("x", "seq", 20)],
         lambda: Recurrent(nn.LSTM(20, 64, batch_first=True)),
         lengths=[4, 2, 4, 1, 3, 4, 4, 2, 4, 3, 4, 1]),
    case("gru_team_batch1", focused("grad_gru_team_batch1"),
         "GRU with H=150 at batch 1 (a team splits the products); mse on the sequence",
         1, 5, [("x", "seq", 16)], lambda: Recurrent(nn.GRU(16, 150, batch_first=True))),
    case("gru_bi_lengths", focused("grad_gru_bi_lengths"),
         "bidirectional GRU with lengths; cross-entropy on dense(last(h)), an int label",
         3, 7, SEQ5, GRUBiLengths, lengths=[2, 7, 5]),
    case("stacked_lengths", focused("grad_stacked_lengths"),
         "embedding -> lstm -> bidirectional gru -> dense with lengths; cross-entropy over the "
         "valid steps only", 3, 7, [("ids", "ids", 30, np.int64)], StackedLengths,
         lengths=[3, 7, 5]),
    # B >= 4 examples and B x T >= V rows: the embeddings' projections go through a table
    # of the vocabulary (ProjectedEmbeddings), forward and backward.
    case("stacked_lengths_table", focused("grad_stacked_lengths"),
         "embedding -> lstm -> bidirectional gru -> dense with lengths, 6 x 7 rows for 30 ids "
         "(a projected embedding); cross-entropy over the valid steps only", 6, 7,
         [("ids", "ids", 30, np.int64)], StackedLengths, lengths=[3, 7, 5, 7, 1, 6]),
    case("embedding_gru", focused("grad_embedding_gru"),
         "embedding -> gru -> dense, int32 tokens, 4 x 5 rows for 10 ids (a projected "
         "embedding); cross-entropy over batch x time", 4, 5,
         [("tokens", "ids", 10, np.int32)], EmbeddingGRU),
    case("embedding_bigru", focused("grad_embedding_bigru"),
         "embedding -> bidirectional gru -> dense with lengths, 5 x 6 rows for 12 ids (a table "
         "per direction); cross-entropy over the valid steps only", 5, 6,
         [("ids", "ids", 12, np.int64)], EmbeddingBiGRU, lengths=[6, 2, 5, 6, 3]),
    case("stacked_layers", focused("stacked_layers"),
         "embedding -> lstm -> bidirectional gru -> dense, int32 tokens; cross-entropy over "
         "batch x time", 3, 7, [("tokens", "ids", 40, np.int32)], StackedLayers),
    case("last_lengths", focused("last_lengths"),
         "last() with lengths of a 2-layer LSTM and a bidirectional ReLU RNN; cross-entropy on "
         "an int label", 4, 7, SEQ5, LastLengths, lengths=[4, 7, 1, 6]),
    case("cell_ops", focused("grad_cell_ops"),
         "two-state user cell with every element-wise op; model-level arithmetic and concat; "
         "cross-entropy over batch x time", 3, 7, SEQ5, CellOps),
    case("cell_l2_bi", focused("grad_cell_l2_bi"),
         "two-state user cell, layers=2, bidirectional=true; mse on the sequence",
         3, 7, SEQ5, CellL2Bi),
    case("cell_l2_bi_lengths", focused("grad_cell_l2_bi"),
         "two-state user cell, layers=2, bidirectional=true, with lengths; mse over the valid "
         "steps only", 3, 7, SEQ5, CellL2Bi, lengths=[5, 7, 2]),
    case("embedding", focused("grad_embedding"),
         "embedding -> dense(relu) -> dense; cross-entropy over batch x time",
         3, 7, [("ids", "ids", 50, np.int64)], EmbeddingDense),
    case("dense_seq", focused("grad_dense_seq"),
         "dense with tanh, rnn, dense with sigmoid, relu, none, softmax; mse on the sequence",
         3, 7, SEQ5, DenseSeq),
]


# ----------------------------------------------------------------------------
# The .rnn declarations.

def parse_model(model_path):
    """Inputs, outputs, targets {name: type}, and the loss (fn, prediction, target)."""
    text = (ROOT / model_path).read_text()
    inputs, outputs = mg.declared_names(model_path)
    model = text[re.search(r"^\s*model\s+\w+\s*\{", text, re.M).start():]
    lines = [line.split("#", 1)[0].strip() for line in model.splitlines()]
    targets = {}
    losses = []
    for line in lines:
        m = re.match(r"target\s+(\w+)\s*:\s*(.+)$", line)
        if m:
            targets[m.group(1)] = m.group(2).replace(" ", "")
        m = re.match(r"loss\s+(\w+)\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)$", line)
        if m:
            losses.append(m.groups())
        elif line.startswith("loss"):
            raise ValueError("%s: unparsed loss line %r" % (model_path, line))
    assert len(losses) == 1, (model_path, losses)
    fn, pred, target = losses[0]
    assert fn in ("mse", "cross_entropy"), (model_path, fn)
    assert list(targets) == [target], (model_path, targets, target)
    return inputs, outputs, targets, (fn, pred, target)


def target_shape(declared, batch, time):
    """float[time,4] -> [B,T,4]; float[1] -> [B,1]; int[time] -> [B,T]; int -> [B]."""
    m = re.fullmatch(r"(float|int)(?:\[(.*)\])?", declared)
    assert m, declared
    dims = [batch]
    if m.group(2):
        for d in m.group(2).split(","):
            dims.append(time if d == "time" else int(d))
    return m.group(1), dims, m.group(2) is not None and m.group(2).startswith("time")


# ----------------------------------------------------------------------------
# Losses (rnnc's contract).

def valid_mask(lengths, batch, time):
    return torch.arange(time).unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]


def compute_loss(fn, pred, target, sequence, lengths):
    """mse: mean over all elements; cross_entropy: mean over labelled positions.

    Over a sequence with lengths, only the valid steps count.
    """
    if fn == "mse":
        assert pred.shape == target.shape, (pred.shape, target.shape)
        if sequence and lengths is not None:
            mask = valid_mask(lengths, pred.shape[0], pred.shape[1])
            return F.mse_loss(pred[mask], target[mask])
        return F.mse_loss(pred, target)
    classes = pred.shape[-1]
    assert pred.shape[:-1] == target.shape, (pred.shape, target.shape)
    if sequence and lengths is not None:
        mask = valid_mask(lengths, pred.shape[0], pred.shape[1])
        return F.cross_entropy(pred[mask], target[mask])
    return F.cross_entropy(pred.reshape(-1, classes), target.reshape(-1))


def check_losses():
    """The masked losses equal their textbook forms."""
    g = torch.Generator().manual_seed(3)
    lengths = torch.tensor([4, 1, 3])
    pred = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    tgt = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    mask = valid_mask(lengths, 3, 4).unsqueeze(-1).double()
    want = ((pred - tgt) ** 2 * mask).sum() / (lengths.sum() * 5)
    assert torch.allclose(compute_loss("mse", pred, tgt, True, lengths), want, rtol=1e-14)
    labels = torch.randint(0, 5, (3, 4), generator=g)
    ignored = labels.masked_fill(~valid_mask(lengths, 3, 4), -100)
    want = F.cross_entropy(pred.reshape(-1, 5), ignored.reshape(-1), ignore_index=-100)
    assert torch.allclose(compute_loss("cross_entropy", pred, labels, True, lengths), want,
                          rtol=1e-14)
    logp = torch.log_softmax(pred.reshape(-1, 5), dim=-1)
    want = -logp[torch.arange(12), labels.reshape(-1)].mean()
    assert torch.allclose(compute_loss("cross_entropy", pred, labels, True, None), want,
                          rtol=1e-14)


# ----------------------------------------------------------------------------
# Generation.

def make_targets(spec, targets, pred, generator):
    """Random targets: float ~ N(0, 1); int labels uniform over the classes.

    Past an example's length they hold random values too (not zeros).
    """
    out = {}
    for tname, declared in targets.items():
        kind, shape, _ = target_shape(declared, spec["batch"], spec["time"])
        if kind == "float":
            out[tname] = torch.randn(*shape, generator=generator)
        else:
            classes = pred.shape[-1]
            out[tname] = torch.randint(0, classes, shape, generator=generator)
    return out


def build_model(spec):
    model = spec["build"]()
    tensors, state = [], {}
    for pname, param in model.state_dict().items():
        shape = list(param.shape)
        scale = mg.default_scale(shape)
        state[pname] = torch.from_numpy(mg.weight_values(pname, shape, scale))
        tensors.append({"name": pname, "shape": shape, "scale": scale})
    model.load_state_dict(state, strict=True)
    model.eval()  # no dropout anywhere (the references have p = 0 besides)
    return model, tensors


def gradients(model, dtype, arrays, lengths, fn, pred_name, target, sequence):
    """(values, loss, {param: grad}) in the given dtype."""
    model = model.to(dtype)
    model.zero_grad(set_to_none=True)
    inp = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in arrays.items()}
    tgt = target.to(dtype) if target.is_floating_point() else target
    values = model(inp, lengths)
    loss = compute_loss(fn, values[pred_name], tgt, sequence, lengths)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    assert list(grads) == list(model.state_dict()), "every state_dict entry is a parameter"
    return values, loss.detach(), grads


def store_gradient(folder, pname, grad):
    """Writes grad_NAME.npy, or the .rows.npy/.values.npy pair; returns the storage."""
    g = grad.numpy().astype(np.float32)
    flat = g.reshape(g.shape[0], -1)
    nonzero = np.flatnonzero(np.any(flat != 0, axis=1)).astype(np.int64)
    if g.size > SPARSE_LIMIT and 2 * len(nonzero) <= g.shape[0]:
        rows, storage = nonzero, "sparse_rows"
    elif g.size <= DENSE_LIMIT:
        mg.save_npy(folder / ("grad_%s.npy" % pname), g)
        return "dense"
    else:
        step = math.ceil(g.size / DENSE_LIMIT)
        rows, storage = np.arange(0, g.shape[0], step, dtype=np.int64), "sampled_rows"
    mg.save_npy(folder / ("grad_%s.rows.npy" % pname), rows)
    mg.save_npy(folder / ("grad_%s.values.npy" % pname), g[rows])
    return storage


def generate(spec):
    name = spec["name"]
    inputs, outputs, targets, (fn, pred_name, tname) = parse_model(spec["model"])
    expected_inputs = [item[0] for item in spec["inputs"]]
    assert inputs == expected_inputs, (name, inputs, expected_inputs)
    mg.check_lengths(spec)
    kind, _, sequence = target_shape(targets[tname], spec["batch"], spec["time"])
    assert (kind == "float") == (fn == "mse"), (name, kind, fn)

    model, tensors = build_model(spec)
    generator = torch.Generator().manual_seed(INPUT_SEED)
    arrays = mg.make_inputs(spec, generator)
    lengths = None
    if spec["lengths"] is not None:
        lengths = torch.tensor(spec["lengths"], dtype=torch.int64)

    # Targets need the class count: one forward pass first.
    with torch.no_grad():
        probe = model.double()({k: (v.double() if v.is_floating_point() else v)
                                for k, v in arrays.items()}, lengths)
    assert set(outputs) <= set(probe) and pred_name in probe, (name, list(probe))
    target_arrays = make_targets(spec, targets, probe[pred_name], generator)
    target = target_arrays[tname]
    _, expected_shape, _ = target_shape(targets[tname], spec["batch"], spec["time"])
    assert list(target.shape) == expected_shape

    # The float64 reference, recording relu inputs.
    RELU_INPUTS.clear()
    RECORD[0] = True
    values, loss, grads = gradients(model, torch.float64, arrays, lengths, fn, pred_name,
                                    target, sequence)
    RECORD[0] = False
    relu_margin = min(RELU_INPUTS) if RELU_INPUTS else None
    assert relu_margin is None or relu_margin > RELU_MARGIN, (name, relu_margin)
    # float64 with and without the relu recording are the same computation.
    _, loss_again, grads_again = gradients(model, torch.float64, arrays, lengths, fn,
                                           pred_name, target, sequence)
    assert torch.allclose(loss, loss_again, rtol=1e-12, atol=0)
    assert all(torch.allclose(grads[n], grads_again[n], rtol=1e-12, atol=1e-15) for n in grads)

    # With lengths, what lies past an example's length (inputs and targets)
    # changes nothing.
    if lengths is not None:
        other = torch.Generator().manual_seed(INPUT_SEED + 1)
        pad = ~valid_mask(lengths, spec["batch"], spec["time"])
        repadded = {}
        for iname, value in arrays.items():
            fresh = mg.make_inputs(spec, other)[iname]
            mask = pad.reshape(pad.shape + (1,) * (value.dim() - 2))
            repadded[iname] = torch.where(mask, fresh, value)
            assert not torch.equal(repadded[iname], value)
        fresh_target = make_targets(spec, targets, probe[pred_name], other)[tname]
        if sequence:
            mask = pad.reshape(pad.shape + (1,) * (target.dim() - 2))
            fresh_target = torch.where(mask, fresh_target, target)
        else:
            fresh_target = target
        _, loss_pad, grads_pad = gradients(model, torch.float64, repadded, lengths, fn,
                                           pred_name, fresh_target, sequence)
        assert torch.allclose(loss, loss_pad, rtol=1e-12, atol=0), name
        assert all(torch.allclose(grads[n], grads_pad[n], rtol=1e-10, atol=1e-15)
                   for n in grads), name

    # torch in float32 lands well inside the test tolerance.
    _, loss32, grads32 = gradients(model, torch.float32, arrays, lengths, fn, pred_name,
                                   target, sequence)
    assert abs(float(loss32) - float(loss)) <= 1e-5 * abs(float(loss)), (name, loss32, loss)
    f32_err = 0.0
    max_abs = {}
    for pname, g in grads.items():
        top = float(g.abs().max())
        assert top > 1e-7, (name, pname, "no gradient")
        err = float((grads32[pname].double() - g).abs().max()) / top
        assert err <= F32_CHECK, (name, pname, err)
        f32_err = max(f32_err, err)
        max_abs[pname] = float(np.float32(top))

    folder = GRADIENTS / name
    folder.mkdir(parents=True)
    for iname, value in arrays.items():
        mg.save_npy(folder / ("in_%s.npy" % iname), value.numpy())
    if lengths is not None:
        mg.save_npy(folder / "lengths.npy", lengths.numpy())
    for t, value in target_arrays.items():
        array = value.numpy()
        array = array.astype(np.float32 if value.is_floating_point() else np.int64)
        mg.save_npy(folder / ("tgt_%s.npy" % t), array)
    for oname in outputs:
        out = values[oname].detach().numpy().astype(np.float32)
        assert np.all(np.isfinite(out)), (name, oname)
        mg.save_npy(folder / ("out_%s.npy" % oname), out)
    # 0-d: np.save directly (np.ascontiguousarray would make it 1-d).
    np.save(folder / "loss.npy", np.array(float(loss), dtype=np.float64), allow_pickle=False)
    storage = {"sparse_rows": [], "sampled_rows": []}
    for pname, g in grads.items():
        kind_stored = store_gradient(folder, pname, g)
        if kind_stored != "dense":
            storage[kind_stored].append(pname)

    meta = {
        "model": spec["model"],
        "description": spec["description"],
        "batch": spec["batch"],
        "time": spec["time"],
        "inputs": expected_inputs,
        "lengths": lengths is not None,
        "outputs": outputs,
        "targets": [tname],
        "loss": fn,
        "tensors": tensors,
        "sparse_rows": storage["sparse_rows"],
        "sampled_rows": storage["sampled_rows"],
        "grad_max_abs": max_abs,
        "torch_float32_rel_err": float("%.2e" % f32_err),
    }
    (folder / "case.json").write_text(json.dumps(meta, indent=2) + "\n")
    read_back(folder, grads, float(loss))
    size = sum(p.stat().st_size for p in folder.iterdir())
    notes = []
    if storage["sparse_rows"]:
        notes.append("sparse " + ",".join(storage["sparse_rows"]))
    if storage["sampled_rows"]:
        notes.append("%d sampled" % len(storage["sampled_rows"]))
    print("%-20s B=%d T=%d lengths=%-5s %-13s loss=%.6f params=%-3d f32err=%.1e relu=%s %6.1f KB %s"
          % (name, spec["batch"], spec["time"], lengths is not None, fn, float(loss), len(grads),
             f32_err, "-" if relu_margin is None else "%.1e" % relu_margin, size / 1024,
             "; ".join(notes)))
    return size


def read_back(folder, grads, loss):
    """Reads the case as a test would and checks it against what was computed."""
    meta = json.loads((folder / "case.json").read_text())
    stored_loss = np.load(folder / "loss.npy")
    assert stored_loss.shape == () and stored_loss.dtype == np.float64 and stored_loss == loss
    names = [t["name"] for t in meta["tensors"]]
    assert names == list(grads)
    files = {"case.json", "loss.npy"}
    files |= {"in_%s.npy" % n for n in meta["inputs"]}
    files |= {"out_%s.npy" % n for n in meta["outputs"]}
    files |= {"tgt_%s.npy" % n for n in meta["targets"]}
    if meta["lengths"]:
        files.add("lengths.npy")
    for t in meta["tensors"]:
        name, want = t["name"], grads[t["name"]].numpy().astype(np.float32)
        assert meta["grad_max_abs"][name] == float(np.abs(want).max())
        if name in meta["sparse_rows"] or name in meta["sampled_rows"]:
            rows = np.load(folder / ("grad_%s.rows.npy" % name))
            values = np.load(folder / ("grad_%s.values.npy" % name))
            assert rows.dtype == np.int64 and values.dtype == np.float32
            assert values.shape == (len(rows),) + tuple(t["shape"][1:])
            assert np.array_equal(values, want[rows])
            if name in meta["sparse_rows"]:
                rest = np.delete(want, rows, axis=0)
                assert not np.any(rest), name
            files |= {"grad_%s.rows.npy" % name, "grad_%s.values.npy" % name}
        else:
            got = np.load(folder / ("grad_%s.npy" % name))
            assert got.dtype == np.float32 and list(got.shape) == t["shape"]
            assert np.array_equal(got, want)
            files.add("grad_%s.npy" % name)
    assert files == {p.name for p in folder.iterdir()}, folder


def self_check():
    check_losses()
    # The relu-recording ReLU RNN path equals nn.RNN, with and without lengths,
    # bidirectional and two layers.
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 6, 4, generator=g, dtype=torch.float64)
    rnn = nn.RNN(4, 5, num_layers=2, nonlinearity="relu", bidirectional=True,
                 batch_first=True).double()
    RECORD[0] = True
    try:
        for lens in (None, torch.tensor([6, 2, 4])):
            run_layer(rnn, x, lens)  # asserts equality inside
    finally:
        RECORD[0] = False
        RELU_INPUTS.clear()


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    mg.self_check()
    self_check()
    names = [spec["name"] for spec in CASE_LIST]
    assert len(names) == len(set(names))
    if GRADIENTS.exists():
        shutil.rmtree(GRADIENTS)
    GRADIENTS.mkdir(parents=True)
    total = sum(generate(spec) for spec in CASE_LIST)
    print("wrote %d cases to %s (%.0f KB)" % (len(CASE_LIST), GRADIENTS.relative_to(ROOT),
                                              total / 1024))
    return 0


if __name__ == "__main__":
    sys.exit(main())
