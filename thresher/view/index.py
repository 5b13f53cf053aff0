"""The viewer's index: one DuckDB database built from run directories' JSONL, never from Python lists.

DuckDB reads the shards where they lie (`read_ndjson` over
`round_<k>/candidates/*.jsonl`, `verdicts/*.jsonl`, the exports and
`export_decisions.jsonl`), so a run of a million candidates is scanned by
DuckDB's own parallel reader, not parsed into Python objects. What every page
filters on is computed once, in SQL, into `prompt_index`: one row per
(run, round, prompt) with its candidates' models, how many were kept, every
drop reason, judge errors, the lower-cased text of the prompt and its answers
(`haystack`, what text search scans), and three flags:

- `disagree`: two judges give one candidate opposite `correct` verdicts, or
  two scoring judges pick different best candidates for the prompt;
- `right_low`: a verifier says a candidate is right but a reward / LLM judge
  scores it in the bottom quarter of that judge's scores for the task and round;
- `wrong_high`: a verifier says wrong, and such a judge scores it in the top quarter.

The database lives in a cache folder outside the runs (the runs stay
read-only), named by a stamp of every input file's name, size and
modification time: a changed or new shard builds a new index, an unchanged
run opens the old one at once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thresher.errors import UserError
from thresher.feedback.decisions import DECISIONS_FILE
from thresher.feedback.groups import JudgeInfo
from thresher.runner import stage_summary
from thresher.store import RoundDir, RunDir, read_json

INDEX_VERSION = 3
"""Bump when the tables below change, so old cached indexes are rebuilt."""

PROMPT_COLUMNS = {"id": "VARCHAR", "task": "VARCHAR", "reference": "VARCHAR",
                  "messages": "STRUCT(role VARCHAR, content VARCHAR)[]"}
CANDIDATE_COLUMNS = {"prompt_id": "VARCHAR", "model": "VARCHAR", "index": "BIGINT", "text": "VARCHAR",
                     "num_tokens": "BIGINT", "finish_reason": "VARCHAR"}
VERDICT_COLUMNS = {"candidate_id": "VARCHAR", "judge": "VARCHAR", "score": "DOUBLE", "correct": "BOOLEAN",
                   "critique": "VARCHAR", "error": "VARCHAR", "metadata": "JSON", "kind": "VARCHAR"}
DECISION_COLUMNS = {"candidate_id": "VARCHAR", "decision": "VARCHAR", "reason": "VARCHAR",
                    "prompt_reason": "VARCHAR", "score": "DOUBLE", "rank": "BIGINT"}
ROW_COLUMNS = {"messages": "JSON", "metadata": "JSON", "prompt_id": "VARCHAR", "candidate_id": "VARCHAR"}
DPO_COLUMNS = {"prompt_id": "VARCHAR", "chosen": "JSON", "rejected": "JSON", "chosen_score": "DOUBLE",
               "rejected_score": "DOUBLE", "margin": "DOUBLE", "rule": "VARCHAR", "chosen_model": "VARCHAR",
               "rejected_model": "VARCHAR", "metadata": "JSON"}


@dataclass(slots=True)
class RoundFiles:
    """The JSONL files of one round that the index reads (absent ones are empty lists)."""

    run: int
    round: int
    path: Path
    prompts: list[Path]
    candidates: list[Path]
    verdicts: list[Path]
    decisions: list[Path]
    sft: list[Path]
    dpo: list[Path]

    def all(self) -> list[Path]:
        return [*self.prompts, *self.candidates, *self.verdicts, *self.decisions, *self.sft, *self.dpo]


def _shards(directory: Path, single: Path) -> list[Path]:
    """A stage's records: the shards of its directory (any `*.jsonl`), else one JSONL file."""
    if directory.is_dir():
        return sorted(p for p in directory.glob("*.jsonl") if p.is_file())
    return [single] if single.is_file() else []


def _files(paths: Sequence[Path]) -> list[Path]:
    return [p for p in paths if p.is_file()]


