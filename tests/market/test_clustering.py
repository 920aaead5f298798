"""Correlation distance, Ward clustering, dominant cluster rules, canonical ids, real data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fleet.errors import ConfigError, DataError
from fleet.market.align import align_log_returns
from fleet.market.clustering import ClusterResult, WardClusterer, cluster_assets, correlation_distance
from fleet.market.factor import MarketFactor

BLOCKS = {"A": ["BTCUSDT", "ETHUSDT", "BNBUSDT"], "B": ["SOLUSDT", "ADAUSDT", "DOTUSDT"],
          "C": ["XRPUSDT", "TRXUSDT", "LTCUSDT"]}


def planted(blocks=BLOCKS, *, market_beta=None, n=3000, noise=0.5, seed=0) -> pd.DataFrame:
    """Returns = beta_b * market + block factor + noise: within-block corr ~0.8, across ~0."""
    rng = np.random.default_rng(seed)
    market = rng.standard_normal(n)
    cols = {}
    for b, symbols in blocks.items():
        g = rng.standard_normal(n)
        beta = 0.0 if market_beta is None else market_beta[b]
        for s in symbols:
            cols[s] = 0.01 * (beta * market + g + noise * rng.standard_normal(n))
    return pd.DataFrame(cols)


def test_correlation_distance_hand_values_and_pairwise_complete():
    x = np.array([0.01, -0.02, 0.03, 0.0, 0.015, -0.01])
    y = np.array([0.02, 0.01, -0.01, 0.005, np.nan, 0.0])
    df = pd.DataFrame({"X": x, "NEG": -2 * x, "Y": y})
    corr, dist = correlation_distance(df)
    assert corr.loc["X", "NEG"] == pytest.approx(-1.0)
    assert dist.loc["X", "NEG"] == pytest.approx(0.0, abs=1e-12)   # 1 - |corr|: mirror images are close
    both = ~np.isnan(y)
    expected = np.corrcoef(x[both], y[both])[0, 1]                  # only rows where both have values
    assert corr.loc["X", "Y"] == pytest.approx(expected)
    assert dist.loc["Y", "X"] == pytest.approx(1 - abs(expected))
    assert np.allclose(np.diag(dist), 0.0) and np.allclose(dist, dist.T)
    assert list(corr.index) == ["X", "NEG", "Y"]


def test_correlation_without_gaps_equals_pandas_pairwise_corr():
    rng = np.random.default_rng(8)
    df = pd.DataFrame(rng.normal(size=(500, 60)) + rng.normal(size=(500, 1)), columns=[f"S{i}" for i in range(60)])
    df.iloc[0] = np.nan  # an aligned grid's first row: no asset has a return there
    corr, _ = correlation_distance(df)
    np.testing.assert_allclose(corr.to_numpy(), df.corr().to_numpy(), rtol=0, atol=1e-12)
    gappy = df.copy()
    gappy.iloc[:40, 3] = np.nan  # one gap: every pair with S3 compares on its own overlap
    corr, _ = correlation_distance(gappy)
    np.testing.assert_allclose(corr.to_numpy(), gappy.corr().to_numpy(), rtol=0, atol=1e-12)
    assert corr.loc["S3", "S5"] == pytest.approx(np.corrcoef(df["S3"][40:], df["S5"][40:])[0, 1], abs=1e-12)
    flat = df.copy()
    flat.loc[1:, "S7"] = 0.0
    with pytest.raises(DataError, match="undefined for S0/S7"):
        correlation_distance(flat)


def test_gap_free_returns_skip_the_pairwise_loop(monkeypatch):
    rng = np.random.default_rng(9)
    df = pd.DataFrame(rng.normal(size=(50, 4)), columns=list("ABCD"))
    df.iloc[0] = np.nan

    def refuse(*args, **kw):
        raise AssertionError("DataFrame.corr called on gap-free returns")

    monkeypatch.setattr(pd.DataFrame, "corr", refuse)
    corr, _ = correlation_distance(df)
    assert corr.loc["A", "B"] == pytest.approx(np.corrcoef(df["A"][1:], df["B"][1:])[0, 1], abs=1e-12)
    df.iloc[5, 1] = np.nan
    with pytest.raises(AssertionError, match="DataFrame.corr called"):
        correlation_distance(df)


def test_correlation_distance_undefined_pair():
    df = pd.DataFrame({"A": [0.01, 0.02, -0.01], "FLAT": [0.0, 0.0, 0.0]})
    with pytest.raises(DataError, match="undefined for A/FLAT"):
        correlation_distance(df)


def test_planted_blocks_recovered_with_canonical_ids():
    res = cluster_assets(planted(), n_clusters=3)
    # BTC's block is 0; the others are numbered by their alphabetically first member:
    # block B starts with ADAUSDT, block C with LTCUSDT.
    assert res.cluster_map == {"ADAUSDT": 1, "BNBUSDT": 0, "BTCUSDT": 0, "DOTUSDT": 1, "ETHUSDT": 0,
                               "LTCUSDT": 2, "SOLUSDT": 1, "TRXUSDT": 2, "XRPUSDT": 2}
    assert res.members == {0: ["BNBUSDT", "BTCUSDT", "ETHUSDT"], 1: ["ADAUSDT", "DOTUSDT", "SOLUSDT"],
                           2: ["LTCUSDT", "TRXUSDT", "XRPUSDT"]}
    assert res.dominant_cluster == 0
    assert res.dominant_reason == "holds BTCUSDT"
    assert res.linkage.shape == (8, 4)


def test_column_order_does_not_change_ids():
    df = planted()
    shuffled = df[list(reversed(df.columns))]
    assert cluster_assets(shuffled).cluster_map == cluster_assets(df).cluster_map


def test_dominant_by_dollar_volume_when_no_btc():
    # Unequal cluster sizes: the TOTAL picks A (4 x 2 = 8), a mean would pick B (3 per asset).
    blocks = {"A": ["A1", "A2", "A3", "A4"], "B": ["B1", "B2"], "C": ["C1", "C2", "C3"]}
    dv = pd.Series({"A1": 2.0, "A2": 2.0, "A3": 2.0, "A4": 2.0, "B1": 3.0, "B2": 3.0,
                    "C1": 1.0, "C2": 1.0, "C3": 1.0})
    res = cluster_assets(planted(blocks), dollar_volume=dv)
    assert res.members == {0: ["A1", "A2", "A3", "A4"], 1: ["B1", "B2"], 2: ["C1", "C2", "C3"]}
    assert res.dominant_reason == "highest total dollar volume (8)"
    with pytest.raises(DataError, match="dollar_volume: no value for C3"):
        cluster_assets(planted(blocks), dollar_volume=dv.drop("C3"))


def test_dominant_by_correlation_when_close_only():
    # Block B loads most on the common market factor, so its members correlate most with everyone.
    blocks = {"A": ["A1", "A2", "A3"], "B": ["B1", "B2", "B3"], "C": ["C1", "C2", "C3"]}
    df = planted(blocks, market_beta={"A": 0.5, "B": 2.0, "C": 0.5})
    res = cluster_assets(df)
    assert res.members == {0: ["B1", "B2", "B3"], 1: ["A1", "A2", "A3"], 2: ["C1", "C2", "C3"]}
    assert res.dominant_reason.startswith("highest mean |correlation|")


def test_prefix_rule_can_be_disabled():
    dv = pd.Series(1.0, index=[s for b in BLOCKS.values() for s in b])
    dv["XRPUSDT"] = 100.0
    res = cluster_assets(planted(), dollar_volume=dv, dominant_symbol_prefix=None)
    assert res.members[0] == ["LTCUSDT", "TRXUSDT", "XRPUSDT"]


def test_distance_threshold_mode():
    df = planted()
    _, dist = correlation_distance(df)
    assert WardClusterer(n_clusters=None, distance_threshold=0.0).fit(dist).n_clusters_ == 9
    assert WardClusterer(n_clusters=None, distance_threshold=100.0).fit(dist).n_clusters_ == 1
    # Within-block distances are ~0.2 and across-block ~1.0, so Ward merges within blocks below
    # ~0.3 and joins blocks above ~1.5 (sqrt(3) x 1.0 for two groups of three): 0.8 is between.
    res = cluster_assets(df, distance_threshold=0.8)
    assert res.members == {0: ["BNBUSDT", "BTCUSDT", "ETHUSDT"], 1: ["ADAUSDT", "DOTUSDT", "SOLUSDT"],
                           2: ["LTCUSDT", "TRXUSDT", "XRPUSDT"]}


def test_ward_clusterer_attributes():
    _, dist = correlation_distance(planted())
    model = WardClusterer(n_clusters=3)
    assert model.fit(dist) is model
    assert model.linkage_matrix_.shape == (8, 4)
    assert sorted(set(model.labels_)) == [0, 1, 2]
    assert list(model.labels_.index) == list(dist.index)
    assert model.labels_["BTCUSDT"] == model.labels_["ETHUSDT"] != model.labels_["SOLUSDT"]


@pytest.mark.parametrize("kwargs, match", [
    ({"n_clusters": 3, "distance_threshold": 0.5}, "set exactly one"),
    ({"n_clusters": None, "distance_threshold": None}, "set exactly one"),
    ({"n_clusters": 0}, "n_clusters=0"),
    ({"n_clusters": 10}, "n_clusters=10: more clusters than the 9 assets"),
    ({"n_clusters": None, "distance_threshold": -1.0}, "distance_threshold=-1.0"),
])
def test_ward_bad_params(kwargs, match):
    _, dist = correlation_distance(planted())
    with pytest.raises(ConfigError, match=match):
        WardClusterer(**kwargs).fit(dist)


def test_ward_bad_distance():
    with pytest.raises(DataError, match="square"):
        WardClusterer().fit(pd.DataFrame(np.zeros((2, 3))))
    asym = pd.DataFrame([[0.0, 0.5], [0.2, 0.0]], index=["A", "B"], columns=["A", "B"])
    with pytest.raises(DataError, match="symmetric"):
        WardClusterer(n_clusters=2).fit(asym)


def test_cluster_assets_n_clusters_too_large():
    with pytest.raises(ConfigError, match="n_clusters=12"):
        cluster_assets(planted(), n_clusters=12)


def test_single_asset_is_one_cluster():
    res = cluster_assets(planted().iloc[:, :1])
    assert res.cluster_map == {"BTCUSDT": 0}
    assert res.members == {0: ["BTCUSDT"]}
    assert res.linkage.shape == (0, 4)


def test_to_dict_is_json_ready_and_round_trips():
    res = cluster_assets(planted())
    d = res.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["members"]["0"] == ["BNBUSDT", "BTCUSDT", "ETHUSDT"]
    assert d["correlation"]["BTCUSDT"]["BTCUSDT"] == pytest.approx(1.0)
    back = ClusterResult.from_dict(d)
    assert back == res                                  # arrays are left out of ==
    np.testing.assert_allclose(back.linkage, res.linkage)
    pd.testing.assert_frame_equal(back.correlation, res.correlation, check_names=False)


# ----------------------------------------------------------------------------- real data
def _data_dir() -> Path:
    env = os.environ.get("FLEET_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_real_crypto_btc_in_dominant_cluster():
    folder = _data_dir() / "crypto_1h"
    files = sorted(folder.glob("*.parquet"))
    if len(files) < 10:
        pytest.skip(f"real data not found in {folder} (set FLEET_DATA_DIR to the shared data folder)")
    closes = {}
    for f in files:
        df = pd.read_parquet(f, columns=["timestamp", "close"])
        s = df.set_index("timestamp")["close"].sort_index()
        closes[f.stem.upper()] = s[s.index > s.index.max() - pd.Timedelta(days=730)]   # last 730 days
    returns = align_log_returns(closes, bar=pd.Timedelta(hours=1))
    res = cluster_assets(returns, n_clusters=3)

    assert res.cluster_map["BTCUSDT"] == 0
    assert res.dominant_reason == "holds BTCUSDT"
    assert "ETHUSDT" in res.members[0]               # BTC and ETH move together (corr ~0.85)
    assert len(res.members) == 3 and sum(map(len, res.members.values())) == 10
    factor = MarketFactor("pca").fit(returns[res.members[0]])
    # One common factor dominates crypto majors (> 70 % of the variance).
    assert factor.explained_variance_ratio_ > 0.6
    print(f"\nclusters: {res.members}; dominant PCA explained variance {factor.explained_variance_ratio_:.3f}")
