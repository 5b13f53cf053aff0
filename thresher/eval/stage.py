"""The round loop's eval stage: per-task accuracy of a model, and how well each judge picked.

For held-out prompts it generates one greedy answer (pass@1) and `eval.k`
sampled answers at `eval.temperature` (pass@k, maj@k), checks them with the
same verifiers the judges use (code prompts with tests -> code verifier,
prompts with a reference -> math verifier), and reports every number per
task. Given the round's candidates and verdicts, it also measures each
judge's selection accuracy and lift against the oracle verifier, so a judge
that picks no better than chance shows as lift ~0.

Outputs in the round directory: `eval.json` (the contract:
`{"tasks": {task: {metric: value}}, "judges": {judge: {task: {...}}}}`, plus
`counts` and `examples`) and the generations `eval_greedy.jsonl` /
`eval_samples.jsonl`. A finished `eval.json` skips the stage; generations
already on disk are reused, so a kill during verification does not redo
sampling.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from thresher.config import EvalConfig
from thresher.errors import UserError
from thresher.eval.metrics import PromptResult, task_metrics
from thresher.records import Candidate, Prompt, Verdict, read_jsonl, write_jsonl
from thresher.runner import run_stage
from thresher.sampling.params import Sampler, SamplingParams, raise_item_errors
from thresher.store import RoundDir, read_json, read_records, write_json

log = logging.getLogger(__name__)

GREEDY_FILE = "eval_greedy.jsonl"
SAMPLES_FILE = "eval_samples.jsonl"
GENERATIONS_KEY_FILE = "eval_generations.json"
"""What the generations on disk were made with; they are reused only for the same model and settings."""

def _math() -> Any:
    from thresher.judges.math import math_verifier

    return math_verifier()


def _code() -> Any:
    try:
        from thresher.judges.code import code_verifier
    except ImportError as e:
        raise UserError(f"prompts with tests need the code verifier, which cannot be imported ({e})") from None
    return code_verifier()


VERIFIERS: dict[str, Callable[[], Any]] = {"math": _math, "code": _code}
"""Oracle verifiers by the kind of prompt they check."""


def verifier_kind(prompt: Prompt) -> str | None:
    """`code` for prompts with tests, `math` for prompts with a reference, None when nothing can check them."""
    if prompt.tests:
        return "code"
    if prompt.reference is not None:
        return "math"
    return None


def default_sampler(model_path: str, cfg: EvalConfig) -> Sampler:
    """The sampler the stage builds when none is passed: vLLM on a GPU, transformers otherwise."""
    from thresher.config import ModelConfig
    from thresher.sampling import build_sampler
    from thresher.train.common import has_gpu

    backend = cfg.args.backend or ("vllm" if has_gpu() else "hf")
    return build_sampler(ModelConfig(name="eval", path=str(model_path), role="student", backend=backend))


def _generation_key(model_path: str, cfg: EvalConfig, seed: int) -> dict[str, Any]:
    from thresher.identity import model_identity

    return {
        # a model directory trained again has a new identity, so its old generations are not reused
        "model": model_identity(str(model_path)),
        "k": cfg.k, "samples": cfg.samples, "temperature": cfg.temperature,
        "top_p": cfg.args.top_p, "max_tokens": cfg.max_tokens, "seed": seed,
    }


def _drop_stale_generations(round_dir: Path, key: dict[str, Any]) -> None:
    """Remove generations made with another model or other settings, then record the current key."""
    path = round_dir / GENERATIONS_KEY_FILE
    if path.is_file() and read_json(path) != key:
        for name in (GREEDY_FILE, SAMPLES_FILE):
            (round_dir / name).unlink(missing_ok=True)
    write_json(path, key)


def candidates_by_prompt(cands: Sequence[Candidate]) -> dict[str, list[Candidate]]:
    """Candidates by prompt id, in input order."""
    by: dict[str, list[Candidate]] = defaultdict(list)
    for c in cands:
        by[c.prompt_id].append(c)
    return by


def _generate(
    sampler: Sampler, prompts: Sequence[Prompt], params: SamplingParams, path: Path
) -> list[list[Candidate]]:
    """Answers for every prompt, read from `path` when a finished earlier run left them there."""
    if path.is_file():
        by = candidates_by_prompt(list(read_jsonl(path, Candidate)))
        if all(len(by.get(p.id, [])) >= params.n for p in prompts):
            return [sorted(by[p.id], key=lambda c: c.index)[: params.n] for p in prompts]
        log.info("%s: incomplete, generating again", path)
    out = sampler.sample(prompts, params)
    if len(out) != len(prompts):
        raise RuntimeError(f"sampler {sampler.name!r} answered {len(out)} of {len(prompts)} prompts")
    raise_item_errors((c for cs in out for c in cs), sampler.name)
    write_jsonl(path, [c for cs in out for c in cs])
    return out


def oracle_for(kind: str, verifier: Any, cache: dict[str, Any]) -> Any:
    """The given verifier, or the one for this kind of prompt (built once, kept in `cache`)."""
    if verifier is not None:
        return verifier
    if kind not in cache:
        cache[kind] = VERIFIERS[kind]()
    return cache[kind]


def oracle_verdicts(
    prompts: Sequence[Prompt], cands: Sequence[Sequence[Candidate]], verifier: Any, cache: dict[str, Any]
) -> list[list[Verdict | None]]:
    """Verdicts of each prompt's oracle verifier (None for prompts nothing can check), in input order."""
    out: list[list[Verdict | None]] = [[None] * len(cs) for cs in cands]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        kind = verifier_kind(p)
        if kind is not None:
            groups[kind].append(i)
    for kind, idx in groups.items():
        verdicts = oracle_for(kind, verifier, cache).judge([prompts[i] for i in idx], [cands[i] for i in idx])
        for i, vs in zip(idx, verdicts):
            out[i] = list(vs)
    return out


