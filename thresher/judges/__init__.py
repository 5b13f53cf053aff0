"""Judges: turn candidates into verdicts.

A judge is anything with a `name`, a `kind` (verifier, reward, llm, pairwise,
listwise; recorded on its verdicts) and one batched method,
`judge(prompts, candidates) -> list[list[Verdict]]` (see `base.Judge`).
What an answer is and when two are the same lives in `answers`; what a
verdict means for selection (its score, the verifier gate) in `verdicts`.
Built in: the math verifier (`math`), the sandboxed code verifier (`code`),
reward models (`rm`), LLM judges in pointwise / pairwise / listwise mode
(`llm`), and combinators (`gate`, `ensemble`, `vote`), all named in the
explicit registry `JUDGES`. `judge_stage` runs the resumable stage of a round.
Heavy libraries (torch, math-verify, vLLM) load only when a judge is built.
"""

from __future__ import annotations

from thresher.judges.base import Judge, function_judge
from thresher.judges.registry import JUDGES, build_judge
from thresher.judges.stage import judge_stage

__all__ = ["JUDGES", "Judge", "build_judge", "function_judge", "judge_stage"]