def round_files(run: int, rd: RoundDir) -> RoundFiles:
    return RoundFiles(
        run=run, round=rd.index, path=rd.path,
        prompts=_files([rd.prompts]),
        candidates=_shards(rd.candidates, rd.path / "candidates.jsonl"),
        verdicts=_shards(rd.verdicts, rd.path / "verdicts.jsonl"),
        decisions=_files([rd.path / DECISIONS_FILE]),
        sft=_files([rd.sft, rd.critique_sft]),
        dpo=_files([rd.dpo]),
    )


def run_rounds(runs: Sequence[Path]) -> list[RoundFiles]:
    """Every round with prompts, of every run, in order; a path that is not a run is a UserError."""
    out = []
    for i, path in enumerate(runs):
        run = RunDir(path)
        if not run.path.is_dir():
            raise UserError(f"{run.path}: no such run directory")
        rounds = [round_files(i, rd) for rd in run.rounds()]
        if not rounds:
            raise UserError(f"{run.path}: not a run directory (no round_<k>/ inside)")
        out += [r for r in rounds if r.prompts]
    return out


def stamp(runs: Sequence[Path], rounds: Sequence[RoundFiles]) -> str:
    """A hash of every input's path, size and mtime (and the index version): the cache key."""
    h = hashlib.blake2b(digest_size=12)
    h.update(f"v{INDEX_VERSION}\n".encode())
    for r in runs:
        h.update(f"run {Path(r).resolve()}\n".encode())
    for rf in rounds:
        for p in rf.all():
            st = p.stat()
            h.update(f"{p.resolve()} {st.st_size} {st.st_mtime_ns}\n".encode())
        for marker in sorted((rf.path / ".stages").glob("*.json")):  # the stages' markers: a rerun changes them
            h.update(f"{marker.name} {marker.stat().st_mtime_ns}\n".encode())
    return h.hexdigest()


def _cols(columns: dict[str, str]) -> str:
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"


def _read(files: Sequence[Path], columns: dict[str, str]) -> str:
    names = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
    return f"read_ndjson([{names}], columns={_cols(columns)}, format='newline_delimited')"


_TABLES = """
CREATE TABLE runs (run INTEGER, name VARCHAR, path VARCHAR);
CREATE TABLE prompts (run INTEGER, round INTEGER, prompt_id VARCHAR, ord BIGINT, task VARCHAR, question VARCHAR,
                      reference VARCHAR, messages STRUCT(role VARCHAR, content VARCHAR)[]);
CREATE TABLE candidates (run INTEGER, round INTEGER, prompt_id VARCHAR, candidate_id VARCHAR, model VARCHAR,
                         idx BIGINT, text VARCHAR, num_tokens BIGINT, finish_reason VARCHAR);
CREATE TABLE verdicts (run INTEGER, round INTEGER, prompt_id VARCHAR, candidate_id VARCHAR, judge VARCHAR,
                       score DOUBLE, correct BOOLEAN, critique VARCHAR, error VARCHAR, metadata JSON,
                       recorded_kind VARCHAR);
CREATE TABLE decisions (run INTEGER, round INTEGER, candidate_id VARCHAR, decision VARCHAR, reason VARCHAR,
                        prompt_reason VARCHAR, score DOUBLE, rank BIGINT);
CREATE TABLE rows (run INTEGER, round INTEGER, prompt_id VARCHAR, kind VARCHAR, candidate_ids VARCHAR[],
                   chosen BOOLEAN[], judge VARCHAR, messages JSON, metadata JSON);
CREATE TABLE pairs (run INTEGER, round INTEGER, prompt_id VARCHAR, chosen_id VARCHAR, rejected_id VARCHAR,
                    chosen_text VARCHAR, rejected_text VARCHAR, chosen_score DOUBLE, rejected_score DOUBLE,
                    margin DOUBLE, rule VARCHAR, chosen_model VARCHAR, rejected_model VARCHAR);
CREATE TABLE judges (run INTEGER, round INTEGER, judge VARCHAR, kind VARCHAR, verdicts BIGINT, errors BIGINT);
CREATE TABLE exported (run INTEGER, round INTEGER);
"""


