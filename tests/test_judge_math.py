"""Math verifier: symbolic comparison, and the hard per-item timeout in worker processes (extraction: test_answers.py)."""

from __future__ import annotations

import time

import pytest

from thresher.judges.math import math_verifier, verify_answer
from thresher.judges.workers import TimeoutPool
from thresher.records import Candidate, Prompt, Verdict

HANG = "The answer is \\boxed{9^{9^{9^{9}}}}"
"""sympy tries to evaluate a number with ~10^8 digits: it does not come back for minutes."""


@pytest.fixture(scope="module")
def verifier():
    judge = math_verifier(timeout=3.0, workers=2)
    yield judge
    judge.close()


@pytest.mark.parametrize(
    ("text", "reference", "correct"),
    [
        ("the answer is 0.5", "\\frac{1}{2}", True),
        ("\\boxed{\\frac{1}{2}}", "0.5", True),
        ("\\boxed{50\\%}", "0.5", True),
        ("The answer is 50%.", "1/2", True),
        ("\\boxed{\\{2, 1\\}}", "\\{1, 2\\}", True),
        ("\\boxed{[0, 1)}", "[0,1)", True),
        ("\\boxed{(0, 1]}", "[0,1)", False),
        ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", True),
        ("答案是 7。", "7", True),
        ("答案是 8。", "7", False),
        ("we end with 41", "42", False),
        ("nothing to see", "42", False),
    ],
)
def test_verify_answer(text, reference, correct):
    out = verify_answer((text, reference))
    assert out["correct"] is correct, out
    assert out["critique"]


def test_critique_says_what_was_extracted_and_why():
    out = verify_answer(("Hence the answer is $\\frac{1}{2}$.", "0.5"))
    assert out["critique"] == (
        "Extracted '\\\\frac{1}{2}' (phrase), read as 1/2; it equals the reference '0.5', read as 0.5."
    )
    out = verify_answer(("The answer is 7, because 3+4=7.", "7"))
    assert out["correct"] is True and out["critique"].startswith("Extracted '7' (phrase), read as 7;")
    out = verify_answer(("no answer", "3"))
    assert out["correct"] is False and out["critique"].startswith("No final answer found")


def test_unparseable_reference_is_an_error_not_a_wrong_answer():
    with pytest.raises(ValueError, match="reference answer"):
        verify_answer(("\\boxed{1}", "$$"))


def _prompt(i: int, reference: str | None) -> Prompt:
    return Prompt.create("math", [{"role": "user", "content": f"question {i}"}], reference=reference)


def test_verdicts_in_input_order_with_answer_metadata(verifier):
    prompts = [_prompt(0, "0.5"), _prompt(1, "7"), _prompt(2, None)]
    cands = [
        [Candidate(prompts[0].id, "m", 0, "\\boxed{1/2}"), Candidate(prompts[0].id, "m", 1, "the answer is 2")],
        [Candidate(prompts[1].id, "m", 0, "答案是 7")],
        [Candidate(prompts[2].id, "m", 0, "so \\boxed{\\frac{2}{4}}")],
    ]
    out = verifier.judge(prompts, cands)
    assert [[v.candidate_id for v in row] for row in out] == [[c.id for c in row] for row in cands]
    assert [[v.correct for v in row] for row in out] == [[True, False], [True], [None]]
    assert [[v.score for v in row] for row in out] == [[1.0, 0.0], [1.0], [None]]
    assert out[0][0].metadata == {"answer": "1/2", "canonical": "1/2", "rule": "boxed"}
    assert out[1][0].metadata["answer"] == "7"
    # no reference: no opinion, but the answer is still extracted for majority votes
    assert out[2][0].metadata["canonical"] == "1/2" and out[2][0].judge == "math"


def test_timeout_is_an_error_and_the_worker_is_replaced(verifier):
    prompts = [_prompt(i, "1") for i in range(4)]
    texts = ["\\boxed{1}", HANG, "\\boxed{2}", "\\boxed{1}"]
    cands = [[Candidate(p.id, "m", 0, t)] for p, t in zip(prompts, texts)]
    restarts = verifier.pool.restarts
    start = time.monotonic()
    out = verifier.judge(prompts, cands)
    elapsed = time.monotonic() - start
    flat = [row[0] for row in out]
    assert flat[1].error is not None and "timed out after 3s" in flat[1].error
    assert flat[1].score is None and flat[1].correct is None
    assert [v.correct for v in (flat[0], flat[2], flat[3])] == [True, False, True]
    assert verifier.pool.restarts == restarts + 1
    assert elapsed < 3.0 + 30  # one timeout plus a fresh worker's start, not minutes
    # the pool keeps working after the kill
    again = verifier.judge(prompts[:1], cands[:1])
    assert again[0][0].correct is True


