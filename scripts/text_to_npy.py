#!/usr/bin/env python3
"""Writes the bytes of a text excerpt as an int32 .npy of shape [1, N] for `rnnc run`.

data/hamlet_opening.npy was made with:
    python3 scripts/text_to_npy.py data/shakespeare_tragedies.txt "Who's there?" 256 data/hamlet_opening.npy
"""
import sys

import numpy as np

path, marker, length, out = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), sys.argv[4]
text = open(path, "rb").read()
start = max(text.find(marker), 0)
chunk = text[start:start + length]
np.save(out, np.frombuffer(chunk, dtype=np.uint8).astype(np.int32).reshape(1, -1))
