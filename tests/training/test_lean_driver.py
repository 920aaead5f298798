"""The driver coordinates: unit results reach it without their prediction rows or models, and the tables built
from the units' saved files by backend tasks equal the tables computed from every row at once."""

import pickle

import pandas as pd
import pytest

from fleet.evaluation.exposure_matched import MATCHED_COLUMNS
from fleet.evaluation.fleet_book import CS_IC_COLUMNS

import fleet.training.driver as driver
from fleet.config import FleetConfig
from fleet.evaluation.tables import expert_tables, fold_table, results_tables
from fleet.training.driver import run_fleet

BASE = dict(data={"days": 90}, validation={"folds": 2}, seed=5, model={"trend": {"max_iter": 30}})


class _Recording:
    """A backend that records what each unit step hands the driver (pickled bytes and the result itself)."""

    def __init__(self, inner):
        self.inner, self.received = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def run(self, units, frames, on_result, *, sink=None, follow=None):
        def record(outcome):
            self.received.append((len(pickle.dumps(outcome)), outcome))
            on_result(outcome)
        return self.inner.run(units, frames, record, sink=sink, follow=follow)


def _train(tmp_path, monkeypatch, backend: str, name: str, **kw):
    made = []
    real = driver.make_backend

    def make(resources, train_fn=None):
        made.append(_Recording(real(resources, train_fn=train_fn)))
        return made[-1]

    monkeypatch.setattr(driver, "make_backend", make)
    cfg = FleetConfig(**{**BASE, **kw}, out=str(tmp_path / name), resources={"backend": backend, "num_cpus": 1})
    return run_fleet(cfg, echo=lambda line: None), made[0].received


def _all_predictions(out) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(f).assign(symbol=f.stem) for f in sorted((out / "predictions").glob("*.parquet"))],
                     ignore_index=True)


def _check_lean(summary, received):
    assert received, "no unit result reached the driver"
    pred_bytes = sum(f.stat().st_size for f in (summary.out / "predictions").glob("*.parquet"))
    got = sum(n for n, _ in received)
    for _, r in received:
        assert r.predictions is None and r.model is None and r.parts  # the rows and the model stayed on storage
    # what the driver received is far below the predictions (parquet, compressed) it never read
    assert got < 0.1 * pred_bytes, (got, pred_bytes)


def test_a_50_asset_fleet_sends_the_driver_small_records_only(tmp_path, monkeypatch):
    summary, received = _train(tmp_path, monkeypatch, "local", "global50", strategy="global",
                               synthetic={"n_clusters": 5, "assets_per_cluster": 10})
    assert len(summary.per_asset) == 50
    _check_lean(summary, received)


def test_tables_from_the_output_tasks_equal_tables_from_every_row(tmp_path, monkeypatch):
    # Independent of the output tasks: the tables recomputed here from predictions/ as one frame.
    cfg_kw = dict(strategy="hierarchical", synthetic={"n_clusters": 2, "assets_per_cluster": 3},
                  model={"experts": ["trend", "momentum"], "trend": {"max_iter": 30}})
    summary, _ = _train(tmp_path, monkeypatch, "local", "hier", **cfg_kw)
    preds = _all_predictions(summary.out)
    cfg = summary.config
    final = summary.final_clusters
    per_asset, per_cluster = results_tables(preds, final.cluster_map, final.dominant_cluster, cfg,
                                            bars_per_year=summary.bars_per_year)
    # The fleet book's columns (the exposure-matched benchmark, the cross-sectional IC) come from the book task and
    # are checked against their own recomputation in tests/evaluation/test_report.py.
    book = [*MATCHED_COLUMNS, *CS_IC_COLUMNS]
    pd.testing.assert_frame_equal(summary.per_asset.drop(columns=book, errors="ignore"), per_asset,
                                  check_exact=False, rtol=1e-12, atol=1e-12)
    pd.testing.assert_frame_equal(summary.per_cluster, per_cluster, check_exact=False, rtol=1e-12, atol=1e-12)
    per_fold = fold_table(preds, cfg, bars_per_year=summary.bars_per_year)
    pd.testing.assert_frame_equal(summary.per_fold.drop(columns=book, errors="ignore"), per_fold,
                                  check_exact=False, rtol=1e-12, atol=1e-12)
    auc, weights = expert_tables(preds.assign(gate_fallback=0), final.cluster_map, cfg.model.active_experts())
    for mine, theirs in ((summary.expert_auc, auc), (summary.expert_weights, weights)):
        pd.testing.assert_frame_equal(mine.drop(columns="fallback_share"), theirs.drop(columns="fallback_share"),
                                      check_exact=False, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_on_ray_the_driver_gets_small_records_and_the_same_tables(tmp_path, monkeypatch, ray_session):
    kw = dict(strategy="global", synthetic={"n_clusters": 5, "assets_per_cluster": 10})
    summary, received = _train(tmp_path, monkeypatch, "ray", "ray50", **kw)
    _check_lean(summary, received)
    local, _ = _train(tmp_path, monkeypatch, "local", "local50", **kw)
    pd.testing.assert_frame_equal(summary.per_asset, local.per_asset)
    pd.testing.assert_frame_equal(summary.per_fold, local.per_fold)
    pd.testing.assert_frame_equal(_all_predictions(summary.out), _all_predictions(local.out))
