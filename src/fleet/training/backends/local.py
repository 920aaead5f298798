"""In-process backend: a plain loop over :func:`train_unit`."""

from __future__ import annotations

import traceback
from collections.abc import Mapping

import pandas as pd

from fleet.training.unit import TrainingUnit, UnitFailure, UnitResult, train_unit


class LocalBackend:
    """Runs units one after another in this process (scikit-learn may still use threads).

    Args:
        train_fn: function trained per unit (:func:`train_unit`; tests pass a stand-in).
    """

    def __init__(self, train_fn=train_unit):
        self.train_fn = train_fn

    def start(self, torch_first: bool = False, gpu_steps: bool = False) -> None:
        """Nothing to start: the units run in this process."""

    def describe(self) -> str:
        return "local (in-process loop)"

    def nodes(self) -> int:
        """Machines the units run on: this one."""
        return 1

    def run(self, units: list[TrainingUnit], frames: Mapping[str, pd.DataFrame], on_result, *, sink=None,
            follow=None) -> list:
        """Train each unit on ``frames`` (symbol -> bars: the run's bar reader); an exception in a unit becomes a
        :class:`UnitFailure` (interrupts propagate).

        With ``sink``, each result is saved through it (``sink.save(unit_id, result)``) and what the save
        returns (the result without its prediction rows and model) is reported; a failed save is reported as
        that unit's failure.

        ``follow`` (the run's :class:`~fleet.training.output_stream.OutputStream`) is not used: one process trains
        one unit at a time, so an output task run between units would only move work, not overlap it; the driver
        runs them all after the units (:func:`fleet.training.artifacts.evaluate`).
        """
        outcomes: list[UnitResult | UnitFailure] = []
        for unit in units:
            try:
                outcome = self.train_fn(unit, frames)
                if sink is not None:
                    outcome = sink.save(outcome.unit_id, outcome)
            except Exception as err:  # an application error of this unit only: reported, the run goes on
                outcome = UnitFailure.of(unit, f"{type(err).__name__}: {err}", traceback.format_exc())
            on_result(outcome)
            outcomes.append(outcome)
        return outcomes

    def map(self, fn, items: list[dict], shared: dict) -> list:
        """``[fn(**shared, **item) for item in items]`` in this process
        (see :class:`~fleet.training.backends.Backend`)."""
        return [fn(**shared, **item) for item in items]

    def close(self, wait: bool = True) -> None:
        """Nothing to release."""
