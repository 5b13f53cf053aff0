"""The sections of report.html, each a function from run data to an HTML fragment (text escaped)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from thresher.store import COMPLETE, RunDir, read_json

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1300px}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;
vertical-align:top}th{background:#f3f3f3}td.l,th.l{text-align:left}.up{color:#1a7f37}.down{color:#c62828}
.reg{background:#fdecea;font-weight:bold}.flat{color:#888}.warn{color:#c62828}small.ci{color:#666}
pre{background:#f7f7f7;padding:0.6em;overflow:auto;white-space:pre-wrap;margin:0;max-width:60em}img{max-width:100%}
code.cmd{background:#f3f3f3;padding:2px 6px}.kept{background:#eef8f0}.cand td{font-size:0.92em}
"""

Series = dict[tuple[str, str], dict[int, dict[str, Any]]]


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def _ci(point: dict[str, Any] | None) -> str:
    ci = (point or {}).get("ci")
    return f"<br><small class='ci'>[{ci[0]:.3f}, {ci[1]:.3f}]</small>" if ci else ""


def _delta_class(delta: float) -> str:
    return "up" if delta > 1e-12 else "down" if delta < -1e-12 else "flat"


def task_tables(series: Series, rounds: list[int], metrics: list[str],
                is_regression: Callable[[dict[str, Any], dict[str, Any]], bool]) -> str:
    """One table per metric: task x round, each value with its 95% interval, change and prompt count."""
    parts = []
    for metric in metrics:
        body = []
        for task in sorted({t for t, m in series if m == metric}):
            vals = series[(task, metric)]
            cells, prev = [], None
            for r in rounds:
                cur = vals.get(r)
                if cur is None:
                    cells.append("<td class='flat'>-</td>")
                    continue
                text = f"{cur['value']:.3f}"
                if prev is None:
                    cells.append(f"<td>{text}{_ci(cur)}</td>")
                else:
                    delta = cur["value"] - prev["value"]
                    reg = is_regression(prev, cur)
                    cls = _delta_class(delta) + (" reg" if reg else "")
                    flag = " &#9888;" if reg else ""
                    cells.append(f"<td class='{cls}'>{text} <small>({delta:+.3f})</small>{flag}{_ci(cur)}</td>")
                prev = cur
            last = vals[max(vals)]
            body.append(f"<tr><td class='l'>{esc(task)}</td>{''.join(cells)}<td>{esc(last.get('prompts', '-'))}</td></tr>")
        head = "".join(f"<th>round {r}</th>" for r in rounds)
        parts.append(f"<h3>{esc(metric)}</h3><table><tr><th class='l'>task</th>{head}<th>prompts</th></tr>"
                     f"{''.join(body)}</table>")
    return "".join(parts)


def arms_tables(series: Series, other: Series, metrics: list[str], label: str, other_label: str) -> str:
    """Per metric, task x round: this arm beside the other, and the difference (bold when the intervals are apart)."""
    parts = []
    for metric in metrics:
        rounds = sorted({r for (t, m), vals in [*series.items(), *other.items()] if m == metric for r in vals})
        body = []
        for task in sorted({t for t, m in series if m == metric} | {t for t, m in other if m == metric}):
            a, b = series.get((task, metric), {}), other.get((task, metric), {})
            cells = []
            for r in rounds:
                x, y = a.get(r), b.get(r)
                if x is None or y is None:
                    cells.append(f"<td>{_num(x and x['value'])} / {_num(y and y['value'])}</td>")
                    continue
                d = x["value"] - y["value"]
                apart = bool(x.get("ci") and y.get("ci") and (x["ci"][0] > y["ci"][1] or y["ci"][0] > x["ci"][1]))
                diff = f"<b>{d:+.3f}</b>" if apart else f"{d:+.3f}"
                cells.append(f"<td>{x['value']:.3f} / {y['value']:.3f} <span class='{_delta_class(d)}'>({diff})</span></td>")
            body.append(f"<tr><td class='l'>{esc(task)}</td>{''.join(cells)}</tr>")
        head = "".join(f"<th>round {r}</th>" for r in rounds)
        parts.append(f"<h3>{esc(metric)}: {esc(label)} / {esc(other_label)} (difference)</h3>"
                     f"<table><tr><th class='l'>task</th>{head}</tr>{''.join(body)}</table>")
    return ("<p>Bold differences: the two arms' 95% intervals do not overlap.</p>" + "".join(parts)) if parts else ""


