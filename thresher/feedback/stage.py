"""The export stage: from candidates and verdicts to sft.jsonl, critique_sft.jsonl and dpo.jsonl.

One streaming pass over the round, prompt group by prompt group (see
`groups.py`): filters drop unusable candidates, the selection policy keeps
the best, and each kept candidate, pair and critique becomes a row with its
provenance (which model wrote it, which judge chose it, by what rule), unless
dedup finds it a repeat. Every removal is counted under its reason, and
prompts where nothing passed are listed with theirs. SFT and critique-SFT
rows share one schema (`rows.py`), and `export_decisions.jsonl` records what
happened to every candidate (`decisions.py`).

Outputs are written to temporary files and renamed when all are done. The
runner (`thresher.runner`) fingerprints the export by its inputs (the
prompt set, the candidates and verdicts, mixed-in files) and settings
(selection, export, students, seed): the same fingerprint skips, any change
(new verdicts, another policy or `k`) exports again, and so does everything
downstream (training and its eval read the new fingerprint).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from thresher.config import ExportConfig, SelectionConfig
from thresher.errors import ConfigError
from thresher.feedback.contamination import ContaminationFilter
from thresher.feedback.critique import CritiqueBuilder, resolve_critique_judge
from thresher.feedback.decisions import DECISIONS_FILE, candidate_decisions
from thresher.feedback.dedup import Deduplicator
from thresher.feedback.dpo import PairBuilder
from thresher.feedback.filters import CandidateFilter
from thresher.feedback.groups import GroupingStats, PromptGroup, group_by_prompt
from thresher.feedback.mixing import mix_files
from thresher.feedback.options import ExportOptions, export_options
from thresher.feedback.policies import Policy, build_policy
from thresher.feedback.rows import SELECTED, critique_row, sft_row
from thresher.judges.llm_templates import language_for
from thresher.records import Prompt
from thresher.runner import Outcome, run_stage
from thresher.store import RoundDir

OUTPUTS = {"sft": "sft.jsonl", "critique_sft": "critique_sft.jsonl", "dpo": "dpo.jsonl"}


def _wanted(export: ExportConfig) -> list[str]:
    kinds = []
    if export.sft:
        kinds.append("sft")
    if export.critique:
        kinds.append("critique_sft")
    if export.dpo:
        kinds.append("dpo")
    return kinds


def _dedup_text(kind: str, on: str, prompt: Prompt, row: dict[str, Any]) -> tuple[str, str | None]:
    """The text a row is deduplicated on, and the group that makes `on: prompt` decide once per prompt.

    A critique row is compared on the problem and the judge's reasoning, never
    on its whole user turn: that is a judge prompt whose fixed instructions
    make any two exchanges look alike to a near-duplicate filter.
    """
    question = "\n".join(m["content"] for m in prompt.messages)
    if kind == "sft":
        answer = row["messages"][-1]["content"]
    elif kind == "dpo":
        answer = row["chosen"][0]["content"] + "\n\n" + row["rejected"][0]["content"]
    else:
        answer = row["messages"][-1]["content"]
    if on == "prompt":
        return question, prompt.id
    if on == "response":
        return answer, None
    return question + "\n\n" + answer, None


class _Exporter:
    """The per-round state of one export: writers, builders, dedup indexes and counters."""

    def __init__(
        self, round_dir: Path, kinds: list[str], policy: Policy, export: ExportConfig, options: ExportOptions,
        students: set[str], seed: int, eval_prompts: Sequence[Prompt] | None = None,
    ):
        self.round_dir = round_dir
        self.kinds = kinds
        self.policy = policy
        self.export = export
        self.options = options
        self.students = frozenset(students)
        self.seed = seed
        self.filter = CandidateFilter(options.filters)
        self.contamination = ContaminationFilter(eval_prompts, options.contamination)
        self.dedup = {k: Deduplicator(options.dedup) for k in kinds}
        self.rows: Counter[str] = Counter()
        self.tasks: dict[str, Counter[str]] = defaultdict(Counter)
        self.no_pass: dict[str, str] = {}
        self.grouped: set[str] = set()
        self.judge_names: Counter[str] = Counter()
        self.pairs = (
            PairBuilder(export.dpo, options.dpo, self.students, policy.name, seed) if "dpo" in kinds else None
        )
        self.critic: CritiqueBuilder | None = None
        self.tmp = {k: round_dir / (OUTPUTS[k] + ".tmp") for k in kinds}
        self.tmp["decisions"] = round_dir / (DECISIONS_FILE + ".tmp")
        self.files: dict[str, TextIO] = {}

    def on_partitioned(self, stats: GroupingStats) -> None:
        """Resolve the critique judge once every verdict has been seen, before the first row."""
        if "critique_sft" in self.kinds:
            name = resolve_critique_judge(stats.judges, self.options.critique.judge)
            self.critic = CritiqueBuilder(stats.judges[name], self.options.critique, self.export.language, self.seed)

    def batch(self, groups: list[PromptGroup], stats: GroupingStats) -> None:
        filtered = [PromptGroup(g.prompt, self.filter.apply(g.candidates, g.prompt.task), g.verdicts) for g in groups]
        selections = self.policy.select(filtered, stats.judges)
        for g, fg, sel in zip(groups, filtered, selections, strict=True):
            task = g.prompt.task
            self.grouped.add(g.prompt.id)
            self.tasks[task]["prompts"] += 1
            if sel.judge:
                self.judge_names[sel.judge] += 1
            reason = None
            if not sel.passed:
                reason = sel.reason or "nothing_passed"
                if g.candidates and not fg.candidates:
                    reason = "all_filtered"
                self.no_pass[g.prompt.id] = reason
                self.tasks[task]["no_pass"] += 1
            written = set()
            if "sft" in self.kinds:
                for kept in sel.kept:
                    language = language_for(self.export.language, g.prompt)
                    row = sft_row(g, kept, self.policy.name, language, stats.judges)
                    if self._write("sft", g.prompt, row):
                        written.add(kept.candidate.id)
            else:
                written = {k.candidate.id for k in sel.kept}
            if self.pairs is not None:
                for row in self.pairs.pairs(fg, sel):
                    row["metadata"]["source"] = SELECTED
                    self._write("dpo", g.prompt, row)
            if self.critic is not None:
                built = self.critic.row(g, sel)
                if built is not None:
                    if self._too_long(built):
                        self.critic.dropped["too_long"] += 1
                    else:
                        self._write("critique_sft", g.prompt, critique_row(g, built, self.policy.name))
            verifiers = frozenset(n for n, j in stats.judges.items() if j.kind == "verifier")
            for d in candidate_decisions(g, fg, sel, written, self.filter, reason, verifiers):
                self.files["decisions"].write(json.dumps(d, ensure_ascii=False) + "\n")

    def _too_long(self, row: dict[str, Any]) -> bool:
        cap = self.options.filters.max_row_chars
        return cap is not None and sum(len(m["content"]) for m in row["messages"]) > cap

    def _write(self, kind: str, prompt: Prompt, row: dict[str, Any]) -> bool:
        """Write a row unless it overlaps the held-out set or dedup finds it a repeat; True when written."""
        if self.contamination.drops(kind, prompt, row):
            return False
        text, group = _dedup_text(kind, self.options.dedup.on, prompt, row)
        if (self.options.dedup.exact or self.options.dedup.near) and self.dedup[kind].check(text, group) is not None:
            return False
        self.files[kind].write(json.dumps(row, ensure_ascii=False) + "\n")
        self.rows[kind] += 1
        self.tasks[prompt.task][kind] += 1
        return True

    def flush(self) -> None:
        for f in self.files.values():
            f.flush()
            os.fsync(f.fileno())

    def discard(self) -> None:
        for p in self.tmp.values():
            p.unlink(missing_ok=True)

    def dropped(self, kind: str) -> dict[str, int]:
        out: Counter[str] = Counter(self.dedup[kind].removed)
        if self.contamination.rows[kind]:
            out["contaminated"] += self.contamination.rows[kind]
        if kind == "dpo" and self.pairs is not None:
            out.update(self.pairs.dropped)
        if kind == "critique_sft" and self.critic is not None:
            out.update(self.critic.dropped)
        return dict(sorted(out.items()))


def _check(policy: Policy, export: ExportConfig, options: ExportOptions, kinds: list[str], students: set[str]) -> None:
    if export.dpo is not None:
        if not policy.ranks:
            raise ConfigError(
                "export.dpo", f"policy {policy.name!r} does not rank candidates, so it cannot choose DPO pairs"
            )
        if export.dpo == "on_policy" and not students:
            raise ConfigError("export.dpo", "on_policy pairs need a student model (models[].role: student)")
    for i, m in enumerate(options.mix):
        if m.target not in kinds:
            raise ConfigError(f"export.args.mix[{i}].target", f"{m.target!r} is not exported this round")


class ExportStage:
    """The runner's view of export: one part, every output file of the round's training data."""

    name = "export"

    def __init__(
        self, prompts: Sequence[Prompt], candidates_path: Path, verdicts_path: Path | None, round_dir: Path,
        selection: SelectionConfig, export: ExportConfig, students: set[str], seed: int,
        eval_prompts: Sequence[Prompt] | None = None,
    ):
        self.prompts = prompts
        self.eval_prompts = list(eval_prompts or [])
        self.candidates_path, self.verdicts_path = Path(candidates_path), verdicts_path
        self.round_dir = round_dir
        self.marker = RoundDir(round_dir).marker("export")
        self.selection, self.export, self.students, self.seed = selection, export, students, seed
        self.options = export_options(export)
        self.policy = build_policy(selection, seed)
        self.kinds = _wanted(export)
        _check(self.policy, export, self.options, self.kinds, students)

    def parts(self) -> dict[str, Any]:
        from thresher.identity import plain, prompts_identity, records_identity

        rd = RoundDir(self.round_dir)
        inputs = {
            "prompts": prompts_identity(self.prompts),
            "candidates": records_identity(self.candidates_path, _own(self.candidates_path, self.round_dir, rd.marker("sample"))),
            "verdicts": None if self.verdicts_path is None else records_identity(
                self.verdicts_path, _own(Path(self.verdicts_path), self.round_dir, rd.marker("judge"))),
            "mixed_in": {str(s.path): records_identity(s.path) for m in self.options.mix for s in m.sources},
        }
        if self.eval_prompts:  # rows are checked against them: another held-out set, another export
            inputs["eval_prompts"] = prompts_identity(self.eval_prompts)
        settings = {"selection": plain(self.selection), "export": plain(self.export),
                    "students": sorted(self.students), "seed": self.seed}
        return {"export": {**inputs, **settings}}

    def has_outputs(self, part: str) -> bool:
        return any((self.round_dir / name).exists() for name in OUTPUTS.values())

    def drop(self, part: str) -> None:
        for name in (*OUTPUTS.values(), DECISIONS_FILE):
            (self.round_dir / name).unlink(missing_ok=True)

    def run(self, todo: list[str]) -> dict[str, Any]:
        return _export(self)

    def describe(self, summary: dict[str, Any]) -> str:
        return ", ".join(f"{x['rows']} {kind} rows" for kind, x in sorted(summary["exports"].items()))


def _own(path: Path, round_dir: Path, marker: Path) -> Path | None:
    """The round's stage marker, when `path` is that round's own output (else its bytes identify it)."""
    return marker if path.parent == round_dir else None


def export_outcome(
    prompts: Sequence[Prompt],
    candidates_path: str | os.PathLike[str],
    verdicts_path: str | os.PathLike[str] | None,
    round_dir: str | os.PathLike[str],
    selection: SelectionConfig,
    export: ExportConfig,
    students: set[str],
    seed: int = 0,
    force: bool = False,
    progress: bool = True,
    label: str = "export",
    eval_prompts: Sequence[Prompt] | None = None,
) -> Outcome:
    """Select, pair and write this round's training data; return the runner's outcome (also in the stage marker).

    `students` names the models whose answers are on-policy (recipe
    `models[].role: student`). With `eval_prompts`, a row that copies one of
    them (see `contamination.py`) is dropped and counted. Skips all work when the marker holds the same
    fingerprint and the outputs exist, unless `force`.
    """
    round_dir = Path(round_dir)
    round_dir.mkdir(parents=True, exist_ok=True)
    stage = ExportStage(prompts, Path(candidates_path), None if verdicts_path is None else Path(verdicts_path),
                        round_dir, selection, export, students, seed, eval_prompts)
    if force:
        stage.marker.unlink(missing_ok=True)
        stage.drop("export")
    return run_stage(stage, label, quiet=not progress)


def _export(stage: ExportStage) -> dict[str, Any]:
    """The export itself: one streaming pass over the round's prompt groups, then mixing and renames."""
    round_dir, options, kinds, policy = stage.round_dir, stage.options, stage.kinds, stage.policy
    prompts, export, seed = stage.prompts, stage.export, stage.seed
    for stale in round_dir.glob(".export-groups-*"):  # left by an export that was killed
        shutil.rmtree(stale, ignore_errors=True)

    from tqdm import tqdm

    stats = GroupingStats()
    ex = _Exporter(round_dir, kinds, policy, export, options, stage.students, seed, stage.eval_prompts)
    try:
        with ExitStack() as stack:
            ex.files = {k: stack.enter_context(open(p, "w", encoding="utf-8")) for k, p in ex.tmp.items()}
            bar = stack.enter_context(tqdm(total=len(prompts), desc="export", unit="prompt", disable=None))
            for groups in group_by_prompt(
                prompts, stage.candidates_path, stage.verdicts_path, round_dir, stats,
                bucket_bytes=max(1, int(options.bucket_mb * 1024 * 1024)), on_partitioned=ex.on_partitioned,
            ):
                ex.batch(groups, stats)
                bar.update(len(groups))
            ex.flush()
    except BaseException:
        ex.discard()
        raise
    summary = _summary(prompts, stats, ex, policy, export, seed)
    mixes = {}
    for m in options.mix:
        own = ex.tmp[m.target]
        sources = [("selected", own, m.ratio)] + [
            (s.name or Path(s.path).stem, Path(s.path), s.ratio) for s in m.sources
        ]
        mixes[m.target] = mix_files(
            sources, own.with_name(own.name + ".mixed"), seed, m.repeats, m.total, keep=_mix_check(ex, m.target)
        )
        os.replace(own.with_name(own.name + ".mixed"), own)
        summary["exports"][m.target]["rows"] = mixes[m.target]["rows"]
        summary["exports"][m.target]["dropped"] = ex.dropped(m.target)
        summary["contamination"] = ex.contamination.summary()
    if mixes:
        summary["mix"] = mixes
    for k in kinds:
        os.replace(ex.tmp[k], round_dir / OUTPUTS[k])
    os.replace(ex.tmp["decisions"], round_dir / DECISIONS_FILE)
    return summary


