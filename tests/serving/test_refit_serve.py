"""``fleet train --refit ... && fleet serve RUN``: the refit, trained up to the data's last bar, is what answers.

A small synthetic run trained by the CLI with --refit, served with Ray Serve (one replica of 0.5 CPU on the
session's Ray): GET /v1/models names the refit and its last bar, and fleet.Run.predict gives the HTTP answer.
"""

from __future__ import annotations

import pytest

from conftest import free_port

DAYS = 90


@pytest.fixture(scope="module")
def live_refit(tmp_path_factory, ray_session):
    from click.testing import CliRunner

    import fleet
    from fleet.cli import main
    from fleet.serving import runner

    out = tmp_path_factory.mktemp("refit") / "run"
    res = CliRunner().invoke(main, ["train", "--refit", "--days", str(DAYS), "--folds", "2", "--strategy", "global",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    run = fleet.load_run(out)
    try:
        url, _ = runner.start(run.path, port=free_port(), num_cpus=0.5)
        yield url, run
    finally:
        runner.stop(False)  # Serve only: Ray is the session's


@pytest.mark.slow
def test_models_state_the_refit_trained_until_the_datas_last_bar(live_refit):
    import pandas as pd
    import requests

    from fleet.data.synthetic import synthetic_market

    url, run = live_refit
    frames = synthetic_market(days=DAYS, seed=0).panel.frames
    last = max(f.index[-1] for f in frames.values())  # the data's last bar, from the data itself
    models = requests.get(f"{url}/v1/models", timeout=30).json()
    assert [(u["unit"], u["model"], pd.Timestamp(u["trained_until"])) for u in models["units"]] == \
        [("global", "refit", last)]
    assert run.served_model == "refit" and run.trained_until == {"global": last}
    folds = run.manifest["folds"]
    assert pd.Timestamp(folds[-1]["train_end"]) < last - pd.Timedelta(days=20)  # the last fold stopped long before


@pytest.mark.slow
def test_run_predict_matches_the_refit_served_over_http(live_refit):
    import pandas as pd
    import requests

    from fleet.data.synthetic import synthetic_market

    url, run = live_refit
    frames = synthetic_market(days=DAYS, seed=0).panel.frames
    last = max(f.index[-1] for f in frames.values())
    for symbol, cut in zip(sorted(frames)[::3], (None, -50, -200)):
        bars = frames[symbol].iloc[:cut]  # up to the last bar, or any cut: the answer is for the cut's last bar
        candles = {"timestamp": [t.isoformat() for t in bars.index],
                   **{c: bars[c].astype(float).tolist() for c in bars.columns}}
        r = requests.post(f"{url}/v1/predict", json={"symbol": symbol, "candles": candles}, timeout=60)
        assert r.status_code == 200, r.text
        http = r.json()
        assert pd.Timestamp(http["trained_until"]) == last
        local = run.predict(bars.rename_axis("timestamp").reset_index().assign(symbol=symbol))
        assert len(local) == 1 and abs(local["p_up"].iloc[0] - http["p_up"]) <= 1e-6
        assert local["signal"].iloc[0] == http["signal"] and local["asset_id"].iloc[0] == http["asset_id"]