def _crash(item):
    import os

    if item == "die":
        os._exit(3)
    if item == "raise":
        raise RuntimeError("bad item")
    return item * 2


def test_pool_reports_crashes_and_exceptions_per_item():
    pool = TimeoutPool(_crash, workers=1, timeout=30)
    try:
        out = pool.map([1, "die", "raise", 4])
    finally:
        pool.close()
    assert out[0].value == 2 and out[3].value == 8
    assert out[1].error == "worker process died (exit code 3)"
    assert out[2].error == "RuntimeError: bad item"


def test_a_killed_run_leaves_no_worker_spinning(tmp_path):
    """SIGKILL the judging process while a worker is stuck in sympy: the worker dies with it."""
    import os
    import signal
    import subprocess
    import sys

    script = (
        "from thresher.judges.math import math_verifier\n"
        "from thresher.records import Candidate, Prompt\n"
        "j = math_verifier(timeout=600, workers=1)\n"
        "p = Prompt.create('m', [{'role': 'user', 'content': 'q'}], reference='1')\n"
        "j.pool.map([('\\\\boxed{1}', '1')])\n"
        "print(j.pool.slots[0].proc.pid, flush=True)\n"
        f"j.judge([p], [[Candidate(p.id, 'm', 0, {HANG!r})]])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())
    time.sleep(1.0)  # the worker is now deep in the hanging item
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 5
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(worker)


def _slow(item):
    import os

    if item == "hang":
        time.sleep(600)
    if item == "die":
        os._exit(3)
    return item * 2


def test_a_batch_with_a_hung_and_a_dying_item_answers_every_other_item():
    """One worker, batches of 3: the hung item and the crash are their own errors; the rest are answered."""
    items = [0, 1, 2, 3, "hang", 5, 6, "die", 8, 9]
    pool = TimeoutPool(_slow, workers=1, timeout=2.0)
    try:
        out = pool.map(items)
        assert pool.slots[0].batches >= 4
    finally:
        pool.close()
    assert [o.value for i, o in enumerate(out) if i not in (4, 7)] == [0, 2, 4, 6, 10, 12, 16, 18]
    assert out[4].error == "timed out after 2s (worker process killed)"
    assert out[7].error == "worker process died (exit code 3)"
    assert pool.restarts == 2


def test_items_cross_the_pipe_in_batches_not_one_by_one():
    pool = TimeoutPool(_slow, workers=2, timeout=30)
    done = []
    try:
        out = pool.map(list(range(256)), on_done=done.append)
        assert [o.value for o in out] == [2 * i for i in range(256)]
        assert sum(s.batches for s in pool.slots) == 8  # 32 items a message
        assert done == [1] * 256
        pool.map(list(range(10)))
        assert pool.restarts == 0 and all(s.proc.is_alive() for s in pool.slots)  # the same warm workers
    finally:
        pool.close()


def test_one_warm_pool_serves_every_chunk_of_a_stage(verifier, tmp_path):
    from thresher.judges.stage import judge_stage
    from thresher.records import write_jsonl
    from thresher.store import read_records

    prompts = [_prompt(i, str(i)) for i in range(6)]
    write_jsonl(tmp_path / "cands.jsonl", [Candidate(p.id, "m", 0, f"The answer is {i}.") for i, p in enumerate(prompts)])
    verifier.pool.start()
    pids = [s.proc.pid for s in verifier.pool.slots]
    batches = sum(s.batches for s in verifier.pool.slots)
    judge_stage(prompts, tmp_path / "cands.jsonl", [verifier], tmp_path / "v", progress=False, chunk_size=2)
    assert [s.proc.pid for s in verifier.pool.slots] == pids  # no chunk started a worker
    assert sum(s.batches for s in verifier.pool.slots) - batches >= 3
    verdicts = list(read_records(tmp_path / "v", Verdict))
    assert [v.correct for v in verdicts] == [True] * 6 and {v.kind for v in verdicts} == {"verifier"}


def _broken_start():
    raise ImportError("no such module")


def test_a_worker_that_cannot_start_fails_the_call_loudly():
    pool = TimeoutPool(_slow, workers=2, timeout=30, initializer=_broken_start)
    try:
        with pytest.raises(RuntimeError, match="exited at start"):
            pool.map(list(range(20)))
    finally:
        pool.close()
