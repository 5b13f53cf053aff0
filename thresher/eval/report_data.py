"""What the report reads besides metrics: the other arm, each round's export summary, training examples.

A run with a control arm (the quickstart writes `runs/quickstart` and
`runs/quickstart-control`) is reported beside it: `<name>-control` is found
next to `<name>` and the other way round, or named with `thresher report
RUN --compare OTHER`.

Training examples show what selection did, not only what the student
answers: for a few prompts per task, every candidate with each judge's
score, verdict and critique, whether it was kept (an SFT row), its place in
a DPO pair, and the critique-SFT row the prompt produced; plus prompts where
nothing was kept, with the reason. They are read from the round's shards
once and kept in `report_examples.json`, keyed by the export's fingerprint,
so a report rewritten every round does not read every round's shards again.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from thresher.errors import UserError
from thresher.records import Candidate, Prompt, Verdict
from thresher.runner import stage_summary
from thresher.store import RoundDir, RunDir, read_json, read_records, write_json

CONTROL_SUFFIX = "-control"
EXAMPLES_FILE = "report_examples.json"
KEPT_PER_TASK = 2
"""Prompts per task (and round) shown with a kept candidate."""
REJECTED_PER_TASK = 1
"""Prompts per task (and round) shown where nothing was kept."""
TEXT_CHARS = 1200
"""Longest answer or critique text kept for the report."""


def partner_arm(run_dir: str | Path) -> Path | None:
    """The other arm of a main / control pair (`<name>` and `<name>-control` side by side), if it has metrics."""
    path = Path(run_dir).resolve()
    name = path.name
    other = path.with_name(name[: -len(CONTROL_SUFFIX)] if name.endswith(CONTROL_SUFFIX) else name + CONTROL_SUFFIX)
    return other if other != path and RunDir(other).metrics.is_file() else None


def resolve_partner(run_dir: str | Path, compare: str | Path | bool | None) -> Path | None:
    """`compare` False: no other arm; None: the detected one; a path: that run (which must have metrics)."""
    if compare is False:
        return None
    if compare is None or compare is True:
        return partner_arm(run_dir)
    other = RunDir(compare)
    if not other.metrics.is_file():
        raise UserError(f"{other.metrics}: the run to compare with has no metrics")
    return other.path


def export_summary(round_dir: str | Path) -> dict[str, Any] | None:
    """A round's finished export summary (rows kept, dropped by reason, contamination), or None."""
    return stage_summary(RoundDir(Path(round_dir)).marker("export"))


def export_summaries(run_dir: str | Path) -> dict[int, dict[str, Any]]:
    """Each round's export summary, by round."""
    out = {}
    for rd in RunDir(run_dir).rounds():
        summary = export_summary(rd.path)
        if summary is not None:
            out[rd.index] = summary
    return out


