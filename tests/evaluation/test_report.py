"""`fleet report`: one self-contained HTML page with the run's plots (also as PNGs) and tables."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil

import matplotlib.image as mpimg
import pandas as pd
import pytest
from click.testing import CliRunner
from threadpoolctl import threadpool_limits

from fleet.cli import main
from fleet.errors import RunDirectoryError
from fleet.evaluation.report import write_report

SYMBOLS = "C0S0,C0S1,C1S0,C2S0"
COMMON = ["train", "--days", "90", "--folds", "2", "--symbols", SYMBOLS, "--clusters", "2"]
BASE_PNGS = ("clusters.png", "market_factor.png", "equity.png", "portfolio.png", "fold_metrics.png", "p_up_hist.png",
             "calibration.png", "tasks.png", "book_equity.png", "book_ic.png", "book_groups.png")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A single-expert run (report written by `fleet report`) and a rule-gated mixture with forced
    entry whose report `fleet train --report` writes."""
    root = tmp_path_factory.mktemp("report")
    single, moe = root / "single", root / "moe"
    # One OpenMP thread: on a busy machine the gradient boosting's thread pool spins (20x slower).
    with threadpool_limits(1):
        res = CliRunner().invoke(main, [*COMMON, "--out", str(single)])
        assert res.exit_code == 0, res.output
        res = CliRunner().invoke(main, [*COMMON, "--experts", "trend,stress", "--gate", "rule", "--forced-entry",
                                        "--report", "--out", str(moe)])
    assert res.exit_code == 0, res.output
    assert f"Report: {moe / 'report' / 'report.html'}" in res.output
    return single, moe


