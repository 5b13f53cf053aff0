"""The round loop: round k = sample -> judge -> export -> train -> eval, driven by a recipe.

Round 0 is the baseline: the initial student evaluated on the held-out
prompts. Round k samples the round's prompts from every model in the pool,
with the student replaced by the model round k-1 trained; the judges score
the candidates, the selection policy keeps the best and the export stage
writes SFT / critique-SFT / DPO rows; the student trains on them and the
trained model is evaluated.

A round is a list of stages run by the one runner (`thresher.runner`):
each stage's marker holds the fingerprint of what it was made from, so a
rerun after a crash continues at the first unfinished stage, an unchanged
rerun skips everything, and a changed recipe recomputes exactly what
depends on the change (a new `selection.args.k` re-exports, retrains and
re-evaluates; a new judge argument re-judges that judge only) and says so.
One process writes a run at a time (`RUN/.lock`).

After every evaluation the round's metrics go to `metrics.jsonl`, the report
(`report.html`, `curves.png`) is rewritten, W&B gets the round (when
enabled; it also gets each fresh export's counts and files and each fresh
training's per-step loss), and a warning line is printed for every task whose metric fell by
more than `eval.regression_threshold` since the round before.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from thresher.config import EvalConfig, JudgeConfig, ModelConfig, Recipe, dump_recipe
from thresher.errors import ConfigError
from thresher.lock import run_lock
from thresher.models import resolve_builtins, resolve_model_path
from thresher.records import Prompt
from thresher.runner import stage_fingerprint
from thresher.store import RoundDir, RunDir


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def trained_student(recipe: Recipe) -> ModelConfig | None:
    """The student the loop trains: the one model with `role: student` (None when nothing is trained)."""
    students = recipe.students()
    if recipe.train.method == "none":
        return students[0] if len(students) == 1 else None
    if len(students) != 1:
        found = ", ".join(m.name for m in students) or "none"
        raise ConfigError("models", f"training needs exactly one model with role: student (found: {found})")
    return students[0]


def round_prompts(recipe: Recipe, rd: RoundDir, k: int, progress: bool = True) -> list[Prompt]:
    """Round k's train prompts, kept in `round_<k>/prompts.jsonl` (drawn again only if the source changed)."""
    from thresher.prompts.stage import stage_prompts

    src = recipe.prompts.train
    if recipe.prompts.per_round == "fresh":
        src = replace(src, seed=src.seed + k - 1)
    return stage_prompts(src, rd, progress, f"round {k} · prompts")


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
    args = recipe.eval.args
    if args.backend is None and student is not None and student.backend in ("vllm", "hf"):
        args = replace(args, backend=student.backend)
    return replace(recipe.eval, args=args)


class Loop:
    """One recipe's run: the run directory, its held-out prompts, and where metrics go after each eval."""

    def __init__(self, recipe: Recipe, progress: bool = True):
        from thresher.eval.wandb_log import WandbLogger
        from thresher.executors import build_executor

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
        self.executor = build_executor(recipe.executor)
        self.wandb = WandbLogger(recipe, self.run.path, enabled=recipe.eval.wandb)

    def evaluate(self, k: int, model_path: str, rd: RoundDir, prompts: list[Prompt] | None) -> None:
        """Evaluate round k's model, then record metrics, warn on regressions and rewrite the report."""
        if self.eval_prompts is None:
            return
        from thresher.eval.report import append_round_metrics, regressions, write_report
        from thresher.eval.stage import eval_stage

        judged = prompts is not None and bool(self.recipe.judges)
        logged = stage_fingerprint(rd.marker("eval"))
        result = eval_stage(
            model_path, self.eval_prompts, self.eval_cfg, rd.path, sampler=self.eval_sampler(model_path),
            round_verdicts=rd.verdicts if judged else None,
            round_candidates=rd.candidates if judged else None,
            round_prompts=prompts, seed=self.recipe.seed, progress=self.progress, label=f"round {k} · eval",
        )
        append_round_metrics(self.run.path, k, result)
        if stage_fingerprint(rd.marker("eval")) != logged:  # a resumed run has logged this round already
            self.wandb.log_round(k, result)
        for line in regressions(self.run.path, self.recipe.eval.regression_threshold):
            if line.endswith(f"to round {k}"):
                _say(line)
        write_report(self.run.path, self.recipe.eval.regression_threshold)

    def eval_sampler(self, model_path: str) -> Any:
        """On a cluster, eval generates on replicas like sampling does; locally the eval stage builds its own."""
        if self.executor.name == "local":
            return None
        from thresher.executors import Resources
        from thresher.sampling.distributed import ExecutorSampler

        backend = self.eval_cfg.args.backend or (self.student.backend if self.student else "hf")
        resources = self.student.resources if self.student is not None else Resources()
        return ExecutorSampler(self.executor, ModelConfig(name="eval", path=model_path, role="student",
                                                          backend=backend, resources=resources))

    def round(self, k: int, student_path: str | None) -> str | None:
        """Run round k (k >= 1) from the student at `student_path`; returns the next round's student."""
        from thresher.feedback.stage import export_stage
        from thresher.judges.stage import judge_stage
        from thresher.sampling.stage import sample_stage
        from thresher.train.stage import train_stage

        recipe, rd = self.recipe, self.run.round(k)
        rd.path.mkdir(parents=True, exist_ok=True)
        prompts = round_prompts(recipe, rd, k, self.progress)
        label = f"round {k} ·"
        stages: list[tuple[str, Callable[[], Any]]] = [
            ("sample", lambda: sample_stage(
                prompts, pool_for_round(recipe, student_path), rd.candidates, progress=self.progress,
                executor=self.executor, label=f"{label} sample")),
        ]
        if recipe.judges:
            stages.append(("judge", lambda: judge_stage(
                prompts, rd.candidates, judges_for_round(recipe), rd.verdicts, progress=self.progress,
                executor=self.executor, label=f"{label} judge")))
        stages.append(("export", lambda: export_stage(
            prompts, rd.candidates, rd.verdicts if recipe.judges else None, rd.path, recipe.selection,
            recipe.export, students={m.name for m in recipe.students()}, seed=recipe.seed,
            progress=self.progress, label=f"{label} export", eval_prompts=self.eval_prompts)))
        if self.student is not None and recipe.train.method != "none":
            stages.append(("train", lambda: train_stage(
                str(student_path), rd.path, recipe.train, seed=recipe.seed, progress=self.progress,
                label=f"{label} train")))
        for name, run in stages:
            before = stage_fingerprint(rd.marker(name))
            result = run()
            if stage_fingerprint(rd.marker(name)) != before:  # it ran: W&B gets it (never twice across resumes)
                if name == "export":
                    self.wandb.log_export(k, result, rd.path)
                elif name == "train":
                    self.wandb.log_training(k, rd.model)
        if self.student is None:
            return student_path
        model = str(rd.model) if recipe.train.method != "none" else str(student_path)
        self.evaluate(k, model, rd, prompts)
        return model


def run_recipe(recipe: Recipe, progress: bool = True, on_round: Callable[[int], None] | None = None) -> None:
    """Run every round of `recipe` into `<out_dir>/<name>/`, resuming whatever an earlier run left unfinished.

    `on_round(k)` is called after each round (0 included) is complete. The
    run directory is locked for the whole run: a second process gets exit 2.
    """
    with run_lock(recipe.run_dir):
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
            loop.executor.close()
    _say(f"run finished: {loop.run.path} (report: {loop.run.report})")
