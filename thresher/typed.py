"""Turn plain JSON/YAML data into typed dataclasses, with errors that name the key path.

One small mechanism serves recipes (`config.py`), the arguments of every
plug point (judges, selection policies, sampler backends, prompt sources,
export, train and eval options), command-line flags and records
(`records.py`): data is parsed once into typed objects at the edge, so no
stage reads a loose dict by attribute name. Every error carries the path of
the value at fault (`judges[1].args.timeout`), which is what a user needs to
fix a 200-line recipe or a 20k-line JSONL file.

Ranges live in the annotations (`workers: PositiveInt = 2`,
`Annotated[float, between(0, 1)]`), so a builder's signature or a config
dataclass states them once; `from_data` checks them when parsing and
`check_fields` when Python code builds a config directly. A builder's typed
signature is turned into a dataclass by `args_type`, so a recipe's `args:`
block is checked the same way whether a plug point wrote an `Args` class or
only a signature.
"""

from __future__ import annotations

import argparse
import collections.abc
import copy
import dataclasses
import inspect
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from thresher.errors import ConfigError, UserError

_HINTS: dict[Any, dict[str, Any]] = {}
_COLLECTIONS = (collections.abc.Sequence, collections.abc.Mapping)


def join(path: str, key: str | int) -> str:
    """`join("judges", 1) == "judges[1]"`, `join("judges[1]", "args") == "judges[1].args"`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)


def _hints(obj: Any) -> dict[str, Any]:
    if obj not in _HINTS:
        _HINTS[obj] = get_type_hints(obj, include_extras=True)
    return _HINTS[obj]


# ------------------------------------------------------------------------------------------- ranges


@dataclasses.dataclass(frozen=True, slots=True)
class Range:
    """Bounds on a number, written into an annotation: `Annotated[int, at_least(1)]`."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {left}{_show(self.low)}, {_show(self.high)}{right}"
        if self.low is not None:
            return f"greater than {_show(self.low)}" if self.low_open else f"at least {_show(self.low)}"
        return f"less than {_show(self.high)}" if self.high_open else f"at most {_show(self.high)}"

    def problem(self, value: Any) -> str | None:
        """Why `value` is out of range, or None (None and non-numbers are the type check's business)."""
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            return None
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        return f"must be {self.describe()}, got {_show(value)}" if too_low or too_high else None


def at_least(low: float) -> Range:
    return Range(low=low)


def greater_than(low: float) -> Range:
    return Range(low=low, low_open=True)


def at_most(high: float) -> Range:
    return Range(high=high)


