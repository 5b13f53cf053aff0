"""The viewer's HTML: plain server-rendered pages, a little CSS, no JavaScript build, no framework.

Each function takes what a query in `queries.py` returned and gives a whole
page. Every value from a run (prompt text, answers, critiques, judge names)
is HTML-escaped; filters are ordinary GET forms, so every view has a URL a
user can share or reload.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import urlencode

from thresher.view.queries import FLAGS, PAGE_SIZES, STATUSES, Filters

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d1f21;background:#fafafa}
header{background:#23313f;color:#fff;padding:8px 16px;display:flex;gap:18px;align-items:baseline}
header a{color:#cfe3ff;text-decoration:none}header b{font-size:16px}
main{padding:12px 16px}
table{border-collapse:collapse;background:#fff;margin:6px 0 14px}
th,td{border:1px solid #ddd;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#f0f2f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
form#filters{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:end;background:#fff;padding:8px;border:1px solid #ddd}
form#filters label{display:flex;flex-direction:column;font-size:12px;color:#555}
.badge{display:inline-block;border-radius:3px;padding:0 5px;font-size:12px;margin:1px}
.kept{background:#d8f3dc;color:#1b4332}.dropped{background:#fde2e1;color:#7a1c16}
.not_exported{background:#eee;color:#555}.flag{background:#fff3bf;color:#5c4400}.err{background:#ffd8a8;color:#7a3b00}
.cands{display:flex;gap:10px;overflow-x:auto;align-items:flex-start;padding-bottom:8px}
.cand{flex:0 0 360px;background:#fff;border:1px solid #ccc;border-radius:4px;padding:8px}
.cand.is-kept{border:2px solid #2d6a4f}
.cand pre,.msg pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;padding:6px;margin:6px 0;
  max-height:320px;overflow:auto;font-size:13px}
.cand table{width:100%;font-size:12px}
.muted{color:#777;font-size:12px}
.pager a,.pager span{margin-right:10px}
h2{font-size:16px;margin:18px 0 6px}h3{font-size:14px;margin:12px 0 4px}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return _e(value)


def layout(title: str, body: str, runs: list[tuple[int, str, str]]) -> str:
    names = " vs ".join(_e(n) for _, n, _ in runs)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{_e(title)} · thresher view</title><style>{CSS}</style></head><body>"
        f"<header><b>thresher view</b><span>{names}</span><a href='/'>prompts</a>"
        f"<a href='/overview'>overview</a></header><main>{body}</main></body></html>"
    )


def _select(name: str, label: str, options: list[tuple[Any, str]], current: Any) -> str:
    opts = ["<option value=''>any</option>"]
    for value, text in options:
        sel = " selected" if current is not None and str(current) == str(value) else ""
        opts.append(f"<option value='{_e(value)}'{sel}>{_e(text)}</option>")
    return f"<label>{_e(label)}<select name='{name}'>{''.join(opts)}</select></label>"


def _badges(row: dict[str, Any]) -> str:
    out = [f"<span class='badge {row['status']}'>{_e(row['status'])}</span>"]
    out += [f"<span class='badge flag'>{_e(FLAGS[f])}</span>" for f in ("disagree", "right_low", "wrong_high") if row[f]]
    if row["errors"]:
        out.append(f"<span class='badge err'>{row['errors']} judge errors</span>")
    return "".join(out)


def prompt_list(rows: list[dict[str, Any]], total: int, f: Filters, choices: dict[str, Any], ms: float) -> str:
    runs = choices["runs"]
    form = [
        "<form id=filters method=get action='/'>",
        _select("run", "run", [(i, n) for i, n, _ in runs], f.run) if len(runs) > 1 else "",
        _select("round", "round", [(r, r) for r in choices["rounds"]], f.round),
        _select("task", "task", [(t, t) for t in choices["tasks"]], f.task),
        _select("model", "model", [(m, m) for m in choices["models"]], f.model),
        _select("status", "kept / dropped", [(s, s.replace("_", " ")) for s in STATUSES], f.status),
        _select("reason", "drop reason", [(r, r) for r in choices["reasons"]], f.reason),
    ]
    for flag, label in FLAGS.items():
        checked = " checked" if flag in f.flags else ""
        form.append(f"<label><span><input type=checkbox name={flag} value=1{checked}> {_e(label)}</span></label>")
    form += [
        f"<label>search<input type=search name=q value='{_e(f.q or '')}' placeholder='prompt or answer text, id'></label>",
        _select("per", "per page", [(n, n) for n in PAGE_SIZES], f.per),
        "<button type=submit id=apply>apply</button> <a href='/'>clear</a></form>",
    ]
    body = ["".join(form)]
    pages = max(1, -(-total // f.per))
    body.append(f"<p class=muted><span id=total>{total}</span> prompts match · page {f.page} of {pages} · "
                f"<span id=query-ms>{ms:.0f}</span> ms</p>")
    head = ("<tr><th>run</th><th>round</th><th>task</th><th>prompt</th><th>answers</th><th>models</th>"
            "<th>kept</th><th>status</th><th>drop reasons</th></tr>") if len(runs) > 1 else (
            "<tr><th>round</th><th>task</th><th>prompt</th><th>answers</th><th>models</th>"
            "<th>kept</th><th>status</th><th>drop reasons</th></tr>")
    lines = []
    for r in rows:
        link = "/prompt?" + urlencode({"run": r["run"], "round": r["round"], "id": r["prompt_id"]})
        question = r["question"] or ""
        short = question if len(question) <= 160 else question[:157] + "..."
        run_cell = f"<td>{_e(runs[r['run']][1])}</td>" if len(runs) > 1 else ""
        lines.append(
            f"<tr class=prompt-row data-prompt-id='{_e(r['prompt_id'])}'>{run_cell}<td class=num>{r['round']}</td>"
            f"<td>{_e(r['task'])}</td><td><a href='{_e(link)}'>{_e(short)}</a></td>"
            f"<td class=num>{r['n_candidates']}</td><td>{_e(', '.join(r['models']))}</td>"
            f"<td class=num>{r['n_kept']}</td><td>{_badges(r)}</td><td>{_e(', '.join(r['reasons']))}</td></tr>"
        )
    body.append(f"<table id=prompts>{head}{''.join(lines)}</table>")
    pager = []
    if f.page > 1:
        pager.append(f"<a id=prev href='/?{_e(f.query_string(page=f.page - 1))}'>&larr; previous</a>")
    if f.page < pages:
        pager.append(f"<a id=next href='/?{_e(f.query_string(page=f.page + 1))}'>next &rarr;</a>")
    body.append(f"<div class=pager>{''.join(pager)}</div>")
    return layout("prompts", "".join(body), runs)


def _verdict_rows(verdicts: list[dict[str, Any]]) -> str:
    if not verdicts:
        return "<p class=muted>no verdicts</p>"
    rows = ["<tr><th>judge</th><th>score</th><th>correct</th><th>critique / error</th></tr>"]
    for v in verdicts:
        note = f"<span class='badge err'>error</span> {_e(v['error'])}" if v["error"] else _e(v["critique"] or "")
        rows.append(
            f"<tr class=verdict data-judge='{_e(v['judge'])}'><td>{_e(v['judge'])}"
            f"<div class=muted>{_e(v['kind'])}</div></td><td class=num>{_num(v['score'])}</td>"
            f"<td>{_num(v['correct'])}</td><td>{note}</td></tr>"
        )
    return f"<table>{''.join(rows)}</table>"


def _candidate(c: dict[str, Any]) -> str:
    decision = c["decision"] or "not_exported"
    why = f" · {_e(c['reason'])}" if c["reason"] else ""
    flags = "".join(f"<span class='badge flag'>{_e(FLAGS[f])}</span>" for f in ("disagree", "right_low", "wrong_high")
                    if c[f])
    policy = ""
    if c["policy_score"] is not None:
        policy = f"<div class=muted>policy score {_num(c['policy_score'])}, rank {_e(c['rank'])}</div>"
    return (
        f"<div class='cand{' is-kept' if decision == 'kept' else ''}' data-candidate-id='{_e(c['candidate_id'])}'>"
        f"<div><b>{_e(c['model'])}</b> #{_e(c['idx'])} <span class='badge {decision}'>{_e(decision)}{why}</span>"
        f"{flags}</div>{policy}<pre class=answer>{_e(c['text'])}</pre>"
        f"<div class=muted>{_e(c['num_tokens'])} tokens · finish {_e(c['finish_reason'])}</div>"
        f"{_verdict_rows(c['verdicts'])}</div>"
    )


def _messages(messages: list[dict[str, Any]]) -> str:
    return "".join(f"<div class=msg><b>{_e(m.get('role'))}</b><pre>{_e(m.get('content'))}</pre></div>"
                   for m in messages)


def prompt_view(d: dict[str, Any], runs: list[tuple[int, str, str]]) -> str:
    p = d["prompt"]
    body = [
        f"<h2>{_e(p['run_name'])} · round {p['round']} · {_e(p['task'])} · <code>{_e(p['prompt_id'])}</code></h2>",
        (f"<div id=prompt-status><span class='badge {p['status']}'>{_e(p['status'])}</span> "
         f"{p['n_kept']} kept{(' · ' + _e(', '.join(p['reasons']))) if p['reasons'] else ''}</div>"),
        _messages(p["messages"] or []),
        f"<p>reference: <code id=reference>{_e(p['reference'])}</code></p>" if p["reference"] is not None else "",
        f"<h2>{len(d['candidates'])} candidates</h2>",
        f"<div class=cands id=candidates>{''.join(_candidate(c) for c in d['candidates'])}</div>",
    ]
    sft = [r for r in d["rows"] if r["kind"] == "sft"]
    critique = [r for r in d["rows"] if r["kind"] != "sft"]
    body.append(f"<h2>SFT rows ({len(sft)})</h2><section id=sft>")
    for r in sft:
        body.append(f"<div class=row-sft><div class=muted>{_e(', '.join(r['candidate_ids']))} · chosen by "
                    f"{_e(r['judge'])}</div>{_messages(r['messages'][-1:])}</div>")
    body.append(f"</section><h2>Critique-SFT rows ({len(critique)})</h2><section id=critique>")
    for r in critique:
        shown = ", ".join(f"{i + 1}: {cid}" for i, cid in enumerate(r["candidate_ids"] or []))
        body.append(f"<div class=row-critique><div class=muted>judge {_e(r['judge'])} · shows {_e(shown)}</div>"
                    f"{_messages(r['messages'])}</div>")
    body.append(f"</section><h2>DPO pairs ({len(d['pairs'])})</h2><section id=dpo>")
    if d["pairs"]:
        rows = ["<tr><th>chosen</th><th>score</th><th>rejected</th><th>score</th><th>margin</th><th>rule</th></tr>"]
        for x in d["pairs"]:
            rows.append(
                f"<tr class=pair><td>{_e(x['chosen_id'] or x['chosen_model'])}</td><td class=num>{_num(x['chosen_score'])}"
                f"</td><td>{_e(x['rejected_id'] or x['rejected_model'])}</td><td class=num>{_num(x['rejected_score'])}"
                f"</td><td class=num>{_num(x['margin'])}</td><td>{_e(x['rule'])}</td></tr>"
            )
        body.append(f"<table>{''.join(rows)}</table>")
    body.append("</section>")
    return layout(f"prompt {p['prompt_id']}", "".join(body), runs)


def _metric_cell(metrics: dict[str, Any], name: str) -> str:
    value = metrics.get(name)
    if value is None:
        return "<td class=num>-</td>"
    ci = metrics.get(f"{name}_ci")
    interval = f" <span class=muted>[{_num(ci[0])}, {_num(ci[1])}]</span>" if isinstance(ci, list) and len(ci) == 2 else ""
    return f"<td class=num>{_num(value)}{interval}</td>"


def _metric_names(per_task: dict[str, dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for metrics in per_task.values():
        for k, v in metrics.items():
            if not k.endswith("_ci") and isinstance(v, (int, float)) and not isinstance(v, bool) and k not in names:
                names.append(k)
    return names


def _task_table(per_task: dict[str, dict[str, Any]], css_id: str) -> str:
    names = _metric_names(per_task)
    head = "<tr><th>task</th>" + "".join(f"<th>{_e(n)}</th>" for n in names) + "</tr>"
    rows = [f"<tr><td>{_e(t)}</td>{''.join(_metric_cell(m, n) for n in names)}</tr>" for t, m in sorted(per_task.items())]
    return f"<table id='{css_id}'>{head}{''.join(rows)}</table>"


def _comparison(data: dict[str, Any]) -> str:
    """Main arm against control arm: each task's pass@1 (or first metric) round by round, side by side."""
    a, b = data["runs"][0], data["runs"][1]
    rounds = sorted({r["round"] for r in a["rounds"]} | {r["round"] for r in b["rounds"]})
    by = {(x["run"], r["round"]): r["tasks"] for x in (a, b) for r in x["rounds"]}
    tasks = sorted({t for x in (a, b) for r in x["rounds"] for t in r["tasks"]})
    if not tasks:
        return ""
    names = _metric_names({t: m for x in (a, b) for r in x["rounds"] for t, m in r["tasks"].items()})
    metric = "pass@1" if "pass@1" in names else names[0]
    head = (f"<tr><th>task</th><th>round</th><th>{_e(a['name'])}</th><th>{_e(b['name'])}</th>"
            f"<th>difference</th></tr>")
    rows = []
    for t in tasks:
        for k in rounds:
            ma, mb = by.get((a["run"], k), {}).get(t, {}), by.get((b["run"], k), {}).get(t, {})
            va, vb = ma.get(metric), mb.get(metric)
            diff = _num(va - vb) if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else "-"
            rows.append(f"<tr><td>{_e(t)}</td><td class=num>{k}</td>{_metric_cell(ma, metric)}"
                        f"{_metric_cell(mb, metric)}<td class=num>{diff}</td></tr>")
    return (f"<h2>{_e(a['name'])} against {_e(b['name'])}: held-out {_e(metric)}</h2>"
            f"<table id=arms>{head}{''.join(rows)}</table>")


