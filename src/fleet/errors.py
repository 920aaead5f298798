"""Errors a user can cause, reported by the CLI in one line (no traceback).

Every message names the file / field / symbol concerned, what was wrong and what
was expected, so the user can fix the input without reading the code.
"""

from __future__ import annotations


class FleetError(Exception):
    """Base class of every user-facing error; the CLI prints ``str(err)`` and exits with ``exit_code``."""

    exit_code = 2


class DataError(FleetError):
    """Input data is unusable: names the file, column and offending rows."""


class ConfigError(FleetError):
    """A configuration value (YAML field or CLI option) is invalid."""


class UnknownSymbolError(FleetError):
    """A symbol is not in the asset registry / the loaded panel."""


class FetchError(FleetError):
    """A download failed or an archive is bad: names the URL / file and what was wrong."""


class RequestError(FleetError):
    """A prediction request is unusable (HTTP 422): names the field, the value and what was expected.

    Attributes:
        field: dotted / indexed location of the offending input, e.g. ``"candles[3].timestamp"``.
    """

    def __init__(self, message: str, *, field: str = "body"):
        super().__init__(message)
        self.field = field


class InsufficientHistoryError(RequestError):
    """Too few candles to compute the features of the last one (HTTP 422); says how many are needed."""


class RunDirectoryError(FleetError):
    """A run directory cannot be served: names the missing or unreadable file."""


class UnitsFailedError(FleetError):
    """Some training units failed; the others' results are kept in the run's staging directory.

    The CLI exits with code 3. Nothing is written at ``--out``: the run stays resumable with
    ``fleet train --resume STAGING``, which trains only the failed units.

    Attributes:
        failures: the failed units (``UnitFailure`` values). staging: the staging directory.
    """

    exit_code = 3

    def __init__(self, message: str, *, failures: list, staging):
        super().__init__(message)
        self.failures = failures
        self.staging = staging


class FleetWarning(UserWarning):
    """Something was accepted but the user should know (e.g. naive timestamps read as UTC)."""


def describe_rows(positions, limit: int = 5) -> str:
    """Format offending row positions / labels as ``"3 rows (e.g. 4, 17, 20)"``.

    Args:
        positions: iterable of row numbers or timestamps that broke a rule.
        limit: how many examples to show.
    """
    items = list(positions)
    shown = ", ".join(str(p) for p in items[:limit])
    more = "" if len(items) <= limit else ", ..."
    noun = "row" if len(items) == 1 else "rows"
    return f"{len(items)} {noun} (e.g. {shown}{more})"
