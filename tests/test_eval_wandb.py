"""W&B logging in offline mode, read back from the offline run files: curves, training steps, groups, artifacts."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from thresher.config import parse_recipe
from thresher.eval.wandb_log import RUN_ID_FILE, WandbLogger, export_log, round_log, train_steps, wandb_mode


def wandb_records(path: Path) -> list:
    """Every record of an offline `.wandb` file (W&B's LevelDB-style log of `Record` protobufs)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", "not a W&B run file"
    pos, block, out, buf = 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        if kind == 0:  # zeroed rest of a block
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 2:  # first piece of a record split across blocks
            buf = chunk
            continue
        if kind == 3:
            buf += chunk
            continue
        r = pb.Record()
        r.ParseFromString(buf + chunk if kind == 4 else chunk)
        out.append(r)
    return out


def offline_run(run_dir: Path) -> dict:
    """The run header, history rows and artifacts of a thresher run's offline W&B run(s)."""
    run_id = (run_dir / RUN_ID_FILE).read_text().strip()
    files = sorted((run_dir / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert files, "no offline W&B run"
    out: dict = {"runs": [], "history": [], "artifacts": []}
    for f in files:
        deadline = time.monotonic() + 30  # wandb's service process may still be flushing the file
        while not any(r.WhichOneof("record_type") == "exit" for r in wandb_records(f)) and time.monotonic() < deadline:
            time.sleep(0.2)
        for r in wandb_records(f):
            kind = r.WhichOneof("record_type")
            if kind == "run":
                out["runs"].append(r.run)
            elif kind == "history":
                out["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item})
            elif kind == "artifact":
                out["artifacts"].append(r.artifact)
    return out


def test_mode_is_offline_without_an_api_key(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert wandb_mode() == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"


def test_round_export_and_train_keys():
    data = round_log(2, {"tasks": {"addition": {"pass@1": 0.5, "pass@1_ci": [0.4, 0.6], "note": "x"}},
                         "judges": {"rm": {"addition": {"selection_lift": 0.1}}}})
    assert data == {"round": 2, "task/addition/pass@1": 0.5, "task/addition/pass@1_ci_low": 0.4,
                    "task/addition/pass@1_ci_high": 0.6, "judge/rm/addition/selection_lift": 0.1}
    summary = {"prompts": 10, "prompts_passed": 8, "no_pass": {"reasons": {"none_correct": 2}},
               "candidates": {"filtered": {"truncated": 3}},
               "exports": {"sft": {"rows": 8, "dropped": {}}, "dpo": {"rows": 5, "dropped": {"tie": 3}}}}
    assert export_log(1, summary) == {"round": 1, "export/prompts": 10, "export/prompts_passed": 8,
                                      "export/no_pass/none_correct": 2, "export/filtered/truncated": 3,
                                      "export/sft/rows": 8, "export/dpo/rows": 5, "export/dpo/dropped/tie": 3}
    history = [{"loss": 2.0, "learning_rate": 1e-3, "grad_norm": 1.5, "epoch": 0.5, "step": 1},
               {"loss": 1.5, "learning_rate": 5e-4, "epoch": 1.0, "step": 2},
               {"train_runtime": 3.0, "train_loss": 1.75, "step": 2}]
    assert train_steps(history, 2, offset=10) == [
        {"train/loss": 2.0, "train/learning_rate": 1e-3, "train/grad_norm": 1.5, "train/epoch": 0.5,
         "train/step": 11, "train/round": 2},
        {"train/loss": 1.5, "train/learning_rate": 5e-4, "train/epoch": 1.0, "train/step": 12, "train/round": 2},
    ]


def test_disabled_logger_does_nothing(tmp_path):
    logger = WandbLogger(None, tmp_path / "run", enabled=False)
    logger.log_round(0, {"tasks": {"a": {"pass@1": 1.0}}})
    logger.log_export(1, {}, tmp_path)
    logger.log_training(1, tmp_path)
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
    for k, answer in ((0, "5"), (1, "4")):
        logger.log_round(k, {"tasks": {"addition": {"pass@1": 0.25 * (k + 1)}},
                             "examples": [{"task": "addition", "prompt": "2+2=", "reference": "4", "answer": answer,
                                           "extracted": answer, "correct": answer == "4"}]})
    logger.finish()

    got = offline_run(run_dir)
    [run] = got["runs"]
    assert run.display_name == "wandb-offline-check" and run.run_group == "wandb-offline-check"
    assert list(run.tags) == ["policy:best"]
    curve = [(h["round"], h["task/addition/pass@1"]) for h in got["history"] if "task/addition/pass@1" in h]
    assert curve == [(0, 0.25), (1, 0.5)]
    # the examples table is incremental: each round uploads one increment holding only its own row
    tables = [(h["examples/increment_num"], h["examples/nrows"]) for h in got["history"] if "examples/nrows" in h]
    assert tables == [(0, 1), (1, 2)]  # increment k, and the rows the table holds in all
    tables = sorted((next((run_dir / "wandb").glob("offline-run-*")) / "files" / "media" / "table").glob("*.table.json"))
    assert [json.loads(t.read_text())["data"][0][0] for t in tables] == [0, 1]
    assert all(len(json.loads(t.read_text())["data"]) == 1 for t in tables)

    again = WandbLogger(recipe, run_dir)  # a resumed thresher run continues the same W&B run id
    assert again.run.id == run.run_id
    again.finish()


@pytest.mark.slow
def test_both_arms_log_training_steps_exports_and_share_a_group(tiny_lm, tiny_rm, tmp_path, monkeypatch):
    """A one-round main arm and its control arm, as the quickstart runs them, read back from the offline files."""
    from test_rounds import tiny_recipe

    from thresher.quickstart.arms import control_recipe, main_arm
    from thresher.rounds import run_recipe
    from thresher.runner import stage_summary
    from thresher.store import read_json

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    data = tiny_recipe(tiny_lm, tiny_rm, tmp_path, "tiny", rounds=1)
    data["eval"]["wandb"] = True
    data["train"]["batch_size"] = 2  # a few steps, so the loss curve has points
    main = main_arm(parse_recipe(data))
    for recipe in (main, control_recipe(main)):
        run_recipe(recipe, progress=False)

    for name, arm, policy in (("tiny", "main", "best"), ("tiny-control", "control", "random")):
        run_dir = tmp_path / name
        got = offline_run(run_dir)
        [run] = got["runs"]
        assert run.run_group == "tiny" and sorted(run.tags) == sorted([f"policy:{policy}", f"arm:{arm}"])
        steps = read_json(run_dir / "round_1" / "model" / ".complete")["steps"]
        losses = [(h["train/step"], h["train/loss"]) for h in got["history"] if "train/loss" in h]
        assert [s for s, _ in losses] == list(range(1, steps + 1)) and steps >= 4
        assert all(h["train/learning_rate"] > 0 for h in got["history"] if "train/loss" in h)
        export = stage_summary(run_dir / "round_1" / ".stages" / "export.json")
        [counts] = [h for h in got["history"] if "export/sft/rows" in h]
        assert counts["round"] == 1 and counts["export/sft/rows"] == export["exports"]["sft"]["rows"]
        [artifact] = [a for a in got["artifacts"] if a.type == "dataset"]
        assert artifact.name == f"{name}-exports" and "round-1" in artifact.aliases
        assert {e.path for e in artifact.manifest.contents} == {
            "sft.jsonl", "critique_sft.jsonl", "export_decisions.jsonl"}
        rounds = Counter(h["round"] for h in got["history"] if "task/addition/pass@1" in h)
        assert rounds == {0: 1, 1: 1}
