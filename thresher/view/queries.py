"""What each page asks the index: a filtered page of prompts, one prompt in full, a round overview.

Every query is SQL over the DuckDB index (`index.py`) with bound
parameters; pages never load a run into Python, they fetch the rows they
show. Filters come from the URL's query string, parsed into `Filters` once,
so a bad value (a page number that is not a number) is a 400 naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from thresher.runner import stage_summary
from thresher.store import RoundDir, read_json

FLAGS = {
    "disagree": "judges disagree",
    "right_low": "verifier right, low score",
    "wrong_high": "verifier wrong, high score",
    "errors": "judge errors",
}
"""Boolean prompt filters and their labels."""
STATUSES = ("kept", "dropped", "not_exported")
PAGE_SIZES = (20, 50, 100, 200)


class BadQuery(ValueError):
    """A query-string value that cannot be used; its message names the parameter."""


@dataclass(slots=True)
class Filters:
    """The prompt list's filters, as the URL's query string gives them."""

    run: int | None = None
    round: int | None = None
    task: str | None = None
    model: str | None = None
    status: str | None = None
    reason: str | None = None
    q: str | None = None
    flags: list[str] = field(default_factory=list)
    page: int = 1
    per: int = 50

    @classmethod
    def parse(cls, query: Mapping[str, list[str]]) -> Filters:
        f = cls()
        ints = {"run", "round", "page", "per"}
        for fl in fields(cls):
            if fl.name == "flags":
                continue
            values = [v for v in query.get(fl.name, []) if v != ""]
            if not values:
                continue
            value: Any = values[-1]
            if fl.name in ints:
                try:
                    value = int(value)
                except ValueError:
                    raise BadQuery(f"{fl.name}: expected a whole number, got {value!r}") from None
            setattr(f, fl.name, value)
        f.flags = [x for x in FLAGS if query.get(x, [""])[-1] in ("1", "on", "true")]
        if f.status is not None and f.status not in STATUSES:
            raise BadQuery(f"status: {f.status!r} is not one of {', '.join(STATUSES)}")
        if f.page < 1:
            raise BadQuery("page: must be at least 1")
        if not 1 <= f.per <= 500:
            raise BadQuery("per: must be between 1 and 500")
        return f

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition on `prompt_index` and its parameters."""
        conds, params = ["true"], []
        for col in ("run", "round", "task", "status"):
            value = getattr(self, col)
            if value is not None:
                conds.append(f"{col} = ?")
                params.append(value)
        if self.model is not None:
            conds.append("list_contains(models, ?)")
            params.append(self.model)
        if self.reason is not None:
            conds.append("list_contains(reasons, ?)")
            params.append(self.reason)
        for flag in self.flags:
            conds.append("errors > 0" if flag == "errors" else flag)
        if self.q:
            conds.append("(contains(haystack, ?) OR prompt_id = ?)")
            params += [self.q.lower(), self.q]
        return " AND ".join(conds), params

    def query_string(self, **changes: Any) -> str:
        """This filter set as a query string, with `changes` applied (e.g. page=3)."""
        from urllib.parse import urlencode

        items: list[tuple[str, Any]] = []
        for fl in fields(self):
            value = changes.get(fl.name, getattr(self, fl.name))
            if fl.name == "flags":
                items += [(x, "1") for x in value]
            elif value is not None and not (fl.name == "page" and value == 1) and not (fl.name == "per" and value == 50):
                items.append((fl.name, value))
        return urlencode(items)


