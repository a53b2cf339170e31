"""Configs are plain dataclasses filled from YAML and checked before anything heavy happens.

One helper, `from_dict`, turns a (YAML-loaded) mapping into a dataclass: unknown keys and wrong types
fail with a `ConfigError` that names the field and says what to write instead. Each config class adds
its own range checks in `__post_init__`, TRL-style, so a bad value never reaches a model.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value is wrong; the message names the field and the fix."""


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
    return cls(**values)


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
    if hint is int and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)  # YAML mapping keys such as "2": keep them usable as integers
    if (hint in (int, float) and isinstance(value, bool)) or not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def to_dict(config: Any) -> dict:
    """A dataclass config as plain data (tuples as lists), ready for YAML."""

    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(config))


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file safely (never executes tags); a clear error for a missing or broken file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file; check the path")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e}); fix the syntax at the line shown") from None
