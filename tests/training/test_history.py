"""The up-front history check: a window too short for the FFD order search and the
feature warm-ups is refused before anything is written, naming the smallest --days that works."""

from __future__ import annotations

import re
import time

import pandas as pd
import pytest
from click.testing import CliRunner

from fleet.cli import main
from fleet.config import load_config
from fleet.data.synthetic import synthetic_market
from fleet.errors import DataError
from fleet.evaluation.splits import Fold
from fleet.features.spec import FeatureSpec
from fleet.training.dataset import build_unit_dataset
from fleet.training.driver import check_history, load_inputs
from fleet.training.history import asset_shortfall, history_need


def _named_days(output: str) -> int:
    m = re.search(r"use --days (\d+) \(the smallest value that works", output)
    assert m, output
    return int(m.group(1))


def test_real_window_too_short_is_refused_and_the_named_days_is_the_smallest(tmp_path, crypto_dir, monkeypatch):
    # --days 60 with 2 folds: every asset has too few bars for the warm-ups of 2 folds, and AVAXUSDT
    # (its data end ~59 days before the others') has almost none inside the window.
    from conftest import REPO

    monkeypatch.chdir(REPO)
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--config", "fleet/crypto10.yaml", "--data", str(crypto_dir),
                                    "--days", "60", "--folds", "2", "--backend", "local", "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "error:" in res.output and "Traceback" not in res.output and "resume" not in res.output
    assert re.search(r"AVAXUSDT has \d+ bars, \w+ \d+, \w+ \d+ and 7 more in the last 60 days", res.output)
    assert res.output.count(str(crypto_dir)) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written, no staging directory
    days = _named_days(res.output)

    def check(d):
        cfg = load_config("fleet/crypto10.yaml", {"data.path": str(crypto_dir), "data.days": d, "validation.folds": 2})
        check_history(cfg, load_inputs(cfg, echo=lambda s: None)[0])

    check(days)  # the named value passes ...
    with pytest.raises(DataError, match="too short|bars per asset"):
        check(days - 1)  # ... and is the smallest that does


