"""Fast checks of the quickstart's Chinese task, second student and the tiny judge's training targets."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from thresher.judges.answers import extract_answer
from thresher.judges.llm_judge import listwise_verdicts
from thresher.judges.llm_templates import listwise_request, prompt_digest, prompt_language
from thresher.prompts.arithmetic import TASKS, arithmetic_suite
from thresher.quickstart.judging import digit_checks, judge_answer, steps
from thresher.quickstart.worked import worked_answer, wrong_answer
from thresher.records import Prompt


def test_chinese_word_problem_is_chinese_split_and_answered_by_its_worked_answer():
    assert "word_problem_zh" not in TASKS  # asked for by name; the default suite stays English
    train = arithmetic_suite("train", 60, seed=1, tasks=["word_problem_zh"])
    evals = arithmetic_suite("eval", 60, seed=1, tasks=["word_problem_zh"])
    assert {tuple(p.metadata["operands"]) for p in train}.isdisjoint(tuple(p.metadata["operands"]) for p in evals)
    rng = random.Random(0)
    for p in train + evals:
        assert p.task == "word_problem_zh" and p.metadata["language"] == "zh" and prompt_language(p) == "zh"
        assert "现在有多少" in p.question
        worked = worked_answer(p)
        assert "所以" in worked and "so" not in worked
        assert extract_answer(worked).answer == p.reference
        assert extract_answer(wrong_answer(p, rng)).answer != p.reference
    en = arithmetic_suite("eval", 8, seed=1)
    assert {prompt_language(p) for p in en} == {"en"} and {p.metadata["language"] for p in en} == {"en"}


def test_prompt_language_reads_declared_language_then_text():
    zh = Prompt.create("t", [{"role": "user", "content": "一共有多少个苹果？What is 2 + 2?"}])
    en = Prompt.create("t", [{"role": "user", "content": "How many 苹果 are there in the basket now?"}])
    assert prompt_language(zh) == "zh" and prompt_language(en) == "en"
    assert prompt_language(replace(en, metadata={"language": "zh"})) == "zh"


def _problem() -> Prompt:
    return next(p for p in arithmetic_suite("eval", 40, seed=2, tasks=["word_problem"]) if int(p.reference) > 20)


def test_judge_answer_solves_checks_each_response_and_parses_as_a_listwise_verdict():
    p = _problem()
    right = worked_answer(p)
    first_step = steps(right)[0]
    broken_step = first_step.rsplit("=", 1)[0] + "=" + str(int(first_step.rsplit("=", 1)[1]) + 1)
    off = right.rsplit(" ", 1)[0] + f" {int(p.reference) + 1}"
    shown = [off, right, broken_step + ", so 7", "I do not know", right]
    out = judge_answer(p, shown)
    ref = p.reference
    assert out.startswith(f"<reasoning>[Question]\n{p.question}\nSolution: {right}\nThe answer is {ref}.\n")
    off_by_one = str(int(ref) + 1)
    assert f"Response 1 gives {off_by_one}; the answer is {ref}: {digit_checks(off_by_one, ref, 'en')}: wrong, so {off_by_one} is wrong." in out
    assert f"Response 2 gives {ref}; the answer is {ref}: {digit_checks(ref, ref, 'en')}: right." in out
    assert f"Response 3 gives 7; the answer is {ref}: {digit_checks('7', ref, 'en')}: wrong, {broken_step} is wrong." in out
    assert "Response 4 gives no answer: wrong." in out
    # the right ones first (in the order shown), then the wrong ones by how far their work got
    assert out.endswith("<best>2</best>\n<ranking>2, 5, 1, 3, 4</ranking>")
    cids = [f"{p.id}/m/{i}" for i in range(5)]
    verdicts = listwise_verdicts(cids, "tiny_judge", list(range(5)), out, {"kind": "listwise"})
    assert [v.error for v in verdicts] == [None] * 5
    assert [v.metadata["chosen"] for v in verdicts] == [False, True, False, False, False]
    assert [v.metadata["rank"] for v in verdicts] == [3, 1, 4, 5, 2]


def test_judge_answer_in_chinese_and_when_no_response_is_right():
    p = arithmetic_suite("eval", 1, seed=4, tasks=["word_problem_zh"])[0]
    rng = random.Random(1)
    shown = [wrong_answer(p, rng) for _ in range(3)]
    out = judge_answer(p, shown)
    assert out.startswith(f"<reasoning>【问题】\n{p.question}\n解答：{worked_answer(p)}\n正确答案是 {p.reference}。\n")
    assert "：正确。" not in out
    assert out.count("：错误") == 3
    assert "<best>" in out and "<ranking>" in out


def test_digit_checks_compare_units_first_and_stay_no_after_the_first_difference():
    assert digit_checks("152", "152", "en") == "2 2 yes, 5 5 yes, 1 1 yes"
    assert digit_checks("53", "63", "en") == "3 3 yes, 5 6 no"
    assert digit_checks("62", "63", "en") == "2 3 no, 6 6 no"  # once wrong, wrong
    assert digit_checks("7", "66", "en") == "7 6 no, 0 6 no"  # the shorter padded with zeros, as columns are
    assert digit_checks("72", "72", "zh") == "2 2 对，7 7 对"
    assert digit_checks("-3", "3", "en") == "no" and digit_checks("1.5", "1.5", "en") == "yes"


def test_tokenizer_corpus_is_the_one_every_built_model_was_tokenized_with():
    """The merges are learned from this text; if it changed, a fresh clone would build other models than the ones
    the README's numbers come from. The judge's lines may change (its own build key), the corpus may not."""
    import hashlib
    import json

    from thresher.quickstart.tokenizer import corpus_texts

    texts = corpus_texts(0)
    assert len(texts) == 1600
    assert hashlib.sha1(json.dumps(texts).encode()).hexdigest() == "9282197598f6f5d820965c2eb9ca370e4a1d572c"


def test_listwise_request_hides_the_reference_when_asked_and_digests_differ():
    p = _problem()
    shown = [worked_answer(p), "no idea"]
    with_ref = listwise_request(p, shown, "en", with_reference=True)
    without = listwise_request(p, shown, "en", with_reference=False)
    assert "[Reference answer]" in with_ref[0]["content"] and "[Reference answer]" not in without[0]["content"]
    assert prompt_digest(with_ref) != prompt_digest(without)
    assert "【回答 1】" in listwise_request(p, shown, "zh")[0]["content"]


def test_build_config_names_two_students_and_a_chinese_task_and_the_judge_has_its_own_key(tmp_path):
    from thresher.models import BUILTINS
    from thresher.quickstart.build import BuildConfig, QuickstartModels, quickstart_tasks
    from thresher.quickstart.judge_build import JudgeBuildConfig, judge_dir

    cfg = BuildConfig()
    assert "word_problem_zh" in quickstart_tasks(cfg)
    assert cfg.student_steps < cfg.student2_steps < cfg.teacher_steps
    models = QuickstartModels(tmp_path)
    assert models.path("student2") == tmp_path / "student2"
    assert judge_dir(models) != judge_dir(models, JudgeBuildConfig(steps=1))
    assert {"tiny-student2", "tiny-judge"} <= set(BUILTINS)


def test_judge_arms_differ_only_in_selection_and_training_data(tmp_path):
    from dataclasses import asdict

    from thresher.quickstart.judge_arms import JUDGE_RECIPE, judge_recipes

    repo = Path(__file__).resolve().parents[1]
    assert JUDGE_RECIPE.read_text() == (repo / "recipes" / "quickstart-judge.yaml").read_text()
    arms = judge_recipes(tmp_path, ["rounds=1"])
    a, b, c = (asdict(arms[k]) for k in ("judge", "critique", "random"))
    assert (a["name"], b["name"], c["name"]) == ("quickstart-judge", "quickstart-judge-critique", "quickstart-judge-random")
    assert a["rounds"] == 1 and a["out_dir"] == str(tmp_path)
    [judge] = a["judges"]
    assert judge["args"]["mode"] == "listwise" and judge["args"]["with_reference"] is False
    assert judge["args"]["language"] == "auto"
    assert (a["selection"]["policy"], a["selection"]["args"]["judge"]) == ("best", "tiny_judge")
    assert {m["name"] for m in a["models"]} == {"teacher", "student", "student2"}
    assert not any(j["type"] in ("math", "code") for arm in (a, b, c) for j in arm["judges"])  # no verifier selects
    same = ("models", "prompts", "rounds", "seed", "eval")
    assert all(a[k] == b[k] == c[k] for k in same)
    assert b["export"]["critique"] and b["train"]["data"] == ["sft", "critique_sft"] and a["train"]["data"] == ["sft"]
    assert {k: v for k, v in b["train"].items() if k != "data"} == {k: v for k, v in a["train"].items() if k != "data"}
    assert c["judges"] == [] and c["train"] == a["train"]
    assert (c["selection"]["policy"], c["selection"]["args"]["k"]) == ("random", 1)
    assert b["export"]["args"]["critique"]["judge"] == "tiny_judge" and b["export"]["args"]["mix"][0]["total"] == 300
