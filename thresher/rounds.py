"""The round loop: round k = sample -> judge -> export -> train -> eval, driven by a recipe.

Round 0 is the baseline: the initial student evaluated on the held-out
prompts. Round k samples the round's prompts from every model in the pool,
with the student replaced by the model round k-1 trained; the judges score
the candidates, the selection policy keeps the best and the export stage
writes SFT / critique-SFT / DPO rows; the student trains on them and the
trained model is evaluated. This module only sequences the stage functions;
each stage lives in its own package and decides by itself whether its
outputs on disk are complete, so running a recipe again after a crash or a
kill continues at the first unfinished stage and redoes nothing finished.

After every evaluation the round's metrics go to `metrics.jsonl`, the report
(`report.html`, `curves.png`) is rewritten, W&B gets the round (when
enabled), and a warning line is printed for every task whose metric fell by
more than `eval.regression_threshold` since the round before.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from thresher.config import EvalConfig, JudgeConfig, ModelConfig, Recipe, dump_recipe
from thresher.errors import ConfigError
from thresher.models import resolve_builtins, resolve_model_path
from thresher.records import Prompt, read_jsonl, write_jsonl
from thresher.store import COMPLETE, RoundDir, RunDir


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def _stage(k: int, name: str, marker: Path) -> Iterator[dict[str, Any]]:
    """Time a stage and say whether it ran or was found complete (its marker existed and was left alone)."""
    before = marker.stat().st_mtime_ns if marker.exists() else None
    note: dict[str, Any] = {}
    start = time.perf_counter()
    yield note
    after = marker.stat().st_mtime_ns if marker.exists() else None
    if before is not None and before == after:
        _say(f"round {k} · {name}: complete already, skipped")
    else:
        detail = f" — {note['detail']}" if note.get("detail") else ""
        _say(f"round {k} · {name}: done in {time.perf_counter() - start:.1f}s{detail}")


def trained_student(recipe: Recipe) -> ModelConfig | None:
    """The student the loop trains: the one model with `role: student` (None when nothing is trained)."""
    students = recipe.students()
    if recipe.train.method == "none":
        return students[0] if len(students) == 1 else None
    if len(students) != 1:
        found = ", ".join(m.name for m in students) or "none"
        raise ConfigError("models", f"training needs exactly one model with role: student (found: {found})")
    return students[0]


def round_prompts(recipe: Recipe, rd: RoundDir, k: int) -> list[Prompt]:
    """Round k's train prompts, fixed in `round_<k>/prompts.jsonl` the first time they are drawn."""
    if rd.prompts.is_file():
        return list(read_jsonl(rd.prompts, Prompt))
    from thresher.prompts import load_prompts

    src = recipe.prompts.train
    if recipe.prompts.per_round == "fresh":
        src = replace(src, seed=src.seed + k - 1)
    prompts = load_prompts(src, "prompts.train")
    write_jsonl(rd.prompts, prompts)
    return prompts


def pool_for_round(recipe: Recipe, student_path: str | None) -> list[ModelConfig]:
    """The recipe's models with built-in paths resolved and the student at its current checkpoint."""
    student = trained_student(recipe)
    pool = []
    for m in recipe.models:
        path = student_path if (student is not None and m.name == student.name and student_path) else m.path
        pool.append(replace(m, path=resolve_model_path(path) if m.backend != "openai" else path))
    return pool


def judges_for_round(recipe: Recipe) -> list[JudgeConfig]:
    return [replace(j, args=resolve_builtins(j.args)) for j in recipe.judges]


def eval_config(recipe: Recipe) -> EvalConfig:
    """`recipe.eval`, evaluating with the student's own backend unless `eval.args.backend` says otherwise."""
    student = trained_student(recipe)
    args = dict(recipe.eval.args)
    if "backend" not in args and student is not None and student.backend in ("vllm", "hf"):
        args["backend"] = student.backend
    return replace(recipe.eval, args=args)


