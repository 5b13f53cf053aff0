"""Code verifier: run the candidate's code against the prompt's tests in a sandbox.

Prompts carry HumanEval-style tests in `Prompt.tests` (code defining
`check(candidate)`), the function under test in `metadata["entry_point"]`
and, when the candidate may write only a body, the signature and docstring in
`metadata["code_prompt"]`. The program is code prompt + candidate code +
tests + `check(entry_point)`, run under the strongest sandbox available
(`sandbox.py`). A program that fails, crashes or runs out of time is a failed
verdict (the candidate's fault); a sandbox that cannot start is a
`Verdict.error` (ours). The critique holds the failing test line and the tail
of stderr, which is what a critique-SFT example needs to teach a fix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from thresher.judges.base import check_shapes
from thresher.judges.sandbox import PROGRAM, Limits, RunResult, Sandbox, make_sandbox
from thresher.records import Candidate, Prompt, Verdict
from thresher.typed import PositiveFloat, PositiveInt

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)
_FRAME = re.compile(r'File "' + re.escape(PROGRAM) + r'", line (\d+)')
_LAUNCHER_FRAME = re.compile(r'^  File "<string>", line \d+, in (?:<module>|_launch)\n', re.MULTILINE)
STDERR_TAIL_LINES = 15


def extract_code(text: str, entry_point: str | None = None) -> str:
    """The code in a reply: the fenced Python block defining `entry_point`, else the longest one, else the text."""
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("", "python", "py", "python3")]
    if not blocks:
        return text
    if entry_point:
        defining = [
            b for b in blocks if re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", b, re.MULTILINE)
        ]
        if defining:
            return defining[0]
    return max(blocks, key=len)


def build_program(prompt: Prompt, completion: str) -> tuple[str, int]:
    """The program to run and the line where the tests start (to find the failing test in a traceback)."""
    entry_point = prompt.metadata.get("entry_point")
    code_prompt = prompt.metadata.get("code_prompt") or ""
    code = extract_code(completion, entry_point)
    defines = bool(entry_point) and re.search(
        rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.MULTILINE
    )
    if defines:
        # The whole function: keep the prompt's imports and helpers; its stub is redefined below it.
        head = code_prompt + "\n\n" + code if code_prompt else code
    else:
        head = code_prompt + code
    head = head.rstrip("\n") + "\n\n\n"
    tests = (prompt.tests or "").rstrip("\n") + "\n"
    if entry_point and re.search(r"^def\s+check\s*\(", tests, re.MULTILINE):
        tests += f"\n\ncheck({entry_point})\n"
    return head + tests, head.count("\n") + 1


def failing_line(stderr: str, program: str, tests_start: int) -> str | None:
    """The test line the traceback points at (the last frame inside the tests), if any."""
    lines = program.splitlines()
    hits = [int(n) for n in _FRAME.findall(stderr) if int(n) >= tests_start]
    if not hits or hits[-1] > len(lines):
        return None
    return lines[hits[-1] - 1].strip()


def critique_for(result: RunResult, program: str, tests_start: int, timeout: float) -> str:
    stderr = _LAUNCHER_FRAME.sub("", result.stderr)  # the sandbox launcher's own frames are noise
    tail = "\n".join(stderr.rstrip().splitlines()[-STDERR_TAIL_LINES:])
    if result.status == "passed":
        return "Passed all tests."
    if result.status == "timeout":
        return f"Timed out after {timeout:g}s (killed): an infinite loop or far too slow."
    parts = []
    line = failing_line(result.stderr, program, tests_start)
    if line:
        parts.append(f"Failed test: {line}")
    elif result.returncode == 0:
        parts.append("The program exited before the tests finished.")
    else:
        parts.append(f"The program failed (exit code {result.returncode}).")
    if tail:
        parts.append("stderr (last lines):\n" + tail)
    return "\n".join(parts)


class CodeVerifier:
    """Judge: 1.0 / correct when the candidate passes every test, 0.0 when it fails, times out or crashes."""

    kind = "verifier"

    def __init__(self, sandbox: Sandbox, limits: Limits, workers: int, name: str = "code"):
        self.name = name
        self.sandbox = sandbox
        self.limits = limits
        self.workers = workers

    def _one(self, prompt: Prompt, candidate: Candidate) -> Verdict:
        if not prompt.tests:
            return Verdict(candidate.id, self.name, critique="The prompt has no tests.")
        program, tests_start = build_program(prompt, candidate.text)
        result = self.sandbox.run(program, self.limits)
        meta = {
            "status": result.status,
            "returncode": result.returncode,
            "duration_s": round(result.duration_s, 3),
            "isolation": result.isolation,
        }
        if result.notes:
            meta["notes"] = result.notes
        if result.status == "error":
            return Verdict(
                candidate.id, self.name, error=f"sandbox failed to start: {result.stderr.strip()[-500:]}", metadata=meta
            )
        passed = result.status == "passed"
        critique = critique_for(result, program, tests_start, self.limits.timeout)
        return Verdict(candidate.id, self.name, score=float(passed), correct=passed, critique=critique, metadata=meta)

    def judge(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[Candidate]]) -> list[list[Verdict]]:
        check_shapes(prompts, candidates)
        pairs = [(p, c) for p, cs in zip(prompts, candidates) for c in cs]
        with ThreadPoolExecutor(max(1, self.workers)) as ex:
            flat = list(ex.map(lambda pc: self._one(*pc), pairs))
        out, i = [], 0
        for cs in candidates:
            out.append(flat[i : i + len(cs)])
            i += len(cs)
        return out


def code_verifier(
    timeout: PositiveFloat = 10.0,
    workers: PositiveInt = 2,
    memory_mb: PositiveInt = 1024,
    max_processes: PositiveInt = 8,
    file_size_mb: PositiveInt = 16,
    sandbox: Literal["auto", "bwrap", "rlimits"] | Sandbox = "auto",
    name: str = "code",
) -> CodeVerifier:
    """Candidates run against `Prompt.tests`, `workers` at a time, each under `timeout` wall-clock seconds.

    `sandbox` is `auto` (bubblewrap if it works here, else rlimits with a loud
    warning), `bwrap`, `rlimits`, or any object with `run(program, limits)`
    (a container, say).
    """
    box = make_sandbox(sandbox) if isinstance(sandbox, str) else sandbox
    limits = Limits(timeout=timeout, memory_mb=memory_mb, max_processes=max_processes, file_size_mb=file_size_mb)
    return CodeVerifier(box, limits, workers, name=name)