def _mix_check(ex: _Exporter, kind: str) -> Callable[[str, dict[str, Any]], bool] | None:
    """Rows mixed in from other files pass the contamination check too (this round's own are checked already)."""
    if not ex.contamination.active:
        return None
    return lambda source, row: source == "selected" or not ex.contamination.drops(kind, None, row)


def _summary(
    prompts: Sequence[Prompt], stats: GroupingStats, ex: _Exporter, policy: Policy, export: ExportConfig, seed: int
) -> dict[str, Any]:
    no_pass = dict(ex.no_pass)
    for p in prompts:
        if p.id not in ex.grouped:  # no candidates at all: the policy never saw it
            no_pass[p.id] = "no_candidates"
            ex.tasks[p.task]["prompts"] += 1
            ex.tasks[p.task]["no_pass"] += 1
    reasons = Counter(no_pass.values())
    exports: dict[str, Any] = {}
    for k in ex.kinds:
        exports[k] = {"path": OUTPUTS[k], "rows": ex.rows[k], "dropped": ex.dropped(k)}
    if "dpo" in exports:
        exports["dpo"]["rule"] = export.dpo
    if "critique_sft" in exports and ex.critic is not None:
        exports["critique_sft"]["judge"] = ex.critic.judge.name
        exports["critique_sft"]["language"] = "+".join(sorted(ex.critic.languages)) or export.language
    return {
        "policy": policy.name,
        "judge": ex.judge_names.most_common(1)[0][0] if ex.judge_names else None,
        "seed": seed,
        "prompts": len(prompts),
        "prompts_passed": len(prompts) - len(no_pass),
        "no_pass": {"count": len(no_pass), "reasons": dict(sorted(reasons.items())), "prompt_ids": sorted(no_pass)},
        "candidates": {
            "read": stats.candidates,
            "duplicates": stats.duplicate_candidates,
            "filtered": dict(sorted(ex.filter.removed.items())),
        },
        "verdicts": {
            "read": stats.verdicts,
            "duplicates": stats.duplicate_verdicts,
            "orphans": stats.orphan_verdicts,
            "errors": {n: j.errors for n, j in sorted(stats.judges.items()) if j.errors},
            "judges": {n: {"kind": j.kind, "verdicts": j.verdicts, "errors": j.errors} for n, j in sorted(stats.judges.items())},
        },
        "exports": exports,
        "tasks": {t: dict(sorted(c.items())) for t, c in sorted(ex.tasks.items())},
        "contamination": ex.contamination.summary(),
    }


def export_stage(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """`export_outcome(...)`'s summary: the same arguments, the stage summary it recorded (see `export_outcome`)."""
    return export_outcome(*args, **kwargs).summary
