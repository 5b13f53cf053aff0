"""The one row schema SFT and critique-SFT exports share: `messages` plus one `metadata` column.

TRL's `SFTTrainer` reads `messages` and nothing else, and users load a
round's training data as `load_dataset("json", data_files=[sft,
critique_sft])`. The `datasets` JSON loader takes the schema of the first
block it reads and casts every later block to it, so the two files must have
the same columns, the same keys inside `metadata`, and no value that is null
in a whole file where the other file has a number or a string (a column of
nulls is typed `null`, and nothing casts to that). So every metadata value
here is always present and never null:

    kind           "sft" or "critique_sft"
    source         "selected" (this round's own rows); mixing writes the source's name
    prompt_id, task
    policy         the selection policy of the round
    judge          who chose the row: the judge (or rule: "vote(math)", "random") that
                   kept an SFT answer; the judge whose reasoning a critique row teaches
    judge_kind     verifier, reward, llm, listwise, pairwise, or "rule" for a rule
    language       the export's language
    candidate_ids  the candidates the row is made of: the kept answer (SFT), or the
                   candidates a critique row shows, in order (labelled "1".."N")
    models         the model of each of those candidates
    chosen         for each of those candidates, whether the row names it the best
    scores         every numeric score a judge gave those candidates:
                   [{"candidate_id", "judge", "score"}], plus the policy's own score
                   when a rule (a vote share) kept the answer

Scores sit in a list of entries rather than a `score` field because the
random control keeps answers without any score; an empty list per row is fine,
a null float column is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from thresher.feedback.groups import JudgeInfo, PromptGroup, judge_score
from thresher.feedback.policies import Kept

SELECTED = "selected"
"""`metadata.source` of a round's own rows; mixed-in rows carry their source's name."""

SFT_KINDS = ("sft", "critique_sft")


def _scores(group: PromptGroup, candidate_ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for cid in candidate_ids:
        for judge, v in sorted(group.verdicts.get(cid, {}).items()):
            s = judge_score(v)
            if s is not None:
                out.append({"candidate_id": cid, "judge": judge, "score": s})
    return out


def _judge_kind(judge: str, judges: Mapping[str, JudgeInfo]) -> str:
    return judges[judge].kind if judge in judges else "rule"


def sft_row(
    group: PromptGroup, kept: Kept, policy: str, language: str, judges: Mapping[str, JudgeInfo]
) -> dict[str, Any]:
    """The SFT row of one kept answer: the prompt's messages, the answer, and its provenance."""
    c = kept.candidate
    scores = _scores(group, [c.id])
    if kept.score is not None and kept.judge not in group.verdicts.get(c.id, {}):
        scores.append({"candidate_id": c.id, "judge": kept.judge, "score": float(kept.score)})
    return {
        "messages": [*group.prompt.messages, {"role": "assistant", "content": c.text}],
        "metadata": {
            "kind": "sft",
            "source": SELECTED,
            "prompt_id": group.prompt.id,
            "task": group.prompt.task,
            "policy": policy,
            "judge": kept.judge,
            "judge_kind": _judge_kind(kept.judge, judges),
            "language": language,
            "candidate_ids": [c.id],
            "models": [c.model],
            "chosen": [True],
            "scores": scores,
        },
    }


def critique_row(group: PromptGroup, built: dict[str, Any], policy: str) -> dict[str, Any]:
    """A critique builder's row (`feedback/critique.py`) in the shared schema."""
    order = list(built["order"])
    best = set(built["best"])
    return {
        "messages": built["messages"],
        "metadata": {
            "kind": "critique_sft",
            "source": SELECTED,
            "prompt_id": built["prompt_id"],
            "task": built["task"],
            "policy": policy,
            "judge": built["judge"],
            "judge_kind": built["judge_kind"],
            "language": built["language"],
            "candidate_ids": order,
            "models": list(built["models"]),
            "chosen": [cid in best for cid in order],
            "scores": _scores(group, order),
        },
    }


def row_task(row: Mapping[str, Any]) -> str | None:
    """A row's task, whether it keeps it in `metadata` (thresher's rows) or at the top (other data)."""
    meta = row.get("metadata")
    task = meta.get("task") if isinstance(meta, dict) else None
    task = task if task is not None else row.get("task")
    return task if isinstance(task, str) else None


def set_source(row: dict[str, Any], source: str) -> None:
    """Record where a mixed row came from: in `metadata` when the row has one, else at the top."""
    meta = row.get("metadata")
    if isinstance(meta, dict):
        meta["source"] = source
    else:
        row.setdefault("source", source)


def sft_features() -> Any:
    """The `datasets.Features` of the shared SFT / critique-SFT schema (for Parquet and save_to_disk)."""
    from datasets import Features, List, Value

    message = {"role": Value("string"), "content": Value("string")}
    return Features({
        "messages": List(message),
        "metadata": {
            "kind": Value("string"),
            "source": Value("string"),
            "prompt_id": Value("string"),
            "task": Value("string"),
            "policy": Value("string"),
            "judge": Value("string"),
            "judge_kind": Value("string"),
            "language": Value("string"),
            "candidate_ids": List(Value("string")),
            "models": List(Value("string")),
            "chosen": List(Value("bool")),
            "scores": List({"candidate_id": Value("string"), "judge": Value("string"), "score": Value("float64")}),
        },
    })


def dpo_features() -> Any:
    """The `datasets.Features` of a DPO row (`records.PreferencePair`)."""
    from datasets import Features, List, Value

    message = {"role": Value("string"), "content": Value("string")}
    return Features({
        "prompt_id": Value("string"),
        "task": Value("string"),
        "prompt": List(message),
        "chosen": List(message),
        "rejected": List(message),
        "chosen_score": Value("float64"),
        "rejected_score": Value("float64"),
        "margin": Value("float64"),
        "rule": Value("string"),
        "chosen_model": Value("string"),
        "rejected_model": Value("string"),
        "metadata": {
            "judge": Value("string"),
            "policy": Value("string"),
            "chosen_id": Value("string"),
            "rejected_id": Value("string"),
            "source": Value("string"),
        },
    })
