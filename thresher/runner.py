"""The one stage runner: markers, fingerprints, skip / resume / recompute, and the summary line.

Every stage (sample, judge, export, train, eval) says three things:
what each of its output *parts* depends on (`parts()`: part name ->
JSON-able components such as the prompt set, a model's identity and its
sampling settings), how to remove one part's outputs (`drop(part)`), and how
to compute the parts that are not done (`run(todo)`, resuming from whatever
records of those parts are on disk). The runner owns everything else, the
same way for every stage:

- the marker (`RoundDir.marker(stage)`, JSON) records per part the hash of
  its components, the components themselves (so a change can be named), and
  whether the part finished;
- a part whose hash matches and finished is skipped; a part whose hash
  differs is dropped and recomputed, and the runner says which component
  changed (`sample teacher: recomputing (sampling.temperature: 1.0 -> 0.7)`);
- outputs that no marker vouches for (an older layout, a lost marker) are
  dropped rather than trusted: a stale result is never returned silently;
- the marker is written before the work starts, with the parts not done, so
  a run killed half way resumes the same parts and a changed request drops
  the half-written ones.

The stage decides what goes into a fingerprint (curator keeps the parser
out of its cache key on purpose; here a judge's arguments are in, its
progress-bar settings are not).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from thresher.store import read_json, write_json

MARKER_VERSION = 1


def digest(value: Any) -> str:
    """A short stable hash of a JSON-able value (dict keys sorted)."""
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(blob.encode("utf-8"), digest_size=10).hexdigest()


def file_digest(path: str | Path) -> str:
    """The hash of a file's bytes, or of a directory's `*.jsonl` files (names and bytes)."""
    p = Path(path)
    h = hashlib.blake2b(digest_size=10)
    files = sorted(x for x in p.glob("*.jsonl") if x.is_file()) if p.is_dir() else [p]
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def changes(old: Any, new: Any, path: str = "") -> list[str]:
    """What differs between two component trees, as `key.path: old -> new` lines (at most a few)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        # leaves first: `selection.policy: best -> random` says more than the policy's arguments that went with it
        for k in sorted(set(old) | set(new), key=lambda k: (isinstance(new.get(k, old.get(k)), dict), str(k))):
            sub = f"{path}.{k}" if path else str(k)
            if k not in old:
                out.append(f"{sub}: added")
            elif k not in new:
                out.append(f"{sub}: removed")
            else:
                out += changes(old[k], new[k], sub)
        return out
    if old == new:
        return []
    return [f"{path or 'value'}: {_short(old)} -> {_short(new)}"]


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


class Stage(Protocol):
    """One stage of a round, as the runner sees it."""

    name: str
    """`sample`, `judge`, `export`, `train`, `eval`: also the marker's file name."""
    marker: Path

    def parts(self) -> dict[str, Any]:
        """Output part -> the components it depends on (JSON-able). Computed just before the stage runs."""
        ...

    def drop(self, part: str) -> None:
        """Remove the outputs of one part (they were made from other inputs or settings)."""
        ...

    def has_outputs(self, part: str) -> bool:
        """Whether anything of this part is on disk (finished or not)."""
        ...

    def run(self, todo: list[str]) -> dict[str, Any]:
        """Compute the parts in `todo`, resuming from their records on disk; return the stage summary."""
        ...

    def describe(self, summary: dict[str, Any]) -> str:
        """One line of what the summary says (`4800 candidates for 1600 prompts`)."""
        ...


@dataclass(slots=True)
class Outcome:
    """What the runner did with a stage: which parts it ran, skipped and recomputed, and the summary."""

    stage: str
    summary: dict[str, Any]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    recomputed: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def fingerprint(self) -> str:
        """One hash over the parts' hashes: what downstream stages record as this stage's identity."""
        return self.summary.get("fingerprint", "")


def read_marker(path: Path) -> dict[str, Any]:
    """A stage marker, or an empty one when there is none (or it is from an older format)."""
    if not path.is_file():
        return {"parts": {}}
    data = read_json(path)
    if not isinstance(data, dict) or data.get("version") != MARKER_VERSION:
        return {"parts": {}}
    return data


def stage_fingerprint(marker: Path) -> str | None:
    """The fingerprint of a finished stage's outputs, from its marker (None when not finished)."""
    data = read_marker(marker)
    if not data.get("finished"):
        return None
    return data.get("fingerprint")


def stage_summary(marker: Path) -> dict[str, Any] | None:
    """The summary a finished stage recorded (export kept / dropped counts, sampling totals), or None."""
    data = read_marker(marker)
    return data.get("summary") if data.get("finished") else None


def _say_default(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _silent(_msg: str) -> None:
    pass


def run_stage(
    stage: Stage, label: str | None = None, say: Callable[[str], None] | None = None, quiet: bool = False
) -> Outcome:
    """Run `stage` as its marker and fingerprints say: skip, resume, or recompute what changed.

    `label` prefixes every line (`round 1 · sample`); `say` receives them
    (stderr by default); `quiet` drops them.
    """
    say = _silent if quiet else (say or _say_default)
    label = label or stage.name
    start = time.perf_counter()
    wanted = stage.parts()
    hashes = {p: digest(c) for p, c in wanted.items()}
    old = read_marker(stage.marker)
    old_parts: dict[str, Any] = old.get("parts", {})
    outcome = Outcome(stage.name, {})

    for part, entry in old_parts.items():  # parts no longer wanted, or made from other inputs
        if part not in hashes:
            stage.drop(part)
        elif entry.get("hash") != hashes[part]:
            why = changes(entry.get("components"), wanted[part]) or ["inputs changed"]
            outcome.recomputed[part] = why
            stage.drop(part)
    for part in hashes:
        if part not in old_parts and stage.has_outputs(part):  # outputs no marker vouches for
            outcome.recomputed[part] = ["outputs on disk with no record of what made them"]
            stage.drop(part)
        elif old_parts.get(part, {}).get("done") and part not in outcome.recomputed and not stage.has_outputs(part):
            outcome.recomputed[part] = ["its outputs were removed"]
    for part, why in outcome.recomputed.items():
        name = f"{label} {part}" if part != stage.name else label
        say(f"{name}: recomputing ({'; '.join(why[:4])}{'; ...' if len(why) > 4 else ''})")

    done = [p for p in hashes if p not in outcome.recomputed and old_parts.get(p, {}).get("done")]
    todo = [p for p in hashes if p not in done]
    fingerprint = digest(sorted(hashes.items()))
    if not todo and old.get("finished") and old.get("fingerprint") == fingerprint:
        outcome.summary = old.get("summary", {})
        outcome.skipped = done
        say(f"{label}: complete already, skipped")
        return outcome

    def write(finished: bool, summary: dict[str, Any], done_parts: Iterable[str]) -> None:
        done_set = set(done_parts)
        write_json(stage.marker, {
            "version": MARKER_VERSION,
            "stage": stage.name,
            "finished": finished,
            "fingerprint": fingerprint,
            "parts": {p: {"hash": hashes[p], "done": p in done_set, "components": wanted[p]} for p in hashes},
            "summary": summary,
        })

    write(False, {}, done)  # before any work: half-written outputs now belong to this request
    summary = stage.run(todo)
    summary["fingerprint"] = fingerprint
    write(True, summary, hashes)
    outcome.summary = summary
    outcome.ran = todo
    outcome.skipped = done
    outcome.seconds = time.perf_counter() - start
    detail = stage.describe(summary)
    say(f"{label}: done in {outcome.seconds:.1f}s" + (f" — {detail}" if detail else ""))
    return outcome
