"""PatternExpert training and inference throughput (samples/s) on this machine's CPU (and CUDA if present).

    python benchmarks/pattern_throughput.py [--threads 1,2] [--rows 8192]

Input: random standardised features, 18 channels (what a crypto unit with trend, pattern, stress and
sde feeds the CNN), window 64, default network (hidden 16, 3 levels, embedding 8), batch 256, 2 assets.
Training samples/s = windows through forward + backward + AdamW step per second (fit's own counter);
inference samples/s = windows through predict_proba per second (window cutting included).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from fleet.models import PatternExpert


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rows", type=int, default=8192)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = args.rows
    X = pd.DataFrame(rng.normal(size=(n, 18)), columns=[f"f{i}" for i in range(18)])
    X["asset_id"] = np.repeat([0, 1], n // 2)
    X["bar_time"] = np.tile(np.arange(n // 2, dtype=np.int64) * 3600 * 10**9, 2)
    y = rng.integers(0, 2, n)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
    for device in devices:
        for threads in [int(t) for t in args.threads.split(",")]:
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            m = PatternExpert(epochs=2, patience=5, max_train_windows=None, val_fraction=0.0, device=device,
                              num_threads=threads).fit(X, y)
            t0 = time.perf_counter()
            m.predict_proba(X)
            infer = n / (time.perf_counter() - t0)
            print(f"{device:4s} threads={threads}: train {m.samples_per_second_:8.0f} samples/s, "
                  f"inference {infer:8.0f} samples/s ({n} windows of 18 x 64)"
                  + (f", peak CUDA memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB" if device == "cuda" else ""))


if __name__ == "__main__":
    main()