def _verdict_word(lift: float, ci: list[float] | None) -> str:
    if ci is not None:
        if ci[0] > 0:
            return ""
        return "worse than random" if ci[1] < 0 else "not shown better than random"
    return "no better than random" if abs(lift) < 0.01 else ("worse than random" if lift < 0 else "")


def judge_table(evals: dict[int, dict[str, Any]]) -> str:
    """Every judge, round and task: pick accuracy, lift with its interval, length bias, LLM-judge failure rates."""
    rows = []
    for r, ev in sorted(evals.items()):
        for judge, per_task in sorted(ev.get("judges", {}).items()):
            for task, m in sorted(per_task.items()):
                lift, ci = m.get("selection_lift", 0.0), m.get("selection_lift_ci")
                word = _verdict_word(lift, ci)
                ci_text = f" <small class='ci'>[{ci[0]:+.3f}, {ci[1]:+.3f}]</small>" if ci else ""
                bias = m.get("length_bias")
                rows.append(
                    f"<tr><td>{r}</td><td class='l'>{esc(judge)}</td><td class='l'>{esc(task)}</td>"
                    f"<td>{m.get('selection_accuracy', 0):.3f}</td><td>{m.get('random_accuracy', 0):.3f}</td>"
                    f"<td class='{'warn' if word else 'up'}'>{lift:+.3f}{ci_text}</td>"
                    f"<td>{m.get('oracle_accuracy', 0):.3f}</td><td>{m.get('coverage', 0):.2f}</td>"
                    f"<td>{int(m.get('errors', 0))}</td><td>{int(m.get('prompts', 0))}</td>"
                    f"<td>{_num(bias, '.2f')} <small>({m.get('length_pairs', 0)} pairs)</small></td>"
                    f"<td>{_num(m.get('score_length_corr'), '+.2f')}</td>"
                    f"<td>{_num(m.get('parse_failure_rate'), '.1%')}</td><td>{_num(m.get('position_bias'), '.1%')}</td>"
                    f"<td class='l warn'>{word}</td></tr>"
                )
    if not rows:
        return "<p>No judge measurements (they need a round's candidates and verdicts with references).</p>"
    head = ("<tr><th>round</th><th class='l'>judge</th><th class='l'>task</th><th>selection acc.</th>"
            "<th>random acc.</th><th>lift [95% interval]</th><th>oracle acc.</th><th>coverage</th><th>errors</th>"
            "<th>prompts</th><th>prefers longer</th><th>score~length</th><th>parse failures</th>"
            "<th>position bias</th><th class='l'></th></tr>")
    note = ("<p>prefers longer: share of pairs the oracle rates equal where the judge scores the longer answer "
            "higher (0.5 = no length bias); score~length: Spearman correlation of score and length.</p>")
    return f"{note}<table>{head}{''.join(rows)}</table>"


def bon_tables(judges: dict[str, dict[str, Any]], round_index: int) -> str:
    """The numbers behind best_of_n.png: accuracy of each pick at every N."""
    parts = []
    for judge, per_task in sorted(judges.items()):
        for task, m in sorted(per_task.items()):
            c = m.get("best_of_n")
            if not c:
                continue
            head = "".join(f"<th>N={n}</th>" for n in c["n"])
            lines = [("judge " + judge, c["judge"]), ("majority vote", c.get("majority")), ("random", c["random"]),
                     ("oracle (pass@N)", c["oracle"])]
            body = "".join(f"<tr><td class='l'>{esc(name)}</td>{''.join(f'<td>{v:.3f}</td>' for v in vals)}</tr>"
                           for name, vals in lines if vals is not None)
            parts.append(f"<h4>{esc(judge)} on {esc(task)} (round {round_index}, {c.get('prompts')} prompts)</h4>"
                         f"<table><tr><th class='l'>pick</th>{head}</tr>{body}</table>")
    return "".join(parts)


