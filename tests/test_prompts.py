"""Built-in suites and loaders produce valid prompts; bad rows are reported, not dropped."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from thresher.config import PromptSource
from thresher.errors import ConfigError, RecordError, UserError
from thresher.prompts import load_prompts
from thresher.prompts.arithmetic import TASKS, arithmetic_suite
from thresher.prompts.humaneval import humaneval_suite
from thresher.prompts.loaders import load_hf_prompts, load_jsonl_prompts


def test_arithmetic_is_seeded_balanced_and_correct():
    a = arithmetic_suite("train", 200, seed=3)
    assert [p.id for p in a] == [p.id for p in arithmetic_suite("train", 200, seed=3)]
    assert Counter(p.task for p in a) == {t: 50 for t in TASKS}
    for p in a:
        ops = p.metadata["operands"]
        expected = {
            "addition": lambda: ops[0] + ops[1],
            "subtraction": lambda: ops[0] - ops[1],
            "multiplication": lambda: ops[0] * ops[1],
            "word_problem": lambda: ops[2] + ops[3] - ops[4],
        }[p.task]()
        assert p.reference == str(expected) and expected >= 0


def test_arithmetic_train_and_eval_are_disjoint_whatever_the_seed():
    train = {p.id for s in range(3) for p in arithmetic_suite("train", 400, seed=s)}
    evals = {p.id for s in range(3) for p in arithmetic_suite("eval", 100, seed=s)}
    assert train and evals and not train & evals


def test_arithmetic_refuses_impossible_requests():
    with pytest.raises(UserError, match="cannot draw"):
        arithmetic_suite("eval", 400, digits=1, tasks=["addition"])
    with pytest.raises(UserError, match="split"):
        arithmetic_suite("test", 4)


def test_humaneval_suite_carries_tests_and_entry_points():
    problems = humaneval_suite()
    assert len(problems) == 164
    p = problems[0]
    assert p.id == "HumanEval-0" and p.task == "humaneval"
    assert "def check(candidate)" in p.tests and p.metadata["entry_point"] == "has_close_elements"
    assert p.metadata["code_prompt"] in p.question


def test_jsonl_loader_maps_columns_and_keeps_the_rest(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [
        {"q": "What is 2 + 2?", "ans": 4, "cat": "math", "source": "gsm"},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "drop me"}], "cat": "chat", "n": 1},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    first, second = load_jsonl_prompts(path, columns={"prompt": "q", "reference": "ans", "task": "cat"}, task="fallback")
    assert first.task == "math" and first.reference == "4" and first.question == "What is 2 + 2?"
    assert first.metadata == {"source": "gsm"}
    assert second.messages == [{"role": "user", "content": "hi"}]  # the answer turn is not part of the prompt
    assert second.task == "chat" and second.metadata == {"n": 1}
    assert load_jsonl_prompts(path, columns={"prompt": "q"}, task="fallback")[0].task == "fallback"


def test_jsonl_loader_reports_bad_rows_by_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "ok"}) + "\n" + json.dumps({"text": "no prompt column"}) + "\n")
    with pytest.raises(RecordError, match=r"p.jsonl:2: no messages or prompt column"):
        load_jsonl_prompts(path)
    with pytest.raises(ConfigError, match="columns.answer: unknown field"):
        load_jsonl_prompts(path, columns={"answer": "a"})
    path.write_text(json.dumps({"prompt": "ok", "answer": "1"}) + "\n")
    with pytest.raises(ConfigError, match="columns.reference: column 'anser' appears in no row"):
        load_jsonl_prompts(path, columns={"reference": "anser"})


def test_hf_loader_reads_a_local_dataset(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list([{"question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(5)])
    ds.save_to_disk(str(tmp_path / "ds"))
    prompts = load_hf_prompts(str(tmp_path / "ds"), task="add")
    assert [p.reference for p in prompts] == ["1", "2", "3", "4", "5"]
    data_dir = tmp_path / "raw"
    data_dir.mkdir()
    (data_dir / "train.jsonl").write_text(json.dumps({"problem": "x?", "solution": "y"}) + "\n")
    assert load_hf_prompts(str(data_dir), task="t")[0].reference == "y"


def test_load_prompts_registry_and_count():
    src = PromptSource(source="arithmetic", split="eval", count=12, args={"digits": 2})
    assert len(load_prompts(src)) == 12
    assert len(load_prompts(PromptSource(source="humaneval", count=10))) == 10
    with pytest.raises(ConfigError, match="^source: unknown source 'nope'"):
        PromptSource(source="nope")
    with pytest.raises(ConfigError, match=r"^args.digts: unknown key \(expected one of: digits, tasks\)"):
        PromptSource(source="arithmetic", args={"digts": 3})
