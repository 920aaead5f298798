"""Shared by the no-look-ahead tests: a purged walk-forward fold of a panel, and the panel with every bar from
a time on rewritten (prices scaled by random noise, volume tripled), so a fit that reads those bars changes."""

import numpy as np
import pandas as pd

from fleet.data.panel import Panel
from fleet.evaluation.splits import PurgedWalkForward


def _perturb_after(panel: Panel, when: pd.Timestamp, seed: int = 0) -> Panel:
    rng = np.random.default_rng(seed)
    frames = {}
    for s, f in panel.frames.items():
        g = f.copy()
        late = g.index >= when
        shock = np.exp(rng.normal(0, 0.05, size=late.sum()))
        for col in [c for c in ("open", "high", "low", "close") if c in g.columns]:
            g.loc[late, col] = g.loc[late, col].to_numpy() * shock
        if "volume" in g.columns:
            g.loc[late, "volume"] = g.loc[late, "volume"].to_numpy() * 3.0
        frames[s] = g
    return Panel(frames=frames, sources=panel.sources, columns=panel.columns, bar=panel.bar)


def _fold(panel, k=1):
    ts = pd.DatetimeIndex(sorted(set().union(*(f.index for f in panel.frames.values()))))
    folds = PurgedWalkForward(3, horizon=4, embargo_bars=8, bar=panel.bar).folds(ts)
    return folds[k], ts.max()
