"""benchmarks/noise_floor.py: the floor and excess arithmetic, the cross-sectional Rank IC against scipy, and
(slow) a noise fleet's excess over a floor measured on other noise seeds."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, spearmanr

from conftest import load_benchmark


def _load():
    return load_benchmark("noise_floor")


FIGS = ("auc_pooled", "auc_asset", "ic_asset", "rank_ic_asset", "rank_ic_xs")


def _per_seed():
    # Four noise seeds, one column per figure, numbers written by hand.
    return pd.DataFrame({"seed": [0, 1, 2, 3],
                         "auc_pooled": [0.50, 0.51, 0.52, 0.53],
                         "auc_asset": [0.505, 0.507, 0.503, 0.509],
                         "ic_asset": [0.01, 0.00, 0.02, 0.03],
                         "rank_ic_asset": [0.004, 0.006, 0.008, 0.010],
                         "rank_ic_xs": [0.001, -0.001, 0.002, -0.002],
                         "bars_per_block": [100.0] * 4})


def test_floor_table_is_the_mean_and_standard_error_over_seeds():
    nf = _load()
    per_seed = _per_seed()
    table = nf.floor_table(per_seed).set_index("figure")
    assert list(table.index) == list(FIGS)
    for f in FIGS:
        v = list(per_seed[f])
        assert table.at[f, "floor"] == pytest.approx(statistics.fmean(v), abs=1e-15)
        assert table.at[f, "floor_sd"] == pytest.approx(statistics.stdev(v), rel=1e-12)
        assert table.at[f, "floor_se"] == pytest.approx(statistics.stdev(v) / 2.0, rel=1e-12)  # sqrt(4 seeds)
        assert table.at[f, "seeds"] == 4
    # auc_pooled by hand: mean 0.515, deviations +-0.015, +-0.005 -> sd^2 = (2 * 0.015^2 + 2 * 0.005^2) / 3
    assert table.at["auc_pooled", "floor_sd"] == pytest.approx(math.sqrt(5e-4 / 3), rel=1e-12)
    with pytest.raises(ValueError, match=">= 2 seeds"):
        nf.floor_table(per_seed.iloc[:1])


def test_excess_of_one_run_uses_the_noise_spread_and_of_several_runs_their_standard_error():
    nf = _load()
    floor = nf.floor_table(_per_seed())
    run = {"auc_pooled": 0.54, "auc_asset": 0.515, "ic_asset": 0.02, "rank_ic_asset": 0.007, "rank_ic_xs": 0.01}
    one = nf.excess(run, floor).set_index("figure")
    sd = statistics.stdev([0.505, 0.507, 0.503, 0.509])  # auc_asset's spread over the four noise seeds
    se = sd / 2.0
    assert one.at["auc_asset", "value"] == 0.515
    assert one.at["auc_asset", "floor"] == pytest.approx(0.506, abs=1e-15)
    assert one.at["auc_asset", "excess"] == pytest.approx(0.009, abs=1e-15)
    assert one.at["auc_asset", "value_se"] == pytest.approx(sd, rel=1e-12)
    assert one.at["auc_asset", "excess_se"] == pytest.approx(math.sqrt(sd**2 + se**2), rel=1e-12)
    assert one.at["auc_asset", "z"] == pytest.approx(0.009 / math.sqrt(sd**2 + se**2), rel=1e-12)
    # a known se of the run (e.g. a bootstrap's) replaces the noise spread
    given = nf.excess(run, floor, value_se={"auc_asset": 0.003}).set_index("figure")
    assert given.at["auc_asset", "excess_se"] == pytest.approx(math.hypot(0.003, se), rel=1e-12)
    assert given.at["ic_asset", "value_se"] == one.at["ic_asset", "value_se"]
    # several runs: their mean and its own standard error
    runs = pd.DataFrame({f: [0.52, 0.53, 0.51] for f in FIGS})
    many = nf.excess(runs, floor).set_index("figure")
    run_se = statistics.stdev([0.52, 0.53, 0.51]) / math.sqrt(3)
    assert many.at["auc_pooled", "value"] == pytest.approx(0.52, abs=1e-15)
    assert many.at["auc_pooled", "excess"] == pytest.approx(0.52 - 0.515, abs=1e-15)
    floor_se = statistics.stdev([0.50, 0.51, 0.52, 0.53]) / 2.0
    assert many.at["auc_pooled", "excess_se"] == pytest.approx(math.hypot(run_se, floor_se), rel=1e-12)


def _long_frame(seed=3, stamps=60, symbols=7):
    """Ragged long predictions: 1-7 assets per timestamp, some timestamps with a constant (tied) p_up."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(stamps):
        for s in rng.choice(symbols, int(rng.integers(1, symbols + 1)), replace=False):
            p = 0.5 if t % 7 == 0 else float(rng.integers(0, 5)) / 10 + 0.3  # ties inside most timestamps
            rows.append((pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=t), f"S{s}", t % 2, p,
                         float(rng.normal())))
    return pd.DataFrame(rows, columns=["timestamp", "symbol", "fold", "p_up", "forward_return"])


