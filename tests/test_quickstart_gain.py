"""The quickstart, shortened to one round: built models, real selection, a real gain over the control arm.

This builds the quickstart models from scratch (a few minutes on a CPU), so
it is the slowest test; the full three-round figures are in the README.
"""

from __future__ import annotations

import json

import pytest

from thresher.records import read_jsonl

TASKS = ("addition", "subtraction", "multiplication", "word_problem", "word_problem_zh")


def _pass1(run_dir, k):
    return {r["task"]: r["value"] for r in read_jsonl(run_dir / "metrics.jsonl") if r["round"] == k
            and r["metric"] == "pass@1"}


@pytest.mark.slow
@pytest.mark.timeout(2400)  # builds the models from scratch: minutes on a CPU, more on a busy one
def test_one_round_of_selected_data_beats_the_baseline_and_the_control_arm(tmp_path, quickstart_cache):
    from thresher.models import resolve_model_path
    from thresher.quickstart.arms import comparison, control_recipe, main_recipe
    from thresher.quickstart.build import build_models
    from thresher.rounds import run_recipe

    models = build_models(progress=False)
    assert resolve_model_path("builtin:tiny-student") == str(models.student)
    info = json.loads((models.root / "build.json").read_text())
    assert info["config"]["student_steps"] < info["config"]["teacher_steps"]
    assert (models.rm / "config.json").is_file() and (models.teacher / "tokenizer.json").is_file()
    assert info["rm"]["heldout_pair_accuracy"] > 0.85, info["rm"]  # 0.949 here; the classifier it replaced: 0.626

    main = main_recipe(tmp_path / "runs", ["rounds=1", "eval.k=1"])  # round 1 of the quickstart itself
    control = control_recipe(main)
    for recipe in (main, control):
        run_recipe(recipe, progress=False)

    before, after, ctl = _pass1(main.run_dir, 0), _pass1(main.run_dir, 1), _pass1(control.run_dir, 1)
    assert set(before) == set(TASKS)
    gains = {t: after[t] - before[t] for t in TASKS}
    # Measured in the quickstart's round 1 (2000 prompts): +67, +54, +9, +20, +7 points.
    for task in ("addition", "subtraction", "word_problem"):
        assert gains[task] >= 0.10, gains
    assert sum(gains.values()) / len(TASKS) >= 0.15, gains
    margin = {t: after[t] - ctl[t] for t in TASKS}
    assert sum(margin.values()) / len(TASKS) >= 0.05, margin
    assert margin["word_problem"] > 0 and margin["subtraction"] > 0, margin
    cmp = comparison(main.run_dir, control.run_dir)
    assert cmp["rounds"] == [0, 1] and cmp["control_round"] == 1
    assert cmp["rows"]["control"][1] >= cmp["rows"]["main"][1] > 0
    assert "math" in cmp["judge_lift"] and all(v > 0 for v in cmp["judge_lift"]["math"].values())
    # The reward model picks better than a random candidate on every task, with its 95% interval above zero
    # (measured here: +0.37 to +0.49 in round 1; the sequence classifier it replaced: -0.01 to +0.07).
    card = json.loads((main.run_dir / "round_1" / "eval.json").read_text())["judges"]["tiny_rm"]
    assert set(card) == set(TASKS), card
    for task, m in card.items():
        assert m["selection_lift"] > 0.05 and m["selection_lift_ci"][0] > 0, (task, m["selection_lift"])
