"""benchmarks/fleet_wall.py: the serial share, Amdahl's projection and the memory line on task records written by
hand, and one tiny run of the script checked against its own manifest."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def fw():
    return load_benchmark("fleet_wall")


def _task(start, end):
    return {"start_unix": start, "end_unix": end}


def test_union_counts_overlaps_once_and_gaps_not_at_all(fw):
    assert fw.union_seconds([]) == 0.0
    assert fw.union_seconds([(0, 2), (1, 3)]) == 3.0  # overlap: [0, 3)
    assert fw.union_seconds([(0, 1), (2, 3)]) == 2.0  # gap [1, 2) not counted
    assert fw.union_seconds([(0, 10), (2, 3), (4, 5)]) == 10.0  # nested
    assert fw.union_seconds([(0, 1), (1, 2)]) == 2.0  # touching
    assert fw.union_seconds([(5, 6), (0, 2), (1, 3)]) == 4.0  # unsorted


def test_two_overlapping_steps_by_hand(fw):
    # process [100, 130): steps [105, 115) and [110, 120) -> busy [105, 120) = 15 s, serial 30 - 15 = 15 s
    s = fw.wall_split([_task(105, 115), _task(110, 120)], 100.0, 130.0)
    assert s["wall"] == 30.0 and s["busy"] == 15.0 and s["serial"] == 15.0 and s["serial_share"] == 0.5
    assert s["first_step"] == 5.0 and s["tail"] == 10.0
    assert s["steps"] == 20.0 and s["max_step"] == 10.0


def test_two_steps_with_a_gap_by_hand(fw):
    # steps [105, 110) and [115, 120): the gap [110, 115) is serial too -> serial 5 + 5 + 10 = 20 of 30 s
    s = fw.wall_split([_task(115, 120), _task(105, 110)], 100.0, 130.0)
    assert s["busy"] == 10.0 and s["serial"] == 20.0 and s["serial_share"] == pytest.approx(2 / 3, abs=1e-15)
    assert s["first_step"] == 5.0 and s["tail"] == 10.0 and s["steps"] == 10.0 and s["max_step"] == 5.0
    # launch and tail are serial, but they are not all of it when steps leave a gap
    assert s["first_step"] + s["tail"] < s["serial"]


def test_busy_time_is_clipped_to_the_wall_and_no_step_means_all_serial(fw):
    # a record a clock skew puts 5 s before launch: only its 5 s inside the wall are busy
    s = fw.wall_split([_task(95, 105)], 100.0, 110.0)
    assert s["busy"] == 5.0 and s["serial"] == 5.0 and s["steps"] == 10.0
    s = fw.wall_split([], 0.0, 4.0)
    assert s["serial"] == 4.0 and s["serial_share"] == 1.0 and s["steps"] == 0.0
    assert math.isnan(s["first_step"]) and math.isnan(s["tail"])
    with pytest.raises(ValueError, match="ended_unix"):
        fw.wall_split([], 10.0, 10.0)
    with pytest.raises(ValueError, match="ends before it starts"):
        fw.wall_split([_task(3, 2)], 0.0, 10.0)


def test_amdahl_against_the_law_in_its_usual_form(fw):
    # S = 10 s, W = 90 s: T(16) = 10 + 90 / 16 = 15.625 s; 100 / 15.625 = 6.4 = 1 / (0.1 + 0.9 / 16)
    wall, speedup = fw.amdahl(10.0, 90.0, 16)
    assert wall == 15.625 and speedup == pytest.approx(6.4, abs=1e-12)
    for n in (1, 2, 16, 64):
        s = 10.0 / 100.0
        assert fw.amdahl(10.0, 90.0, n)[1] == pytest.approx(1 / (s + (1 - s) / n), rel=1e-12)
    assert fw.amdahl(10.0, 90.0, 1) == (100.0, 1.0)
    assert fw.amdahl(0.0, 90.0, 64)[1] == pytest.approx(64.0)  # nothing serial: linear
    assert fw.amdahl(50.0, 50.0, 10**9)[1] < 2.0  # half serial: never 2x
    for bad in [(1.0, 1.0, 0), (-1.0, 1.0, 4), (0.0, 0.0, 4)]:
        with pytest.raises(ValueError, match="cores"):
            fw.amdahl(*bad)


def test_memory_slope_by_hand_and_against_polyfit(fw):
    # x = 0, 1, 2; y = 1, 2, 4: slope = 3 / 2, intercept = 7/3 - 3/2; residuals 1/6, -1/3, 1/6 -> SSE 1/6,
    # se = sqrt(SSE / (n - 2) / Sxx) = sqrt(1/6 / 2)
    fit = fw.memory_slope([0, 1, 2], [1, 2, 4])
    assert fit["slope"] == pytest.approx(1.5, abs=1e-12) and fit["intercept"] == pytest.approx(7 / 3 - 1.5, abs=1e-12)
    assert fit["slope_se"] == pytest.approx(math.sqrt(1 / 12), abs=1e-12) and fit["n"] == 3
    # the line: 330 MiB + 8.8 MiB per asset, with noise, against numpy's least squares
    rng = np.random.default_rng(0)
    x = np.array([10, 100, 300, 1000])
    y = 330 + 8.8 * x + rng.normal(0, 20, x.size)
    fit = fw.memory_slope(x, y)
    slope, intercept = np.polyfit(x, y, 1)
    assert fit["slope"] == pytest.approx(slope, rel=1e-10) and fit["intercept"] == pytest.approx(intercept, rel=1e-10)
    assert abs(fit["slope"] - 8.8) < 0.1
    assert math.isnan(fw.memory_slope([10, 100], [400, 1200])["slope_se"])  # two points: an exact line
    with pytest.raises(ValueError, match="two or more distinct"):
        fw.memory_slope([10, 10], [400, 410])


def _row(fw, strategy, backend, size, assets, peak, serial, steps, max_step):
    row = {"strategy": strategy, "backend": backend, "size": size, "assets": assets, "peak_mib": peak,
           "units": assets, "tasks": 3 * assets, "wall": serial + steps / 2, "train": steps / 2,
           "first_step": 1.0, "tail": 1.0, "serial": serial, "serial_share": serial / (serial + steps / 2),
           "steps": steps, "max_step": max_step, "driver_serial": serial, "driver_share": serial / (serial + steps / 2),
           "run_steps": 0.0}
    for n in (16, 64):
        row[f"x{n}"] = fw.amdahl(serial, steps, n)[1]
        row[f"capped{n}"] = steps / n < max_step
    return row


def test_table_and_memory_lines(fw):
    rows = [_row(fw, "islands", "ray", "1x10", 10, 418.0, 10.0, 90.0, 1.0),
            _row(fw, "islands", "ray", "10x10", 100, 1210.0, 10.0, 900.0, 1.0),
            _row(fw, "islands", "local", "1x10", 10, 300.0, 10.0, 90.0, 20.0),
            {"strategy": "global", "backend": "ray", "size": "10x100", "wall": 12.0, "error": "boom"}]
    lines = fw._table(rows, [16, 64])
    assert lines[0].startswith("| strategy | fleet | assets |") and "| x16 | x64 |" in lines[0]
    assert len(lines) == 2 + len(rows)
    assert "| 6.4x | 8.8x |" in lines[2]  # 100 / (10 + 90 / 16) = 6.4; 100 / (10 + 90 / 64) = 8.77
    assert lines[4].count("*") == 2  # 90 / 16 s is shorter than its 20 s step
    assert "FAILED after 12 s: boom" in lines[5]
    assert "| 1.00x |" in lines[2]  # the Ray wall against the local wall of the same fleet
    (mem,) = fw._memory_lines(rows)  # one (strategy, backend) with two sizes
    assert mem.startswith("driver memory, islands, ray: 8.80 MiB per asset + 330 MiB")


def test_strategy_takes_a_comma_separated_list(fw):
    args = fw.parse_args(["--strategy", "global,hierarchical,islands", "--backends", "ray"])
    assert args.strategies == ["global", "hierarchical", "islands"] and args.backend_list == ["ray"]
    assert args.cores == [16, 64]
    for bad in (["--strategy", "islands,clusters"], ["--backends", "dask"], ["--cores", "0"]):
        with pytest.raises(SystemExit):
            fw.parse_args(bad)


def _union_by_segments(spans, lo, hi):
    """Busy seconds by another route: cut [lo, hi) at every endpoint, keep each piece that some span covers."""
    cuts = sorted({lo, hi, *[min(max(v, lo), hi) for s in spans for v in s]})
    return sum(b - a for a, b in zip(cuts, cuts[1:]) if any(s <= a and b <= e for s, e in spans))


@pytest.mark.slow
def test_a_tiny_fleet_end_to_end(fw, tmp_path, capsys):
    rows = fw.main(["--sizes", "1x3", "--strategy", "islands", "--backends", "local", "--days", "120",
                    "--folds", "2", "--keep", str(tmp_path)])
    (r,) = rows
    assert "error" not in r, r.get("error")
    manifest = json.loads((tmp_path / "islands-local-1x3" / "manifest.json").read_text())
    tasks = manifest["tasks"]
    spans = [(t["start_unix"], t["end_unix"]) for t in tasks]
    assert manifest["run_tasks"] and all(t["unit"] is None for t in manifest["run_tasks"])
    assert r["assets"] == 3 and r["units"] == len(manifest["units"])
    assert r["tasks"] == len(tasks) + len(manifest["run_tasks"]) > 0
    # the run-level tasks count as busy for the driver's own serial time, never as unit steps
    assert r["driver_serial"] <= r["serial"] and r["run_steps"] > 0
    assert r["steps"] == pytest.approx(sum(e - s for s, e in spans), abs=1e-9)
    # every step ran inside the process, so launch and tail are positive and the busy time matches the union
    assert r["first_step"] > 0 and r["tail"] > 0
    assert r["wall"] >= manifest["wall_seconds"]  # the driver's own clock starts after the interpreter's start
    start = min(s for s, _ in spans) - r["first_step"]
    assert r["busy"] == pytest.approx(_union_by_segments(spans, start, start + r["wall"]), abs=1e-6)
    assert r["serial"] == pytest.approx(r["wall"] - r["busy"], abs=1e-9)
    assert r["first_step"] + r["tail"] <= r["serial"] + 1e-9
    assert 0 < r["serial_share"] < 1 and 1 < r["x16"] < r["x64"] < 64 and 100 < r["peak_mib"] < 4096
    out = capsys.readouterr().out
    assert "| islands | 1x3 | 3 | local |" in out and "Amdahl" in out
