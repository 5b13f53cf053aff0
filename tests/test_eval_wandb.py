"""W&B logging in offline mode: the run files exist and hold the per-task curves, the table and the recipe."""

from __future__ import annotations

import json
import time

import pytest

from thresher.config import parse_recipe
from thresher.eval.wandb_log import RUN_ID_FILE, WandbLogger, round_log, wandb_mode


def test_mode_is_offline_without_an_api_key(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert wandb_mode() == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"


def test_round_log_keys():
    data = round_log(2, {"tasks": {"addition": {"pass@1": 0.5}},
                         "judges": {"rm": {"addition": {"selection_lift": 0.1}}}})
    assert data == {"round": 2, "task/addition/pass@1": 0.5, "judge/rm/addition/selection_lift": 0.1}


def test_disabled_logger_does_nothing(tmp_path):
    logger = WandbLogger(None, tmp_path / "run", enabled=False)
    logger.log_round(0, {"tasks": {"a": {"pass@1": 1.0}}})
    logger.finish()
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_offline_run_files(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    recipe = parse_recipe({"name": "wandb-offline-check", "models": [{"name": "s", "path": "x", "role": "student"}],
                           "judges": [{"type": "math"}]}, check_files=False)
    run_dir = tmp_path / "run"
    logger = WandbLogger(recipe, run_dir)
    logger.log_round(0, {"tasks": {"addition": {"pass@1": 0.25}},
                         "examples": [{"task": "addition", "prompt": "2+2=", "reference": "4", "answer": "5",
                                       "extracted": "5", "correct": False}]})
    logger.log_round(1, {"tasks": {"addition": {"pass@1": 0.5}},
                         "examples": [{"task": "addition", "prompt": "2+2=", "reference": "4", "answer": "4",
                                       "extracted": "4", "correct": True}]})
    logger.finish()

    run_id = (run_dir / RUN_ID_FILE).read_text().strip()
    runs = list((run_dir / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(runs) == 1
    run_file = runs[0] / f"run-{run_id}.wandb"
    deadline = time.monotonic() + 30  # wandb's service process may still be flushing the file
    while b"task/addition/pass@1" not in run_file.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.2)
    data = run_file.read_bytes()
    for needle in (b"task/addition/pass@1", b"wandb-offline-check", b"round"):
        assert needle in data, needle
    tables = sorted((runs[0] / "files" / "media" / "table").glob("examples_*.table.json"))
    last = json.loads(tables[-1].read_text())
    assert last["columns"][:3] == ["round", "task", "prompt"]
    assert [row[0] for row in last["data"]] == [0, 1]  # the table grows round by round

    # a resumed thresher run continues the same W&B run id
    again = WandbLogger(recipe, run_dir)
    assert again.run.id == run_id
    again.finish()
