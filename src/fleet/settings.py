"""Settings: the configuration fields that are also ``fleet train`` options and :func:`fleet.train` keywords.

A setting is declared once, as a field of a configuration section made with :func:`setting`: its type,
default and constraints are the field's, its help is the field's ``description`` (one sentence), and the
field's ``json_schema_extra["cli"]`` holds the rest (panel, unit, option spelling, longer notes for
docs/cli.md). Everything else is derived from the fields by :func:`settings`: the keyword -> dotted key
mapping (:data:`fleet.config.OVERRIDES`), the click options and panels of ``fleet train``
(:mod:`fleet.cli_options`), the keywords of :func:`fleet.train` and docs/cli.md (:mod:`fleet.cli_docs`).

This module reads field declarations only; it imports neither the configuration nor click.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_core import PydanticUndefined

from fleet.errors import ConfigError
from fleet.models.specs import closest_name

#: The panels of ``fleet train --help`` and the sections of docs/cli.md, in this order.
GROUPS = ("Data", "Validation", "Model", "Policy & costs", "Cluster", "Output")

_EXTRA = "cli"  # the key of a setting's metadata in its field's json_schema_extra
_CHOICES = re.compile(r"^\^\(([A-Za-z0-9_]+(?:\|[A-Za-z0-9_]+)*)\)\$$")  # a pattern "^(a|b|c)$"


def setting(default: Any = PydanticUndefined, *, help: str, group: str, unit: str | None = None,
            name: str | None = None, flags: tuple[str, ...] | None = None, unset: str | None = None,
            details: str | None = None, **field: Any) -> Any:
    """A configuration field that is also a ``fleet train`` option and a :func:`fleet.train` keyword.

    Args:
        default: the field's default (or pass ``default_factory=...``).
        help: one sentence, shown by ``--help`` and in docs/cli.md (no measured figures).
        group: the panel, one of :data:`GROUPS`.
        unit: the value's unit where it has one ("bars", "days", "bps" ...): the option's metavar.
        name: the keyword (and the option's parameter name); default: the field's name.
        flags: the option's spelling, e.g. ``("-o", "--out")``; default: ``--`` + name with ``_`` -> ``-``.
            An on/off field (bool) gets ``--x/--no-x`` from its first long flag.
        unset: what a ``None`` default means, in words ("inferred from the data").
        details: longer explanation for docs/cli.md only.
        **field: passed to :func:`pydantic.Field` (``ge``, ``pattern``, ``default_factory`` ...).

    Raises:
        ValueError: ``group`` is not one of :data:`GROUPS`.
    """
    if group not in GROUPS:
        raise ValueError(f"setting group={group!r}: expected one of {GROUPS}")
    meta = {"group": group, "unit": unit, "name": name, "flags": list(flags) if flags else None,
            "unset": unset, "details": details}
    extra = {_EXTRA: {k: v for k, v in meta.items() if v is not None}}
    return Field(default, description=help, json_schema_extra=extra, **field)


@dataclass(frozen=True)
class Setting:
    """One setting, read from its field.

    Attributes:
        name: keyword of :func:`fleet.train` and parameter name of the option (``embargo_bars``).
        key: dotted configuration key (``validation.embargo_bars``).
        flags: the option's flags (``("--embargo",)``; on/off settings list the ``--x`` flag only).
        group: panel (one of :data:`GROUPS`).
        help: one sentence.
        unit: unit of the value, or None.
        unset: what a None default means, or None.
        details: longer notes for docs/cli.md, or None.
        default: the field's default (a fresh copy for mutable defaults).
        kind: "flag" (on/off), "list" (comma-separated on the command line), "choice" or "value".
        choices: the accepted values of a "choice" setting (enum values, Literal args or a ``^(a|b)$`` pattern).
        value_type: int, float or str: what a "value" setting (or a list's items) is parsed as.
    """

    name: str
    key: str
    flags: tuple[str, ...]
    group: str
    help: str
    unit: str | None
    unset: str | None
    details: str | None
    default: Any
    kind: Literal["flag", "list", "choice", "value"]
    choices: tuple[str, ...] | None
    value_type: type


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _shape(annotation: Any, metadata: list) -> tuple[str, tuple[str, ...] | None, type]:
    """(kind, choices, value_type) of a field's annotation and constraints."""
    ann = _without_none(annotation)
    if ann is bool:
        return "flag", None, bool
    if typing.get_origin(ann) is list:
        (item,) = typing.get_args(ann) or (str,)
        return "list", None, item
    if isinstance(ann, type) and issubclass(ann, Enum):
        return "choice", tuple(str(e.value) for e in ann), str
    if typing.get_origin(ann) is Literal:
        return "choice", tuple(str(a) for a in typing.get_args(ann)), str
    pattern = next((m.pattern for m in metadata if isinstance(getattr(m, "pattern", None), str)), None)
    match = _CHOICES.match(pattern) if pattern else None
    if ann is str and match:
        return "choice", tuple(match.group(1).split("|")), str
    if ann in (int, float, str):
        return "value", None, ann
    raise TypeError(f"setting of type {annotation!r}: expected bool, int, float, str, an Enum, a Literal or a list")


def _walk(model: type[BaseModel], prefix: str):
    for field_name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _walk(ann, f"{prefix}{field_name}.")
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        meta = extra.get(_EXTRA)
        if isinstance(meta, dict):
            yield f"{prefix}{field_name}", field_name, info, meta


@cache
def settings(config_cls: type[BaseModel]) -> tuple[Setting, ...]:
    """Every setting of a configuration class, in field order (sections recursively).

    Raises:
        ValueError: two settings share a keyword or a flag.
    """
    found: list[Setting] = []
    for key, field_name, info, meta in _walk(config_cls, ""):
        name = meta.get("name") or field_name
        flags = tuple(meta.get("flags") or [f"--{name.replace('_', '-')}"])
        kind, choices, value_type = _shape(info.annotation, info.metadata)
        found.append(Setting(name=name, key=key, flags=flags, group=meta["group"], help=info.description or "",
                             unit=meta.get("unit"), unset=meta.get("unset"), details=meta.get("details"),
                             default=info.get_default(call_default_factory=True), kind=kind, choices=choices,
                             value_type=value_type))
    for label, values in (("keyword", [s.name for s in found]), ("flag", [f for s in found for f in s.flags])):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ValueError(f"{config_cls.__name__}: settings share the {label}(s) {twice}")
    return tuple(found)


class KeywordMap(Mapping[str, str]):
    """Keyword -> dotted key of every setting of the configuration class that ``config_cls()`` returns, read
    when used, so that a field declared with :func:`setting` is a keyword at once."""

    def __init__(self, config_cls: Callable[[], type[BaseModel]]):
        self._config_cls = config_cls

    def _map(self) -> dict[str, str]:
        return {s.name: s.key for s in settings(self._config_cls())}

    def __getitem__(self, keyword: str) -> str:
        return self._map()[keyword]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map())

    def __len__(self) -> int:
        return len(self._map())

    def __repr__(self) -> str:
        return f"KeywordMap({self._map()!r})"


def to_dotted(config_cls: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword values (``{"folds": 3, "symbols": "A,B"}``) as dotted overrides (``{"validation.folds": 3,
    "data.symbols": ["A", "B"]}``); a list setting takes a comma-separated string or a list; None is kept.

    Raises:
        ConfigError: an unknown keyword (names the closest known one).
    """
    known = {s.name: s for s in settings(config_cls)}
    out = {}
    for key, value in values.items():
        if key not in known:
            close = closest_name(key, known)
            hint = f"; did you mean {close!r}?" if close else ""
            raise ConfigError(f"unknown override {key}={value!r}{hint} (known: {', '.join(known)})")
        if known[key].kind == "list" and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()] or None
        out[known[key].key] = value
    return out


def by_group(items: tuple[Setting, ...]) -> dict[str, list[Setting]]:
    """Settings by panel, in the order of :data:`GROUPS` (empty panels left out)."""
    grouped = {g: [s for s in items if s.group == g] for g in GROUPS}
    return {g: rows for g, rows in grouped.items() if rows}


def default_text(item: Setting) -> str | None:
    """The default as ``--help`` and docs/cli.md show it: ``--x`` / ``--no-x`` for an on/off setting, a list
    comma-separated, a float in ``%g``; a None default shows ``item.unset`` (None when that is unset too)."""
    value = item.default
    if value is None:
        return item.unset
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        flag = item.flags[-1].lstrip("-")
        return f"--{flag}" if value else f"--no-{flag}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
