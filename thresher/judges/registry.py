"""The judge registry: recipe `type:` -> a plain builder function, and `build_judge` for configs.

A recipe names a builder and its keyword arguments:

    judges:
      - type: math
        args: {timeout: 5}
      - type: gate
        name: verified_rm
        args:
          verifier: {type: code}
          ranker: {type: rm, args: {model: ./my-rm}}

`build_judge` checks the arguments against the builder's signature and
annotations before building anything, so a typo (`timout: 5`) or a wrong type
(`mode: best`) fails at load time with its key path, not an hour into a run.
Combinators take sub-judge configs and build them with the same checks.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any, Literal

from thresher.config import JudgeConfig
from thresher.errors import ConfigError
from thresher.judges.base import Judge
from thresher.judges.code import code_verifier
from thresher.judges.llm_judge import llm_judge
from thresher.judges.math import math_verifier
from thresher.judges.reward_model import reward_model
from thresher.typed import check_call_args, from_data, join


def gate(
    verifier: dict[str, Any] | JudgeConfig,
    ranker: dict[str, Any] | JudgeConfig,
    name: str = "gate",
    _path: str = "args",
) -> Judge:
    """The verifier decides correctness; the ranker scores only the candidates that pass."""
    from thresher.judges.combinators import GateJudge

    return GateJudge(_sub(verifier, join(_path, "verifier")), _sub(ranker, join(_path, "ranker")), name)


def ensemble(
    judges: list[dict[str, Any] | JudgeConfig],
    weights: list[float] | None = None,
    normalize: Literal["none", "minmax", "rank"] = "none",
    name: str = "ensemble",
    _path: str = "args",
) -> Judge:
    """A weighted mean of the sub-judges' scores (normalised per prompt first, if asked)."""
    from thresher.judges.combinators import EnsembleJudge

    built = _subs(judges, join(_path, "judges"))
    if weights is None:
        weights = [1.0] * len(built)
    if len(weights) != len(built):
        raise ConfigError(join(_path, "weights"), f"{len(weights)} weights for {len(built)} judges")
    return EnsembleJudge(built, [float(w) for w in weights], normalize, name)


def vote(
    judges: list[dict[str, Any] | JudgeConfig], threshold: float | None = None, name: str = "vote", _path: str = "args"
) -> Judge:
    """Majority vote on correctness; score-only judges vote `score >= threshold` when a threshold is set."""
    from thresher.judges.combinators import VoteJudge

    return VoteJudge(_subs(judges, join(_path, "judges")), threshold, name)


JUDGES: dict[str, Callable[..., Judge]] = {
    "math": math_verifier,
    "code": code_verifier,
    "rm": reward_model,
    "llm": llm_judge,
    "gate": gate,
    "ensemble": ensemble,
    "vote": vote,
}
"""Recipe `type:` -> builder. Add a judge by adding a function here."""


def _sub(data: Any, path: str) -> Judge:
    cfg = data if isinstance(data, JudgeConfig) else from_data(JudgeConfig, data, path)
    return build_judge(cfg, path)


def _subs(items: Any, path: str) -> list[Judge]:
    if not isinstance(items, list) or not items:
        raise ConfigError(path, "expected a non-empty list of judges")
    judges = [_sub(item, join(path, i)) for i, item in enumerate(items)]
    names = [j.name for j in judges]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise ConfigError(join(join(path, i), "name"), f"duplicate judge name {n!r}; give each a name")
    return judges


def check_judge_args(builder: Callable[..., Any], args: dict[str, Any], path: str) -> None:
    """Names against the signature, then each value against its annotation (where thresher.typed reads it)."""
    check_call_args(builder, args, path)
    try:
        hints = typing.get_type_hints(builder)
    except NameError:
        return
    params = inspect.signature(builder).parameters
    for key, value in args.items():
        if key in params and key in hints and not key.startswith("_"):
            try:
                from_data(hints[key], value, join(path, key))
            except TypeError:  # an annotation typed parsing does not read (a protocol): checked by the builder
                pass


def build_judge(cfg: JudgeConfig, path: str = "judges[0]") -> Judge:
    """The judge a config describes, named `cfg.name or cfg.type`; errors carry `path`."""
    builder = JUDGES.get(cfg.type)
    if builder is None:
        raise ConfigError(join(path, "type"), f"unknown judge {cfg.type!r} (expected one of: {', '.join(JUDGES)})")
    args = dict(cfg.args)
    args_path = join(path, "args")
    check_judge_args(builder, args, args_path)
    params = inspect.signature(builder).parameters
    name = cfg.name or args.get("name") or cfg.type
    args["name"] = name
    if "_path" in params:
        args["_path"] = args_path
    judge = builder(**args)
    judge.name = name
    return judge