def _check_page(html_path, expected_pngs, assets):
    page = html_path.read_text()
    pngs = sorted(p.name for p in html_path.parent.glob("*.png"))
    assert pngs == sorted(expected_pngs)
    for name in pngs:
        assert f'data-file="{name}"' in page and f'href="{name}"' in page
        data = (html_path.parent / name).read_bytes()
        assert len(data) > 15_000, f"{name} is only {len(data)} bytes"
        img = mpimg.imread(io.BytesIO(data), format="png")
        h, w = img.shape[:2]
        assert w >= 600 and h >= 300, f"{name}: {w}x{h}"
    # Self-contained: every plot is embedded, byte for byte the PNG beside the page.
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="[^"]*" data-file="([^"]+)"', page)
    assert sorted(n for _, n in embedded) == sorted(expected_pngs)
    for b64, name in embedded:
        assert base64.b64decode(b64) == (html_path.parent / name).read_bytes()
    assert "<img src=\"http" not in page and "<script" not in page
    for heading, key in (("Results per cluster", "dominant"), ("Results per asset", "symbol"),
                         ("Results per fold", "fold")):
        table = _table_after(page, heading)
        assert key in table.columns
        if key != "dominant":
            assert set(assets) <= set(table["symbol"]), heading
    assert set(_table_after(page, "Results per asset")["symbol"]) == set(assets)
    return page


def _table_after(page: str, heading: str) -> pd.DataFrame:
    """The first HTML table after ``<h2>heading</h2>`` as strings (no lxml needed)."""
    body = page.split(f"<h2>{heading}</h2>", 1)[1].split("</table>", 1)[0]
    cells = lambda row, tag: [re.sub(r"<[^>]+>", "", c).strip()  # noqa: E731
                              for c in re.findall(rf"<{tag}[^>]*>(.*?)</{tag}>", row, flags=re.S)]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, flags=re.S)
    return pd.DataFrame([cells(r, "td") for r in rows[1:]], columns=cells(rows[0], "th"))


def test_report_single_expert(runs, tmp_path):
    single, _ = runs
    out = tmp_path / "elsewhere"
    res = CliRunner().invoke(main, ["report", str(single), "-o", str(out)])
    assert res.exit_code == 0, res.output
    page = _check_page(out / "report.html", [*BASE_PNGS], SYMBOLS.split(","))
    assert "single expert (trend)" in page
    assert "Forced daily entry was off" in page
    assert "no BTC in this run: C0S0" in page  # the synthetic market has no BTC: the reference asset is named


def test_train_report_with_experts_and_forced_entry(runs):
    _, moe = runs
    page = _check_page(moe / "report" / "report.html",
                       [*BASE_PNGS, "expert_weights.png", "gate_weights.png", "forced_entry.png"], SYMBOLS.split(","))
    assert "Natural trades" in page and "mean_active" in page
    forced = _table_after(page, "Forced daily entry")
    assert "forced_trades" in forced.columns and set(forced["symbol"]) == set(SYMBOLS.split(","))


def test_headline_block_against_an_independent_computation(runs):
    """The headline's fleet figures: AUC and Rank IC of the pooled predictions (scikit-learn / scipy),
    Sharpe net of the equal-weight portfolio built here from a bar-by-bar tranche book."""
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    from test_money_acceptance import book, sharpe

    _, moe = runs
    page = (moe / "report" / "report.html").read_text()
    head = page.split('<section id="headline">', 1)[1].split("</section>", 1)[0]
    kpis = dict((label.strip(), value.strip()) for value, label in re.findall(
        r'<div class="v">(?:<span[^>]*>)?([^<]+)(?:</span>)?</div><div class="l">([^<(]+)', head))
    manifest = json.loads((moe / "manifest.json").read_text())
    h, cost = manifest["config"]["labels"]["horizon"], manifest["config"]["policy"]["cost_bps"]
    preds = {s: pd.read_parquet(moe / "predictions" / f"{s}.parquet") for s in SYMBOLS.split(",")}
    pooled = pd.concat(preds.values(), ignore_index=True)
    assert kpis["fleet ROC AUC of p_up, pooled over assets"].startswith(
        f"{roc_auc_score(pooled['y'], pooled['p_up']):.3f} ± ")
    assert kpis["fleet Rank IC"].startswith(f"{spearmanr(pooled['p_up'], pooled['forward_return'])[0]:+.3f} ± ")
    nets = [pd.Series(book(p, h, cost)[1], index=p["timestamp"]) for p in preds.values()]
    port = pd.concat(nets, axis=1).mean(axis=1).sort_index().to_numpy()
    assert kpis["fleet Sharpe net of costs"].startswith(f"{sharpe(port, manifest['bars_per_year']):+.2f} ± ")
    per_asset = pd.read_csv(moe / "results_per_asset.csv")
    positive = int((per_asset["expectancy"] > 0).sum())
    assert f"({positive} of {per_asset['expectancy'].notna().sum()})" in head
    best = per_asset.sort_values("sharpe_net", ascending=False).iloc[0]
    assert f"<b>Best assets</b> {best['symbol']} ({best['sharpe_net']:+.2f})" in head
    # tables for people: bps, %, signs; the dominant cluster as a mark
    table = _table_after(page, "Results per asset")
    assert table["expectancy"].str.endswith(" bps").all() and table["max_dd_net"].str.endswith("%").all()
    assert table["sharpe_net"].str.match(r"^[+-]\d").all()
    clusters = _table_after(page, "Results per cluster")
    assert sorted(clusters["dominant"]) == ["", "●"]


def test_default_output_is_run_dir_report(runs, tmp_path):
    single, _ = runs
    copy = tmp_path / "run"
    shutil.copytree(single, copy)
    html_path = write_report(copy)
    assert html_path == copy / "report" / "report.html" and html_path.is_file()


@pytest.mark.parametrize("missing", ["clusters.json", "expert_weights.csv", "predictions/C1S0.parquet"])
def test_incomplete_run_dir_is_one_clear_error(runs, tmp_path, missing):
    single, _ = runs
    copy = tmp_path / "run"
    shutil.copytree(single, copy)
    (copy / missing).unlink()
    with pytest.raises(RunDirectoryError, match=re.escape(str(copy / missing)) + " is missing"):
        write_report(copy)
    res = CliRunner().invoke(main, ["report", str(copy)])
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and missing in res.output
    assert not (copy / "report").exists()


def test_missing_run_dir(tmp_path):
    res = CliRunner().invoke(main, ["report", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "run directory" in res.output and "not found" in res.output


def test_templates_are_package_data():
    """Every template is shipped: pyproject's package-data globs cover the templates directory, so
    non-editable installs (wheels) carry them too."""
    import fnmatch
    import tomllib
    from importlib.resources import files

    from conftest import REPO

    templates = files("fleet.evaluation") / "templates"
    names = sorted(p.name for p in templates.iterdir() if p.is_file())
    assert "report.html.j2" in names
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = project["tool"]["setuptools"]["package-data"]["fleet.evaluation"]
    for name in names:
        assert any(fnmatch.fnmatch(f"templates/{name}", g) for g in globs), name
    assert any(dep.lower().startswith("jinja2") for dep in project["project"]["dependencies"])


def test_run_without_return_1_is_one_clear_error(runs, tmp_path):
    single, _ = runs
    copy = tmp_path / "run"
    shutil.copytree(single, copy)
    path = copy / "predictions" / "C0S0.parquet"
    pd.read_parquet(path).drop(columns="return_1").to_parquet(path)
    with pytest.raises(RunDirectoryError, match=r"C0S0\.parquet has no return_1 column.*older fleet"):
        write_report(copy)


def test_results_book_written_by_the_run_equals_a_recomputation(runs):
    """results_book.csv (the pooled output task) against the pure module on the run's predictions/; the per-fold
    table carries the same cross-sectional ICs on its ALL rows; the report shows the section."""
    import numpy as np

    import fleet

    single, _ = runs
    run = fleet.load_run(single)
    written = run.book()
    k, n_drop = (int(v) for v in written.loc[written["book"] == "topk", ["k", "n_drop"]].iloc[0])
    again = run.book(k=k, n_drop=n_drop)
    num = [c for c in written.columns if c not in ("book", "fold")]
    assert list(written["book"]) == list(again["book"])
    np.testing.assert_allclose(written[num].to_numpy(float), again[num].to_numpy(float), rtol=1e-9, atol=1e-12)
    per_fold = run.results["fold"]
    ic = per_fold[per_fold["symbol"] == "ALL"].set_index("fold")["cs_rank_ic"]
    score = written[(written["book"] == "score") & (written["fold"] != "all")]
    np.testing.assert_allclose(ic.to_numpy(), score["cs_rank_ic"].to_numpy(float), rtol=1e-12)
    assert {"sharpe_net_matched", "timing_sharpe", "timing_sharpe_se"} <= set(run.results["asset"].columns)
