"""The Ray nodes a run's step actors can use, watched while the run goes on (node loss, nodes joining).

Ray restarts an actor whose node died (``max_restarts``) on another node, but only where the resources it asks
for are free. A pool that keeps as many actors as the cluster held at the start would then wait forever: its
idle actors hold the surviving CPUs that the restarted (or a fresh) actor is waiting for. :class:`NodeWatch`
reads the alive nodes from the GCS (``ray.nodes()``) every :data:`NODE_CHECK_S` seconds, so the pool can shrink
to what the surviving nodes hold, and says which shapes no alive node can hold at all.
"""

from __future__ import annotations

import math
import time

import ray

#: Seconds between two looks at the cluster's nodes while steps run (one GCS call each).
NODE_CHECK_S = 5.0
#: Seconds the steps of a shape that no alive node can hold wait for a node to join before their units fail.
NODE_WAIT_S = 60.0


def node_slots(nodes: list[dict], shape: tuple[float, float]) -> int:
    """Actors of ``shape`` = (num_cpus, num_gpus) that the alive ``nodes`` hold at once.

    An actor lives on one node, so this is the sum over alive nodes of ``min(CPU // num_cpus, GPU // num_gpus)``
    (the GPU term only when ``num_gpus > 0``), not the cluster's total CPUs over ``num_cpus``: two nodes of
    1.5 CPUs hold two 1-CPU actors, not three.

    Args:
        nodes: ``ray.nodes()`` entries (``Alive``, ``Resources``).
    """
    cpus, gpus = shape
    total = 0
    for node in nodes:
        if not node.get("Alive"):
            continue
        res = node.get("Resources", {})
        n = math.floor(res.get("CPU", 0.0) / cpus + 1e-9) if cpus > 0 else 1 << 30
        if gpus > 0:
            n = min(n, math.floor(res.get("GPU", 0.0) / gpus + 1e-9))
        total += n
    return total


class NodeWatch:
    """The alive Ray nodes and the nodes lost since the run started.

    Args:
        check_s: at least this many seconds between two ``ray.nodes()`` calls (:meth:`check`).
    """

    def __init__(self, check_s: float = NODE_CHECK_S):
        self.check_s = check_s
        self.nodes = ray.nodes()
        self.last = time.monotonic()
        self.lost: dict[str, str] = {}  # node id -> its address, for messages

    def alive_ids(self) -> set[str]:
        return {n["NodeID"] for n in self.nodes if n.get("Alive")}

    def check(self, force: bool = False) -> list[str]:
        """Look at the nodes again (at most every ``check_s`` seconds unless ``force``); returns the ids of
        nodes alive at the previous look and dead now."""
        if not force and time.monotonic() - self.last < self.check_s:
            return []
        before = self.alive_ids()
        self.nodes, self.last = ray.nodes(), time.monotonic()
        gone = sorted(before - self.alive_ids())
        addresses = {n["NodeID"]: n.get("NodeManagerAddress", "?") for n in self.nodes}
        for node_id in gone:
            self.lost[node_id] = addresses.get(node_id, "?")
        return gone

    def slots(self, shape: tuple[float, float]) -> int:
        """Actors of ``shape`` the alive nodes hold (:func:`node_slots`)."""
        return node_slots(self.nodes, shape)

    def describe_lost(self) -> str:
        """``"Ray node(s) lost during the run: 60c8abe6 (10.0.0.2)"``, or "" when none was lost."""
        if not self.lost:
            return ""
        return "Ray node(s) lost during the run: " + ", ".join(f"{k[:8]} ({v})" for k, v in self.lost.items())
