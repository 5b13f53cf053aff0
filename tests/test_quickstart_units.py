"""Fast checks of the quickstart's parts: worked answers, tokenizer, build cache key, recipes, arms table."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from thresher.config import load_recipe
from thresher.errors import UserError
from thresher.judges.answers import extract_answer
from thresher.prompts.arithmetic import arithmetic_suite
from thresher.quickstart.worked import column_add, column_mul, column_sub, worked_answer, wrong_answer
from thresher.records import write_jsonl

REPO = Path(__file__).resolve().parents[1]


def test_column_arithmetic_is_right_on_every_operand_pair():
    for x in range(200):
        for y in range(0, x + 1, 7):
            assert extract_answer(column_add(x, y)).answer == str(x + y)
            assert extract_answer(column_sub(x, y)).answer == str(x - y)
        for m in range(2, 10):
            assert extract_answer(column_mul(x, m)).answer == str(x * m)


def test_worked_answers_show_columns_and_end_in_the_reference():
    assert column_add(67, 85) == "7+5=12, 6+8+1=15, so 152"
    assert column_sub(102, 39) == "12-9=3, 10-1-3=6, 1-1-0=0, so 63"
    assert column_mul(67, 8) == "7*8=56, 6*8+5=53, so 536"
    rng = random.Random(0)
    for p in arithmetic_suite("eval", 80, seed=3):
        assert extract_answer(worked_answer(p)).answer == p.reference
        assert extract_answer(wrong_answer(p, rng)).answer != p.reference


def test_tokenizer_keeps_digits_apart_and_round_trips():
    from thresher.quickstart.tokenizer import build_arithmetic_tokenizer

    tok = build_arithmetic_tokenizer(
        ["<|im_start|>user\nWhat is 12 + 34?<|im_end|>\n<|im_start|>assistant\n2+4=6, 1+3+0=4, so 46<|im_end|>"] * 50,
        vocab_size=300,
    )
    text = "Ana has 1234 apples, 你好"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    pieces = [tok.decode([i]) for i in ids]
    assert [p for p in pieces if any(c.isdigit() for c in p)] == ["1", "2", "3", "4"]
    chat = tok.apply_chat_template([{"role": "user", "content": "What is 1 + 2?"}], tokenize=False,
                                   add_generation_prompt=True)
    assert chat.endswith("<|im_start|>assistant\n")
    assert tok.eos_token == "<|im_end|>"


def test_build_key_follows_the_config_and_the_cache_env(tmp_path, monkeypatch):
    from thresher.quickstart.build import BuildConfig, models_dir

    base = BuildConfig()
    assert base.key() == BuildConfig().key()
    assert replace(base, teacher_steps=base.teacher_steps + 1).key() != base.key()
    monkeypatch.setenv("THRESHER_CACHE", str(tmp_path))
    assert models_dir(base) == tmp_path / "quickstart" / base.key()


def test_resolve_model_path_passes_paths_through_and_names_unknown_builtins():
    from thresher.models import resolve_builtins, resolve_model_path

    assert resolve_model_path("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    assert resolve_model_path("./models/x") == "./models/x"
    with pytest.raises(UserError, match="builtin:tiny-giant.*builtin:tiny-teacher"):
        resolve_model_path("builtin:tiny-giant")
    args = {"verifier": {"type": "math"}, "ranker": {"type": "rm", "args": {"model": "/m"}}, "n": [1, "x"]}
    assert resolve_builtins(args) == args


def test_packaged_quickstart_recipe_is_the_repository_one():
    from thresher.quickstart.arms import RECIPE

    assert RECIPE.read_text() == (REPO / "recipes" / "quickstart.yaml").read_text()


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_parses_and_says_how_to_run_it(path):
    recipe = load_recipe(path, check_files=False)
    head = path.read_text().split("\n\n")[0]
    assert "thresher " in head and "Hardware" in head, f"{path.name}: header must give the command and hardware"
    assert recipe.rounds >= 1


def test_control_arm_differs_only_in_selection_and_name():
    from thresher.quickstart.arms import control_recipe, main_recipe

    main = main_recipe("/tmp/x")
    control = control_recipe(main)
    assert main.selection.policy == "gated" and control.selection.policy == "random"
    assert control.run_dir == Path("/tmp/x/quickstart-control")
    # in W&B both arms share a group; a tag says which arm
    assert main.eval.wandb and main.eval.wandb_group == control.eval.wandb_group == "quickstart"
    assert (main.eval.wandb_tags, control.eval.wandb_tags) == (["arm:main"], ["arm:control"])
    assert replace(control, name=main.name, selection=main.selection, eval=main.eval) == main


def _metrics(run: Path, values: dict[int, dict[str, float]], sft_rows: dict[int, int]) -> None:
    run.mkdir(parents=True)
    write_jsonl(run / "metrics.jsonl", [
        {"round": r, "task": t, "metric": m, "value": v}
        for r, tasks in values.items() for t, v in tasks.items() for m in ("pass@1", "pass@4")
    ])
    for r, n in sft_rows.items():
        (run / f"round_{r}" / ".stages").mkdir(parents=True)
        (run / f"round_{r}" / ".stages" / "export.json").write_text(
            f'{{"version": 1, "finished": true, "parts": {{}}, "summary": {{"exports": {{"sft": {{"rows": {n}}}}}}}}}'
        )


def test_comparison_reports_gains_and_margins_per_task(tmp_path):
    from thresher.quickstart.arms import comparison, print_comparison

    _metrics(tmp_path / "main", {0: {"add": 0.2, "mul": 0.1}, 1: {"add": 0.5, "mul": 0.15}, 2: {"add": 0.9, "mul": 0.25}},
             {1: 100, 2: 98})
    _metrics(tmp_path / "ctl", {0: {"add": 0.2, "mul": 0.1}, 2: {"add": 0.4, "mul": 0.3}}, {1: 100, 2: 100})
    cmp = comparison(tmp_path / "main", tmp_path / "ctl")
    rows = {r["task"]: r for r in cmp["tasks"]}
    assert rows["add"]["rounds"] == [0.2, 0.5, 0.9]
    assert rows["add"]["gain"] == pytest.approx(70.0) and rows["add"]["over_control"] == pytest.approx(50.0)
    assert rows["mul"]["gain"] == pytest.approx(15.0) and rows["mul"]["over_control"] == pytest.approx(-5.0)
    assert cmp["every_task_gained"] is True and cmp["every_task_beats_control"] is False
    assert cmp["rows"] == {"main": {1: 100, 2: 98}, "control": {1: 100, 2: 100}}
    from rich.console import Console

    console = Console(record=True, width=200)
    print_comparison(cmp, console)
    out = console.export_text()
    assert "+70.0" in out and "-5.0" in out and "main arm beats the control arm on every task: NO" in out