def _ingest(con: Any, rf: RoundFiles) -> None:
    """Copy one round's records into the tables (DuckDB reads the files; nothing passes through Python)."""
    key = f"{rf.run} AS run, {rf.round} AS round"
    con.execute(f"""INSERT INTO prompts SELECT {key}, id, row_number() OVER (), task,
        list_filter(messages, lambda m: m.role = 'user')[-1].content, reference, messages
        FROM {_read(rf.prompts, PROMPT_COLUMNS)}""")
    if rf.candidates:
        con.execute(f"""INSERT INTO candidates SELECT {key}, prompt_id,
            prompt_id || '/' || model || '/' || "index", model, "index", text, num_tokens, finish_reason
            FROM {_read(rf.candidates, CANDIDATE_COLUMNS)}""")
    if rf.verdicts:
        con.execute(f"""INSERT INTO verdicts SELECT {key}, split_part(candidate_id, '/', 1), candidate_id, judge,
            score, correct, critique, error, metadata, kind FROM {_read(rf.verdicts, VERDICT_COLUMNS)}""")
    if rf.decisions:
        con.execute(f"""INSERT INTO decisions SELECT {key}, candidate_id, decision, reason, prompt_reason, score, rank
            FROM {_read(rf.decisions, DECISION_COLUMNS)}""")
    if rf.sft:
        # thresher's rows keep provenance in `metadata`; rows written before that kept it at the top
        con.execute(f"""INSERT INTO rows SELECT {key},
            coalesce(metadata->>'prompt_id', prompt_id),
            coalesce(metadata->>'kind', CASE WHEN candidate_id IS NULL THEN 'critique_sft' ELSE 'sft' END),
            coalesce(CAST(metadata->'candidate_ids' AS VARCHAR[]), [candidate_id]),
            CAST(metadata->'chosen' AS BOOLEAN[]), metadata->>'judge', messages, metadata
            FROM {_read(rf.sft, ROW_COLUMNS)}""")
    if rf.dpo:
        con.execute(f"""INSERT INTO pairs SELECT {key}, prompt_id, metadata->>'chosen_id', metadata->>'rejected_id',
            chosen->0->>'content', rejected->0->>'content', chosen_score, rejected_score, margin, rule,
            chosen_model, rejected_model FROM {_read(rf.dpo, DPO_COLUMNS)}""")
    if rf.decisions or rf.sft or stage_summary(RoundDir(rf.path).marker("export")):
        con.execute(f"INSERT INTO exported VALUES ({rf.run}, {rf.round})")


def _classify_judges(con: Any) -> None:
    """Each judge's kind per round, by the export's own rule (`JudgeInfo.kind`: the kind its verdicts record,
    else, for files written before judges recorded it, what they hold) over counts taken in SQL."""
    rows = con.execute("""SELECT run, round, judge, count(*),
            count(*) FILTER (WHERE error IS NOT NULL),
            count(*) FILTER (WHERE error IS NULL AND score IS NOT NULL),
            count(*) FILTER (WHERE error IS NULL AND correct IS NOT NULL),
            count(*) FILTER (WHERE error IS NULL AND coalesce(critique, '') <> ''),
            count(*) FILTER (WHERE error IS NULL AND ((metadata->'chosen') IS NOT NULL OR (metadata->'rank') IS NOT NULL)),
            count(*) FILTER (WHERE error IS NULL AND (metadata->'agreed') IS NOT NULL AND (metadata->'disagreed') IS NOT NULL),
            mode(recorded_kind), count(recorded_kind)
        FROM verdicts GROUP BY ALL""").fetchall()
    out = []
    for run, rnd, judge, n, errors, scored, verified, critiqued, listwise, pairwise, kind, kinds in rows:
        info = JudgeInfo(judge, n, errors, scored, verified, critiqued, listwise, pairwise, {kind: kinds} if kind else {})
        out.append((run, rnd, judge, info.kind, n, errors))
    if out:
        con.executemany("INSERT INTO judges VALUES (?, ?, ?, ?, ?, ?)", out)


