"""``fleet train``'s options with their ``[default: ...]`` read from :class:`~fleet.config.FleetConfig`.

The CLI holds no defaults of its own: an option left unset keeps the fleet spec's value or the
field's default, and the help text shows that default, looked up through
:data:`fleet.config.OVERRIDES` (option keyword -> dotted field) when ``--help`` is built.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import click

from fleet.config import OVERRIDES, FleetConfig
from fleet.models.specs import unknown_name


def config_default(dotted: str) -> Any:
    """The default of a dotted :class:`FleetConfig` field (``"validation.folds"`` -> 5).

    Raises:
        KeyError: no such field.
    """
    model = FleetConfig
    *sections, leaf = dotted.split(".")
    for name in sections:
        model = model.model_fields[name].annotation
    return model.model_fields[leaf].get_default(call_default_factory=True)


def default_text(key: str, *, flag: str | None = None, none: str | None = None) -> str:
    """``[default: ...]`` for the option ``key`` (a key of :data:`OVERRIDES`).

    Args:
        flag: for an on/off option, its name: the default shows as ``--flag`` or ``--no-flag``.
        none: what happens when the field's default is None (e.g. "inferred from the data"); without
            it, a None default shows nothing.
    """
    value = config_default(OVERRIDES[key])
    if value is None:
        return f"  [default: {none}]" if none else ""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        text = (f"--{flag}" if value else f"--no-{flag}") if flag else ("on" if value else "off")
    elif isinstance(value, list):
        text = ",".join(map(str, value))
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    return f"  [default: {text}]"


def config_option(*decls: str, key: str, help: str, none: str | None = None, **kwargs):
    """A click option for the FleetConfig field ``OVERRIDES[key]``; its help ends with the field's default.

    For an on/off option (``--x/--no-x``) the default shows as the flag that is on by default.
    """
    flag = decls[0].split("/")[0].lstrip("-") if "/" in decls[0] else None
    return click.option(*decls, help=help + default_text(key, flag=flag, none=none), **kwargs)


class NameChoice(click.Choice):
    """A choice among the names of a table (gates): an unknown name is refused with the closest known one,
    ``unknown gate 'selct' (did you mean 'select'?)`` (exit 2, as every usage error)."""

    def __init__(self, kind: str, names) -> None:
        super().__init__(list(names))
        self.kind = kind

    def convert(self, value, param, ctx):
        if value in self.choices:
            return value
        self.fail(unknown_name(self.kind, value, self.choices), param, ctx)
