"""``fleet train``'s options and panels, generated from the settings of :class:`~fleet.config.FleetConfig`.

Each setting (a field declared with :func:`fleet.settings.setting`) becomes one click option: its flags,
type or choices, unit (the metavar) and help come from the field, and the help ends with the field's
``[default: ...]``. The CLI holds no defaults of its own: an option left unset is None, so it keeps the fleet
spec's value or the field's default. Options are shown in the panels of :data:`fleet.settings.GROUPS`
(rich-click, in its plain "slim" theme so that the help stays greppable).
"""

from __future__ import annotations

import click
import rich_click
from rich_click import RichCommand, RichOptionPanel

import fleet.config as _config
from fleet.cli_output import FleetCommand
from fleet.models.specs import unknown_name
from fleet.settings import Setting, by_group, default_text, settings

#: Panel of the options that are not configuration settings (``--config``, ``--resume``), shown first.
RUN_PANEL = "Run"
#: The output options every command takes (:mod:`fleet.cli_output`), shown in the "Output" panel.
_OUTPUT_FLAGS = ["--quiet", "--verbose", "--json"]
_HELP_CONFIG = rich_click.RichHelpConfiguration(theme="default-slim", max_width=100, text_paragraph_linebreaks="\n\n")


class NameChoice(click.Choice):
    """A choice among known names: an unknown one is refused with the closest known one,
    ``unknown gate 'selct' (did you mean 'select'?)`` (exit 2, as every usage error)."""

    def __init__(self, kind: str, names) -> None:
        super().__init__(list(names))
        self.kind = kind

    def convert(self, value, param, ctx):
        if value in self.choices:
            return value
        self.fail(unknown_name(self.kind, value, self.choices), param, ctx)


def _click_type(item: Setting) -> click.ParamType:
    if item.kind == "choice":
        return NameChoice(item.name.replace("_", " "), item.choices or ())
    if item.kind == "value":
        return {int: click.INT, float: click.FLOAT}.get(item.value_type, click.STRING)
    return click.STRING  # a list: comma-separated, split by fleet.config.dotted_overrides


def setting_option(item: Setting) -> click.Option:
    """The click option of one setting: no default of its own (unset: None, which keeps the spec's value), help
    ending with the field's ``[default: ...]``, the unit as metavar; an on/off setting is ``--x/--no-x``."""
    shown = default_text(item)
    help_text = item.help + (f"  [default: {shown}]" if shown else "")
    if item.kind == "flag":
        long = item.flags[-1]
        decls = [*item.flags[:-1], f"{long}/--no-{long.lstrip('-')}", item.name]
        return click.Option(decls, default=None, help=help_text)
    metavar = item.unit.upper() if item.unit else None
    return click.Option([*item.flags, item.name], type=_click_type(item), metavar=metavar, help=help_text)


_GENERATED: dict[type, tuple[list[click.Option], list[RichOptionPanel]]] = {}


def _generated(config_cls) -> tuple[list[click.Option], list[RichOptionPanel]]:
    """The options and panels of a configuration class's settings (made once per class)."""
    cached = _GENERATED.get(config_cls)
    if cached is None:
        items = settings(config_cls)
        options = [setting_option(s) for s in items]
        panels = [RichOptionPanel(RUN_PANEL, options=["--config", "--resume", "--help"])]
        for group, rows in by_group(items).items():
            extra = _OUTPUT_FLAGS if group == "Output" else []
            panels.append(RichOptionPanel(group, options=[s.name for s in rows] + extra))
        cached = _GENERATED[config_cls] = (options, panels)
    return cached


class ConfigCommand(FleetCommand, RichCommand):
    """A :class:`~fleet.cli_output.FleetCommand` whose options are its own (``--config``, ``--resume`` ...) plus
    one per setting of the current :class:`fleet.config.FleetConfig`, shown in panels.

    The settings' values reach the callback as one argument, ``overrides``: the dotted overrides of
    :func:`fleet.config.dotted_overrides` (``{"validation.folds": 3, "data.path": None, ...}``; None = unset).
    The options are read from the configuration class when used, so a field added to it is an option at once.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("context_settings", {}).setdefault("rich_help_config", _HELP_CONFIG)
        super().__init__(*args, **kwargs)

    @property
    def params(self) -> list[click.Parameter]:
        # One list per configuration class: click appends to and pops from it (the help option).
        cls = _config.FleetConfig
        if self._params_for is not cls:
            own = self._own_params
            self._params, self._params_for = [*own, *_generated(cls)[0]], cls
        return self._params

    @params.setter
    def params(self, value: list[click.Parameter]) -> None:
        self._own_params, self._params_for = list(value), None

    @property
    def panels(self) -> list[RichOptionPanel]:
        return [*self._own_panels, *_generated(_config.FleetConfig)[1]]

    @panels.setter
    def panels(self, value) -> None:
        self._own_panels = list(value or [])

    def invoke(self, ctx: click.Context):
        names = {s.name for s in settings(_config.FleetConfig)}
        values = {k: ctx.params.pop(k) for k in list(ctx.params) if k in names}
        ctx.params["overrides"] = _config.dotted_overrides(values)
        return super().invoke(ctx)