_DERIVED = """
CREATE TABLE candidate_flags AS
WITH v AS (
    SELECT v.* EXCLUDE (recorded_kind), j.kind, c.model, p.task FROM verdicts v
    JOIN judges j USING (run, round, judge)
    LEFT JOIN candidates c USING (run, round, candidate_id)
    LEFT JOIN prompts p ON p.run = v.run AND p.round = v.round AND p.prompt_id = v.prompt_id
),
per AS (
    SELECT run, round, candidate_id,
        count(*) FILTER (WHERE error IS NOT NULL) AS errors,
        coalesce(bool_or(correct) FILTER (WHERE error IS NULL), false)
            AND coalesce(bool_or(NOT correct) FILTER (WHERE error IS NULL), false) AS disagree,
        coalesce(bool_and(correct) FILTER (WHERE error IS NULL AND kind = 'verifier' AND correct IS NOT NULL), false)
            AS verifier_right,
        coalesce(bool_or(NOT correct) FILTER (WHERE error IS NULL AND kind = 'verifier'), false) AS verifier_wrong
    FROM v GROUP BY ALL
),
q AS (
    SELECT run, round, task, judge, quantile_cont(score, 0.25) AS p25, quantile_cont(score, 0.75) AS p75
    FROM v WHERE kind IN ('reward', 'llm') AND error IS NULL AND score IS NOT NULL GROUP BY ALL
),
rm AS (
    SELECT v.run, v.round, v.candidate_id, bool_or(v.score <= q.p25) AS low, bool_or(v.score >= q.p75) AS high
    FROM v JOIN q ON q.run = v.run AND q.round = v.round AND q.task = v.task AND q.judge = v.judge
    WHERE v.error IS NULL AND v.score IS NOT NULL AND q.p25 < q.p75
    GROUP BY ALL
)
SELECT per.run, per.round, per.candidate_id, per.errors, per.disagree,
    per.verifier_right AND coalesce(rm.low, false) AS right_low,
    per.verifier_wrong AND coalesce(rm.high, false) AS wrong_high
FROM per LEFT JOIN rm USING (run, round, candidate_id);

CREATE TABLE pick_flags AS
WITH picks AS (
    SELECT v.run, v.round, v.prompt_id, v.judge, arg_max(v.candidate_id, v.score) AS pick
    FROM verdicts v JOIN judges j USING (run, round, judge)
    WHERE j.kind IN ('reward', 'llm') AND v.error IS NULL AND v.score IS NOT NULL
    GROUP BY ALL
)
SELECT run, round, prompt_id, count(DISTINCT pick) > 1 AS picks_differ FROM picks GROUP BY ALL;

CREATE TABLE kept_rows AS
SELECT DISTINCT run, round, unnest(candidate_ids) AS candidate_id FROM rows WHERE kind = 'sft';

CREATE TABLE candidate_info AS
SELECT c.run, c.round, c.prompt_id, c.candidate_id, c.model,
    coalesce(f.errors, 0) AS errors, coalesce(f.disagree, false) AS disagree,
    coalesce(f.right_low, false) AS right_low, coalesce(f.wrong_high, false) AS wrong_high,
    coalesce(d.decision, CASE WHEN k.candidate_id IS NOT NULL THEN 'kept'
                              WHEN e.run IS NOT NULL THEN 'dropped' END) AS decision,
    d.reason, d.prompt_reason
FROM candidates c
LEFT JOIN candidate_flags f USING (run, round, candidate_id)
LEFT JOIN decisions d USING (run, round, candidate_id)
LEFT JOIN kept_rows k USING (run, round, candidate_id)
LEFT JOIN exported e ON e.run = c.run AND e.round = c.round;

CREATE TABLE prompt_index AS
WITH texts AS (
    SELECT run, round, prompt_id, lower(string_agg(text, chr(10))) AS answers FROM candidates GROUP BY ALL
),
agg AS (
    SELECT run, round, prompt_id, count(*) AS n_candidates, list(DISTINCT model ORDER BY model) AS models,
        count(*) FILTER (WHERE decision = 'kept') AS n_kept,
        list_sort(list_distinct(list_filter(flatten(list([reason, prompt_reason])), lambda x: x IS NOT NULL)))
            AS reasons,
        sum(errors) AS errors, bool_or(disagree) AS disagree, bool_or(right_low) AS right_low,
        bool_or(wrong_high) AS wrong_high
    FROM candidate_info GROUP BY ALL
)
SELECT p.run, p.round, p.prompt_id, p.ord, p.task, p.question,
    coalesce(a.n_candidates, 0) AS n_candidates, coalesce(a.models, []) AS models,
    coalesce(a.n_kept, 0) AS n_kept,
    CASE WHEN e.run IS NULL THEN 'not_exported' WHEN coalesce(a.n_kept, 0) > 0 THEN 'kept' ELSE 'dropped' END
        AS status,
    CASE WHEN a.prompt_id IS NULL THEN ['no_candidates'] ELSE coalesce(a.reasons, []) END AS reasons,
    coalesce(a.errors, 0) AS errors,
    coalesce(a.disagree, false) OR coalesce(pf.picks_differ, false) AS disagree,
    coalesce(a.right_low, false) AS right_low, coalesce(a.wrong_high, false) AS wrong_high,
    lower(coalesce(p.question, '')) || chr(10) || coalesce(x.answers, '') AS haystack
FROM prompts p
LEFT JOIN agg a USING (run, round, prompt_id)
LEFT JOIN texts x USING (run, round, prompt_id)
LEFT JOIN pick_flags pf USING (run, round, prompt_id)
LEFT JOIN exported e ON e.run = p.run AND e.round = p.round
ORDER BY p.run, p.round, p.ord;

CREATE TABLE meta (key VARCHAR, value VARCHAR);
"""


