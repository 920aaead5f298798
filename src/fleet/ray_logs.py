"""Ray's own log records off fleet's console: they go to a file instead.

Ray's driver-side loggers (``ray`` and its children, e.g. Serve's ``ray.serve`` INFO lines and the token
authentication notice that ``ray.init`` logs on every local start) write to the terminal by default, between
fleet's progress lines. :func:`divert_ray_logs` hands every record of those loggers to one file and stops them
reaching the console; errors that matter to a user reach fleet as exceptions and are reported by fleet itself.
This module imports neither Ray nor anything of fleet, so both Ray users (the training backend and serving) can
call it before ``ray.init``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

#: Loggers whose records are diverted (a logger covers its children).
RAY_LOGGERS = ("ray", "ray.serve")  # Serve's logger has handlers of its own; the rest propagate to "ray"
#: Where the records go unless FLEET_RAY_LOG names another file.
DEFAULT_LOG = Path(tempfile.gettempdir()) / "fleet-ray-driver.log"


def ray_log_path() -> Path:
    """The file Ray's driver-side records go to: ``$FLEET_RAY_LOG``, else :data:`DEFAULT_LOG`."""
    return Path(os.environ.get("FLEET_RAY_LOG") or DEFAULT_LOG)


def divert_ray_logs(path: str | Path | None = None) -> Path:
    """Send the records of :data:`RAY_LOGGERS` to ``path`` (default: :func:`ray_log_path`) and off the console;
    returns the file. Safe to call again: handlers that Ray added since (``ray.init`` and ``serve.start``
    configure their loggers) are removed each time."""
    target = Path(path) if path else ray_log_path()
    for name in RAY_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if not getattr(handler, "_fleet", False):
                logger.removeHandler(handler)
        if not any(getattr(h, "_fleet", False) for h in logger.handlers):
            handler = logging.FileHandler(target, encoding="utf-8", delay=True)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            handler._fleet = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
        logger.propagate = False
    return target
