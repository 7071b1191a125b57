#!/usr/bin/env bash
# Thread scaling of rnnc alone (`rnnc bench`, in-process medians) at shapes C and E, the
# figures of docs/PERFORMANCE.md's "Sixteen cores": 1 and MAX threads alternate for
# ROUNDS rounds (so that a slow moment of a shared machine hits both), the thread counts
# between them run once; training steps at 1 and MAX threads once.
#
#   bench/scaling.sh [RNNC] [MAX] [ROUNDS]      (defaults: .build/release/rnnc 16 3)
#
# Writes one JSON object per measurement to stdout (with a "round" field). Needs python3
# for the model files only (bench/compare.py's model_source; no torch).
set -euo pipefail
RNNC=${1:-.build/release/rnnc}
MAX=${2:-16}
ROUNDS=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$here" "$work" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("compare", sys.argv[1] + "/compare.py")
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)
for label, (T, B, I, H) in (("E", (100, 64, 1024, 1024)), ("C", (50, 64, 512, 512))):
    for cell in ("lstm", "gru", "gate_gru", "rnn"):
        name = f"{cell}_{label}"
        with open(f"{sys.argv[2]}/{name}.rnn", "w") as f:
            f.write(compare.model_source(name, cell, I, H, 1, True))
PY
for f in "$work"/*.rnn; do "$RNNC" compile "$f" -o "${f%.rnn}" >/dev/null; done
between=()
for ((t = 2; t < MAX; t *= 2)); do between+=("$t"); done
bench() {  # round model threads [--train]
    local T=100
    [ "${2##*_}" = C ] && T=50
    "$RNNC" bench "$work/$2" --batch 64 --seq "$T" --threads "$3" --seconds 0.3 --json ${4:-} |
        sed "s/^{/{\"round\": $1, /"
}
for s in E C; do
    for ((r = 1; r <= ROUNDS; r++)); do
        for c in lstm gru gate_gru rnn; do bench "$r" "${c}_$s" 1; bench "$r" "${c}_$s" "$MAX"; done
    done
    for c in lstm gru gate_gru rnn; do for t in "${between[@]}"; do bench 1 "${c}_$s" "$t"; done; done
done
for c in lstm gru; do bench 1 "${c}_E" 1 --train; bench 1 "${c}_E" "$MAX" --train; done