def _reasons(counts: dict[str, Any] | None) -> str:
    if not counts:
        return "-"
    return ", ".join(f"{esc(k)} {v}" for k, v in sorted(counts.items()))


def export_table(arms: dict[str, dict[int, dict[str, Any]]]) -> str:
    """Per arm and round: prompts, what was kept, and every drop by its reason (contamination included)."""
    rows = []
    for arm, summaries in arms.items():
        for r, s in sorted(summaries.items()):
            exports = s.get("exports", {})
            kept = ", ".join(f"{esc(k)} {x.get('rows', 0)}" for k, x in sorted(exports.items())) or "-"
            dropped = "; ".join(f"{esc(k)}: {_reasons(x.get('dropped'))}" for k, x in sorted(exports.items())
                                if x.get("dropped"))
            cont = s.get("contamination") or {}
            cont_text = "not checked"
            if cont.get("checked"):
                cont_text = (f"{sum(cont.get('rows', {}).values())} rows of {cont.get('prompts', 0)} prompts "
                             f"(eval prompts: {cont.get('eval_prompts')})")
            rows.append(
                f"<tr><td class='l'>{esc(arm)}</td><td>{r}</td><td class='l'>{esc(s.get('policy'))}</td>"
                f"<td>{s.get('prompts', '-')}</td><td>{s.get('prompts_passed', '-')}</td>"
                f"<td class='l'>{_reasons(s.get('no_pass', {}).get('reasons'))}</td>"
                f"<td class='l'>{_reasons(s.get('candidates', {}).get('filtered'))}</td>"
                f"<td class='l'>{kept}</td><td class='l'>{dropped or '-'}</td><td class='l'>{cont_text}</td></tr>"
            )
    if not rows:
        return "<p>No finished exports.</p>"
    return ("<table><tr><th class='l'>arm</th><th>round</th><th class='l'>policy</th><th>prompts</th>"
            "<th>with rows</th><th class='l'>nothing kept, by reason</th><th class='l'>candidates filtered</th>"
            "<th class='l'>rows kept</th><th class='l'>rows dropped, by reason</th>"
            f"<th class='l'>contaminated (dropped)</th></tr>{''.join(rows)}</table>")


def _verdicts(vs: list[dict[str, Any]]) -> str:
    parts = []
    for v in vs:
        if v.get("error"):
            parts.append(f"<b>{esc(v['judge'])}</b>: <span class='warn'>error: {esc(v['error'])}</span>")
            continue
        bits = []
        if v.get("score") is not None:
            bits.append(f"score {v['score']:.3f}")
        if v.get("correct") is not None:
            bits.append("right" if v["correct"] else "wrong")
        head = f"<b>{esc(v['judge'])}</b>: {esc(', '.join(bits) or 'no opinion')}"
        if v.get("critique"):
            head += f"<details><summary>critique</summary><pre>{esc(v['critique'])}</pre></details>"
        parts.append(head)
    return "<br>".join(parts) or "-"


