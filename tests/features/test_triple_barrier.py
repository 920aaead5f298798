"""Triple-barrier labels (AFML ch. 3) against a direct computation on hand-made price paths, meta-labels, and
purging on each label's actual end time."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fleet.config import FleetConfig, LabelConfig
from fleet.data.synthetic import synthetic_market
from fleet.errors import ConfigError
from fleet.evaluation.splits import PurgedWalkForward
from fleet.features.labels import make_labels, meta_labels, triple_barrier
from fleet.features.spec import FeatureSpec
from fleet.training.dataset import build_unit_dataset

IDX = pd.date_range("2024-01-01", periods=10, freq="h", tz="UTC")


def _direct(close, t, h, up, dn):
    """Walk the path from bar t one bar at a time: (label, ret, bars to the touch, barrier)."""
    for j in range(1, h + 1):
        r = math.log(close[t + j] / close[t])
        if r >= up:
            return 1.0, r, j, "pt"
        if r <= -dn:
            return 0.0, r, j, "sl"
    r = math.log(close[t + h] / close[t])
    return float(r > 0), r, h, "vertical"


def test_hand_made_paths_hits_and_timeouts():
    close = [100, 101, 103, 102, 99, 98, 100, 104, 105, 101.0]
    vol = pd.Series(0.015, index=IDX)
    tb = triple_barrier(pd.Series(close, index=IDX), horizon=3, vol=vol)
    # by eye: bar 0 reaches +2.96 % at bar 2 (pt); bar 2 falls to -3.96 % at bar 4 (sl); bar 4 climbs to +4.9 % at
    # the vertical barrier's bar, bar 7 (a touch on the last bar counts as pt)
    assert list(tb["barrier"][:7]) == ["pt", "pt", "sl", "sl", "pt", "pt", "pt"]
    assert list(tb["end"][:7]) == [2, 1, 2, 1, 3, 1, 1]
    assert tb["label"][7:].isna().all() and (tb["end"][7:] == -1).all()
    # wide barriers: every label times out at the vertical barrier with the sign of the h-bar return
    wide = triple_barrier(pd.Series(close, index=IDX), horizon=3, vol=pd.Series(1.0, index=IDX))
    assert set(wide["barrier"][:7]) == {"vertical"}
    fwd = np.log(np.array(close[3:]) / np.array(close[:-3]))
    np.testing.assert_allclose(wide["ret"][:7], fwd)
    np.testing.assert_array_equal(wide["label"][:7], (fwd > 0).astype(float))


@pytest.mark.parametrize("pt, sl", [(1.0, 1.0), (2.0, 0.5), (0.5, 2.0)])
def test_random_paths_match_direct_walk(pt, sl):
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    vol = np.abs(rng.normal(0.015, 0.005, 400))
    idx = pd.date_range("2024", periods=400, freq="h", tz="UTC")
    tb = triple_barrier(pd.Series(close, index=idx), horizon=6, profit_take=pt, stop_loss=sl,
                        vol=pd.Series(vol, index=idx))
    kinds = set()
    for t in range(400 - 6):
        label, ret, end, barrier = _direct(close, t, 6, pt * vol[t], sl * vol[t])
        assert tb["label"].iloc[t] == label and tb["end"].iloc[t] == end and tb["barrier"].iloc[t] == barrier
        assert tb["ret"].iloc[t] == pytest.approx(ret)
        kinds.add(barrier)
    assert kinds == {"pt", "sl", "vertical"}  # the paths exercised every barrier


def test_label_end_and_meta_labels():
    close = pd.Series([100, 101, 103, 102, 99, 98, 100, 104, 105, 101.0], index=IDX)
    y, end = make_labels(close, 3)
    assert end.iloc[0] == IDX[3] and end.iloc[6] == IDX[9] and end.iloc[7:].isna().all()
    y_tb, end_tb = make_labels(close, 3, "triple_barrier", vol_span=2)
    ok = end_tb.notna()
    assert ((end_tb[ok] - end_tb.index[ok]) <= pd.Timedelta(hours=3)).all()
    np.testing.assert_array_equal(meta_labels([1, -1, 0, 1], [0.02, 0.01, 0.05, -0.01]), [1.0, 0.0, np.nan, 0.0])
    with pytest.raises(ConfigError, match="labels.method"):
        make_labels(close, 3, "bogus")
    with pytest.raises(ConfigError, match="profit_take"):
        triple_barrier(close, horizon=3, profit_take=0.0)


def test_purging_uses_each_labels_actual_end():
    market = synthetic_market(n_clusters=1, assets_per_cluster=1, days=60, seed=2)
    panel = market.panel
    ts = pd.DatetimeIndex(sorted(set().union(*(f.index for f in panel.frames.values()))))
    fold = PurgedWalkForward(2, horizon=24, embargo_bars=0, bar=panel.bar).folds(ts)[1]
    cfg = FleetConfig()
    kw = dict(assets={panel.symbols[0]: 0}, frames=panel.frames, fold=fold, timeline_end=ts.max(), factor=None,
              features=FeatureSpec(horizon=24))
    fixed = build_unit_dataset(**kw)
    tb_cfg = LabelConfig(horizon=24, method="triple_barrier", profit_take=0.5, stop_loss=0.5)
    tb = build_unit_dataset(**kw, labels=tb_cfg)
    close = panel.frames[panel.symbols[0]]["close"]
    _, end = make_labels(close, 24, "triple_barrier", profit_take=0.5, stop_loss=0.5, vol_span=tb_cfg.vol_window)
    ends = end.reindex(tb.train_meta["timestamp"]).to_numpy()
    assert (ends < fold.train_end).all()  # no kept label ends at or after the training window's end
    # rows whose barrier was touched early are kept where the h-bar label had to be purged
    assert tb.train_meta["timestamp"].max() > fixed.train_meta["timestamp"].max()
    late = tb.train_meta["timestamp"] > fixed.train_meta["timestamp"].max()
    assert tb.train_meta.loc[late, "forward_return"].isna().all()  # their h-bar return is not inside the window


def test_meta_labeler_keeps_the_bets_that_pay():
    """Planted: the primary's long bets pay only where the feature z > 0; the secondary model learns to keep them."""
    from fleet.models.meta import MetaLabeler, primary_side

    rng = np.random.default_rng(0)
    n = 6000
    z = rng.standard_normal(n)
    p = rng.uniform(0.3, 0.8, n)
    ret = np.where(z > 0, 0.01, -0.01) * np.where(rng.random(n) < 0.8, 1, -1)  # bets pay 80 % of the time when z > 0
    X = pd.DataFrame({"z": z, "noise": rng.standard_normal(n), "asset_id": 0})
    meta = MetaLabeler(threshold=0.55).fit(X.iloc[:4000], p[:4000], ret[:4000])
    assert meta.features_ == ["z", "noise", "p_primary"]
    bets = primary_side(p[4000:], 0.55) == 1
    kept = meta.allow(X.iloc[4000:], p[4000:]) & bets
    paid = ret[4000:] > 0
    assert paid[kept].mean() > 0.75 > 0.55 > paid[bets].mean()  # ~0.8 kept vs ~0.5 for all bets
    assert (z[4000:][kept] > 0).mean() > 0.95
