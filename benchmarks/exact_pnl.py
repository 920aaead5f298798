"""The exact book against the log-return shortcut, per asset of a finished run (fixed rule).

    python benchmarks/exact_pnl.py RUN

The curve books each bar's P&L as the exact simple return of a book holding the fraction x of its capital,
x (e^r - 1), compounded; the shortcut x r (r the bar's log return) is biased low for 0 < x < 1. Prints each asset's
net annual return both ways (the exact one is results_per_asset.csv's ann_return_net).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd


def compare(run) -> pd.DataFrame:
    """One row per asset: the shortcut's and the exact net annual return (simple returns), and their gap."""
    from fleet.evaluation.trading import book_pnl, exposure, segments_of

    cfg, bpy = run.config, run.manifest["bars_per_year"]
    h, cost = cfg.labels.horizon, cfg.policy.cost_bps
    rows = []
    for s, p in run.predictions.groupby("symbol", sort=True):
        p = p.sort_values("timestamp")
        seg = segments_of(p["bar_number"].to_numpy())
        r = p["return_1"].to_numpy(np.float64)
        x = p["position"].to_numpy(np.float64) if "position" in p else exposure(p["signal"], horizon=h, segment=seg)
        _, net, turn = book_pnl(r, x, cost_bps=cost, segment=seg)
        shortcut = x * r - cost / 1e4 * turn
        rows.append({"symbol": s, "ann_return_net_shortcut": float(np.expm1(shortcut.mean() * bpy)),
                     "ann_return_net_exact": float(np.expm1(np.log1p(net).mean() * bpy))})
    out = pd.DataFrame(rows)
    out["gap"] = out["ann_return_net_exact"] - out["ann_return_net_shortcut"]
    return out


def main(argv=None) -> int:
    import fleet

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__)
        return 2
    with pd.option_context("display.float_format", "{:+.1%}".format):
        print(compare(fleet.load_run(args[0])).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