def test_cross_sectional_rank_ic_equals_a_loop_of_scipy_spearmanr_per_timestamp():
    nf = _load()
    frame = _long_frame()
    expected = []
    for _, g in frame.groupby("timestamp"):
        if len(g) < 3:
            continue
        if g["p_up"].nunique() == 1:  # ranks nothing: counted 0 by the script's definition
            expected.append(0.0)
            continue
        expected.append(spearmanr(g["p_up"], g["forward_return"]).statistic)
    assert len(expected) > 20
    assert nf.cross_sectional_rank_ic(frame) == pytest.approx(float(np.mean(expected)), abs=1e-12)
    # shuffling the rows changes nothing; a frame of only 2-asset timestamps has no cross-sectional IC
    shuffled = frame.sample(frac=1.0, random_state=0)
    assert nf.cross_sectional_rank_ic(shuffled) == pytest.approx(float(np.mean(expected)), abs=1e-12)
    two = frame.groupby("timestamp").head(2)
    assert math.isnan(nf.cross_sectional_rank_ic(two[two.groupby("timestamp")["symbol"].transform("size") == 2]))


def test_per_asset_ics_equal_a_loop_of_scipy_per_fold_and_asset():
    nf = _load()
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"fold": np.repeat([0, 1], 60), "symbol": np.tile(np.repeat(["A", "B", "C"], 20), 2),
                          "p_up": rng.uniform(size=120), "forward_return": rng.normal(size=120)})
    frame.loc[(frame["fold"] == 1) & (frame["symbol"] == "C"), "p_up"] = 0.5  # constant: counts 0
    ic, ric = [], []
    for (fold, sym), g in frame.groupby(["fold", "symbol"]):
        if fold == 1 and sym == "C":
            ic.append(0.0), ric.append(0.0)
        else:
            ic.append(pearsonr(g["p_up"], g["forward_return"]).statistic)
            ric.append(spearmanr(g["p_up"], g["forward_return"]).statistic)
    got = nf.per_asset_ics(frame)
    assert got[0] == pytest.approx(float(np.mean(ic)), abs=1e-12)
    assert got[1] == pytest.approx(float(np.mean(ric)), abs=1e-12)


def test_floors_csv_keeps_one_row_per_shape_and_reads_back_the_floor(tmp_path):
    nf = _load()
    path = tmp_path / "floors.csv"
    small = nf.Shape(assets=4, clusters=2, days=120, folds=2)
    nf.write_floor(path, nf.floor_row(small, _per_seed(), "abc1234"))
    nf.write_floor(path, nf.floor_row(nf.Shape(), _per_seed(), "abc1234"))
    nf.write_floor(path, nf.floor_row(small, _per_seed().assign(auc_asset=[0.6, 0.6, 0.7, 0.7]), "def5678"))
    assert len(pd.read_csv(path)) == 2  # the second measurement of `small` replaced the first
    back = nf.read_floor(path, small).set_index("figure")
    assert back.at["auc_asset", "floor"] == pytest.approx(0.65)
    assert back.at["auc_asset", "floor_sd"] == pytest.approx(statistics.stdev([0.6, 0.6, 0.7, 0.7]), rel=1e-5)
    assert back.attrs["commit"] == "def5678" and back.attrs["bars_per_block"] == 100.0
    assert nf.read_floor(path, nf.Shape(assets=4, clusters=2, days=120, folds=3)) is None
    with pytest.raises(ValueError, match="divisible"):
        nf.Shape(assets=10, clusters=3).check()


SMALL = dict(assets=6, clusters=2, days=120, folds=2)


@pytest.mark.slow
def test_noise_fleets_sit_on_the_floor_of_other_noise_seeds_and_a_planted_signal_clears_it(tmp_path):
    """16 noise seeds against the floor of 16 others: the excess per-asset AUC is within 2 se of 0 although the raw
    per-asset AUC is above 0.5; one run with a planted AR(1) signal of the same shape is more than 3 se above it."""
    import fleet

    nf = _load()
    shape = nf.Shape(**SMALL).check()
    floor = nf.floor_table(nf.measure(shape, range(100, 116), echo=None))
    runs = nf.measure(shape, range(16), echo=None)
    ex = nf.excess(runs, floor).set_index("figure")
    assert runs["auc_asset"].mean() > 0.5
    assert abs(ex.at["auc_asset", "z"]) < 2.0, ex
    # the cross-sectional Rank IC has no within-block bias: its floor is 0 within its noise
    fl = floor.set_index("figure")
    assert abs(fl.at["rank_ic_xs", "floor"]) < 3.0 * fl.at["rank_ic_xs", "floor_se"], fl
    cfg = nf.noise_config(shape)
    cfg["synthetic"]["signal_strength"] = 0.2  # AR(1) momentum: the sign of the last return is right ~56 % of bars
    run = fleet.train(config=cfg, echo=None, seed=0, out=str(tmp_path / "planted"))
    planted = nf.excess(nf.figures(run.predictions), floor).set_index("figure")
    assert planted.at["auc_asset", "z"] > 3.0, planted