def _clip(text: str | None, limit: int = TEXT_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f" ... [{len(text) - limit} more characters]"


def _rows(path: Path) -> list[dict[str, Any]]:
    return list(read_records(path)) if path.exists() else []


def _provenance(row: dict[str, Any], key: str) -> Any:
    """A provenance field of an export row, at the top level or under `metadata`."""
    if key in row:
        return row[key]
    meta = row.get("metadata")
    return meta.get(key) if isinstance(meta, dict) else None


def _pick_prompts(
    rd: RoundDir, summary: dict[str, Any], sft: list[dict[str, Any]]
) -> tuple[dict[str, Prompt], dict[str, str]]:
    """The prompts to show (a few kept and a few rejected per task) and each one's status."""
    kept_ids = list(dict.fromkeys(pid for row in sft if (pid := _provenance(row, "prompt_id")) is not None))
    rejected = set(summary.get("no_pass", {}).get("prompt_ids", []))
    if not rd.prompts.is_file():
        return {}, {}
    wanted = rejected | set(kept_ids)
    prompts = {p.id: p for p in read_records(rd.prompts, Prompt) if p.id in wanted}
    status: dict[str, str] = {}
    taken: dict[tuple[str, str], int] = defaultdict(int)
    for pid in kept_ids:
        p = prompts.get(pid)
        if p is not None and taken[(p.task, "kept")] < KEPT_PER_TASK:
            taken[(p.task, "kept")] += 1
            status[pid] = "kept"
    for pid in sorted(rejected):
        p = prompts.get(pid)
        if p is not None and taken[(p.task, "rejected")] < REJECTED_PER_TASK:
            taken[(p.task, "rejected")] += 1
            status[pid] = "nothing kept"
    return {pid: prompts[pid] for pid in status}, status


def _collect(rd: RoundDir, summary: dict[str, Any]) -> list[dict[str, Any]]:
    sft = _rows(rd.sft)
    prompts, status = _pick_prompts(rd, summary, sft)
    if not prompts:
        return []
    kept = {
        cid for r in sft if _provenance(r, "prompt_id") in prompts
        for cid in (_provenance(r, "candidate_ids") or [_provenance(r, "candidate_id")])
    }
    dpo: dict[str, list[str]] = defaultdict(list)
    for r in _rows(rd.dpo):
        if _provenance(r, "prompt_id") in prompts:
            dpo[str(_provenance(r, "chosen_id"))].append("chosen")
            dpo[str(_provenance(r, "rejected_id"))].append("rejected")
    critiques = {}
    for r in _rows(rd.critique_sft):
        pid = _provenance(r, "prompt_id")
        if pid in prompts and pid not in critiques:
            critiques[pid] = _clip(r["messages"][-1]["content"])
    cands: dict[str, list[Candidate]] = defaultdict(list)
    if rd.candidates.exists():
        for c in read_records(rd.candidates, Candidate):
            if c.prompt_id in prompts:
                cands[c.prompt_id].append(c)
    verdicts: dict[str, list[Verdict]] = defaultdict(list)
    if rd.verdicts.exists():
        for v in read_records(rd.verdicts, Verdict):
            if v.prompt_id in prompts:
                verdicts[v.candidate_id].append(v)
    no_pass_reason = _no_pass_reasons(summary, {pid for pid, st in status.items() if st != "kept"})
    out = []
    for pid, p in sorted(prompts.items(), key=lambda kv: (kv[1].task, status[kv[0]] != "kept", kv[0])):
        out.append({
            "task": p.task, "prompt_id": pid, "prompt": _clip(p.question), "reference": p.reference,
            "status": status[pid], "reason": no_pass_reason.get(pid), "critique_row": critiques.get(pid),
            "candidates": [
                {"id": c.id, "model": c.model, "text": _clip(c.text), "kept": c.id in kept, "dpo": dpo.get(c.id, []),
                 "verdicts": [{"judge": v.judge, "score": v.score, "correct": v.correct,
                               "critique": _clip(v.critique, 400), "error": v.error}
                              for v in sorted(verdicts.get(c.id, []), key=lambda v: v.judge)]}
                for c in sorted(cands.get(pid, []), key=lambda c: (c.model, c.index))
            ],
        })
    return out


def _no_pass_reasons(summary: dict[str, Any], ids: set[str]) -> dict[str, str]:
    """Why nothing was kept, where the summary can tell: it counts reasons, so only when there is one."""
    only = list(summary.get("no_pass", {}).get("reasons", {}))
    return dict.fromkeys(ids, only[0]) if len(only) == 1 else {}


def training_examples(round_dir: str | Path) -> list[dict[str, Any]]:
    """A few kept and rejected training prompts of a round with every candidate, verdict and critique."""
    rd = RoundDir(Path(round_dir))
    summary = export_summary(rd.path)
    if summary is None:
        return []
    key = summary.get("fingerprint")
    cache = rd.path / EXAMPLES_FILE
    if key is not None and cache.is_file():
        cached = read_json(cache)
        if cached.get("fingerprint") == key:
            return cached["examples"]
    examples = _collect(rd, summary)
    if key is not None:
        write_json(cache, {"fingerprint": key, "examples": examples})
    return examples