def training_examples_html(examples: dict[int, list[dict[str, Any]]]) -> str:
    """Per round, prompts with every candidate: kept or not, DPO role, each judge's verdict and critique."""
    parts = []
    last = max(examples) if examples else None
    for r, exs in sorted(examples.items(), reverse=True):
        if not exs:
            continue
        blocks = []
        for e in exs:
            status = esc(e["status"]) + (f" ({esc(e['reason'])})" if e.get("reason") else "")
            rows = "".join(
                f"<tr class='cand{' kept' if c['kept'] else ''}'><td class='l'>{esc(c['model'])}</td>"
                f"<td>{'kept' if c['kept'] else '-'}{'<br>DPO ' + esc(', '.join(c['dpo'])) if c['dpo'] else ''}</td>"
                f"<td class='l'><pre>{esc(c['text'])}</pre></td><td class='l'>{_verdicts(c['verdicts'])}</td></tr>"
                for c in e["candidates"]
            )
            crit = (f"<details><summary>critique-SFT row</summary><pre>{esc(e['critique_row'])}</pre></details>"
                    if e.get("critique_row") else "")
            blocks.append(
                f"<h4>{esc(e['task'])}: {status}</h4><p><b>prompt</b> <code>{esc(e['prompt_id'])}</code>: "
                f"{esc(e['prompt'])} <b>reference</b>: {esc(e.get('reference'))}</p>"
                f"<table><tr><th class='l'>model</th><th>selection</th><th class='l'>answer</th>"
                f"<th class='l'>verdicts</th></tr>{rows}</table>{crit}"
            )
        opened = " open" if r == last else ""
        parts.append(f"<details{opened}><summary>round {r}: {len(exs)} training prompts</summary>{''.join(blocks)}"
                     "</details>")
    return "".join(parts) or "<p>No training examples (no finished export).</p>"


def training_table(run: RunDir) -> str:
    rows = []
    for rd in run.rounds():
        marker = rd.model / COMPLETE
        if marker.is_file():
            s = read_json(marker)
            loss = (f"{s['first_loss']:.3f} -> {s['final_loss']:.3f}"
                    if s.get("first_loss") is not None and s.get("final_loss") is not None else "-")
            rows.append(f"<tr><td>{rd.index}</td><td class='l'>{esc(s.get('method'))}</td><td>{s.get('rows')}</td>"
                        f"<td>{s.get('steps')}</td><td>{loss}</td><td class='l'>{esc(s.get('saved'))}</td></tr>")
    if not rows:
        return ""
    return ("<h2>Training</h2><table><tr><th>round</th><th class='l'>method</th><th>rows</th><th>steps</th>"
            f"<th>loss first -> final</th><th class='l'>saved</th></tr>{''.join(rows)}</table>")


def counts_table(evals: dict[int, dict[str, Any]]) -> str:
    rows = [
        f"<tr><td>{r}</td><td class='l'>{esc(task)}</td><td>{c.get('prompts', 0)}</td>"
        f"<td>{c.get('unverifiable', 0)}</td><td class='{'warn' if c.get('verifier_errors') else ''}'>"
        f"{c.get('verifier_errors', 0)}</td></tr>"
        for r, ev in sorted(evals.items())
        for task, c in sorted(ev.get("counts", {}).items())
    ]
    if not rows:
        return ""
    return ("<h2>Eval prompts and verifier errors</h2><table><tr><th>round</th><th class='l'>task</th>"
            f"<th>prompts</th><th>unverifiable</th><th>verifier errors</th></tr>{''.join(rows)}</table>")


def eval_examples(evals: dict[int, dict[str, Any]]) -> str:
    parts = []
    for r, ev in sorted(evals.items()):
        ex = ev.get("examples", [])
        if not ex:
            continue
        rows = "".join(
            f"<tr><td class='l'>{esc(e.get('task'))}</td><td class='l'>{esc(e.get('prompt'))}</td>"
            f"<td class='l'>{esc(e.get('reference'))}</td><td class='l'><pre>{esc(e.get('answer'))}</pre></td>"
            f"<td class='l'>{esc(e.get('extracted'))}</td>"
            f"<td class='{'up' if e.get('correct') else 'down'}'>{'&#10003;' if e.get('correct') else '&#10007;'}</td>"
            "</tr>"
            for e in ex
        )
        parts.append(
            f"<details><summary>round {r}: {len(ex)} greedy answers</summary><table><tr><th class='l'>task</th>"
            f"<th class='l'>prompt</th><th class='l'>reference</th><th class='l'>answer</th>"
            f"<th class='l'>extracted</th><th>ok</th></tr>{rows}</table></details>"
        )
    return "".join(parts) or "<p>No examples recorded.</p>"