def _correct(v: Verdict | None) -> bool:
    return v is not None and v.ok and v.correct is True


def _answer(v: Verdict | None) -> str | None:
    """The answer the verifier read, as stated (maj@k compares answers by `thresher.judges.answers`)."""
    if v is None or not v.ok:
        return None
    a = v.metadata.get("answer")
    return None if a is None else str(a)


def _text_metrics(
    names: Sequence[str], prompts: Sequence[Prompt], greedy: Sequence[Sequence[Candidate]]
) -> dict[str, dict[str, float]]:
    """`evaluate` metrics (exact_match, rouge, ...) between greedy answers and references, per task."""
    import evaluate

    by_task: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for p, cs in zip(prompts, greedy):
        if p.reference is not None:
            by_task[p.task][0].append(cs[0].text)
            by_task[p.task][1].append(p.reference)
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for name in names:
        try:
            metric = evaluate.load(name)
        except (OSError, ValueError, ImportError) as e:  # offline: FileNotFoundError / ConnectionError
            raise UserError(f"eval.args.text_metrics: cannot load evaluate metric {name!r} ({e})") from None
        label = Path(name).stem if name.endswith(".py") else name
        for task, (preds, refs) in by_task.items():
            for key, value in metric.compute(predictions=preds, references=refs).items():
                if isinstance(value, int | float):
                    out[task][key if key.startswith(label) else f"{label}/{key}"] = float(value)
    return dict(out)


