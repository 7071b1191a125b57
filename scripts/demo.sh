#!/usr/bin/env bash
# The README's main job: set up, build rnnc, compile the character-level LSTM in
# models/char_lstm.rnn to a C library, train it for a few minutes on the bundled
# Shakespeare tragedies (byte-level, truncated BPTT as its train block says), and print
# text sampled from it. On a 2-core machine the training takes about 2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release --product rnnc 2>&1 | tail -n 1
RNNC=.build/release/rnnc
$RNNC compile models/char_lstm.rnn -o build/char_lstm
# Two epochs over the text (32 streams, 128-step windows, Adam, clipping at 5: the
# model's train block), keeping the last 5% for validation.
$RNNC train build/char_lstm --text data/shakespeare_tragedies.txt --epochs 2 --batch 32 --bptt 128 \
    --lr 0.002 --clip-norm 5 --valid-fraction 0.05 --save build/char_lstm/trained.safetensors --log build/char_lstm/train.csv
echo "--- sampled from the trained model:"
$RNNC generate build/char_lstm --weights build/char_lstm/trained.safetensors --prime "HAMLET." --length 400 --temperature 0.8 --seed 1
