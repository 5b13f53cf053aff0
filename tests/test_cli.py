"""The `thresher` command: help for every subcommand, exit code 2 and one line for user errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from thresher.cli import COMMANDS


def thresher(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "thresher", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_help_lists_every_subcommand():
    out = thresher("--help")
    assert out.returncode == 0
    for name in ("sample", "judge", "export", "train", "eval", "run", "report", "quickstart"):
        assert name in COMMANDS
        assert f"    {name}" in out.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_subcommand_explains_itself(name):
    out = thresher(name, "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: thresher " + name)
    assert len(out.stdout.splitlines()) > 4


def _recipe(tmp_path, **over):
    data = {
        "name": "cli",
        "models": [{"name": "student", "path": "builtin:tiny-student", "role": "student", "backend": "hf"}],
        "judges": [{"type": "math"}],
        "prompts": {"train": {"source": "arithmetic", "count": 8}, "eval": {"source": "arithmetic", "split": "eval", "count": 4}},
    }
    data.update(over)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _one_line_error(out):
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr  # no traceback
    return lines[0]


def test_dry_run_checks_recipe_and_prompts(tmp_path):
    out = thresher("run", str(_recipe(tmp_path)), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "# prompts.train: 8 prompts; addition=2, multiplication=2, subtraction=2, word_problem=2" in out.stdout


def test_unknown_recipe_key_gives_exit_2_naming_the_key(tmp_path):
    line = _one_line_error(thresher("run", str(_recipe(tmp_path, judgse=[])), "--dry-run"))
    assert "judgse: unknown key" in line


def test_missing_model_path_gives_exit_2_naming_the_key(tmp_path):
    models = [{"name": "student", "path": "./no/such/model", "role": "student"}]
    line = _one_line_error(thresher("run", str(_recipe(tmp_path, models=models)), "--dry-run"))
    assert "models[0].path: path './no/such/model' does not exist" in line


def test_malformed_jsonl_line_gives_exit_2_naming_file_and_line(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    good = json.dumps({"task": "qa", "prompt": "What is 1 + 1?", "answer": "2"})
    prompts.write_text(f"{good}\n{good}\n{{\"task\": \"qa\", \"prompt\": \n")
    recipe = _recipe(tmp_path, prompts={"train": {"source": "jsonl", "path": str(prompts)}})
    line = _one_line_error(thresher("run", str(recipe), "--dry-run"))
    assert f"{prompts}:3: invalid JSON" in line


def test_unknown_subcommand_and_bad_override(tmp_path):
    assert thresher("smaple").returncode == 2
    line = _one_line_error(thresher("run", str(_recipe(tmp_path)), "--dry-run", "--set", "rounds=many"))
    assert "rounds: expected an integer" in line
