"""Model paths as recipes write them, turned into directories a loader can open.

A recipe may name `builtin:tiny-teacher`, `builtin:tiny-student`,
`builtin:tiny-student2`, `builtin:tiny-rm` or `builtin:tiny-judge`: the
quickstart's tiny models, which thresher builds on first use (seeded, a few
minutes on a CPU; the judge a few more, only when asked for) and caches under
`$THRESHER_CACHE` (default `~/.cache/thresher`). Every stage calls
`resolve_model_path` before it loads a model; any other path (a directory, a
hub id, a served model name) comes back unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from thresher.config import BUILTIN_PREFIX
from thresher.errors import UserError

BUILTINS = {
    "tiny-teacher": "teacher", "tiny-student": "student", "tiny-student2": "student2", "tiny-rm": "rm",
    "tiny-judge": "judge",
}
"""`builtin:<name>` -> the quickstart model it stands for."""


def is_builtin(path: str) -> bool:
    return isinstance(path, str) and path.startswith(BUILTIN_PREFIX)


def resolve_model_path(path: str) -> str:
    """The directory for `builtin:NAME` (building it if needed); any other path unchanged."""
    if not is_builtin(path):
        return path
    name = path[len(BUILTIN_PREFIX):]
    if name not in BUILTINS:
        known = ", ".join(BUILTIN_PREFIX + n for n in BUILTINS)
        raise UserError(f"unknown built-in model {path!r} (known: {known})")
    if BUILTINS[name] == "judge":
        from thresher.quickstart.judge_build import build_judge

        return str(build_judge())
    from thresher.quickstart.build import build_models

    return str(build_models().path(BUILTINS[name]))


def resolve_builtins(value: Any) -> Any:
    """A copy of `value` (typed judge args, nested sub-judge configs) with every `builtin:` string resolved."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: resolve_builtins(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    if isinstance(value, str):
        return resolve_model_path(value) if is_builtin(value) else value
    if isinstance(value, dict):
        return {k: resolve_builtins(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_builtins(v) for v in value]
    return value
