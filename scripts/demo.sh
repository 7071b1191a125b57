#!/usr/bin/env bash
# The README's main job: set up, build rnnc, compile the character-level LSTM in
# models/char_lstm.rnn to a C library, give it weights, and run it on a bundled input
# (the opening of Hamlet as bytes). Prints the most likely next character at each step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release --product rnnc 2>&1 | tail -n 1
RNNC=.build/release/rnnc
$RNNC compile models/char_lstm.rnn -o build/char_lstm
$RNNC init build/char_lstm --seed 0 -o build/char_lstm/init.safetensors
$RNNC run build/char_lstm --weights build/char_lstm/init.safetensors \
    --input chars=data/hamlet_opening.npy --out build/char_lstm/out --threads 2
$RNNC inspect build/char_lstm/out/probs.npy
