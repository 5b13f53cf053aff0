"""Turn plain JSON/YAML data into typed dataclasses, with errors that name the key path.

One small mechanism serves both recipes (`config.py`) and records
(`records.py`): data is parsed once into typed objects at the edge, so no
stage reads a loose dict by attribute name. Every error carries the path of
the value at fault (`judges[1].args.timeout`), which is what a user needs to
fix a 200-line recipe or a 20k-line JSONL file.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from thresher.errors import ConfigError

_HINTS: dict[type, dict[str, Any]] = {}


def join(path: str, key: str | int) -> str:
    """`join("judges", 1) == "judges[1]"`, `join("judges[1]", "args") == "judges[1].args"`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def from_data(tp: Any, value: Any, path: str = "") -> Any:
    """Check `value` against the annotation `tp` and build it; raise ConfigError(path, why)."""
    if tp is Any:
        return value
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp, value, path)
    if origin is Union or origin is types.UnionType:
        return _union(tp, value, path)
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            raise ConfigError(path, f"{value!r} is not one of {choices}")
        return value
    if origin in (list, typing.Sequence, tuple) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(path, f"expected a list, got {type_name(value)}")
        args = get_args(tp)
        item = args[0] if args else Any
        out = [from_data(item, v, join(path, i)) for i, v in enumerate(value)]
        return tuple(out) if origin is tuple or tp is tuple else out
    if origin in (dict, typing.Mapping) or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a mapping, got {type_name(value)}")
        args = get_args(tp)
        vt = args[1] if args else Any
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(path, f"keys must be strings, got {k!r}")
            out[k] = from_data(vt, v, join(path, k))
        return out
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true/false, got {type_name(value)} {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected an integer, got {type_name(value)} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(path, f"expected a number, got {type_name(value)} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {type_name(value)} {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, str | Path):
            raise ConfigError(path, f"expected a path string, got {type_name(value)}")
        return Path(value)
    if tp is type(None):
        if value is not None:
            raise ConfigError(path, f"expected null, got {type_name(value)}")
        return None
    raise TypeError(f"thresher.typed cannot parse annotation {tp!r} at {path or '<root>'}")


def _union(tp: Any, value: Any, path: str) -> Any:
    args = get_args(tp)
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(path, "must not be null")
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return from_data(arg, value, path)
        except ConfigError as e:
            errors.append(e)
    if len(errors) == 1:
        raise errors[0]
    names = " or ".join(getattr(a, "__name__", str(a)) for a in args if a is not type(None))
    raise ConfigError(path, f"expected {names}, got {type_name(value)} {value!r}")


def _dataclass(cls: type, value: Any, path: str) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ConfigError(path, f"expected a mapping for {cls.__name__}, got {type_name(value)}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in value:
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(join(path, str(key)), f"unknown key (expected one of: {known})")
    kwargs = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = from_data(hints[name], value[name], join(path, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(join(path, name), "missing required key")
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(join(path, e.key) if e.key else path, e.reason) from None
    except ValueError as e:
        raise ConfigError(path, str(e)) from None


def to_data(obj: Any) -> Any:
    """The inverse of `from_data`: dataclasses to plain dicts, Paths to strings."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_data(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_data(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def check_call_args(fn: Any, args: dict[str, Any], path: str) -> None:
    """Fail with the key path if `args` names a parameter `fn` does not take or misses a required one.

    Builders in a registry (`JUDGES["rm"]`) are plain functions; a recipe passes
    their keyword arguments. Checking them here means a typo in a recipe fails
    at load time, not an hour into a run.
    """
    sig = inspect.signature(fn)
    params = sig.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    for key in args:
        if key not in params:
            known = ", ".join(n for n in params if not n.startswith("_"))
            raise ConfigError(join(path, key), f"unknown argument for {fn.__name__} (expected one of: {known})")
    for name, p in params.items():
        if p.default is inspect.Parameter.empty and p.kind in (
            inspect.Parameter.KEYWORD_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ) and name not in args:
            raise ConfigError(join(path, name), f"missing required argument of {fn.__name__}")