def evaluate_prompts(
    sampler: Sampler,
    prompts: Sequence[Prompt],
    cfg: EvalConfig,
    round_dir: Path,
    verifier: Any = None,
    seed: int = 0,
    verifier_cache: dict[str, Any] | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]], list[dict[str, Any]]]:
    """Generate, verify and score: (per-task metrics, per-task counts, examples)."""
    cache = {} if verifier_cache is None else verifier_cache
    greedy = _generate(
        sampler, prompts, SamplingParams(n=1, temperature=0.0, max_tokens=cfg.max_tokens, seed=seed),
        round_dir / GREEDY_FILE,
    )
    g_verdicts = oracle_verdicts(prompts, greedy, verifier, cache)
    samples: list[list[Candidate]] = [[] for _ in prompts]
    s_verdicts: list[list[Verdict | None]] = [[] for _ in prompts]
    if cfg.k > 1:
        params = SamplingParams(
            n=cfg.samples, temperature=cfg.temperature, top_p=cfg.args.top_p,
            max_tokens=cfg.max_tokens, seed=seed,
        )
        samples = _generate(sampler, prompts, params, round_dir / SAMPLES_FILE)
        s_verdicts = oracle_verdicts(prompts, samples, verifier, cache)

    results: list[PromptResult] = []
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"prompts": 0, "unverifiable": 0, "verifier_errors": 0})
    examples: list[dict[str, Any]] = []
    per_task_examples: dict[str, int] = defaultdict(int)
    want_examples = cfg.args.examples_per_task
    for p, g, gv, sv in zip(prompts, greedy, g_verdicts, s_verdicts):
        c = counts[p.task]
        c["prompts"] += 1
        if gv[0] is None:
            c["unverifiable"] += 1
            continue
        c["verifier_errors"] += sum(1 for v in [gv[0], *sv] if v is not None and not v.ok)
        results.append(
            PromptResult(p.task, _correct(gv[0]), [_correct(v) for v in sv], [_answer(v) for v in sv])
        )
        if per_task_examples[p.task] < want_examples:
            per_task_examples[p.task] += 1
            examples.append({
                "task": p.task, "prompt_id": p.id, "prompt": p.question, "reference": p.reference,
                "answer": g[0].text, "extracted": _answer(gv[0]), "correct": _correct(gv[0]),
                "error": gv[0].error,
            })
    metrics = task_metrics(results, cfg.k)
    if cfg.args.judge_task:
        from thresher.eval.judge_task import JUDGE_TASK, judge_task_eval

        jm, jc, jex = judge_task_eval(
            sampler, prompts, samples, s_verdicts, cfg.args.judge_task_max_tokens or cfg.max_tokens,
            cfg.args.judge_task_language, cfg.args.judge_task_candidates, seed, cfg.args.judge_task_format,
        )
        if jm:
            metrics[JUDGE_TASK] = jm
        counts[JUDGE_TASK] = {"prompts": jc["prompts"], "unverifiable": 0, "verifier_errors": 0,
                              "unparsed": jc["unparsed"]}
        examples.extend(jex)
    names = cfg.args.text_metrics
    for task, extra in _text_metrics(names, prompts, greedy).items() if names else []:
        metrics.setdefault(task, {}).update(extra)
    return metrics, dict(counts), examples


def _load_round_prompts(round_dir: Path, given: Sequence[Prompt] | None) -> list[Prompt]:
    if given is not None:
        return list(given)
    path = RoundDir(round_dir).prompts
    if not path.is_file():
        raise UserError(f"{path}: judge lift needs the round's prompts (their tasks and references); none found")
    return list(read_records(path, Prompt))


class EvalStage:
    """The runner's view of eval: one part, the round's `eval.json`."""

    name = "eval"

    def __init__(self, model_path: str, prompts: Sequence[Prompt], cfg: EvalConfig, round_dir: Path,
                 sampler: Sampler | None, verifier: Any, round_verdicts: Path | None,
                 round_candidates: Path | None, round_prompts: Sequence[Prompt] | None, seed: int):
        self.model_path, self.prompts, self.cfg, self.seed = model_path, prompts, cfg, seed
        self.rd = RoundDir(Path(round_dir))
        self.marker = self.rd.marker("eval")
        self.sampler, self.verifier = sampler, verifier
        self.round_verdicts, self.round_candidates, self.round_prompts = round_verdicts, round_candidates, round_prompts

    def parts(self) -> dict[str, Any]:
        from thresher.identity import model_identity, plain, prompts_identity, records_identity

        judged = None
        if self.round_candidates is not None and self.round_verdicts is not None:
            judged = {
                "candidates": records_identity(self.round_candidates, _own(self.round_candidates, self.rd, "sample")),
                "verdicts": records_identity(self.round_verdicts, _own(self.round_verdicts, self.rd, "judge")),
            }
        return {"eval": {
            "model": model_identity(self.model_path),
            "prompts": prompts_identity(self.prompts),
            "config": plain(self.cfg),
            "seed": self.seed,
            "judged": judged,
            "verifier": None if self.verifier is None else getattr(self.verifier, "name", type(self.verifier).__name__),
        }}

    def has_outputs(self, part: str) -> bool:
        return self.rd.eval.exists()

    def drop(self, part: str) -> None:
        self.rd.eval.unlink(missing_ok=True)

    def run(self, todo: list[str]) -> dict[str, Any]:
        return _evaluate(self)

    def describe(self, summary: dict[str, Any]) -> str:
        return ", ".join(f"{task} {m['pass@1']:.3f}" for task, m in sorted(summary.get("tasks", {}).items())
                         if "pass@1" in m)


