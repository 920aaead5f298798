"""The metric registry: one list of metric names, read by the CSV files, the console and the report alike."""

from __future__ import annotations

import math
import re
import socket
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from threadpoolctl import threadpool_limits

from fleet.evaluation import metric_registry as mr

NAMES = set(mr.METRICS) | set(mr.LABELS)


def test_formats_read_like_the_report():
    """Units, signs and decimals, written out by hand."""
    assert mr.text("auc", 0.54004, 0.00912) == "0.540 ± 0.009"
    assert mr.text("rank_ic", 0.0703, 0.018) == "+0.070 ± 0.018"
    assert mr.text("sharpe_net", -1.071, 2.08) == "-1.07 ± 2.08"
    assert mr.text("ann_return_net", 0.2936) == "+29.4%"
    assert mr.text("max_dd_net", 0.176) == "-17.6%" and mr.text("max_dd_net", 0.0) == "0.0%"
    assert mr.text("expectancy", 0.001461) == "+14.6 bps" and mr.text("expectancy", -0.0) == "0.0 bps"
    assert mr.text("rank_ic", 0.0004) == "0.000" and mr.text("rank_ic", -0.0004) == "0.000"
    assert mr.text("exposure", 0.275) == "28%"
    assert mr.text("round_trips", 15010.0) == "15,010.0"
    assert mr.text("n", 203_400_000) == "203.4M" and mr.text("n", 12345) == "12,345"
    assert mr.text("signals", 2.5e9) == "2.5B"
    assert mr.text("icir", float("nan")) == mr.MISSING == mr.text("auc", None)
    assert mr.cell("sharpe_net", 0.5) == ("+0.50", "pos") and mr.cell("max_dd_net", 0.2)[1] == "neg"
    assert mr.cell("auc", 0.6)[1] == "" and mr.cell("dominant", np.True_) == ("●", "mark")
    assert mr.cell("assets", "A B") == ("A B", "text") and mr.cell("advice", float("nan")) == ("", "text")


@pytest.mark.parametrize("column", ["auc", "n", "round_trips", "expectancy", "ann_return", "gate_loss"])
def test_no_exponent_at_any_magnitude(column):
    for v in [*(10.0 ** k for k in range(-9, 13)), *(-3.7 * 10.0 ** k for k in range(-9, 13)), 123456.789]:
        text = mr.text(column, v)
        assert not re.search(r"\de[+-]?\d", text, re.I), (column, v, text)


def test_human_against_python_formatting():
    rng = np.random.default_rng(0)
    for v in rng.normal(0, 1, 200) * 10.0 ** rng.integers(-3, 6, 200):
        if abs(v) < 1e6:  # below a million: Python's own thousands-separated fixed point
            assert mr.human(v, 2) == (f"{v:,.2f}" if round(v, 2) != 0 else "0.00")
        else:
            assert mr.human(v, 2) == f"{v / 1e6:,.2f}M"


def test_registry_entries_are_complete():
    for name, m in mr.METRICS.items():
        assert m.name == name and m.definition.endswith(".") and m.unit, name
        assert m.shown <= {"console", "report"}, name
        assert name not in mr.LABELS, name
    # the console shows a subset of the report's figures, in the same order
    console, report = mr.shown("console"), mr.shown("report")
    assert [c for c in report if c in console] == console
    assert mr.results_columns()[-1] == "n" and "folds" not in mr.results_columns(folds=False)
    assert set(mr.se_columns()) == {f"{n}_se" for n, m in mr.METRICS.items() if m.se}


def test_people_order_puts_all_first_then_best_sharpe():
    t = pd.DataFrame({"symbol": ["A", "ALL", "B", "C"], "sharpe_net": [0.1, -1.0, np.nan, 2.0]})
    assert mr.people_order(t)["symbol"].tolist() == ["ALL", "C", "A", "B"]


