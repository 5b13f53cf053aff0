"""The prompts stage of a round: draw the round's train prompts once and keep them in `prompts.jsonl`.

Later stages answer exactly these prompts, so a resumed round must not draw
new ones; but a changed prompt source (another file, count or seed) must
not be answered with the old ones either. The runner fingerprints the source
(with the bytes of a JSONL file it names) and draws again only when it changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from thresher.config import PromptSource
from thresher.records import Prompt, read_jsonl, write_jsonl
from thresher.runner import run_stage
from thresher.store import RoundDir


class PromptsStage:
    """The runner's view of drawing a round's prompts: one part, `prompts.jsonl`."""

    name = "prompts"

    def __init__(self, source: PromptSource, rd: RoundDir, key: str = "prompts.train"):
        self.source, self.rd, self.key = source, rd, key
        self.marker = rd.marker("prompts")

    def parts(self) -> dict[str, Any]:
        from thresher.identity import plain, records_identity

        data = {"source": plain(self.source)}
        if self.source.path and Path(self.source.path).is_file():
            data["file"] = records_identity(self.source.path)
        return {"prompts": data}

    def has_outputs(self, part: str) -> bool:
        return self.rd.prompts.exists()

    def drop(self, part: str) -> None:
        self.rd.prompts.unlink(missing_ok=True)

    def run(self, todo: list[str]) -> dict[str, Any]:
        from collections import Counter

        from thresher.prompts import load_prompts

        prompts = load_prompts(self.source, self.key)
        write_jsonl(self.rd.prompts, prompts)
        return {"prompts": len(prompts), "tasks": dict(sorted(Counter(p.task for p in prompts).items()))}

    def describe(self, summary: dict[str, Any]) -> str:
        tasks = ", ".join(f"{t} {n}" for t, n in summary.get("tasks", {}).items())
        return f"{summary.get('prompts', 0)} prompts ({tasks})"


def stage_prompts(source: PromptSource, rd: RoundDir, progress: bool = True, label: str = "prompts") -> list[Prompt]:
    """The round's prompts: drawn from `source` the first time (or after it changed), then read back."""
    rd.path.mkdir(parents=True, exist_ok=True)
    run_stage(PromptsStage(source, rd), label, quiet=not progress)
    return list(read_jsonl(rd.prompts, Prompt))