def test_synthetic_window_too_short_is_refused_with_a_working_days(tmp_path):
    res = CliRunner().invoke(main, ["train", "--days", "75", "--folds", "2", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "--days 75 is too short" in res.output, res.output
    assert list(tmp_path.iterdir()) == []
    days = _named_days(res.output)
    cfg = load_config(None, {"data.days": days, "validation.folds": 2})
    assert check_history(cfg, load_inputs(cfg, echo=lambda s: None)[0]) == {}
    cfg = load_config(None, {"data.days": days - 1, "validation.folds": 2})
    with pytest.raises(DataError, match="too short"):
        check_history(cfg, load_inputs(cfg, echo=lambda s: None)[0])


@pytest.mark.parametrize("experts", [["trend"], ["trend", "stress", "sde"]])
def test_shortfall_agrees_with_the_unit_dataset(experts):
    """asset_shortfall says "trainable" exactly when build_unit_dataset keeps the asset (independent path)."""
    cfg = load_config(None, {"model.experts": experts})
    panel = synthetic_market(n_clusters=1, assets_per_cluster=2, days=60, seed=3).panel
    need = history_need(FeatureSpec.from_config(cfg), tuple(panel.columns), panel.bar)
    assert need.floor < need.sure
    symbol = panel.symbols[0]
    frame = panel.frames[symbol]
    for n in sorted({need.floor - 1, need.floor, need.floor + 40, need.sure - 60, need.sure - 1, need.sure}):
        end = frame.index[n]
        fold = Fold(index=0, train_start=frame.index[0], train_end=end, test_start=end + pd.Timedelta(hours=12),
                    test_end=frame.index[-1])
        try:
            ds = build_unit_dataset(assets={symbol: 0}, frames=panel.frames, fold=fold, timeline_end=frame.index[-1],
                                    factor=None, features=FeatureSpec.from_config(cfg))
            kept = symbol in ds.preprocessors
        except DataError:
            kept = False
        assert (asset_shortfall(frame["close"], n, need) is None) == kept, n


def test_late_listed_asset_is_left_out_of_early_folds_not_refused(tmp_path):
    """An asset whose data start late (no --days can help) sits out the folds it is too short for."""
    panel = synthetic_market(n_clusters=1, assets_per_cluster=3, days=200, seed=1).panel
    for s, f in panel.frames.items():
        f = f.iloc[2400:] if s == panel.symbols[0] else f  # listed 100 days late
        f.rename_axis("timestamp").reset_index().to_parquet(tmp_path / f"{s}.parquet")
    cfg = load_config(None, {"data.path": str(tmp_path), "data.days": 400, "validation.folds": 3})
    late = check_history(cfg, load_inputs(cfg, echo=lambda s: None)[0])
    assert set(late) == {0, 1} and all(set(v) == {panel.symbols[0]} for v in late.values())


def _error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


def test_daily_bars_default_to_the_whole_history_and_pass_the_check(shared_data):
    """Daily equities with no --days: the window is every day of the data (the span from the first bar of any
    asset to the last), and the folds' history check passes; hourly crypto keeps two years."""
    from fleet.training.inputs import INTRADAY_DAYS

    path = shared_data / "equities_1d" / "sp500_20.parquet"
    frame = pd.read_parquet(path)
    ts = pd.to_datetime(frame[[c for c in frame.columns if c.lower() == "timestamp"][0]], utc=True)
    span = (ts.max() - ts.min()) / pd.Timedelta(days=1)  # computed here from the raw file
    for folds in (3, 5):
        cfg = load_config(None, {"data.path": str(path), "validation.folds": folds})
        assert cfg.data.days is None
        panel = load_inputs(cfg, echo=lambda s: None)[0]
        assert span <= cfg.data.days <= span + 2 and check_history(cfg, panel) == {}
    crypto = load_config(None, {"data.path": str(shared_data / "crypto_1h")})
    load_inputs(crypto, echo=lambda s: None)
    assert crypto.data.days == INTRADAY_DAYS


def test_refusal_of_a_two_year_window_on_daily_bars_is_short_and_quick(shared_data, tmp_path):
    """Daily equities with --days 730 and 3 folds: 20 assets short. One short line that names the file once and
    three assets, within seconds, and the named --days passes while one day less fails."""
    path = str(shared_data / "equities_1d" / "sp500_20.parquet")
    t = time.perf_counter()
    res = CliRunner().invoke(main, ["train", "--data", path, "--days", "730", "--folds", "3",
                                    "--out", str(tmp_path / "r")])
    took = time.perf_counter() - t
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    line = _error_line(res.output)
    assert line.count(path) == 1 and len(line.replace(path, "")) < 300 and "and 17 more" in line, line
    assert took < 10.0  # a linear search took ~90 s here
    days = _named_days(line)

    def check(d):
        cfg = load_config(None, {"data.path": path, "data.days": d, "validation.folds": 3})
        return check_history(cfg, load_inputs(cfg, echo=lambda s: None)[0])

    assert check(days) == {}
    with pytest.raises(DataError, match="too short|bars per asset"):
        check(days - 1)


def test_refusal_of_a_short_window_names_the_directory_once(crypto_dir, tmp_path):
    """The check after loading (enough bars in all, too few before fold 0's training end): one short line."""
    res = CliRunner().invoke(main, ["train", "--data", str(crypto_dir), "--symbols", "BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT",
                                    "--days", "75", "--folds", "2", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2, res.output
    line = _error_line(res.output)
    assert line.count(str(crypto_dir)) == 1 and len(line.replace(str(crypto_dir), "")) < 300 and "--days 75 is too short for 2 folds" in line
    assert re.search(r"[A-Z]+ \(fold \d\) has \d+ bars", line) and "parquet" not in line, line
    _named_days(line)