class Loop:
    """One recipe's run: the run directory, its held-out prompts, and where metrics go after each eval."""

    def __init__(self, recipe: Recipe, progress: bool = True):
        from thresher.eval.wandb_log import WandbLogger

        self.recipe = recipe
        self.progress = progress
        self.run = RunDir(recipe.run_dir)
        self.run.path.mkdir(parents=True, exist_ok=True)
        dump_recipe(recipe, self.run.recipe)
        self.student = trained_student(recipe)
        self.eval_cfg = eval_config(recipe)
        self.eval_prompts: list[Prompt] | None = None
        if recipe.prompts.eval is not None:
            from thresher.prompts import load_prompts

            self.eval_prompts = load_prompts(recipe.prompts.eval, "prompts.eval")
        self.wandb = WandbLogger(recipe, self.run.path, enabled=recipe.eval.wandb)

    def evaluate(self, k: int, model_path: str, rd: RoundDir, prompts: list[Prompt] | None) -> None:
        """Evaluate round k's model, then record metrics, warn on regressions and rewrite the report."""
        if self.eval_prompts is None:
            return
        from thresher.eval.report import append_round_metrics, regressions, write_report
        from thresher.eval.stage import eval_stage

        judged = prompts is not None and (rd.verdicts / COMPLETE).is_file()
        fresh = not rd.eval.exists()
        with _stage(k, "eval", rd.eval) as note:
            result = eval_stage(
                model_path, self.eval_prompts, self.eval_cfg, rd.path,
                round_verdicts=rd.verdicts if judged else None,
                round_candidates=rd.candidates if judged else None,
                round_prompts=prompts, seed=self.recipe.seed,
            )
            note["detail"] = ", ".join(
                f"{task} {m['pass@1']:.3f}" for task, m in sorted(result["tasks"].items()) if "pass@1" in m
            )
        append_round_metrics(self.run.path, k, result)
        if fresh:  # a resumed run has logged this round already
            self.wandb.log_round(k, result)
        for line in regressions(self.run.path, self.recipe.eval.regression_threshold):
            if line.endswith(f"to round {k}"):
                _say(line)
        write_report(self.run.path, self.recipe.eval.regression_threshold)

    def round(self, k: int, student_path: str | None) -> str | None:
        """Run round k (k >= 1) from the student at `student_path`; returns the next round's student."""
        from thresher.feedback.stage import export_stage
        from thresher.judges.stage import judge_stage
        from thresher.sampling.stage import sample_stage
        from thresher.train.stage import train_stage

        recipe, rd = self.recipe, self.run.round(k)
        rd.path.mkdir(parents=True, exist_ok=True)
        prompts = round_prompts(recipe, rd, k)
        with _stage(k, "sample", rd.candidates / COMPLETE) as note:
            s = sample_stage(prompts, pool_for_round(recipe, student_path), rd.candidates, progress=self.progress)
            note["detail"] = f"{s['candidates']} candidates for {s['prompts']} prompts"
        verdicts = None
        if recipe.judges:
            verdicts = rd.verdicts
            with _stage(k, "judge", rd.verdicts / COMPLETE):
                judge_stage(prompts, rd.candidates, judges_for_round(recipe), rd.verdicts, progress=self.progress)
        with _stage(k, "export", rd.path / ".export_complete") as note:
            e = export_stage(
                prompts, rd.candidates, verdicts, rd.path, recipe.selection, recipe.export,
                students={m.name for m in recipe.students()}, seed=recipe.seed,
            )
            note["detail"] = ", ".join(f"{x['rows']} {kind} rows" for kind, x in sorted(e["exports"].items()))
        if self.student is None:
            return student_path
        with _stage(k, "train", rd.model / COMPLETE):
            model = str(train_stage(student_path, rd.path, recipe.train, seed=recipe.seed))
        self.evaluate(k, model, rd, prompts)
        return model


def run_recipe(recipe: Recipe, progress: bool = True, on_round: Callable[[int], None] | None = None) -> None:
    """Run every round of `recipe` into `<out_dir>/<name>/`, resuming whatever an earlier run left unfinished.

    `on_round(k)` is called after each round (0 included) is complete.
    """
    loop = Loop(recipe, progress)
    try:
        student = resolve_model_path(loop.student.path) if loop.student is not None else None
        if student is not None:
            loop.evaluate(0, student, loop.run.round(0), None)
        if on_round:
            on_round(0)
        for k in range(1, recipe.rounds + 1):
            student = loop.round(k, student)
            if on_round:
                on_round(k)
    finally:
        loop.wandb.finish()
    _say(f"run finished: {loop.run.path} (report: {loop.run.report})")
