"""On a real crypto_1h run, the reported Sharpe ratios, returns and drawdowns equal a mark-to-market
computation written here, from predictions/ and the raw bars, to 1e-9."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from threadpoolctl import threadpool_limits

from fleet.cli import main

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def book(rows: pd.DataFrame, h: int, cost_bps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar gross and net P&L of one asset, bar by bar: tranches of 1/h opened on signals and
    held h bars; the book is flat at the start and closed at the end of each run of consecutive bars
    (bar_number steps of 1); costs on the net order of each bar. The bar's P&L is the price change of the
    fraction x held: x (close[t+1] / close[t] - 1), with close[t+1] / close[t] = exp(return_1)."""
    c = cost_bps / 1e4
    gross, net = [], []
    held: list[int] = []                     # bars left per open tranche
    sig, r1, bars = rows["signal"].to_numpy(), rows["return_1"].to_numpy(), rows["bar_number"].to_numpy()
    for t in range(len(rows)):
        if t > 0 and bars[t] != bars[t - 1] + 1:
            held = []
        before = len(held)
        held = [k - 1 for k in held if k > 1]
        order = -(before - len(held))
        if sig[t] == 1:
            held.append(h)
            order += 1
        x = len(held) / h
        cost = c * abs(order) / h
        if t == len(rows) - 1 or bars[t + 1] != bars[t] + 1:
            cost += c * x
        move = math.exp(r1[t]) - 1.0
        gross.append(x * move)
        net.append(x * move - cost)
    return np.array(gross), np.array(net)


def sharpe(x: np.ndarray, bars_per_year: float) -> float:
    return float(np.mean(x) / np.std(x, ddof=1) * math.sqrt(bars_per_year))


@pytest.mark.slow
def test_reported_sharpe_is_mark_to_market(tmp_path, crypto_dir):
    out = tmp_path / "crypto"
    with threadpool_limits(1):
        res = CliRunner().invoke(main, ["train", "--data", str(crypto_dir), "--symbols", ",".join(SYMBOLS),
                                        "--days", "120", "--folds", "2", "--strategy", "hierarchical",
                                        "--clusters", "2", "--backend", "local", "--experts", "trend",
                                        "--threshold", "0.5", "--out", str(out)])
    assert res.exit_code == 0, res.output
    per_asset = pd.read_csv(out / "results_per_asset.csv").set_index("symbol")
    per_cluster = pd.read_csv(out / "results_per_cluster.csv").set_index("cluster")
    h, cost, bpy = 4, 10.0, 8760.0
    curves = {}
    for s in SYMBOLS:
        p = pd.read_parquet(out / "predictions" / f"{s}.parquet").sort_values("timestamp")
        # return_1 is the next bar's log return of the raw data
        bars = pd.read_parquet(crypto_dir / f"{s}.parquet")
        close = pd.Series(bars["close"].to_numpy(), index=pd.DatetimeIndex(bars["timestamp"])).sort_index()
        i = close.index.get_indexer(pd.DatetimeIndex(p["timestamp"]))
        assert (i >= 0).all()
        lc = np.log(close.to_numpy())
        np.testing.assert_allclose(p["return_1"].to_numpy(), lc[i + 1] - lc[i], rtol=0, atol=1e-12)
        assert p["signal"].sum() > 20, f"{s}: too few trades for a meaningful check"
        gross, net = book(p, h, cost)
        assert per_asset.loc[s, "sharpe_net"] == pytest.approx(sharpe(net, bpy), abs=1e-9)
        assert per_asset.loc[s, "sharpe"] == pytest.approx(sharpe(gross, bpy), abs=1e-9)
        eq = np.concatenate(([0.0], np.cumsum(np.log(1.0 + net))))
        assert per_asset.loc[s, "max_dd_net"] == pytest.approx(1 - math.exp(-(np.maximum.accumulate(eq) - eq).max()),
                                                               abs=1e-9)
        growth = np.prod(1.0 + net) ** (bpy / len(net)) - 1.0
        assert per_asset.loc[s, "ann_return_net"] == pytest.approx(growth, rel=1e-9)
        curves[s] = (p, net)
    # Per cluster: each fold's rows grouped by that fold's own clustering; equal weight per timestamp.
    rows = pd.concat([p.assign(symbol=s) for s, (p, _) in curves.items()], ignore_index=True)
    for c, g in rows.groupby("cluster"):
        parts = []
        for s, a in g.groupby("symbol"):
            _, net = book(a.sort_values("timestamp"), h, cost)
            parts.append(pd.Series(net, index=a.sort_values("timestamp")["timestamp"].to_numpy()))
        port = pd.concat(parts, axis=1).mean(axis=1).sort_index().to_numpy()
        assert per_cluster.loc[c, "sharpe_net"] == pytest.approx(sharpe(port, bpy), abs=1e-9)
