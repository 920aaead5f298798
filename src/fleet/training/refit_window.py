"""The refit's window (``--refit``) and what a unit's model states as ``trained_until``: plain functions of a
:class:`~fleet.evaluation.splits.Fold`, apart from the refit's planning (:mod:`fleet.training.refit`) so that the
task graph can read them without importing the planner (which imports the unit, which imports the graph).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from fleet.evaluation.splits import Fold
from fleet.store.layout import is_refit_unit

#: A training window ends before its ``train_end``; the refit's includes its last bar, so it ends just after it.
_AFTER = pd.Timedelta(1, "ns")


def refit_window(folds: list[Fold], timeline: pd.DatetimeIndex, timeline_end: pd.Timestamp) -> Fold:
    """The refit's window: training rows from the first fold's start up to and including the timeline's last bar
    at or before ``timeline_end`` (labels end there at the latest), an empty test block after it.

    Args:
        folds: the walk-forward folds (the refit's ``index`` is one past the last one's).
        timeline: every bar time of the run (union over assets, UTC), hold-out included.
        timeline_end: the last timestamp before the hold-out (the data's end without one).

    Raises:
        ValueError: no bar at or before ``timeline_end`` (the walk-forward would have failed first).
    """
    inside = timeline[timeline <= timeline_end]
    if not len(inside):
        raise ValueError(f"refit: no bar at or before {timeline_end}")
    end = inside.max() + _AFTER
    return Fold(index=folds[-1].index + 1, train_start=folds[0].train_start, train_end=end, test_start=end,
                test_end=end)


def last_bar(window: Fold) -> pd.Timestamp:
    """The last bar time inside the refit window (``train_end`` is just after it)."""
    return window.train_end - _AFTER


def trained_until(unit, frames: Mapping[str, pd.DataFrame], symbols) -> pd.Timestamp:
    """What a unit's model (``unit``: a :class:`~fleet.training.unit.TrainingUnit`) states as ``trained_until``:
    for a fold's unit its training window's end (exclusive); for a refit unit the last bar of ``symbols`` (its
    trained assets) inside the refit window, i.e. the newest price its training labels read."""
    if not is_refit_unit(unit.unit_id):
        return unit.fold.train_end
    ends = [idx[idx < unit.fold.train_end].max() for s in symbols if len(idx := frames[s].index)]
    return max(ends) if ends else last_bar(unit.fold)
