"""`thresher view` over a small crafted run (real export stage, real DuckDB, real HTTP server, real Chromium).

The crafted round, main arm (policy gated: math gates, the reward model ranks):

- A (add, 3 + 4): teacher/0 right (rm 0.9) is kept; teacher/1 wrong but the
  rm's top score (wrong_high); student/0 right but the rm's lowest (right_low);
  student/1 the verifier timed out on (a judge error);
- B (mul, 6 * 7): two right answers, the critic LLM judge calls teacher/0
  wrong where the verifier says right (judges disagree); teacher/1 is kept;
- C (add, 1 + 1): no candidates;
- D (add, 2 + 4): both answers wrong, nothing kept (none_correct).

The control arm is the same round with the random policy and its own eval numbers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import _free_port, stop_group
from test_feedback import C, P, V, run_export, write_round

from thresher.cli import main
from thresher.store import write_json
from thresher.view import queries
from thresher.view.index import open_index

QUESTIONS = {"A": ("add", "What is 3 + 4?", "7"), "B": ("mul", "What is 6 * 7?", "42"),
             "C": ("add", "What is 1 + 1?", "2"), "D": ("add", "What is 2 + 4?", "6")}
# (model, index, text, math correct or "error", rm score, critic (score, correct) or None)
ANSWERS = {
    "A": [("teacher", 0, "3 + 4 = \\boxed{7}", True, 0.9, None),
          ("teacher", 1, "3 + 4 = \\boxed{8}", False, 0.95, None),
          ("student", 0, "The sum is \\boxed{7}, seven.", True, 0.05, None),
          ("student", 1, "Perhaps \\boxed{9}", "error", 0.3, None)],
    "B": [("teacher", 0, "6 * 7 = \\boxed{42}", True, 0.5, (2.0, False)),
          ("teacher", 1, "Six sevens: \\boxed{42}", True, 0.6, (9.0, True)),
          ("student", 0, "6 * 7 = \\boxed{41}", False, 0.4, (1.0, False)),
          ("student", 1, "6 * 7 = \\boxed{40}", False, 0.45, (1.5, False))],
    "C": [],
    "D": [("teacher", 0, "2 + 4 = \\boxed{5}", False, 0.5, None),
          ("student", 0, "2 + 4 = \\boxed{7}", False, 0.2, None)],
}


def _eval(add: list[float], mul: float) -> dict:
    return {"tasks": {"add": {"pass@1": add[0], "pass@1_ci": add[1:], "n": 100}, "mul": {"pass@1": mul, "n": 100}},
            "judges": {"rm": {"add": {"selection_lift": 0.2, "selection_lift_ci": [0.1, 0.3]}}}}


def crafted_run(root: Path, policy: str, eval_round_1: dict) -> Path:
    prompts = {k: P(0, task=t, reference=ref, text=q) for k, (t, q, ref) in QUESTIONS.items()}
    cands, vs = [], []
    for key, answers in ANSWERS.items():
        for model, index, text, right, rm, critic in answers:
            c = C(prompts[key], model, index, text)
            cands.append(c)
            if right == "error":
                vs.append(V(c, "math", error="timeout after 5s"))
            else:
                answer = text.split("{")[1].split("}")[0]
                vs.append(V(c, "math", float(right), right, f"extracted {answer}", answer=answer))
            vs.append(V(c, "rm", rm))
            if critic is not None:
                vs.append(V(c, "critic", critic[0], critic[1], f"critic says {'right' if critic[1] else 'wrong'}"))
    rd = write_round(root, list(prompts.values()), cands, vs)
    run_export(rd, policy, {"gate": "math", "judge": "rm"} if policy == "gated" else {}, critique=True,
               dpo="best_vs_worst" if policy == "gated" else None, args={"critique": {"judge": "math"}})
    write_json(root / "round_0" / "eval.json", _eval([0.30, 0.20, 0.40], 0.25))
    write_json(root / "round_1" / "eval.json", eval_round_1)
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("view_runs")
    main_run = crafted_run(base / "main", "gated", _eval([0.55, 0.45, 0.65], 0.40))
    control = crafted_run(base / "control", "random", _eval([0.35, 0.25, 0.45], 0.28))
    return main_run, control


def pid(key: str) -> str:
    t, q, ref = QUESTIONS[key]
    return P(0, task=t, reference=ref, text=q).id


def test_index_computes_status_reasons_and_flags(runs, tmp_path):
    con = open_index([runs[0]], cache=tmp_path, progress=False)
    got = {r[0]: r[1:] for r in con.execute(
        "SELECT prompt_id, status, n_kept, reasons, errors, disagree, right_low, wrong_high FROM prompt_index").fetchall()}
    assert got == {
        pid("A"): ("kept", 1, ["outranked", "verifier_error", "wrong"], 1, False, True, True),
        pid("B"): ("kept", 1, ["wrong"], 0, True, False, False),
        pid("C"): ("dropped", 0, ["no_candidates"], 0, False, False, False),
        pid("D"): ("dropped", 0, ["none_correct", "wrong"], 0, False, False, False),
    }
    kinds = dict(con.execute("SELECT judge, kind FROM judges").fetchall())
    assert kinds == {"math": "verifier", "rm": "reward", "critic": "verifier"}
    f = queries.Filters.parse({"flags": [], "right_low": ["1"]})
    rows, total = queries.prompt_page(con, f)
    assert total == 1 and rows[0]["prompt_id"] == pid("A")
    rows, total = queries.prompt_page(con, queries.Filters.parse({"q": ["six sevens"]}))
    assert [r["prompt_id"] for r in rows] == [pid("B")]  # found by an answer's text
    with pytest.raises(queries.BadQuery, match="page: expected a whole number"):
        queries.Filters.parse({"page": ["two"]})
    con.close()


def test_a_changed_shard_builds_a_new_index(tmp_path):
    run = crafted_run(tmp_path / "run", "gated", _eval([0.5, 0.4, 0.6], 0.3))
    cache = tmp_path / "cache"
    con = open_index([run], cache=cache, progress=False)
    assert con.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 24
    con.close()
    extra = run / "round_1" / "verdicts" / "shard-00099.jsonl"
    extra.write_text(json.dumps({"candidate_id": f"{pid('D')}/teacher/0", "judge": "late", "score": 1.0}) + "\n")
    con = open_index([run], cache=cache, progress=False)
    assert con.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 25
    assert len(list(cache.glob("*.duckdb"))) == 2 and not list(run.rglob("*.duckdb"))  # the run stays read-only
    con.close()


def test_bad_runs_are_one_line_errors(tmp_path, capsys):
    assert main(["view", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["view", str(tmp_path / "empty")]) == 2
    assert "not a run directory" in capsys.readouterr().err


# the real command and a real browser -------------------------------------------------------


@pytest.fixture(scope="module")
def url(runs, tmp_path_factory):
    """`thresher view MAIN CONTROL --port P` in a subprocess, as a user starts it; yields the URL it prints."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "THRESHER_CACHE": str(tmp_path_factory.mktemp("view_cache"))}
    log = tmp_path_factory.mktemp("view_log") / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "thresher.cli", "view", str(runs[0]), str(runs[1]), "--port", str(port)],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env, start_new_session=True,
        )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("thresher view: http://127.0.0.1:"), (line, log.read_text())
        address = line.split()[2]
        assert address == f"http://127.0.0.1:{port}/"
        yield address
    finally:
        stop_group(proc, signal.SIGINT, timeout=20)  # Ctrl-C, as a user stops it


