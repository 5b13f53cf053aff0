"""The public API: every exported name resolves, and a plain script (no `__main__` guard) judges with math."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import thresher

SCRIPT = textwrap.dedent('''
    from thresher import Candidate, Prompt, math_verifier

    prompt = Prompt.create("add", [{"role": "user", "content": "What is 3 + 4?"}], reference="7")
    answers = ["The answer is 7, because 3+4=7.", "It is 8.", "\\\\boxed{7}", "7", "seven"]
    cands = [Candidate(prompt.id, "me", i, text) for i, text in enumerate(answers)]
    print([v.correct for v in math_verifier().judge([prompt], [cands])[0]])
''')


def test_every_public_name_resolves():
    for name in thresher.__all__:
        assert getattr(thresher, name) is not None, name
    assert {"sample_stage", "judge_stage", "export_stage", "train_stage", "eval_stage"} <= set(thresher.__all__)
    assert "math" in thresher.JUDGES and "gated" in thresher.POLICIES and "hf" in thresher.BACKENDS


def test_a_plain_script_without_a_main_guard_judges_with_the_math_verifier(tmp_path):
    script = tmp_path / "judge_five.py"
    script.write_text(SCRIPT)
    assert len([line for line in SCRIPT.splitlines() if line.strip()]) == 5  # five lines, the import included
    r = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True, timeout=300,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[True, False, True, True, False]"


def test_all_lists_exactly_the_exports():
    assert sorted(thresher.__all__) == sorted(thresher._EXPORTS)
