"""On real data, the Ray backend and the local loop write the same run: every results table and every prediction
file equal to 1e-9 (crypto_1h, hierarchical, 730 days, 5 folds)."""

import pandas as pd
import pytest

from fleet.config import FleetConfig
from fleet.training.driver import run_fleet


def _run(tmp_path, crypto_dir, backend: str):
    cfg = FleetConfig(data={"path": str(crypto_dir), "days": 730}, validation={"folds": 5}, strategy="hierarchical",
                      model={"experts": ["trend"]}, out=str(tmp_path / backend),
                      resources={"backend": backend, "num_cpus": 1})
    return run_fleet(cfg, echo=lambda line: None).out


@pytest.mark.slow
def test_crypto_hierarchical_local_and_ray_write_the_same_run(tmp_path, crypto_dir, ray_session):
    local, remote = _run(tmp_path, crypto_dir, "local"), _run(tmp_path, crypto_dir, "ray")
    names = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.suffix in (".csv", ".parquet"))
    assert names == sorted(p.relative_to(remote).as_posix() for p in remote.rglob("*")
                           if p.suffix in (".csv", ".parquet"))
    assert sum(n.startswith("predictions/") for n in names) == 10
    for name in names:
        read = pd.read_csv if name.endswith(".csv") else pd.read_parquet
        pd.testing.assert_frame_equal(read(local / name), read(remote / name), check_exact=False, rtol=1e-9,
                                      atol=1e-9, obj=name)
