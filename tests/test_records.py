"""Records round-trip through JSONL, and bad lines are reported by file:line, never dropped."""

from __future__ import annotations

import json

import pytest

from thresher.errors import RecordError, UserError
from thresher.records import (
    Candidate,
    PreferencePair,
    Prompt,
    Verdict,
    make_prompt_id,
    read_jsonl,
    split_candidate_id,
    write_jsonl,
)


def _prompt(**kw):
    return Prompt.create("addition", [{"role": "user", "content": "What is 2 + 3? 答案?"}], reference="5", **kw)


def test_prompt_id_is_stable_hash_of_task_and_messages():
    a, b = _prompt(), _prompt()
    assert a.id == b.id == make_prompt_id("addition", a.messages)
    other = Prompt.create("subtraction", a.messages)
    assert other.id != a.id
    assert Prompt.create("x", a.messages, id="given").id == "given"


def test_all_records_round_trip(tmp_path):
    p = _prompt(metadata={"k": [1, 2]})
    c = Candidate(p.id, "org/model", 3, "The answer is 5.", num_tokens=6, finish_reason="stop", metadata={"t": 1.5})
    v = Verdict(c.id, "math", score=1.0, correct=True, critique="extracted 5, reference 5", metadata={"answer": "5"})
    pair = PreferencePair(
        p.id, p.task, p.messages, [{"role": "assistant", "content": "5"}], [{"role": "assistant", "content": "6"}],
        1.0, 0.0, 1.0, "best_vs_worst", "teacher", "student",
    )
    for cls, rec in [(Prompt, p), (Candidate, c), (Verdict, v), (PreferencePair, pair)]:
        path = tmp_path / f"{cls.__name__}.jsonl"
        assert write_jsonl(path, [rec, rec]) == 2
        back = list(read_jsonl(path, cls))
        assert back == [rec, rec]
    assert "答案" in (tmp_path / "Prompt.jsonl").read_text(encoding="utf-8")  # UTF-8 stays readable


def test_candidate_id_survives_model_names_with_slashes():
    c = Candidate("abc123", "Qwen/Qwen2.5-7B", 12, "x")
    assert c.id == "abc123/Qwen/Qwen2.5-7B/12"
    assert split_candidate_id(c.id) == ("abc123", "Qwen/Qwen2.5-7B", 12)
    assert Verdict(c.id, "rm").prompt_id == "abc123"


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"prompt_id": "a", "model": "m", "index": 0, "text": "x"', "invalid JSON"),
        ('[1, 2]', "expected a JSON object"),
        ('{"prompt_id": "a", "model": "m", "index": "zero", "text": "x"}', "Candidate.index: expected an integer"),
        ('{"prompt_id": "a", "model": "m", "text": "x"}', "Candidate.index: missing required key"),
        ('{"prompt_id": "a", "model": "m", "index": 0, "text": "x", "txet": 1}', "Candidate.txet: unknown key"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    good = json.dumps({"prompt_id": "a", "model": "m", "index": 0, "text": "ok"})
    path = tmp_path / "c.jsonl"
    path.write_text(f"{good}\n\n{good}\n{line}\n{good}\n")
    with pytest.raises(RecordError) as err:
        list(read_jsonl(path, Candidate))
    assert err.value.line == 4
    assert str(err.value).startswith(f"{path}:4: ")
    assert message in str(err.value)


def test_invalid_prompt_messages_are_rejected(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "", "task": "t", "messages": [{"role": "robot", "content": "hi"}]}) + "\n")
    with pytest.raises(RecordError, match=r"p.jsonl:1: .*messages\[0\]\.role"):
        list(read_jsonl(path, Prompt))


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        list(read_jsonl(tmp_path / "nope.jsonl"))