def _export(r: dict[str, Any]) -> str:
    out = []
    if r["prompts"]:
        out.append("<p>prompts: " + ", ".join(f"{_e(s)} {n}" for s, n in sorted(r["prompts"].items())) + "</p>")
    if r["decisions"]:
        rows = "".join(f"<tr><td>{_e(why)}</td><td class=num>{n}</td></tr>" for why, n in r["decisions"])
        out.append(f"<table class=decisions><tr><th>candidates: kept / dropped because</th><th>count</th></tr>{rows}</table>")
    e = r["export"]
    if e:
        no_pass = e.get("no_pass") or {}
        reasons = ", ".join(f"{_e(k)} {v}" for k, v in sorted((no_pass.get("reasons") or {}).items())) or "none"
        out.append(f"<p>policy <b>{_e(e.get('policy'))}</b>; {e.get('prompts_passed')} of {e.get('prompts')} prompts "
                   f"kept an answer; prompts with none: {reasons}</p>")
        rows = "".join(
            f"<tr><td>{_e(k)}</td><td class=num>{x.get('rows')}</td><td>"
            + (", ".join(f"{_e(a)} {b}" for a, b in sorted((x.get("dropped") or {}).items())) or "-") + "</td></tr>"
            for k, x in sorted((e.get("exports") or {}).items())
        )
        out.append(f"<table class=exports><tr><th>export</th><th>rows</th><th>rows dropped because</th></tr>{rows}</table>")
    return "".join(out)


def overview_view(data: dict[str, Any], runs: list[tuple[int, str, str]], rnd: int | None) -> str:
    body = [f"<h2>Overview{'' if rnd is None else f' · round {rnd}'}</h2>"]
    if len(data["runs"]) >= 2:
        body.append(_comparison(data))
    for x in data["runs"]:
        body.append(f"<h2 class=run-name>{_e(x['name'])} <span class=muted>{_e(x['path'])}</span></h2>")
        for r in x["rounds"]:
            body.append(f"<h3>round {r['round']}</h3>")
            if r["tasks"]:
                body.append(_task_table(r["tasks"], f"tasks-{x['run']}-{r['round']}"))
            for judge, per_task in sorted(r["judges"].items()):
                if isinstance(per_task, dict) and per_task:
                    body.append(f"<div class=muted>judge report card: <b>{_e(judge)}</b></div>"
                                + _task_table(per_task, f"judge-{x['run']}-{r['round']}-{judge}"))
            body.append(_export(r))
    return layout("overview", "".join(body), runs)


def error_page(status: int, message: str, runs: list[tuple[int, str, str]]) -> str:
    return layout(str(status), f"<h2>{status}</h2><p id=error>{_e(message)}</p>", runs)
