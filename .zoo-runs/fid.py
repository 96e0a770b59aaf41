"""FID of a training checkpoint's EMA generator, protocol tf, seed 0, against shapes32 — the shipping condition's
measurement (``python .zoo-runs/fid.py PATH [NUM_SAMPLES]``, default 2,000 samples)."""

import sys

import ganmetrics
from ganmetrics.zoo import generator_from_checkpoint

path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2000
print(f"{path}: FID {ganmetrics.fid(generator_from_checkpoint(path), 'shapes32', num_samples=n, seed=0):.2f} "
      f"({n} samples)")