def _own(path: Path, rd: RoundDir, stage: str) -> Path | None:
    return rd.marker(stage) if Path(path).parent == rd.path else None


def eval_stage(
    model_path: str,
    prompts: Sequence[Prompt],
    cfg: EvalConfig,
    round_dir: Path,
    sampler: Sampler | None = None,
    verifier: Any = None,
    round_verdicts: Path | None = None,
    round_candidates: Path | None = None,
    round_prompts: Sequence[Prompt] | None = None,
    seed: int = 0,
    progress: bool = True,
    label: str = "eval",
) -> dict[str, Any]:
    """Evaluate `model_path` on `prompts` into `round_dir/eval.json`; returns what it wrote.

    `sampler` defaults to one built for `model_path` (and closed after);
    `verifier` defaults to the oracle for each prompt's kind. With
    `round_candidates` and `round_verdicts` (files or shard directories), the
    judges of the round are scored too; the round's prompts come from
    `round_prompts` or `round_dir/prompts.jsonl`. The runner skips the stage
    when eval.json was made from the same model, prompts, settings and round
    verdicts, and evaluates again when any of them changed.
    """
    if not prompts:
        raise UserError("eval: no prompts to evaluate on")
    stage = EvalStage(model_path, prompts, cfg, Path(round_dir), sampler, verifier, round_verdicts,
                      round_candidates, round_prompts, seed)
    outcome = run_stage(stage, label, quiet=not progress)
    return read_json(stage.rd.eval) if stage.rd.eval.is_file() else outcome.summary


def _evaluate(stage: EvalStage) -> dict[str, Any]:
    """Generate, verify, score the judges, and write eval.json; returns a short summary for the marker."""
    model_path, prompts, cfg, seed, round_dir = stage.model_path, stage.prompts, stage.cfg, stage.seed, stage.rd.path
    sampler, verifier = stage.sampler, stage.verifier
    round_dir.mkdir(parents=True, exist_ok=True)
    if not (round_dir / GENERATIONS_KEY_FILE).is_file():
        for name in (GREEDY_FILE, SAMPLES_FILE):  # left by an unknown model: never reuse
            (round_dir / name).unlink(missing_ok=True)
    _drop_stale_generations(round_dir, _generation_key(model_path, cfg, seed))
    cache: dict[str, Any] = {}
    owned = sampler is None
    if sampler is None:
        sampler = default_sampler(model_path, cfg)
    try:
        tasks, counts, examples = evaluate_prompts(sampler, prompts, cfg, round_dir, verifier, seed, cache)
        judges: dict[str, Any] = {}
        if stage.round_candidates is not None and stage.round_verdicts is not None:
            from thresher.eval.judge_selection import judge_selection

            judges = judge_selection(
                _load_round_prompts(round_dir, stage.round_prompts),
                list(read_records(stage.round_candidates, Candidate)),
                list(read_records(stage.round_verdicts, Verdict)),
                verifier,
                cache,
            )
    finally:
        if owned:
            from thresher.sampling import close_sampler

            close_sampler(sampler)
        for v in cache.values():
            close = getattr(v, "close", None)
            if callable(close):
                close()
    result = {
        "model": str(model_path),
        "tasks": tasks,
        "judges": judges,
        "counts": counts,
        "examples": examples,
        "config": {"k": cfg.k, "samples": cfg.samples, "temperature": cfg.temperature,
                   "max_tokens": cfg.max_tokens, "seed": seed},
    }
    write_json(RoundDir(round_dir).eval, result)
    return {"model": str(model_path), "tasks": {t: {"pass@1": m["pass@1"]} for t, m in tasks.items() if "pass@1" in m}}
