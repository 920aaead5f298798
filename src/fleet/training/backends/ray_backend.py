"""Ray backend: connects to (or starts) Ray and runs the units' task graphs on warm actor pools.

Each unit is a graph of pure steps (:mod:`fleet.training.graph`: prepare, inner-fold fits per expert, gate,
full-window fits per expert, assemble) run as calls of pooled Ray actors by :mod:`.ray_graph`; CNN experts'
steps ask for a GPU fraction when the cluster has GPUs, every other step for CPUs only. The bars' reader
(:class:`~fleet.data.bars.BarReader`: the bar cache's location, the symbols, the window; no frame) is
``ray.put`` once and passed by reference, and each step reads its unit's assets itself; results are gathered
with ``ray.wait``.

Fault tolerance is Ray's own (``ray-core/fault_tolerance/actors``): actors are created with
``max_restarts`` and ``max_task_retries``, so when a worker process dies (SIGKILL, OOM killer,
node loss) Ray restarts the actor and re-runs the step it was running; steps are pure functions,
so the retried step gives the same value. Application errors are not retried (Ray retries actor
tasks on system failures only): they come back as ``RayTaskError`` and are reported as
:class:`~fleet.training.unit.UnitFailure` values while the other units go on.

Start-up overlaps the data load: :meth:`RayBackend.start` connects (``ray.init``) and starts one warm
:class:`~.ray_graph.StepWorker` per CPU slot in a background thread while the driver stages the bars. The
per-fold market fits (:meth:`RayBackend.map`) run on those actors through Ray's ``ActorPool``, and the run's task
graphs take them over, so no step waits for a fresh worker to import pandas and scikit-learn.

A lost node never hangs the run (:mod:`.ray_graph`, :mod:`.ray_nodes`): the driver looks at the nodes every few
seconds, shrinks its actor pool to what the surviving nodes hold, starts a unit whose actor or inputs were lost
again from its first step (once), and fails the units that no alive node can run within a bounded wait.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import Future

import pandas as pd
import ray
from ray.util import ActorPool

from fleet.errors import ConfigError
from fleet.ray_logs import divert_ray_logs

# fleet.training.unit / graph (and through them scikit-learn) are imported by the functions that use them, not
# here: an actor's worker process imports this package first, and an actor that trains a CNN or the MLP gate
# must load torch before scikit-learn (fleet.models._openmp).
from fleet.training.backends.ray_graph import MAX_RESTARTS, MAX_TASK_RETRIES, UNIT_RESTARTS  # noqa: E402 -- re-exported


#: Start threads of closed backends still undoing their start (``close(wait=False)``); ``start`` joins them first,
#: and so does the interpreter at exit (registered after ``import ray``, so before Ray's own exit hook runs).
_ABANDONED: list[threading.Thread] = []


@atexit.register
def _finish_abandoned() -> None:
    while _ABANDONED:
        _ABANDONED.pop().join()


class RayBackend:
    """Runs units' task graphs on pools of Ray actors (one graph step per actor call).

    Args:
        address: Ray address of a running cluster; None follows ``ray.init``: ``RAY_ADDRESS`` when
            set (inside ``ray job submit`` it names the job's cluster), else the latest cluster
            ``ray start`` began on this machine, else a new local Ray.
        num_cpus: CPUs each actor reserves (fractions allowed).
        num_gpus: GPUs (fractions allowed) every step's actor asks for; ignored with a warning when the
            cluster has no GPU. A CNN expert's steps ask for ``max(num_gpus, resources.cnn_num_gpus)``
            (:meth:`task_shape`), used only when the cluster has GPUs.
        train_fn: None or :func:`~fleet.training.unit.train_unit` (the step graph); tests pass a stand-in, then
            trained as one step per unit asking for ``TrainingUnit.num_gpus``.
    """

    def __init__(self, address: str | None = None, num_cpus: float = 1.0, num_gpus: float = 0.0,
                 train_fn=None):
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.train_fn = train_fn
        self._started = False
        self._starting: Future | None = None  # set by start(), with the thread and the event that ends it
        self._release: threading.Event | None = None
        self._owner: threading.Thread | None = None
        self._abandoned = False  # close(wait=False) came before the start was done: its thread undoes it
        self._warm: list = []  # idle StepWorkers of shape (num_cpus, 0) started by start(), until a run takes them
        self._torch_first = self._gpu_steps = False

    def start(self, torch_first: bool = False, gpu_steps: bool = False) -> None:
        """Connect and start the warm actors in a background thread; returns at once (see the module docstring).

        A later call that needs Ray (:meth:`describe`, :meth:`map`, :meth:`run`) waits for that thread and raises
        what it raised (e.g. :class:`~fleet.errors.ConfigError` for an unreachable ``address``).

        Args:
            torch_first: the run trains a torch network: the actors load torch before scikit-learn.
            gpu_steps: some steps may ask for a GPU (:func:`~fleet.models.factory.has_gpu_steps`): on a cluster
                with GPUs no actor is started ahead (the run splits its slots between GPU and CPU pools itself).
        """
        if self._starting is not None:
            return
        _finish_abandoned()  # an earlier backend's start still being undone must not shut down this one's Ray
        self._torch_first, self._gpu_steps = torch_first, gpu_steps
        if threading.current_thread() is threading.main_thread():
            # ray.init sets this handler only when called from the main thread: the same one, so that SIGTERM
            # (`ray job stop`, Kubernetes) still ends the run through SystemExit and its clean-up
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
        self._starting, self._release = Future(), threading.Event()
        self._owner = threading.Thread(target=self._own_ray, args=(self._starting, self._release),
                                       name="fleet-ray-start", daemon=True)
        self._owner.start()

    def _own_ray(self, starting: Future, release: threading.Event) -> None:
        """The start thread: connect, warm the actors, then stay alive until :meth:`close`. A local Ray's head
        processes are started with PR_SET_PDEATHSIG, which Linux fires when the *thread* that started them ends,
        so this thread must outlive them (close shuts Ray down first)."""
        try:
            self._connect_and_warm()
        except BaseException as err:  # noqa: BLE001 -- handed to the caller by _connect
            starting.set_exception(err)
        else:
            starting.set_result(None)
        release.wait()  # close() may have dropped its own references to both by now
        if self._abandoned:
            self._shut_down()

    def _connect_and_warm(self) -> None:
        self._connect_now()
        from fleet.training.backends.ray_graph import MAX_RESTARTS, MAX_TASK_RETRIES, StepWorker
        from fleet.training.backends.ray_nodes import node_slots

        if self._gpu_steps and ray.cluster_resources().get("GPU", 0) > 0:
            return
        slots = max(1, node_slots(ray.nodes(), (self.num_cpus, 0.0)))
        self._warm = [StepWorker.options(num_cpus=self.num_cpus, num_gpus=0, max_restarts=MAX_RESTARTS,
                                         max_task_retries=MAX_TASK_RETRIES).remote(self._torch_first)
                      for _ in range(slots)]

    def _connect(self) -> None:
        if self._starting is not None:
            self._starting.result()  # the start thread's own error, raised here
            return
        self._connect_now()

    def _connect_now(self) -> None:
        if ray.is_initialized():
            return
        from fleet.training.backends.ray_auth import check_cluster_token

        check_cluster_token(self.address or os.environ.get("RAY_ADDRESS"))  # one line if it wants a token
        divert_ray_logs()
        try:
            ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING,
                     log_to_driver=True)
        except ConnectionError as err:
            raise ConfigError(f"--address={self.address!r}: could not connect to a Ray cluster ({err})") from None
        divert_ray_logs()
        self._started = True

    def describe(self) -> str:
        self._connect()
        res = ray.cluster_resources()
        return (f"ray ({len(ray.nodes())} node(s), {res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU; "
                f"task graphs; each step asks for num_cpus={self.num_cpus:g}, num_gpus={self._gpus():g}, a CNN step "
                f"for resources.cnn_num_gpus when there are GPUs; "
                f"max_restarts={MAX_RESTARTS}, max_task_retries={MAX_TASK_RETRIES}, unit restarts on a lost "
                f"actor or node={UNIT_RESTARTS})")

    def nodes(self) -> int:
        """Alive nodes of the Ray cluster now."""
        self._connect()
        return sum(1 for node in ray.nodes() if node.get("Alive"))

    def _gpus(self) -> float:
        if self.num_gpus > 0 and ray.cluster_resources().get("GPU", 0) == 0:
            return 0.0
        return self.num_gpus

    def slots(self) -> int:
        """How many actors can run at once with the per-actor CPUs / GPUs asked for (>= 1), counted per node
        (:func:`~.ray_nodes.node_slots`: an actor lives on one node)."""
        from fleet.training.backends.ray_nodes import node_slots

        return max(1, node_slots(ray.nodes(), (self.num_cpus, self._gpus())))

    @staticmethod
    def unit_gpus(unit: "TrainingUnit", cluster_gpus: float) -> float:
        """GPUs to reserve for ``unit``: its planned request, or 0 when the cluster has no GPU."""
        return float(unit.num_gpus) if cluster_gpus > 0 else 0.0

    def task_shape(self, task, cluster_gpus: float) -> tuple[float, float]:
        """(num_cpus, num_gpus) a graph step asks for: a CNN expert's step (kind 'gpu') the larger of ``num_gpus``
        and the unit's ``resources.cnn_num_gpus``, a 'unit' step its unit's planned request, any other step
        ``num_gpus``; no GPU on a cluster without one."""
        if cluster_gpus <= 0:
            return (self.num_cpus, 0.0)
        if task.kind == "gpu":
            return (self.num_cpus, max(self.num_gpus, float(task.unit.config.resources.cnn_num_gpus)))
        if task.kind == "unit":
            return (self.num_cpus, self.unit_gpus(task.unit, cluster_gpus))
        return (self.num_cpus, self.num_gpus)

    def run(self, units: list["TrainingUnit"], frames: Mapping[str, pd.DataFrame], on_result, *, sink=None,
            follow=None) -> list:
        """Train every unit as a task graph (:mod:`.ray_graph`); returns (and reports through ``on_result``) a
        result or a failure per unit, in the order they finish.

        ``frames``: symbol -> bars, picklable; the run's :class:`~fleet.data.bars.BarReader` (every node must reach
        its cache: a URI, or a local path on a filesystem the nodes share).

        ``sink``: when given, the actor running a unit's last step saves the unit's result through it (the sink is
        pickled to the actor, which opens the run's filesystem itself; on a cluster every node needs the
        storage's credentials).

        ``follow``: the run's :class:`~fleet.training.output_stream.OutputStream`; its tasks run on the step
        actors as their units finish, and once every unit is done (see :mod:`.ray_graph`).

        Raises:
            ConfigError: the cluster has fewer CPUs than one actor asks for.
        """
        from fleet.models.factory import needs_torch
        from fleet.training.backends.ray_graph import GraphRun, warn_no_gpu
        from fleet.training.backends.ray_nodes import node_slots
        from fleet.training.unit import train_unit

        self._connect()
        res = ray.cluster_resources()
        cluster_gpus = float(res.get("GPU", 0))
        warn_no_gpu(self.num_gpus > 0 or any(u.num_gpus > 0 for u in units), cluster_gpus)
        if res.get("CPU", 0) < self.num_cpus:
            raise ConfigError(f"num_cpus={self.num_cpus:g} per unit but the Ray cluster has only "
                              f"{res.get('CPU', 0):g} CPU: lower --num-cpus")
        torch_first = any(needs_torch(u.config.model) for u in units)
        graph = GraphRun(units, frames, on_result, sink, shape_of=lambda t: self.task_shape(t, cluster_gpus),
                         cpu_slots=max(1, node_slots(ray.nodes(), (self.num_cpus, 0.0))), cluster_gpus=cluster_gpus,
                         train_fn=None if self.train_fn in (None, train_unit) else self.train_fn,
                         torch_first=torch_first, follow=follow, warm=self._take_warm(torch_first))
        return graph.run()

    def _take_warm(self, torch_first: bool) -> list:
        """The warm actors for a run (the run owns them from now on); none when they were started for another
        torch load order (they are killed)."""
        warm, self._warm = self._warm, []
        if torch_first != self._torch_first:
            for actor in warm:
                ray.kill(actor, no_restart=True)
            return []
        return warm

    def map(self, fn, items: list[dict], shared: dict) -> list:
        """``fn(**shared, **item)`` per item as Ray tasks (``num_cpus`` each, Ray's default retries on a worker's
        death), ``shared`` put once in the object store; results in the items' order. An error raised by ``fn``
        is raised here as itself (a :class:`~fleet.errors.FleetError` keeps its one-line message).
        """
        self._connect()
        shared_ref = ray.put(shared)
        refs: list = []
        try:
            if self._warm:  # the warm actors, before a run takes them (Ray's ActorPool keeps the items' order)
                return list(ActorPool(self._warm).map(lambda actor, item: actor.call.remote(fn, shared_ref, item),
                                                      items))
            task = ray.remote(num_cpus=self.num_cpus)(_apply)
            refs = [task.remote(fn, shared_ref, item) for item in items]
            return ray.get(refs)
        except ray.exceptions.RayTaskError as err:
            for ref in refs:
                ray.cancel(ref)
            raise (err.cause if err.cause is not None else err) from None

    def close(self, wait: bool = True) -> None:
        """Kill the warm actors no run took and shut down a Ray this backend started.

        Args:
            wait: False (the run failed, e.g. a refusal while the bars loaded): a start still under way is not
                waited for, so the error is reported at once; the start thread shuts down what it started as soon
                as ``ray.init`` returns, and the process, or the next :meth:`start`, waits for that.
        """
        if self._starting is not None and not wait and not self._starting.done():
            self._abandoned = True  # read by the start thread once released
            _ABANDONED.append(self._owner)
            self._release.set()
            self._starting = None
            return
        if self._starting is not None:
            try:
                self._starting.result()
            except Exception:  # noqa: BLE001 -- already raised to the caller by _connect, or the run failed before
                pass
        self._shut_down()
        if self._starting is not None:
            self._release.set()
            self._owner.join()
            self._starting = None

    def _shut_down(self) -> None:
        if ray.is_initialized():
            for actor in self._warm:
                ray.kill(actor, no_restart=True)
        self._warm = []
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started = False


def _apply(fn, shared: dict, item: dict):
    """One :meth:`RayBackend.map` task (``shared`` arrives resolved from its object reference)."""
    return fn(**shared, **item)
