#!/usr/bin/env python3
"""Writes the golden test cases under Tests/Golden/cases/ from PyTorch.

Each case is a model (.rnn), inputs, and the outputs PyTorch computes for them
with deterministic weights (see README.md for the layout and weight formula).
The PyTorch reference of every model is written by hand below: built-in layers
use nn.Embedding / nn.RNN / nn.LSTM / nn.GRU / nn.Linear (packed sequences when
there are lengths); user cells are per-step loops in plain torch ops that follow
the cell's equations literally.

Usage: python3 Tests/Golden/make_golden.py
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
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

GOLDEN = Path(__file__).resolve().parent
ROOT = GOLDEN.parent.parent
CASES = GOLDEN / "cases"
INPUT_SEED = 20240611

# ----------------------------------------------------------------------------
# Deterministic weights (the Swift test reproduces this bit for bit).

LCG_A = 1664525
LCG_C = 1013904223
MASK32 = 0xFFFFFFFF


def fnv1a32(name):
    h = 2166136261
    for byte in name.encode("utf-8"):
        h = ((h ^ byte) * 16777619) & MASK32
    return h


def default_scale(shape):
    return 0.25 if len(shape) == 1 else 1.0 / math.sqrt(shape[-1])


def lcg_states(seed, n):
    """The n states after seed of state = state * A + C mod 2**32, as uint64.

    Vectorized: the first block is stepped one by one, then whole blocks are
    advanced with the K-step jump state -> A_K * state + C_K. uint64 arithmetic
    wraps mod 2**64, a multiple of 2**32, so masking at the end is exact.
    """
    block = 4096
    out = np.empty(n, dtype=np.uint64)
    state = seed
    for i in range(min(block, n)):
        state = (state * LCG_A + LCG_C) & MASK32
        out[i] = state
    if n <= block:
        return out
    a_k, c_k = 1, 0
    for _ in range(block):
        a_k, c_k = (a_k * LCG_A) & MASK32, (c_k * LCG_A + LCG_C) & MASK32
    a_k, c_k = np.uint64(a_k), np.uint64(c_k)
    mask = np.uint64(MASK32)
    for start in range(block, n, block):
        stop = min(start + block, n)
        prev = out[start - block:stop - block]
        out[start:stop] = (prev * a_k + c_k) & mask
    return out


def weight_values(name, shape, scale):
    numel = int(np.prod(shape, dtype=np.int64))
    states = lcg_states(fnv1a32(name), numel)
    u = (states >> np.uint64(8)).astype(np.float64) / 16777216.0
    values = ((u - 0.5) * 2.0) * scale  # float64 throughout
    return values.astype(np.float32).reshape(shape)


def weight_values_reference(name, shape, scale):
    """The formula as a plain loop, to check the vectorized version."""
    state = fnv1a32(name)
    values = []
    for _ in range(int(np.prod(shape))):
        state = (state * LCG_A + LCG_C) % 2**32
        u = (state >> 8) / 16777216.0
        values.append((u - 0.5) * 2.0 * scale)
    return np.array(values, dtype=np.float64).astype(np.float32).reshape(shape)


# ----------------------------------------------------------------------------
# Reference building blocks.

def last_of(h_n, bidirectional):
    """last(h): h_n[-1], or cat(h_n[-2], h_n[-1]) when bidirectional."""
    if bidirectional:
        return torch.cat([h_n[-2], h_n[-1]], dim=-1)
    return h_n[-1]


def run_builtin(module, x, lengths):
    """Runs nn.RNN/LSTM/GRU (batch_first, zero initial state).

    Returns (output sequence [B, T, D*H], last(h)). With lengths, packs the
    padded batch and pads the output back to T with zeros.
    """
    if lengths is None:
        out, h_n = module(x)
    else:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, h_n = module(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    if isinstance(module, nn.LSTM):
        h_n = h_n[0]
    return out, last_of(h_n, module.bidirectional)


def mv(matrix, vector):
    """W @ v for a batch of vectors v [B, N] and W [M, N]: returns [B, M]."""
    return torch.matmul(vector, matrix.t())


class CellLayer(nn.Module):
    """A user cell run over time, with layers and directions like nn.RNN.

    params(I) lists the cell's (name, shape) for an input of size I; the
    state sizes are given in declaration order; step(p, x, states) returns the
    new states (a hand translation of the cell's equations). Parameters are
    named PARAM, or PARAM_l{k} / PARAM_l{k}_reverse with layers or directions.
    """

    def __init__(self, params, state_sizes, step, input_size, layers=1, bidirectional=False):
        super().__init__()
        self.step = step
        self.state_sizes = list(state_sizes)
        self.layers = layers
        self.directions = 2 if bidirectional else 1
        self.param_names = []
        size = input_size
        for layer in range(layers):
            for direction in range(self.directions):
                names = []
                for pname, shape in params(size):
                    full = pname + self.suffix(layer, direction)
                    self.register_parameter(full, nn.Parameter(torch.empty(shape)))
                    names.append((pname, full))
                self.param_names.append(names)
            size = self.directions * self.state_sizes[0]

    def suffix(self, layer, direction):
        if self.layers == 1 and self.directions == 1:
            return ""
        return "_l%d" % layer + ("_reverse" if direction == 1 else "")

    def forward(self, x, lengths):
        """Returns (output sequence [B, T, D*S0], last(y))."""
        batch, time = x.shape[0], x.shape[1]
        layer_input = x
        finals = []
        for layer in range(self.layers):
            outputs = []
            for direction in range(self.directions):
                names = self.param_names[layer * self.directions + direction]
                p = {pname: getattr(self, full) for pname, full in names}
                states = tuple(x.new_zeros(batch, s) for s in self.state_sizes)
                out = x.new_zeros(batch, time, self.state_sizes[0])
                steps = range(time) if direction == 0 else reversed(range(time))
                for t in steps:
                    new = tuple(self.step(p, layer_input[:, t], states))
                    if lengths is None:
                        out[:, t] = new[0]
                    else:
                        # Past an example's length: the state is frozen and the
                        # output is zero. Running backward, the state stays zero
                        # until the example's own last step, as packed nn.RNN.
                        valid = (t < lengths).unsqueeze(1)
                        new = tuple(torch.where(valid, n, s) for n, s in zip(new, states))
                        out[:, t] = torch.where(valid, new[0], torch.zeros_like(new[0]))
                    states = new
                outputs.append(out)
                finals.append(states[0])
            layer_input = torch.cat(outputs, dim=-1)
        if self.directions == 2:
            last = torch.cat([finals[-2], finals[-1]], dim=-1)
        else:
            last = finals[-1]
        return layer_input, last


# ----------------------------------------------------------------------------
# User cells: the equations of the .rnn files, literally.

def jordan_params(H, O):
    return lambda I: [("W_x", (H, I)), ("W_y", (H, O)), ("b_h", (H,)),
                      ("W_o", (O, H)), ("b_o", (O,))]


def jordan_step(p, x, states):
    (y,) = states
    h = torch.tanh(mv(p["W_x"], x) + mv(p["W_y"], y) + p["b_h"])
    y = torch.sigmoid(mv(p["W_o"], h) + p["b_o"])
    return (y,)


def gate_gru_params(H):
    return lambda I: [("W_ir", (H, I)), ("W_iz", (H, I)), ("W_in", (H, I)),
                      ("W_hr", (H, H)), ("W_hz", (H, H)), ("W_hn", (H, H)),
                      ("b_ir", (H,)), ("b_iz", (H,)), ("b_in", (H,)),
                      ("b_hr", (H,)), ("b_hz", (H,)), ("b_hn", (H,))]


def gate_gru_step(p, x, states):
    (h,) = states
    r = torch.sigmoid(mv(p["W_ir"], x) + p["b_ir"] + mv(p["W_hr"], h) + p["b_hr"])
    z = torch.sigmoid(mv(p["W_iz"], x) + p["b_iz"] + mv(p["W_hz"], h) + p["b_hz"])
    n = torch.tanh(mv(p["W_in"], x) + p["b_in"] + r * (mv(p["W_hn"], h) + p["b_hn"]))
    h = (1 - z) * n + z * h
    return (h,)


def mix_params(H):
    return lambda I: [("W", (H, I)), ("U", (H, H)), ("V", (H, I)), ("b", (H,)), ("a", (H,))]


def mix_step(p, x, states):
    h, c = states
    g = torch.sigmoid(mv(p["W"], x) + mv(p["U"], h) + p["b"])
    pp = torch.log(1 + torch.exp(mv(p["V"], x) - c))  # the cell's p (p holds the params)
    q = torch.relu(-(mv(p["U"], c)) + p["a"]) * 0.5
    c = g * c + (1 - g) * torch.tanh(pp - q)
    h = torch.tanh(c) / (2 + g) - 0.25 * h + torch.relu(-pp + 1) / 4
    return (h, c)


def leaky_params(H):
    return lambda I: [("W", (H, I)), ("U", (H, H)), ("b", (H,)), ("a", (H,))]


def leaky_step(p, x, states):
    h, m = states
    m = torch.sigmoid(p["a"]) * m + (1 - torch.sigmoid(p["a"])) * mv(p["W"], x)
    h = torch.tanh(m + mv(p["U"], h) + p["b"])
    return (h, m)


# ----------------------------------------------------------------------------
# Reference models. Sub-module names are the .rnn names, so state_dict names
# are the rnnc parameter names. forward(inputs, lengths) -> {output: tensor}.

class CharLSTM(nn.Module):  # models/char_lstm.rnn
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(256, 64)
        self.hidden = nn.LSTM(64, 256, num_layers=2, dropout=0.2, batch_first=True)
        self.logits = nn.Linear(256, 256)

    def forward(self, inp, lengths):
        hidden, _ = run_builtin(self.hidden, self.emb(inp["chars"]), lengths)
        return {"probs": torch.softmax(self.logits(hidden), dim=-1)}


class GateGRULM(nn.Module):  # models/gate_gru.rnn
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(256, 64)
        self.hidden = CellLayer(gate_gru_params(256), [256], gate_gru_step, 64)
        self.logits = nn.Linear(256, 256)

    def forward(self, inp, lengths):
        hidden, _ = self.hidden(self.emb(inp["chars"]), lengths)
        return {"probs": torch.softmax(self.logits(hidden), dim=-1)}


class JordanNet(nn.Module):  # models/jordan.rnn
    def __init__(self):
        super().__init__()
        self.y = CellLayer(jordan_params(32, 4), [4], jordan_step, 8)

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
        h1, _ = run_builtin(self.h1, inp["window"], lengths)
        _, h2_last = run_builtin(self.h2, h1, lengths)
        return {"y": self.y(h2_last)}


class SentimentGRU(nn.Module):  # models/sentiment_gru.rnn
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20000, 128)
        self.h = nn.GRU(128, 128, bidirectional=True, batch_first=True)
        self.logits = nn.Linear(256, 2)

    def forward(self, inp, lengths):
        _, h_last = run_builtin(self.h, self.emb(inp["words"].long()), lengths)
        return {"probs": torch.softmax(self.logits(h_last), dim=-1)}


class SingleRecurrent(nn.Module):
    """rnn_tanh, rnn_relu, *_l2_bi, lstm_lengths, ...: h = layer(x)."""

    def __init__(self, module, with_last):
        super().__init__()
        self.h = module
        self.with_last = with_last

    def forward(self, inp, lengths):
        h, final = run_builtin(self.h, inp["x"], lengths)
        out = {"h": h}
        if self.with_last:
            out["final"] = final
        return out


class DenseSeq(nn.Module):  # Tests/Golden/models/dense_seq.rnn
    ACTIVATIONS = [("d_default", None), ("d_none", None), ("d_tanh", torch.tanh),
                   ("d_relu", torch.relu), ("d_sigmoid", torch.sigmoid),
                   ("d_softmax", lambda v: torch.softmax(v, dim=-1))]

    def __init__(self):
        super().__init__()
        for name, _ in self.ACTIVATIONS:
            setattr(self, name, nn.Linear(5, 4))
        self.h = nn.RNN(5, 6, nonlinearity="tanh", batch_first=True)
        self.d_seq = nn.Linear(6, 3)

    def forward(self, inp, lengths):
        x = inp["x"]
        out = {}
        for name, act in self.ACTIVATIONS:
            y = getattr(self, name)(x)
            out[name] = y if act is None else act(y)
        h, _ = run_builtin(self.h, x, lengths)
        out["d_seq"] = torch.softmax(self.d_seq(h), dim=-1)
        return out


class LastNoLengths(nn.Module):  # Tests/Golden/models/last_nolengths.rnn
    def __init__(self):
        super().__init__()
        self.h1 = nn.RNN(5, 6, nonlinearity="tanh", batch_first=True)
        self.g = nn.GRU(6, 7, bidirectional=True, batch_first=True)
        self.y = nn.Linear(14 + 4, 3)

    def forward(self, inp, lengths):
        h1, h1_last = run_builtin(self.h1, inp["x"], lengths)
        _, g_last = run_builtin(self.g, h1, lengths)
        f = torch.cat([g_last, inp["v"]], dim=-1)
        return {"y": self.y(f), "h1_last": h1_last, "g_last": g_last}


class LastLengths(nn.Module):  # Tests/Golden/models/last_lengths.rnn
    def __init__(self):
        super().__init__()
        self.l = nn.LSTM(5, 6, num_layers=2, batch_first=True)
        self.r = nn.RNN(5, 5, nonlinearity="relu", bidirectional=True, batch_first=True)
        self.logits = nn.Linear(6 + 10, 3)

    def forward(self, inp, lengths):
        _, l_last = run_builtin(self.l, inp["x"], lengths)
        _, r_last = run_builtin(self.r, inp["x"], lengths)
        logits = self.logits(torch.cat([l_last, r_last], dim=-1))
        return {"probs": torch.softmax(logits, dim=-1), "l_last": l_last}


class EmbeddingDense(nn.Module):  # Tests/Golden/models/embedding.rnn
    def __init__(self):
        super().__init__()
        self.e = nn.Embedding(50, 6)
        self.d = nn.Linear(6, 4)

    def forward(self, inp, lengths):
        e = self.e(inp["ids"].long())
        return {"e": e, "d": torch.relu(self.d(e))}


class CellOps(nn.Module):  # Tests/Golden/models/cell_ops.rnn
    def __init__(self):
        super().__init__()
        self.s = CellLayer(mix_params(6), [6, 6], mix_step, 5)
        self.d = nn.Linear(5, 3)

    def forward(self, inp, lengths):
        x = inp["x"]
        s, _ = self.s(x, lengths)
        d = self.d(x)
        both = torch.cat([s, d], dim=-1)
        z = -s * 2 + torch.log(1 + torch.exp(s)) / 3 - torch.sigmoid(s) * torch.relu(torch.tanh(s))
        return {"probs": torch.softmax(both, dim=-1), "s": s, "z": z}


class CellL2Bi(nn.Module):  # Tests/Golden/models/cell_l2_bi.rnn
    def __init__(self):
        super().__init__()
        self.y = CellLayer(leaky_params(6), [6, 6], leaky_step, 5, layers=2, bidirectional=True)

    def forward(self, inp, lengths):
        y, _ = self.y(inp["x"], lengths)
        return {"y": y}


class CellLengths(nn.Module):  # Tests/Golden/models/cell_lengths.rnn
    def __init__(self):
        super().__init__()
        self.fwd = CellLayer(leaky_params(6), [6, 6], leaky_step, 5)
        self.bi = CellLayer(leaky_params(5), [5, 5], leaky_step, 5, bidirectional=True)

    def forward(self, inp, lengths):
        fwd, _ = self.fwd(inp["x"], lengths)
        bi, _ = self.bi(inp["x"], lengths)
        return {"fwd": fwd, "bi": bi}


class CellLastLengths(nn.Module):  # Tests/Golden/models/cell_last_lengths.rnn
    def __init__(self):
        super().__init__()
        self.y = CellLayer(leaky_params(6), [6, 6], leaky_step, 5, layers=2, bidirectional=True)
        self.z = nn.Linear(12, 3)

    def forward(self, inp, lengths):
        y, final = self.y(inp["x"], lengths)
        return {"y": y, "final": final, "z": torch.tanh(self.z(final))}


class StackedLayers(nn.Module):  # Tests/Golden/models/stacked_layers.rnn
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(40, 5)
        self.l = nn.LSTM(5, 6, batch_first=True)
        self.g = nn.GRU(6, 7, bidirectional=True, batch_first=True)
        self.logits = nn.Linear(14, 8)

    def forward(self, inp, lengths):
        l, _ = run_builtin(self.l, self.emb(inp["tokens"].long()), lengths)
        g, _ = run_builtin(self.g, l, lengths)
        return {"probs": torch.softmax(self.logits(g), dim=-1)}


class StackedLengths(nn.Module):  # Tests/Golden/models/stacked_lengths.rnn
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 5)
        self.l = nn.LSTM(5, 6, batch_first=True)
        self.g = nn.GRU(6, 5, bidirectional=True, batch_first=True)
        self.logits = nn.Linear(10, 3)

    def forward(self, inp, lengths):
        l, _ = run_builtin(self.l, self.emb(inp["ids"].long()), lengths)
        g, g_last = run_builtin(self.g, l, lengths)
        return {"probs": torch.softmax(self.logits(g_last), dim=-1), "g": g}


class Batch1Ahead(nn.Module):  # Tests/Golden/models/batch1_ahead.rnn
    def __init__(self):
        super().__init__()
        self.g = nn.GRU(13, 50, batch_first=True)
        self.l = nn.LSTM(50, 40, batch_first=True)

    def forward(self, inp, lengths):
        g, _ = run_builtin(self.g, inp["x"], lengths)
        l, final = run_builtin(self.l, g, lengths)
        return {"l": l, "final": final}


# ----------------------------------------------------------------------------
# The cases. Inputs: (name, kind, ...) with kind
#   "seq"  -> float32 [B, T, F]      ("seq", F)
#   "vec"  -> float32 [B, F]         ("vec", F)
#   "ids"  -> int [B, T] in [0, V)   ("ids", V, numpy dtype)

def focused(name):
    return "Tests/Golden/models/%s.rnn" % name


def case(name, model, description, batch, time, inputs, outputs, build, lengths=None):
    return dict(name=name, model=model, description=description, batch=batch, time=time,
                inputs=inputs, outputs=outputs, build=build, lengths=lengths)


CASE_LIST = [
    case("char_lstm", "models/char_lstm.rnn",
         "example: embedding, 2-layer LSTM (dropout inactive), dense, softmax",
         2, 5, [("chars", "ids", 256, np.int64)], ["probs"], CharLSTM),
    case("gate_gru", "models/gate_gru.rnn",
         "example: GRU written as a user cell (hand-written per-step reference)",
         2, 5, [("chars", "ids", 256, np.int64)], ["probs"], GateGRULM),
    case("jordan", "models/jordan.rnn",
         "example: Jordan network user cell, output fed back (hand-written loop)",
         3, 7, [("x", "seq", 8)], ["y"], JordanNet),
    case("price_rnn", "models/price_rnn.rnn",
         "example: two stacked ReLU RNNs, dense on last()",
         3, 7, [("window", "seq", 1)], ["y"], PriceRNN),
    case("sentiment_gru", "models/sentiment_gru.rnn",
         "example: bidirectional GRU classifier with per-example lengths, int32 tokens",
         3, 5, [("words", "ids", 20000, np.int32)], ["probs"], SentimentGRU,
         lengths=[5, 2, 1]),
    case("sentiment_gru_nolengths", "models/sentiment_gru.rnn",
         "example: bidirectional GRU classifier without lengths, int64 tokens",
         2, 5, [("words", "ids", 20000, np.int64)], ["probs"], SentimentGRU),
    case("rnn_tanh", focused("rnn_tanh"), "one tanh RNN layer, output sequence",
         3, 7, [("x", "seq", 5)], ["h"],
         lambda: SingleRecurrent(nn.RNN(5, 6, nonlinearity="tanh", batch_first=True), False)),
    case("rnn_relu", focused("rnn_relu"), "one ReLU RNN layer, output sequence; has a loss line",
         3, 7, [("x", "seq", 5)], ["h"],
         lambda: SingleRecurrent(nn.RNN(5, 7, nonlinearity="relu", batch_first=True), False)),
    case("rnn_tanh_l2_bi", focused("rnn_tanh_l2_bi"),
         "RNN, 2 layers, bidirectional, activation left to its default (tanh)",
         3, 7, [("x", "seq", 5)], ["h"],
         lambda: SingleRecurrent(nn.RNN(5, 6, num_layers=2, bidirectional=True,
                                        batch_first=True), False)),
    case("lstm_l2_bi", focused("lstm_l2_bi"), "LSTM, 2 layers, bidirectional, dropout inactive",
         3, 7, [("x", "seq", 5)], ["h"],
         lambda: SingleRecurrent(nn.LSTM(5, 6, num_layers=2, bidirectional=True, dropout=0.25,
                                         batch_first=True), False)),
    case("gru_l2_bi", focused("gru_l2_bi"), "GRU, 2 layers, bidirectional",
         3, 7, [("x", "seq", 5)], ["h"],
         lambda: SingleRecurrent(nn.GRU(5, 7, num_layers=2, bidirectional=True,
                                        batch_first=True), False)),
    case("lstm_lengths", focused("lstm_lengths"), "LSTM with lengths: sequence and last()",
         4, 7, [("x", "seq", 5)], ["h", "final"],
         lambda: SingleRecurrent(nn.LSTM(5, 6, batch_first=True), True),
         lengths=[7, 3, 1, 5]),
    # Wide enough that the time loop runs on a team of threads (rnnc_team_size): rows split
    # between threads (B >= threads) and, at batch 1, columns split.
    case("lstm_team_lengths", focused("lstm_team_lengths"),
         "LSTM with H=128, wide enough for a team of threads, with lengths",
         3, 6, [("x", "seq", 24)], ["h", "final"],
         lambda: SingleRecurrent(nn.LSTM(24, 128, batch_first=True), True),
         lengths=[6, 2, 4]),
    # 12 examples: 4 or 5 threads split the step's products by (panel, row tile) pairs.
    case("lstm_team_rows", focused("lstm_team_rows"),
         "LSTM with 12 examples and H=64: products split by panel and row tile, with lengths",
         12, 5, [("x", "seq", 20)], ["h", "final"],
         lambda: SingleRecurrent(nn.LSTM(20, 64, batch_first=True), True),
         lengths=[5, 3, 5, 1, 4, 5, 2, 5, 5, 3, 4, 5]),
    case("gru_team_batch1", focused("gru_team_batch1"),
         "bidirectional GRU with H=160 at batch 1: a team splits the hidden units",
         1, 6, [("x", "seq", 16)], ["h", "final"],
         lambda: SingleRecurrent(nn.GRU(16, 160, bidirectional=True, batch_first=True), True)),
    # Batch 1, 37 steps: projections computed a block of steps ahead (rnnc_project_ahead).
    case("batch1_ahead", focused("batch1_ahead"),
         "GRU then LSTM at batch 1 over 37 steps: projections a block ahead",
         1, 37, [("x", "seq", 13)], ["l", "final"], Batch1Ahead),
    case("gru_bi_lengths", focused("gru_bi_lengths"),
         "bidirectional GRU with lengths: sequence and last()",
         3, 7, [("x", "seq", 5)], ["h", "final"],
         lambda: SingleRecurrent(nn.GRU(5, 6, bidirectional=True, batch_first=True), True),
         lengths=[2, 7, 5]),
    case("lstm_l2_bi_lengths", focused("lstm_l2_bi_lengths"),
         "LSTM, 2 layers, bidirectional, with lengths: sequence and last()",
         3, 7, [("x", "seq", 5)], ["h", "final"],
         lambda: SingleRecurrent(nn.LSTM(5, 5, num_layers=2, bidirectional=True,
                                         batch_first=True), True),
         lengths=[7, 4, 1]),
    case("dense_seq", focused("dense_seq"),
         "dense on a sequence with default, none, tanh, relu, sigmoid, softmax; dense after rnn",
         3, 7, [("x", "seq", 5)],
         ["d_default", "d_none", "d_tanh", "d_relu", "d_sigmoid", "d_softmax", "d_seq"],
         DenseSeq),
    case("last_nolengths", focused("last_nolengths"),
         "last() of rnn and bidirectional gru, concat with a float[4] input, dense",
         3, 7, [("x", "seq", 5), ("v", "vec", 4)], ["y", "h1_last", "g_last"], LastNoLengths),
    case("last_lengths", focused("last_lengths"),
         "last() with lengths of a 2-layer LSTM and a bidirectional ReLU RNN, classifier",
         4, 7, [("x", "seq", 5)], ["probs", "l_last"], LastLengths,
         lengths=[4, 7, 1, 6]),
    case("embedding", focused("embedding"), "embedding as an output, and fed to dense(relu)",
         3, 7, [("ids", "ids", 50, np.int64)], ["e", "d"], EmbeddingDense),
    case("cell_ops", focused("cell_ops"),
         "two-state user cell with + - * / unary minus, literals, tanh sigmoid relu exp log; "
         "softmax, concat and arithmetic at model level; H bound at the use site",
         3, 7, [("x", "seq", 5)], ["probs", "s", "z"], CellOps),
    case("cell_l2_bi", focused("cell_l2_bi"),
         "two-state user cell with layers=2, bidirectional=true (PARAM_l0, _l0_reverse, ...)",
         3, 7, [("x", "seq", 5)], ["y"], CellL2Bi),
    case("cell_lengths", focused("cell_lengths"),
         "user cells with lengths, unidirectional and bidirectional: frozen states, zero outputs",
         3, 7, [("x", "seq", 5)], ["fwd", "bi"], CellLengths,
         lengths=[5, 7, 1]),
    case("cell_last_lengths", focused("cell_last_lengths"),
         "last() of a 2-layer bidirectional user cell with lengths (first state's final value)",
         3, 6, [("x", "seq", 5)], ["y", "final", "z"], CellLastLengths,
         lengths=[6, 2, 4]),
    case("stacked_layers", focused("stacked_layers"),
         "embedding -> lstm -> bidirectional gru -> dense -> softmax, int32 tokens; "
         "has loss and train lines",
         3, 7, [("tokens", "ids", 40, np.int32)], ["probs"], StackedLayers),
    case("stacked_lengths", focused("stacked_lengths"),
         "embedding -> lstm -> bidirectional gru with lengths; softmax(dense(last())) and the "
         "gru sequence",
         3, 7, [("ids", "ids", 30, np.int64)], ["probs", "g"], StackedLengths,
         lengths=[3, 7, 5]),
]


# ----------------------------------------------------------------------------
# Generation.

def declared_names(model_path):
    """The input and output names a .rnn model declares, in order."""
    text = (ROOT / model_path).read_text()
    model = text[re.search(r"^\s*model\s+\w+\s*\{", text, re.M).start():]
    lines = [line.split("#", 1)[0].strip() for line in model.splitlines()]
    inputs = [m.group(1) for m in (re.match(r"input\s+(\w+)\s*:", l) for l in lines) if m]
    outputs = [m.group(1) for m in (re.match(r"output\s+(\w+)\b", l) for l in lines) if m]
    return inputs, outputs


def make_inputs(spec, generator):
    batch, time = spec["batch"], spec["time"]
    arrays = {}
    for item in spec["inputs"]:
        name, kind = item[0], item[1]
        if kind == "seq":
            arrays[name] = torch.randn(batch, time, item[2], generator=generator)
        elif kind == "vec":
            arrays[name] = torch.randn(batch, item[2], generator=generator)
        elif kind == "ids":
            ids = torch.randint(0, item[2], (batch, time), generator=generator)
            arrays[name] = torch.from_numpy(ids.numpy().astype(item[3]))
        else:
            raise ValueError(kind)
    return arrays


def check_lengths(spec):
    lengths = spec["lengths"]
    if lengths is None:
        return
    assert len(lengths) == spec["batch"], spec["name"]
    assert all(1 <= n <= spec["time"] for n in lengths), spec["name"]
    assert any(n == spec["time"] for n in lengths), spec["name"]
    assert any(n < spec["time"] for n in lengths), spec["name"]


def save_npy(path, array):
    np.save(path, np.ascontiguousarray(array), allow_pickle=False)


def generate(spec):
    name = spec["name"]
    inputs, outputs = declared_names(spec["model"])
    expected_inputs = [item[0] for item in spec["inputs"]]
    assert inputs == expected_inputs, (name, inputs, expected_inputs)
    assert outputs == spec["outputs"], (name, outputs, spec["outputs"])
    check_lengths(spec)

    model = spec["build"]()
    tensors, state = [], {}
    for pname, param in model.state_dict().items():
        shape = list(param.shape)
        scale = default_scale(shape)
        state[pname] = torch.from_numpy(weight_values(pname, shape, scale))
        tensors.append({"name": pname, "shape": shape, "scale": scale})
    model.load_state_dict(state, strict=True)
    model.eval()

    generator = torch.Generator().manual_seed(INPUT_SEED)
    arrays = make_inputs(spec, generator)
    lengths = None
    if spec["lengths"] is not None:
        lengths = torch.tensor(spec["lengths"], dtype=torch.int64)
    with torch.no_grad():
        result = model(arrays, lengths)
    assert list(result) == spec["outputs"], (name, list(result))

    folder = CASES / name
    folder.mkdir(parents=True)
    for iname, value in arrays.items():
        save_npy(folder / ("in_%s.npy" % iname), value.numpy())
    if lengths is not None:
        save_npy(folder / "lengths.npy", lengths.numpy())
    summary = []
    for oname, value in result.items():
        out = value.detach().numpy().astype(np.float32)
        assert np.all(np.isfinite(out)), (name, oname)
        assert np.max(np.abs(out)) > 1e-3, (name, oname)
        save_npy(folder / ("out_%s.npy" % oname), out)
        summary.append("%s%s" % (oname, list(out.shape)))
    meta = {
        "model": spec["model"],
        "description": spec["description"],
        "batch": spec["batch"],
        "time": spec["time"],
        "inputs": expected_inputs,
        "lengths": lengths is not None,
        "outputs": spec["outputs"],
        "tensors": tensors,
    }
    (folder / "case.json").write_text(json.dumps(meta, indent=2) + "\n")
    print("%-24s B=%d T=%d lengths=%-5s -> %s" % (
        name, spec["batch"], spec["time"], lengths is not None, ", ".join(summary)))


# ----------------------------------------------------------------------------
# Self-checks of the reference machinery (cheap; run every time).

def self_check():
    # The vectorized weight formula equals the plain loop, across block edges.
    for name, shape in [("emb.weight", [3, 5000]), ("h.bias_ih_l0", [18]), ("y.W_x", [7, 3])]:
        scale = default_scale(shape)
        assert np.array_equal(weight_values(name, shape, scale),
                              weight_values_reference(name, shape, scale)), name

    def load(module):
        sd = {k: torch.from_numpy(weight_values(k, list(v.shape), default_scale(list(v.shape))))
              for k, v in module.state_dict().items()}
        module.load_state_dict(sd, strict=True)
        return module

    generator = torch.Generator().manual_seed(7)
    x = torch.randn(4, 6, 5, generator=generator)
    lengths = torch.tensor([6, 2, 1, 4])
    with torch.no_grad():
        # The gate_gru cell loop equals nn.GRU with the same weights.
        gru = load(nn.GRU(5, 6, batch_first=True))
        cell = CellLayer(gate_gru_params(6), [6], gate_gru_step, 5)
        w_ih, w_hh = gru.weight_ih_l0.chunk(3), gru.weight_hh_l0.chunk(3)
        b_ih, b_hh = gru.bias_ih_l0.chunk(3), gru.bias_hh_l0.chunk(3)
        for gate, k in zip("rzn", range(3)):
            getattr(cell, "W_i" + gate).data.copy_(w_ih[k])
            getattr(cell, "W_h" + gate).data.copy_(w_hh[k])
            getattr(cell, "b_i" + gate).data.copy_(b_ih[k])
            getattr(cell, "b_h" + gate).data.copy_(b_hh[k])
        for lens in (None, lengths):
            ref, ref_last = run_builtin(gru, x, lens)
            got, got_last = cell(x, lens)
            assert torch.allclose(ref, got, atol=1e-6) and torch.allclose(ref_last, got_last,
                                                                          atol=1e-6)

        # The cell driver (layers, directions, lengths, last) equals packed
        # nn.RNN for an Elman cell written as a user cell.
        def elman_params(I):
            return [("weight_ih", (6, I)), ("weight_hh", (6, 6)), ("bias_ih", (6,)),
                    ("bias_hh", (6,))]

        def elman_step(p, xt, states):
            (h,) = states
            h = torch.tanh(mv(p["weight_ih"], xt) + p["bias_ih"]
                           + mv(p["weight_hh"], h) + p["bias_hh"])
            return (h,)

        rnn = load(nn.RNN(5, 6, num_layers=2, bidirectional=True, batch_first=True))
        cell = CellLayer(elman_params, [6], elman_step, 5, layers=2, bidirectional=True)
        cell.load_state_dict(rnn.state_dict(), strict=True)
        for lens in (None, lengths):
            ref, ref_last = run_builtin(rnn, x, lens)
            got, got_last = cell(x, lens)
            assert torch.allclose(ref, got, atol=1e-6) and torch.allclose(ref_last, got_last,
                                                                          atol=1e-6)


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    self_check()
    names = [spec["name"] for spec in CASE_LIST]
    assert len(names) == len(set(names))
    if CASES.exists():
        shutil.rmtree(CASES)
    CASES.mkdir(parents=True)
    for spec in CASE_LIST:
        generate(spec)
    print("wrote %d cases to %s" % (len(CASE_LIST), CASES.relative_to(ROOT)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
