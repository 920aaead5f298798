"""The Ray pool's handling of lost actors and lost nodes (fleet.training.backends.ray_graph / ray_nodes), on the
tests' local Ray.

The two-node runs with a real node SIGKILLed are in tests/test_two_nodes.py. Here: the per-node slot count
against a direct count; a unit whose actor dies more often than Ray's restarts allow starts again on a fresh
actor (real SIGKILLs of the step's worker); and the units that no alive node can hold fail within a bounded
time, with the node loss named, while steps are still running (the nodes' state comes from a stand-in
:class:`NodeWatch`, since one machine cannot lose a node of its own Ray).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from fleet.training.backends import ray_graph
from fleet.training.backends.ray_graph import MAX_TASK_RETRIES, GraphRun
from fleet.training.backends.ray_nodes import node_slots
from fleet.training.records import UnitFailure


def _node(cpu: float, gpu: float = 0.0, alive: bool = True) -> dict:
    return {"NodeID": f"n{cpu}-{gpu}-{alive}", "Alive": alive, "Resources": {"CPU": cpu, "GPU": gpu}}


def test_node_slots_count_actors_per_node():
    nodes = [_node(1.5), _node(1.5), _node(8.0, alive=False)]
    assert node_slots(nodes, (1.0, 0.0)) == 2  # 1 + 1: an actor cannot span two nodes (3.0 // 1 would say 3)
    assert node_slots(nodes, (0.5, 0.0)) == 6
    gpus = [_node(4.0, 1.0), _node(2.0, 0.0), _node(1.0, 2.0)]
    assert node_slots(gpus, (1.0, 0.5)) == 2 + 0 + 1  # min(4 // 1, 1 // 0.5), none without a GPU, min(1, 4)
    assert node_slots(gpus, (1.0, 0.0)) == 4 + 2 + 1
    assert node_slots([], (1.0, 0.0)) == 0


# --- stand-ins Ray pickles by value into the actors --------------------------------------------------------

def _unit(i: int) -> SimpleNamespace:
    return SimpleNamespace(unit_id=f"fold0/U{i}", group=f"U{i}", fold=SimpleNamespace(index=0))


def _result(unit) -> SimpleNamespace:
    return SimpleNamespace(unit_id=unit.unit_id, pid=os.getpid())


def die_until(count_dir, deaths, unit, frames):
    """SIGKILL this worker on the unit's first ``deaths`` attempts (counted in files), then return a result."""
    attempts = Path(count_dir, unit.group)
    attempts.mkdir(exist_ok=True)
    n = len(list(attempts.iterdir()))
    (attempts / str(n)).touch()
    if n < deaths:
        os.kill(os.getpid(), signal.SIGKILL)
    return _result(unit)


def slow_after_first(unit, frames):
    """The first unit returns at once, the others take 60 s (still running when the node is lost)."""
    if unit.unit_id != "fold0/U0":
        time.sleep(60)
    return _result(unit)


@pytest.fixture(scope="module")
def ray_by_value(ray_session):
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray_session
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


class LostNodeWatch:
    """Stand-in for :class:`NodeWatch`: two alive nodes until ``lose()``, then none that holds a step."""

    check_s = 0.2

    def __init__(self):
        self.dead = False
        self.lost: dict[str, str] = {}

    def lose(self) -> None:
        self.dead = True

    def check(self, force: bool = False) -> list[str]:
        if self.dead and not self.lost:
            self.lost = {"d" * 56: "10.0.0.2"}
            return list(self.lost)
        return []

    def slots(self, shape) -> int:
        return 0 if self.dead else 2

    def describe_lost(self) -> str:
        return "Ray node(s) lost during the run: dddddddd (10.0.0.2)" if self.lost else ""


def _graph(units, fn, on_result, watch=None) -> GraphRun:
    return GraphRun(units, {}, on_result, None, shape_of=lambda t: (1.0, 0.0), cpu_slots=2, cluster_gpus=0.0,
                    train_fn=fn, watch=watch)


@pytest.mark.slow
def test_unit_whose_actor_dies_past_rays_retries_starts_again_on_a_fresh_actor(ray_by_value, tmp_path):
    import functools

    deaths = 1 + MAX_TASK_RETRIES  # every attempt Ray makes on the first actor
    units = [_unit(0)]
    with pytest.warns(Warning, match="fold0/U0: its unit step was lost .*starts again on fresh actors"):
        outcomes = _graph(units, functools.partial(die_until, str(tmp_path), deaths), lambda r: None).run()
    assert [type(o).__name__ for o in outcomes] == ["SimpleNamespace"] and outcomes[0].unit_id == "fold0/U0"
    assert len(list((tmp_path / "U0").iterdir())) == deaths + 1  # Ray's attempts, then one on the fresh actor

    with pytest.warns(Warning, match="starts again"):  # dies on the fresh actor too: a failure, not a third round
        (failed,) = _graph([_unit(1)], functools.partial(die_until, str(tmp_path), 99), lambda r: None).run()
    assert isinstance(failed, UnitFailure) and failed.unit_id == "fold0/U1"
    assert "Error" in failed.error


def test_units_no_alive_node_can_hold_fail_in_bounded_time(ray_by_value, monkeypatch):
    monkeypatch.setattr(ray_graph, "NODE_WAIT_S", 1.0)
    watch = LostNodeWatch()

    def on_result(r):
        watch.lose()  # the node goes away once the first unit is back; the others are running or queued

    units = [_unit(i) for i in range(5)]
    t0 = time.monotonic()
    with pytest.warns(Warning, match="lost"):
        outcomes = _graph(units, slow_after_first, on_result, watch=watch).run()
    took = time.monotonic() - t0
    assert took < 30, f"waited {took:.0f} s on steps no node can run"  # each running step sleeps 60 s
    done = [o for o in outcomes if not isinstance(o, UnitFailure)]
    failed = [o for o in outcomes if isinstance(o, UnitFailure)]
    assert [o.unit_id for o in done] == ["fold0/U0"]
    assert sorted(f.unit_id for f in failed) == [f"fold0/U{i}" for i in range(1, 5)]
    for f in failed:
        assert f.error.startswith("NodeLost: no alive Ray node can hold a step asking for num_cpus=1, num_gpus=0")
        assert "lost during the run: dddddddd" in f.error