def _dicts(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def choices(con: Any) -> dict[str, Any]:
    """The values each filter can take (for the form's drop-downs): small, read once at startup."""
    col = lambda sql: [r[0] for r in con.execute(sql).fetchall()]
    return {
        "runs": con.execute("SELECT run, name, path FROM runs ORDER BY run").fetchall(),
        "rounds": col("SELECT DISTINCT round FROM prompts ORDER BY 1"),
        "tasks": col("SELECT DISTINCT task FROM prompts ORDER BY 1"),
        "models": col("SELECT DISTINCT model FROM candidates ORDER BY 1"),
        "reasons": col("SELECT DISTINCT unnest(reasons) FROM prompt_index ORDER BY 1"),
    }


def prompt_page(con: Any, f: Filters) -> tuple[list[dict[str, Any]], int]:
    """One page of prompts matching `f`, in run, round and file order, and how many match in all.

    One scan answers both: the window count rides along with the page's rows
    (a second query counts only when the page is past the end).
    """
    where, params = f.where()
    rows = _dicts(con.execute(
        f"""SELECT run, round, prompt_id, task, question, n_candidates, models, n_kept, status, reasons, errors,
                   disagree, right_low, wrong_high, count(*) OVER () AS total
            FROM prompt_index WHERE {where} ORDER BY run, round, ord LIMIT ? OFFSET ?""",
        [*params, f.per, (f.page - 1) * f.per],
    ))
    if rows or f.page == 1:
        return rows, rows[0]["total"] if rows else 0
    return rows, con.execute(f"SELECT count(*) FROM prompt_index WHERE {where}", params).fetchone()[0]


def prompt_detail(con: Any, run: int, rnd: int, prompt_id: str) -> dict[str, Any] | None:
    """One prompt with its candidates, every verdict, the decisions, its training rows and DPO pairs."""
    key = [run, rnd, prompt_id]
    head = _dicts(con.execute(
        """SELECT p.*, i.status, i.reasons, i.n_kept, r.name AS run_name FROM prompts p
           JOIN prompt_index i USING (run, round, prompt_id) JOIN runs r USING (run)
           WHERE p.run = ? AND p.round = ? AND p.prompt_id = ?""", key))
    if not head:
        return None
    cands = _dicts(con.execute(
        """SELECT c.candidate_id, c.model, c.idx, c.text, c.num_tokens, c.finish_reason, i.decision, i.reason,
                  i.disagree, i.right_low, i.wrong_high, d.score AS policy_score, d.rank
           FROM candidates c JOIN candidate_info i USING (run, round, candidate_id)
           LEFT JOIN decisions d USING (run, round, candidate_id)
           WHERE c.run = ? AND c.round = ? AND c.prompt_id = ?
           ORDER BY i.decision = 'kept' DESC, d.rank NULLS LAST, c.model, c.idx""", key))
    verdicts = _dicts(con.execute(
        """SELECT v.candidate_id, v.judge, j.kind, v.score, v.correct, v.critique, v.error, v.metadata
           FROM verdicts v LEFT JOIN judges j USING (run, round, judge)
           WHERE v.run = ? AND v.round = ? AND v.prompt_id = ? ORDER BY v.judge""", key))
    by_cand: dict[str, list[dict[str, Any]]] = {}
    for v in verdicts:
        by_cand.setdefault(v["candidate_id"], []).append(v)
    for c in cands:
        c["verdicts"] = by_cand.get(c["candidate_id"], [])
    rows = _dicts(con.execute(
        """SELECT kind, candidate_ids, chosen, judge, messages, metadata FROM rows
           WHERE run = ? AND round = ? AND prompt_id = ? ORDER BY kind DESC""", key))
    for r in rows:
        r["messages"] = json.loads(r["messages"]) if r["messages"] else []
        r["metadata"] = json.loads(r["metadata"]) if r["metadata"] else {}
    pairs = _dicts(con.execute(
        """SELECT chosen_id, rejected_id, chosen_model, rejected_model, chosen_score, rejected_score, margin, rule
           FROM pairs WHERE run = ? AND round = ? AND prompt_id = ? ORDER BY margin DESC""", key))
    judges = [r[0] for r in con.execute(
        "SELECT judge FROM judges WHERE run = ? AND round = ? ORDER BY judge", [run, rnd]).fetchall()]
    return {"prompt": head[0], "candidates": cands, "rows": rows, "pairs": pairs, "judges": judges}


def _metrics(eval_dict: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return eval_dict.get("tasks", {}) if isinstance(eval_dict.get("tasks"), dict) else {}


def overview(con: Any, rnd: int | None) -> dict[str, Any]:
    """Per run: each round's task metrics and judge report cards (eval.json), export summary and decisions."""
    from pathlib import Path

    runs = con.execute("SELECT run, name, path FROM runs ORDER BY run").fetchall()
    only, params = ("AND round = ?", [rnd]) if rnd is not None else ("", [])
    decided = con.execute(
        f"""SELECT run, round, coalesce(reason, decision) AS why, count(*) AS n FROM candidate_info
            WHERE decision IS NOT NULL {only} GROUP BY ALL ORDER BY run, round, n DESC, why""", params).fetchall()
    prompts = con.execute(
        f"SELECT run, round, status, count(*) FROM prompt_index WHERE true {only} GROUP BY ALL ORDER BY ALL",
        params).fetchall()
    out = []
    for run, name, path in runs:
        rounds = []
        dirs = sorted((p for p in Path(path).glob("round_*") if p.name.split("_")[1].isdigit()),
                      key=lambda p: int(p.name.split("_")[1]))
        for d in dirs:
            k = int(d.name.split("_")[1])
            if rnd is not None and k != rnd:
                continue
            ev = read_json(d / "eval.json") if (d / "eval.json").is_file() else {}
            export = stage_summary(RoundDir(d).marker("export")) or {}
            rounds.append({
                "round": k,
                "tasks": _metrics(ev),
                "judges": ev.get("judges", {}) if isinstance(ev.get("judges"), dict) else {},
                "export": export,
                "decisions": [(why, n) for r, kk, why, n in decided if r == run and kk == k],
                "prompts": {s: n for r, kk, s, n in prompts if r == run and kk == k},
            })
        out.append({"run": run, "name": name, "path": path, "rounds": rounds})
    return {"runs": out}
