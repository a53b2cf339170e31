"""Configs are plain dataclasses filled from YAML and checked before anything heavy happens.

One helper, `from_dict`, turns a (YAML-loaded) mapping into a dataclass: unknown keys and wrong types
fail with a `ConfigError` that names the field and says what to write instead. Each config class adds
its own range checks in `__post_init__`, TRL-style, so a bad value never reaches a model.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value (or a run directory, see rundir.py) is wrong; the message names the field and the fix."""


def run_entry_point(prog: str, main: Callable[[], int | None]) -> int:
    """Run a command-line entry point: the kit's own errors become one line, `prog: message`, on stderr and exit
    status 2; any other exception is a bug and keeps its traceback. Use: ``sys.exit(run_entry_point("x", main))``.
    """
    try:
        return main() or 0
    except ConfigError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2


def setting(default: Any, help: str) -> Any:
    """A config field with its help beside it, TRL-style (`metadata={"help": ...}`): the one source of the
    field's documentation, which `toolr0-lite config` prints. A list, dict or dataclass default is built
    afresh for each config (pass the class for a nested section)."""
    if isinstance(default, type):
        return dataclasses.field(default_factory=default, metadata={"help": help})
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def from_dict(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass `cls` from a mapping, checking keys and types.

    `where` is the dotted path shown in errors, e.g. ``"spec"`` gives ``spec.domains: ...``.

    >>> from toolr0_lite.spec import SpecConfig
    >>> from_dict(SpecConfig, {"no_call_share": 0.2}, "spec").no_call_share
    0.2
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping of settings, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where or 'config'}: unknown key(s) {', '.join(map(str, unknown))}; valid keys are {', '.join(fields)}"
        )
    hints = typing.get_type_hints(cls)
    values = {name: _coerce(value, hints[name], f"{where}.{name}" if where else name) for name, value in data.items()}
    try:
        return cls(**values)
    except ConfigError as e:  # a section's own check names its fields; add the section's name
        if not where or str(e).startswith(f"{where}.") or str(e).startswith(f"{where}:"):
            raise
        raise ConfigError(f"{where}.{e}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check `value` against a type hint; build nested dataclasses; allow int where float is asked."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {_coerce(k, args[0], f"{where} key"): _coerce(v, args[1], f"{where}[{k}]") for k, v in value.items()}
    if hint is typing.Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and (number := _finite_float(value)) is not None:
        return number  # YAML 1.1 reads 2e-5 (no dot) as text, and learning rates are written so
    if hint is int and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)  # YAML mapping keys such as "2": keep them usable as integers
    if (hint in (int, float) and isinstance(value, bool)) or not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def _finite_float(text: str) -> float | None:
    """`text` as a finite float ("2e-5"), or None ("fast", "nan")."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def to_dict(config: Any) -> dict:
    """A dataclass config as plain data (tuples as lists), ready for YAML."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(x) for x in value]
    if isinstance(value, dict):
        return {k: _plain(x) for k, x in value.items()}
    return value


def parse_sets(pairs: list[str]) -> dict:
    """Command-line settings, `SECTION.KEY=VALUE` or `KEY=VALUE`, as the mapping a YAML file would give; each
    value is read as YAML, so numbers, booleans and lists keep their types. Validation happens afterwards, as
    for YAML.

    >>> parse_sets(["generator.steps=10", "spec.domains=[weather, travel]", "exemplars=false"])
    {'generator': {'steps': 10}, 'spec': {'domains': ['weather', 'travel']}, 'exemplars': False}
    """
    settings: dict = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        names = key.strip().split(".")
        if not equals or not all(names):
            raise ConfigError(f"--set {pair!r}: write KEY=VALUE, e.g. --set generator.steps=10")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(f"--set {pair!r}: {text!r} is not a value; quote a string, e.g. {key}='{text}'") from None
        section = settings
        for name in names[:-1]:
            section = section.setdefault(name, {})
            if not isinstance(section, dict):
                raise ConfigError(f"--set {pair!r}: {name} is set twice, once as a value and once as a section")
        section[names[-1]] = value
    return settings


def describe(config: Any, indent: str = "") -> str:
    """A config as YAML that loads back to the same config, each field followed by its help as a comment."""
    lines = []
    for f in dataclasses.fields(config):
        value, help = getattr(config, f.name), f.metadata.get("help", "")
        comment = f"  # {help}" if help else ""
        if dataclasses.is_dataclass(value):
            lines.append(f"{indent}{f.name}:{comment}")
            lines.append(describe(value, indent + "  "))
        else:
            text = yaml.safe_dump(_plain(value), default_flow_style=True, width=10**6).split("\n")[0]
            lines.append(f"{indent}{f.name}: {text}{comment}")
    return "\n".join(lines)


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file safely (never executes tags); a clear error for a missing or broken file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file; check the path")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e}); fix the syntax at the line shown") from None
