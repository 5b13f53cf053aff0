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

Each builder's typed signature is its argument schema (`thresher.typed.args_type`):
`JudgeConfig` parses its `args:` into it when the recipe loads, so a typo
(`timout: 5`), a wrong type (`mode: best`) or a value out of range
(`workers: 0`) fails with its key path before anything is built.
Combinators take sub-judge configs (`JudgeConfig`), which parse their own
arguments the same way, so a typo three levels down is found at load time too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from thresher.config import JudgeConfig
from thresher.errors import ConfigError
from thresher.judges.base import Judge
from thresher.judges.code import code_verifier
from thresher.judges.llm_judge import llm_judge
from thresher.judges.loglik import loglik_judge
from thresher.judges.math import math_verifier
from thresher.judges.reward_model import reward_model
from thresher.typed import args_type, call_args, checks, from_data, join


def _unique_names(judges: list[JudgeConfig], key: str) -> None:
    names = [j.judge_name for j in judges]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise ConfigError(join(join(key, i), "name"), f"duplicate judge name {n!r}; give each a name")


def _check_many(args: Any) -> None:
    if not args.judges:
        raise ConfigError("judges", "expected a non-empty list of judges")
    _unique_names(args.judges, "judges")
    weights = getattr(args, "weights", None)
    if weights is not None and len(weights) != len(args.judges):
        raise ConfigError("weights", f"{len(weights)} weights for {len(args.judges)} judges")


def _check_gate(args: Any) -> None:
    if args.verifier.judge_name == args.ranker.judge_name:
        raise ConfigError("ranker.name", f"the ranker and the verifier are both named {args.ranker.judge_name!r}")


@checks(_check_gate)
def gate(verifier: JudgeConfig, ranker: JudgeConfig, name: str = "gate") -> Judge:
    """The verifier decides correctness; the ranker scores only the candidates that pass."""
    from thresher.judges.combinators import GateJudge

    return GateJudge(build_judge(verifier), build_judge(ranker), name)


@checks(_check_many)
def ensemble(
    judges: list[JudgeConfig],
    weights: list[float] | None = None,
    normalize: Literal["none", "minmax", "rank"] = "none",
    name: str = "ensemble",
) -> Judge:
    """A weighted mean of the sub-judges' scores (normalised per prompt first, if asked)."""
    from thresher.judges.combinators import EnsembleJudge

    built = [build_judge(j) for j in judges]
    return EnsembleJudge(built, [float(w) for w in weights or [1.0] * len(built)], normalize, name)


@checks(_check_many)
def vote(judges: list[JudgeConfig], threshold: float | None = None, name: str = "vote") -> Judge:
    """Majority vote on correctness; score-only judges vote `score >= threshold` when a threshold is set."""
    from thresher.judges.combinators import VoteJudge

    return VoteJudge([build_judge(j) for j in judges], threshold, name)


def _check_llm(args: Any) -> None:
    """The LLM judge's backend options are that backend's (`sampler_args`), and openai needs a URL."""
    from thresher.sampling.pool import backend_args

    if args.backend == "openai" and not args.base_url:
        raise ConfigError("base_url", "required for backend openai")
    try:
        backend_args(args.backend, args.sampler_args)
    except ConfigError as e:
        raise ConfigError(e.key.replace("args", "sampler_args", 1), e.reason) from None


JUDGES: dict[str, Callable[..., Judge]] = {
    "math": math_verifier,
    "code": code_verifier,
    "rm": reward_model,
    "loglik": loglik_judge,
    "llm": checks(_check_llm)(llm_judge),
    "gate": gate,
    "ensemble": ensemble,
    "vote": vote,
}
"""Recipe `type:` -> builder. Add a judge by adding a function here; its typed signature is its schema."""

NOT_ARGS = ("name",)
"""Builder parameters a recipe sets outside `args:` (the judge's name is `JudgeConfig.name`)."""


def judge_args(judge_type: str, data: Any) -> Any:
    """A judge config's `args:` parsed into its builder's typed arguments; errors name `args.<key>` (or `type`)."""
    builder = JUDGES.get(judge_type)
    if builder is None:
        raise ConfigError("type", f"unknown judge {judge_type!r} (expected one of: {', '.join(JUDGES)})")
    return from_data(args_type(builder, NOT_ARGS), {} if data is None else data, "args")


def build_judge(cfg: JudgeConfig) -> Judge:
    """The judge a config describes, named `cfg.name or cfg.type` (its arguments were checked when it was made)."""
    judge = JUDGES[cfg.type](**call_args(cfg.args), name=cfg.judge_name)
    judge.name = cfg.judge_name
    return judge
