"""fleet.evaluation.bootstrap: the paired block-bootstrap standard error of an AUC difference, checked against the
Hanley & McNeil formula on independent rows and against the spread of the difference over freshly simulated panels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from fleet.evaluation.bootstrap import fold_auc, paired_auc_se
from fleet.evaluation.metrics import per_asset_auc


def _rows(rng, folds=3, times=400, assets=5):
    """One row per (asset, bar): iid labels and two independent noise forecasts a and b."""
    n = times * assets
    return pd.DataFrame({"fold": np.repeat(np.arange(folds), n), "bar_time": np.tile(np.arange(times, dtype=np.int64),
                                                                                     folds * assets),
                         "y": rng.integers(0, 2, size=folds * n), "a": rng.normal(size=folds * n),
                         "b": rng.normal(size=folds * n)})


def test_iid_rows_match_hanley_mcneil():
    # Two independent noise forecasts of iid labels: var(AUC_a - AUC_b) = 2 * (n + 1) / (12 n1 n0) per fold
    # (Hanley & McNeil 1982 at A = 0.5), and the mean over F folds divides the variance by F.
    rows = _rows(np.random.default_rng(0))
    se = paired_auc_se(rows, "a", "b", block=1, reps=300)
    n1 = rows.groupby("fold")["y"].sum().to_numpy().astype(float)
    n0 = rows.groupby("fold").size().to_numpy() - n1
    expected = np.sqrt(np.mean(2 * (n1 + n0 + 1) / (12 * n1 * n0)) / 3)
    assert 0.8 * expected < se < 1.2 * expected


def _clustered(rng, times=300, assets=8, edge=0.3):
    """Rows of one bar move together: a common market move in the labels, and each forecast's noise shared by
    every asset of the bar (as with a market-wide feature)."""
    market, fa, fb = rng.normal(size=(3, times))
    parts = []
    for _ in range(assets):
        z = 2.0 * market + rng.normal(size=times)
        parts.append(pd.DataFrame({"fold": 0, "bar_time": np.arange(times, dtype=np.int64), "y": (z > 0).astype(int),
                                   "a": edge * z + 2 * fa + 0.3 * rng.normal(size=times),
                                   "b": 2 * fb + 0.3 * rng.normal(size=times)}))
    return pd.concat(parts, ignore_index=True)


def test_blocks_of_bars_follow_the_spread_over_fresh_panels_where_rows_do_not():
    # The truth: the std of the difference over 80 freshly simulated panels. Resampling whole bars follows it;
    # resampling single rows (every row its own timestamp) treats the 8 alike rows of a bar as 8 outcomes and
    # understates it.
    rng = np.random.default_rng(1)
    fresh = [roc_auc_score(r["y"], r["a"]) - roc_auc_score(r["y"], r["b"])
             for r in (_clustered(rng) for _ in range(80))]
    truth = float(np.std(fresh, ddof=1))
    r = _clustered(np.random.default_rng(2))
    assert 0.7 * truth < paired_auc_se(r, "a", "b", block=1, reps=300) < 1.4 * truth
    rows_only = r.assign(bar_time=np.arange(len(r), dtype=np.int64))
    assert paired_auc_se(rows_only, "a", "b", block=1, reps=300) < 0.6 * truth
    assert paired_auc_se(r.assign(c=r["a"]), "a", "c", block=5, reps=50) == 0.0


def test_fold_auc_is_the_mean_of_per_fold_aucs():
    rows = _rows(np.random.default_rng(3))
    direct = np.mean([roc_auc_score(g["y"], g["a"]) for _, g in rows.groupby("fold")])
    assert fold_auc(rows, "a") == pytest.approx(direct, abs=1e-12)


@pytest.mark.parametrize("kw, match", [(dict(block=0), "block=0"), (dict(block=1, reps=1), "reps=1"),
                                       (dict(block=1, time="timestamp"), "lack the columns")])
def test_bad_arguments_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        paired_auc_se(_rows(np.random.default_rng(4)), "a", "b", **kw)


def test_a_fold_of_one_class_is_refused():
    rows = _rows(np.random.default_rng(5)).assign(y=lambda d: np.where(d["fold"] == 1, 1, d["y"]))
    with pytest.raises(ValueError, match="fold 1 has one class"):
        paired_auc_se(rows, "a", "b", block=1)


def test_per_asset_figures_match_a_direct_loop_and_hanley_mcneil():
    # The per-asset AUC: the mean over (fold, asset) groups of roc_auc_score inside the group. Its paired bootstrap
    # SE on iid rows against the formula: var of a mean of G independent group differences = sum_g 2 (n_g + 1) /
    # (12 n1_g n0_g) / G^2 (Hanley & McNeil 1982 at A = 0.5).
    rows = _rows(np.random.default_rng(6)).assign(symbol=lambda d: np.tile(np.repeat(list("vwxyz"), 400), 3))
    groups = [g for _, g in rows.groupby(["fold", "symbol"])]
    assert fold_auc(rows, "a", asset="symbol") == pytest.approx(
        np.mean([roc_auc_score(g["y"], g["a"]) for g in groups]), abs=1e-12)
    assert fold_auc(rows, "a", asset="symbol") == pytest.approx(per_asset_auc(rows, "a"), abs=1e-12)
    n1 = np.array([g["y"].sum() for g in groups], dtype=float)
    n0 = np.array([len(g) for g in groups]) - n1
    expected = np.sqrt(np.sum(2 * (n1 + n0 + 1) / (12 * n1 * n0))) / len(groups)
    se = paired_auc_se(rows, "a", "b", block=1, reps=300, asset="symbol")
    assert 0.8 * expected < se < 1.2 * expected
    assert paired_auc_se(rows.assign(c=rows["a"]), "a", "c", block=5, reps=20, asset="symbol") == 0.0