def _header(output: str, title: str) -> list[str]:
    """The column names of the console table printed after its title line (``title ...:``)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title) and line.endswith(":"))
    return lines[start + 1].split()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small mixture run with forced entry and a hold-out: every results file but the policy comparison."""
    from fleet.cli import main

    out = tmp_path_factory.mktemp("registry") / "run"
    with threadpool_limits(1):
        res = CliRunner().invoke(main, ["train", "--days", "120", "--folds", "2", "--symbols", "C0S0,C1S0,C2S0",
                                        "--clusters", "2", "--experts", "trend,momentum", "--forced-entry",
                                        "--holdout-days", "15", "--report", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_registry_is_the_only_list(run):
    """Every CSV column of a run, every column of the console's tables and of the report's tables is a registry
    name; the console prints the report's text for the same figures, in the same row order."""
    from fleet.cli_output import metric_frame
    from test_report import _table_after

    out, output = run
    for path in out.glob("*.csv"):
        assert set(pd.read_csv(path, nrows=1).columns) <= NAMES, path.name
    for title in ("Per cluster", "Per asset", "Hold-out", "Forced daily entry"):
        header = _header(output, title)
        assert set(header) <= NAMES, (title, header)
    console = _header(output, "Per asset")
    figures = [c for c in mr.shown("console") if c in mr.RESULTS_LAYOUT]
    assert [c for c in console if c in mr.METRICS] == figures
    assert not re.search(r"\de[+-]\d", output)

    page = (out / "report" / "report.html").read_text()
    per_asset = pd.read_csv(out / "results_per_asset.csv")
    for heading in ("Results per cluster", "Results per asset", "Results per fold", "Hold-out", "Forced daily entry"):
        assert set(_table_after(page, heading).columns) <= NAMES, heading
    assert mr.METRICS["icir"].definition in _table_after(page, "Columns")["definition"].tolist()
    report = _table_after(page, "Results per asset")
    shown = metric_frame(per_asset, ["symbol", "cluster"])
    assert report["symbol"].tolist() == shown["symbol"].tolist()
    assert (report[figures].to_numpy() == shown[figures].to_numpy()).all()
    assert shown.to_string(index=False) in output  # the console prints exactly that frame
    # sorted by net Sharpe, formatted independently of the registry: bps, % with sign
    ranked = per_asset.sort_values("sharpe_net", ascending=False, na_position="last", kind="stable")
    assert report["symbol"].tolist() == ranked["symbol"].tolist()
    for (_, row), (_, cells) in zip(ranked.iterrows(), report.iterrows()):
        if math.isfinite(row["ann_return_net"]):
            assert cells["ann_return_net"] == f"{row['ann_return_net'] * 100:+.1f}%"
        assert cells["expectancy"] == f"{row['expectancy'] * 1e4:+.1f} bps"
        assert cells["max_dd_net"] == f"{-row['max_dd_net'] * 100:.1f}%" or row["max_dd_net"] == 0
    # a one-machine run names no host on its progress lines
    progress = [line for line in output.splitlines() if re.match(r"\s+\[\s*\d+/\d+\]", line)]
    assert progress and not [line for line in progress if line.rstrip().endswith(socket.gethostname())]


@pytest.mark.parametrize("nodes, named", [(1, False), (3, True)])
def test_progress_names_the_host_only_with_several_nodes(nodes, named):
    from fleet.training.driver import _Progress, _train

    lines = []
    result = SimpleNamespace(unit_id="fold0/cluster0", assets=["A"], n_train=10, n_test=5, wall_seconds=0.1,
                             host="somehost", node_id="")

    class Backend:
        def nodes(self):
            return nodes

        def run(self, todo, bars, on_result, sink=None, follow=None):
            on_result(result)

    ctx = SimpleNamespace(rundir=SimpleNamespace(remote=False, unit_sink=lambda: None), echo=lines.append, bars={})
    _train(ctx, Backend(), ["unit"], _Progress())
    assert len(lines) == 1 and lines[0].endswith("somehost") == named and "0.1 s" in lines[0]