def build(db_path: Path, runs: Sequence[Path], rounds: Sequence[RoundFiles], progress: bool = True) -> None:
    """Build the index into `db_path` (written to a temporary name, then renamed: no half-built index is used)."""
    import duckdb
    from tqdm import tqdm

    tmp = db_path.with_name(db_path.name + f".{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        con.execute(_TABLES)
        con.executemany("INSERT INTO runs VALUES (?, ?, ?)",
                        [(i, Path(r).name, str(Path(r).resolve())) for i, r in enumerate(runs)])
        with tqdm(total=len(rounds) + 1, desc="indexing", unit="round", disable=not progress or None) as bar:
            for rf in rounds:
                try:
                    _ingest(con, rf)
                except duckdb.Error as e:
                    raise UserError(f"{rf.path}: cannot read its records ({str(e).splitlines()[0][:300]})") from None
                bar.update(1)
            _classify_judges(con)
            con.execute(_DERIVED)
            con.execute("INSERT INTO meta VALUES ('version', ?)", [str(INDEX_VERSION)])
            bar.update(1)
        con.execute("CHECKPOINT")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(tmp, db_path)


def cache_dir() -> Path:
    from thresher.quickstart.build import cache_root

    return cache_root() / "view"


def open_index(runs: Sequence[str | os.PathLike[str]], cache: Path | None = None, progress: bool = True) -> Any:
    """A read-only DuckDB connection to the index of `runs`, building it first when the runs changed."""
    import duckdb

    paths = [Path(r) for r in runs]
    rounds = run_rounds(paths)
    if not rounds:
        raise UserError(f"{', '.join(map(str, paths))}: no round with prompts yet")
    folder = cache or cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    db_path = folder / f"{stamp(paths, rounds)}.duckdb"
    if not db_path.is_file():
        build(db_path, paths, rounds, progress)
    return duckdb.connect(str(db_path), read_only=True)


def index_summary(con: Any) -> dict[str, Any]:
    """Counts for the startup line: runs, rounds, prompts, candidates, verdicts."""
    one = lambda sql: con.execute(sql).fetchone()[0]
    return {
        "runs": one("SELECT count(*) FROM runs"),
        "rounds": one("SELECT count(*) FROM (SELECT DISTINCT run, round FROM prompts)"),
        "prompts": one("SELECT count(*) FROM prompts"),
        "candidates": one("SELECT count(*) FROM candidates"),
        "verdicts": one("SELECT count(*) FROM verdicts"),
    }


def eval_json(run_path: str | Path, round_index: int) -> dict[str, Any]:
    """A round's eval.json (per-task metrics and judge report cards), or {} when the round has none."""
    path = Path(run_path) / f"round_{round_index}" / "eval.json"
    return read_json(path) if path.is_file() else {}