def between(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Range:
    return Range(low, high, low_open, high_open)


PositiveInt = Annotated[int, at_least(1)]
NonNegativeInt = Annotated[int, at_least(0)]
PositiveFloat = Annotated[float, greater_than(0)]
NonNegativeFloat = Annotated[float, at_least(0)]
Fraction = Annotated[float, between(0, 1)]
"""A share or probability: a number in [0, 1]."""


def _ranges(tp: Any) -> list[Range]:
    """The Range bounds an annotation carries (also inside `X | None`)."""
    origin = get_origin(tp)
    if origin is Annotated:
        return [m for m in tp.__metadata__ if isinstance(m, Range)] + _ranges(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [r for a in get_args(tp) for r in _ranges(a)]
    return []


def check_fields(obj: Any) -> None:
    """Check a dataclass's values against the ranges in its annotations; call it from `__post_init__`.

    `from_data` checks ranges while parsing; this covers configs that Python
    code (a CLI command, a notebook) builds directly.
    """
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        for r in _ranges(hints.get(f.name, Any)):
            why = r.problem(getattr(obj, f.name))
            if why:
                raise ConfigError(f.name, why)


# ------------------------------------------------------------------------------------------- parsing


def from_data(tp: Any, value: Any, path: str = "") -> Any:
    """Check `value` against the annotation `tp` and build it; raise ConfigError(path, why)."""
    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        out = from_data(base, value, path)
        for m in meta:
            why = m.problem(out) if isinstance(m, Range) else None
            if why:
                raise ConfigError(path, why)
        return out
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp, value, path)
    if origin is Union or origin is types.UnionType:
        return _union(tp, value, path)
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            raise ConfigError(path, f"{value!r} is not one of {choices}")
        return value
    if origin in (list, tuple, collections.abc.Sequence) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(path, f"expected a list, got {type_name(value)}")
        args = get_args(tp)
        item = args[0] if args else Any
        out = [from_data(item, v, join(path, i)) for i, v in enumerate(value)]
        return tuple(out) if origin is tuple or tp is tuple else out
    if origin in (dict, collections.abc.Mapping) or tp is dict:
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


def parsable(tp: Any) -> bool:
    """Whether `from_data` reads this annotation (a Python object such as a sampler is not data)."""
    if tp is Any or tp in (bool, int, float, str, Path, type(None), list, tuple, dict):
        return True
    if dataclasses.is_dataclass(tp):
        return True
    origin = get_origin(tp)
    if origin is Annotated:
        return parsable(get_args(tp)[0])
    if origin is Literal:
        return True
    if origin is Union or origin is types.UnionType or origin in (list, tuple, dict, *_COLLECTIONS):
        return all(parsable(a) for a in get_args(tp) if a is not Ellipsis)
    return False


def _recipe_part(tp: Any) -> Any:
    """The part of an annotation a recipe can give: `Literal["auto"] | Sandbox` -> `Literal["auto"]`."""
    if parsable(tp):
        return tp
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        kept = [a for a in get_args(tp) if parsable(a)]
        if kept and any(a is not type(None) for a in kept):
            return Union[tuple(kept)]  # noqa: UP007 (a runtime-built union)
    return None


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
    names = " or ".join(_type_label(a) for a in args if a is not type(None))
    raise ConfigError(path, f"expected {names}, got {type_name(value)} {value!r}")


def _type_label(tp: Any) -> str:
    if get_origin(tp) is Annotated:
        return _type_label(get_args(tp)[0])
    if get_origin(tp) is Literal:
        return " or ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp))


_PLAIN: dict[type, dict[str, tuple[type, ...]] | None] = {}


def _plain_kinds(tp: Any) -> tuple[type, ...] | None:
    """Python types that are a complete check of `tp`, or None when a value needs the full parser."""
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        out: list[type] = []
        for arg in get_args(tp):
            kinds = _plain_kinds(arg)
            if kinds is None:
                return None
            out += kinds
        return tuple(out)
    if tp in (str, int, bool, type(None)):
        return (tp,)
    if tp is float:
        return (float, int)
    if origin in (list, dict) and all(a in (Any, str) for a in get_args(tp)) and Any in get_args(tp):
        return (origin,)
    return None


def _plain(cls: type) -> dict[str, tuple[type, ...]] | None:
    """Field -> accepted Python types, for a dataclass whose fields all have plain types (records)."""
    if cls not in _PLAIN:
        hints = _hints(cls)
        table: dict[str, tuple[type, ...]] | None = {}
        for f in dataclasses.fields(cls):
            kinds = _plain_kinds(hints[f.name]) if f.init else ()
            if kinds is None:
                table = None
                break
            if f.init:
                table[f.name] = kinds  # type: ignore[index]
        _PLAIN[cls] = table
    return _PLAIN[cls]


def _fast(cls: type, value: dict[str, Any]) -> Any:
    """Build a plain-field dataclass by checking Python types only (records by the million); None if unsure."""
    table = _plain(cls)
    if table is None or not value.keys() <= table.keys():
        return None
    kwargs = {}
    for name, v in value.items():
        kinds = table[name]
        if (isinstance(v, bool) and bool not in kinds) or not isinstance(v, kinds):
            return None
        kwargs[name] = float(v) if type(v) is int and float in kinds and int not in kinds else v
    try:
        return cls(**kwargs)
    except (ValueError, TypeError, AttributeError, UserError):
        return None  # the full parser below says exactly what is wrong


def _dataclass(cls: type, value: Any, path: str) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ConfigError(path, f"expected a mapping for {cls.__name__}, got {type_name(value)}")
    fast = _fast(cls, value)
    if fast is not None:
        return fast
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in value:
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
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


# ------------------------------------------------------------------------------------------- builder arguments

_ARGS_TYPES: dict[tuple[Any, tuple[str, ...]], type] = {}


def args_type(builder: Callable[..., Any], exclude: tuple[str, ...] = ()) -> type:
    """The dataclass of the keyword arguments a recipe may give `builder`.

    A builder with an `Args` attribute (a dataclass) declares it outright;
    otherwise it is made from the typed signature: every parameter whose
    annotation is data (not a Python object such as a sampler), except
    `exclude` and `_private` ones, with the signature's defaults and the
    ranges in its annotations. A builder may carry `check_args(args)` for
    rules between arguments (as many weights as judges); it runs when the
    arguments are parsed, so a recipe fails at load time, not at build time.
    """
    declared = getattr(builder, "Args", None)
    if declared is not None:
        return declared
    key = (builder, exclude)
    if key not in _ARGS_TYPES:
        _ARGS_TYPES[key] = _signature_type(builder, exclude)
    return _ARGS_TYPES[key]


def _signature_type(builder: Callable[..., Any], exclude: tuple[str, ...]) -> type:
    hints = _hints(builder)
    specs: list[tuple[str, Any, Any]] = []
    for name, p in inspect.signature(builder).parameters.items():
        if name.startswith("_") or name in exclude or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        tp = _recipe_part(hints.get(name, Any))
        if tp is None:
            continue
        if p.default is inspect.Parameter.empty:
            specs.append((name, tp, dataclasses.field()))
        elif isinstance(p.default, list | dict | set):
            specs.append((name, tp, dataclasses.field(default_factory=lambda d=p.default: copy.deepcopy(d))))
        else:
            specs.append((name, tp, dataclasses.field(default=p.default)))
    check = getattr(builder, "check_args", None)

    def __post_init__(self: Any) -> None:
        check_fields(self)
        if check is not None:
            check(self)

    title = "".join(part.title() for part in builder.__name__.strip("_").split("_")) + "Args"
    cls = dataclasses.make_dataclass(
        title, specs, kw_only=True, namespace={"__post_init__": __post_init__, "__module__": builder.__module__}
    )
    cls.__doc__ = f"Arguments of `{builder.__module__}.{builder.__name__}`, from its signature."
    _HINTS[cls] = {name: tp for name, tp, _ in specs}
    return cls


def parse_args(builder: Callable[..., Any], data: Any, path: str, exclude: tuple[str, ...] = ()) -> Any:
    """A recipe's `args:` block for `builder`, parsed into its typed arguments (already typed: returned as is)."""
    return from_data(args_type(builder, exclude), {} if data is None else data, path)


def call_args(args: Any) -> dict[str, Any]:
    """Typed arguments as keyword arguments for their builder (nested configs stay typed)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(args)}


def takes(args_cls: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: the builder's arguments are the dataclass `args_cls` (not its own signature)."""

    def attach(builder: Callable[..., Any]) -> Callable[..., Any]:
        builder.Args = args_cls  # type: ignore[attr-defined]
        return builder

    return attach


def checks(check: Callable[[Any], None]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: `check(args)` runs on a builder's parsed arguments (rules between arguments)."""

    def attach(builder: Callable[..., Any]) -> Callable[..., Any]:
        builder.check_args = check  # type: ignore[attr-defined]
        return builder

    return attach


# ------------------------------------------------------------------------------------------- command-line flags


def flag_type(tp: Any) -> Callable[[str], Any]:
    """An argparse `type=` that reads a flag as a value of annotation `tp`, ranges included.

    `--chunk-size 0` then fails at once with `argument --chunk-size: must be
    at least 1, got 0` (exit code 2), before anything is loaded or written.
    """
    base = get_args(tp)[0] if get_origin(tp) is Annotated else tp

    def parse(text: str) -> Any:
        try:
            value: Any = base(text) if base in (int, float) else text
        except ValueError:
            kind = "an integer" if base is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        try:
            return from_data(tp, value, "")
        except ConfigError as e:
            raise argparse.ArgumentTypeError(e.reason) from None

    parse.__name__ = _type_label(base)
    return parse
