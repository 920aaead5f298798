"""Short windows end to end: every strategy with a mixture on 365 days / 3 folds of
real crypto must succeed, and a 300-asset fleet must train under ``global`` (HistGradientBoosting's
categorical takes at most 255 levels; TrendExpert pools the rarest assets above that)."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from fleet.cli import main


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["global", "hierarchical", "islands"])
def test_mixture_on_a_short_window_succeeds_with_every_strategy(strategy, crypto_dir, tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--data", str(crypto_dir), "--days", "365", "--folds", "3",
                                    "--strategy", strategy, "--experts", "trend,stress", "--backend", "local",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output[-3000:]
    per_asset = pd.read_csv(out / "results_per_asset.csv")
    assert len(per_asset) == 10 and (per_asset["folds"] == 3).all()
    assert per_asset["auc"].between(0.3, 0.7).all()


@pytest.mark.slow
def test_three_hundred_asset_fleet_trains_under_global(tmp_path):
    out = tmp_path / "run"
    # Few days: a loose FFD cut-off and a short volume window keep the warm-ups (and the run) small.
    spec = tmp_path / "fleet300.yaml"
    spec.write_text("synthetic: {n_clusters: 30, assets_per_cluster: 10}\n"
                    "features: {ffd_threshold: 0.01, volume_window: 24}\n")
    res = CliRunner().invoke(main, ["train", "--config", str(spec), "--days", "24", "--folds", "1",
                                    "--strategy", "global", "--out", str(out)])
    assert res.exit_code == 0, res.output[-3000:]
    per_asset = pd.read_csv(out / "results_per_asset.csv")
    assert len(per_asset) == 300
    model = pd.read_pickle(out / "models" / "global.pkl").estimator
    assert len(model.asset_codes_) == 300 and max(model.asset_codes_.values()) == 254