def _follow(browser, by: str, value: str) -> None:
    """Click a link or submit button and wait until the next page has replaced this one.

    Selenium's click returns before the navigation it starts; reading rows right after it
    can catch the old page's elements as the new page replaces them (stale references).
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old_page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(by, value).click()
    WebDriverWait(browser, 20).until(expected_conditions.staleness_of(old_page))
    WebDriverWait(browser, 20).until(lambda b: b.execute_script("return document.readyState") == "complete")


def _rows(browser) -> list[str]:
    from selenium.webdriver.common.by import By

    return [r.get_attribute("data-prompt-id") for r in browser.find_elements(By.CSS_SELECTOR, "tr.prompt-row")]


@pytest.mark.slow
def test_prompt_list_renders_and_filters_change_the_rows(browser, url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(url)
    assert browser.title == "prompts · thresher view"
    assert browser.find_element(By.ID, "total").text == "8" and len(_rows(browser)) == 8  # 4 prompts x 2 runs

    Select(browser.find_element(By.NAME, "run")).select_by_visible_text("main")
    Select(browser.find_element(By.NAME, "status")).select_by_value("dropped")
    _follow(browser, By.ID, "apply")
    assert sorted(_rows(browser)) == sorted([pid("C"), pid("D")])

    browser.get(url + "?run=0")
    browser.find_element(By.NAME, "right_low").click()
    _follow(browser, By.ID, "apply")
    assert _rows(browser) == [pid("A")]
    assert "right_low=1" in browser.current_url

    browser.get(url + "?run=0&disagree=1")
    assert _rows(browser) == [pid("B")]
    browser.get(url + "?run=0&errors=1")
    assert _rows(browser) == [pid("A")]
    browser.get(url + "?reason=no_candidates")
    assert _rows(browser) == [pid("C"), pid("C")]  # both arms

    browser.get(url + "?run=1")
    box = browser.find_element(By.NAME, "q")
    box.send_keys("six sevens")
    _follow(browser, By.ID, "apply")
    assert _rows(browser) == [pid("B")]

    browser.get(url + "?run=0&per=3")
    first = _rows(browser)
    _follow(browser, By.ID, "next")
    assert len(first) == 3 and len(_rows(browser)) == 1 and not set(first) & set(_rows(browser))
    assert sorted(first + _rows(browser)) == sorted(pid(k) for k in QUESTIONS)

    browser.get(url + "?page=zero")
    assert "page: expected a whole number" in browser.find_element(By.ID, "error").text


@pytest.mark.slow
def test_prompt_page_shows_the_planted_candidates_verdicts_and_decisions(browser, url):
    from selenium.webdriver.common.by import By

    browser.get(url + "?run=0&task=add&right_low=1")
    _follow(browser, By.CSS_SELECTOR, "tr.prompt-row a")
    assert "What is 3 + 4?" in browser.page_source
    cards = browser.find_elements(By.CSS_SELECTOR, "div.cand")
    ids = [c.get_attribute("data-candidate-id") for c in cards]
    a = pid("A")
    assert ids[0] == f"{a}/teacher/0"  # the kept answer first, then by the policy's rank
    assert sorted(ids) == sorted(f"{a}/{m}/{i}" for m, i, *_ in ANSWERS["A"])
    by_id = {c.get_attribute("data-candidate-id"): c for c in cards}
    kept = by_id[f"{a}/teacher/0"]
    assert "kept" in kept.find_element(By.CSS_SELECTOR, ".badge").text
    assert kept.find_element(By.CSS_SELECTOR, "pre.answer").text == "3 + 4 = \\boxed{7}"
    verdicts = {v.get_attribute("data-judge"): v.text for v in kept.find_elements(By.CSS_SELECTOR, "tr.verdict")}
    assert set(verdicts) == {"math", "rm"} and "0.900" in verdicts["rm"] and "extracted 7" in verdicts["math"]
    wrong_high = by_id[f"{a}/teacher/1"]
    assert "dropped · wrong" in wrong_high.text and "verifier wrong, high score" in wrong_high.text
    assert "verifier right, low score" in by_id[f"{a}/student/0"].text and "outranked" in by_id[f"{a}/student/0"].text
    failed = by_id[f"{a}/student/1"]
    assert "timeout after 5s" in failed.text and "verifier_error" in failed.text

    sft = browser.find_element(By.ID, "sft").text
    assert f"{a}/teacher/0" in sft and "3 + 4 = \\boxed{7}" in sft
    critique = browser.find_element(By.ID, "critique").text
    assert "Candidate" in critique and "which equals the correct answer 7" in critique
    pairs = browser.find_elements(By.CSS_SELECTOR, "#dpo tr.pair")
    assert len(pairs) == 1
    cells = [td.text for td in pairs[0].find_elements(By.TAG_NAME, "td")]
    assert cells[0] == f"{a}/teacher/0" and cells[5] == "best_vs_worst" and float(cells[4]) > 0

    browser.get(url + f"prompt?run=0&round=1&id={pid('B')}")
    critic = [v.text for v in browser.find_elements(By.CSS_SELECTOR, f"div.cand[data-candidate-id='{pid('B')}/teacher/0'] tr.verdict")]
    assert any("critic says wrong" in t for t in critic) and any("yes" in t for t in critic)
    browser.get(url + "prompt?run=0&round=1&id=nope")
    assert "no prompt 'nope'" in browser.find_element(By.ID, "error").text


@pytest.mark.slow
def test_overview_shows_metrics_with_intervals_report_cards_exports_and_both_arms(browser, url):
    from selenium.webdriver.common.by import By

    browser.get(url + "overview")
    arms = browser.find_element(By.ID, "arms")
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in arms.find_elements(By.TAG_NAME, "tr")[1:]]
    assert ["add", "1", "0.550 [0.450, 0.650]", "0.350 [0.250, 0.450]", "0.200"] in rows
    assert ["mul", "1", "0.400", "0.280", "0.120"] in rows
    tasks = browser.find_element(By.ID, "tasks-0-0").text
    assert "0.300 [0.200, 0.400]" in tasks
    card = browser.find_element(By.ID, "judge-0-1-rm").text
    assert "selection_lift" in card and "0.200 [0.100, 0.300]" in card
    decisions = browser.find_elements(By.CSS_SELECTOR, "table.decisions")[0].text
    for line in ("wrong 6", "kept 2", "outranked 1", "verifier_error 1"):
        assert line in decisions, decisions
    assert "2 of 4 prompts kept an answer; prompts with none: no_candidates 1, none_correct 1" in browser.page_source


def test_first_page_latency_is_reported(runs, tmp_path):
    """The page says how long its query took; a small run answers in milliseconds."""
    from thresher.view.server import Viewer, ViewServer

    with ViewServer(Viewer([runs[0]], cache=tmp_path, progress=False)) as server:
        start = time.perf_counter()
        html = urllib.request.urlopen(server.url).read().decode()
        assert time.perf_counter() - start < 5.0
    assert "<span id=total>4</span>" in html
