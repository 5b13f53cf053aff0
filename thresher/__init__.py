"""thresher: separate grain from chaff in LLM post-training data.

Sample N answers per prompt from teachers and students, let judges (reward
models, LLM-as-judge, math and code verifiers) score them, keep the best,
export SFT, critique-SFT and DPO data, train, and measure per-task gains.

The public API, for scripts and notebooks (every name loads on first use,
so `import thresher` stays cheap):

    from thresher import Prompt, Candidate, math_verifier

    prompt = Prompt.create("add", [{"role": "user", "content": "What is 3 + 4?"}], reference="7")
    answers = ["The answer is 7, because 3+4=7.", "It is 8.", "\\\\boxed{7}", "7", "seven"]
    cands = [Candidate(prompt.id, "me", i, text) for i, text in enumerate(answers)]
    verdicts = math_verifier().judge([prompt], [cands])[0]

- records: `Prompt`, `Candidate`, `Verdict`, `PreferencePair`, `read_jsonl`,
  `write_jsonl`, `read_records`;
- sampling: `SamplingParams`, `build_sampler` (the one builder: `sample()`
  for chats, `complete()` for raw text), `BACKENDS`;
- judges: `JUDGES`, `build_judge`, `math_verifier`, `code_verifier`,
  `reward_model`, `llm_judge`, `function_judge`;
- selection: `POLICIES`, `build_policy`, `DPO_RULES`;
- stages (resumable, fingerprinted, each a plain function over files):
  `sample_stage`, `judge_stage`, `export_stage`, `train_stage`,
  `eval_stage`, and `run_stage` for a stage of your own;
- recipes: `load_recipe`, `run_recipe`, `Recipe`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Prompt": "thresher.records",
    "Candidate": "thresher.records",
    "Verdict": "thresher.records",
    "PreferencePair": "thresher.records",
    "read_jsonl": "thresher.records",
    "write_jsonl": "thresher.records",
    "read_records": "thresher.store",
    "SamplingParams": "thresher.sampling.params",
    "build_sampler": "thresher.sampling.pool",
    "BACKENDS": "thresher.sampling.pool",
    "JUDGES": "thresher.judges.registry",
    "build_judge": "thresher.judges.registry",
    "math_verifier": "thresher.judges.math",
    "code_verifier": "thresher.judges.code",
    "reward_model": "thresher.judges.reward_model",
    "llm_judge": "thresher.judges.llm_judge",
    "function_judge": "thresher.judges.base",
    "POLICIES": "thresher.feedback.policies",
    "build_policy": "thresher.feedback.policies",
    "DPO_RULES": "thresher.feedback.dpo",
    "sample_stage": "thresher.sampling.stage",
    "judge_stage": "thresher.judges.stage",
    "export_stage": "thresher.feedback.stage",
    "train_stage": "thresher.train.stage",
    "eval_stage": "thresher.eval.stage",
    "run_stage": "thresher.runner",
    "load_recipe": "thresher.config",
    "Recipe": "thresher.config",
    "run_recipe": "thresher.rounds",
}
"""Public name -> the module that defines it."""

__all__ = [
    "BACKENDS",
    "DPO_RULES",
    "JUDGES",
    "POLICIES",
    "Candidate",
    "PreferencePair",
    "Prompt",
    "Recipe",
    "SamplingParams",
    "Verdict",
    "build_judge",
    "build_policy",
    "build_sampler",
    "code_verifier",
    "eval_stage",
    "export_stage",
    "function_judge",
    "judge_stage",
    "llm_judge",
    "load_recipe",
    "math_verifier",
    "read_jsonl",
    "read_records",
    "reward_model",
    "run_recipe",
    "run_stage",
    "sample_stage",
    "train_stage",
    "write_jsonl",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'thresher' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
