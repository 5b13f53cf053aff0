"""The export summary as a plain-text table: rows kept and dropped, by export and reason."""

from __future__ import annotations

from typing import Any


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) or "-"


def summary_table(summary: dict[str, Any], title: str = "") -> str:
    """What `thresher export` prints and the round loop logs."""
    judge = f" (judge {summary['judge']})" if summary.get("judge") else ""
    head = (
        f"{title + ': ' if title else ''}policy {summary['policy']}{judge}; "
        f"{summary['prompts_passed']} of {summary['prompts']} prompts passed"
        + ("; outputs were complete, nothing redone" if summary.get("skipped") else "")
    )
    rows = [("export", "rows", "dropped (reason count)")]
    for kind, e in summary["exports"].items():
        extra = f" [{e['rule']}]" if "rule" in e else (f" [{e['judge']}, {e['language']}]" if "judge" in e else "")
        rows.append((e["path"] + extra, str(e["rows"]), _reasons(e["dropped"])))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [head, ""] + [f"{a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows] + [""]
    cands = summary["candidates"]
    lines.append(
        f"candidates: {cands['read']} read, filtered: {_reasons(cands['filtered'])}"
        + (f", duplicates {cands['duplicates']}" if cands["duplicates"] else "")
    )
    verd = summary["verdicts"]
    lines.append(
        f"verdicts: {verd['read']} read, errors (never used as scores): {_reasons(verd['errors'])}"
        + (f", orphans {verd['orphans']}" if verd["orphans"] else "")
    )
    no_pass = summary["no_pass"]
    lines.append(f"prompts with no passing candidate: {no_pass['count']} ({_reasons(no_pass['reasons'])})")
    if "mix" in summary:
        for kind, m in summary["mix"].items():
            lines.append(f"mixed {kind}: {m['rows']} rows, by source: {_reasons(m['by_source'])}")
    return "\n".join(lines)
