"""Checks of an asset registry file's contents (used by :meth:`fleet.data.registry.AssetRegistry.from_dict`).

A registry's ids never change once given; these checks refuse a file whose history was edited by hand.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fleet.errors import DataError


def _int_id(value) -> int | None:
    """``value`` as an int when it is an integer (not a bool), else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        return None
    return int(value)


def _checked_history(history, where: str) -> list[dict]:
    if not isinstance(history, list) or not all(
        isinstance(h, Mapping) and _int_id(h.get("version")) is not None and isinstance(h.get("added"), list)
        for h in history
    ):
        raise DataError(f"{where}: 'history' must be a list of {{version, added: [symbols]}} objects")
    return [dict(h) for h in history]


def _check_not_renumbered(registry, where: str) -> None:
    """Refuse a registry whose ids are not the versions' additions in order (edited by hand)."""
    history = registry.history
    versions = [int(h["version"]) for h in history]
    if not versions or versions != list(range(versions[0], versions[0] + len(versions))) \
            or versions[-1] != registry.version:
        raise DataError(
            f"{where}: 'history' versions {versions} do not count up to metadata.version={registry.version}; "
            "the file was edited by hand: restore it (every run directory keeps a copy, asset_registry.json)"
        )
    appended = [s for h in history for s in h["added"]]
    if appended != registry.symbols:
        first = next((i for i, (a, b) in enumerate(zip(appended, registry.symbols)) if a != b),
                     min(len(appended), len(registry)))
        has = registry.symbols[first] if first < len(registry) else "nothing"
        wanted = appended[first] if first < len(appended) else "nothing"
        raise DataError(
            f"{where}: asset ids were renumbered: id {first} is {has!r} but the registry's history assigned it "
            f"to {wanted!r}; ids are never changed once given (models trained with them would mean other "
            "assets): restore the file (every run directory keeps a copy, asset_registry.json)"
        )
