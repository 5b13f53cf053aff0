"""Training through `accelerate launch`: the command line, the config checks, and a real 2-process SFT run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from thresher.config import TrainConfig
from thresher.errors import ConfigError
from thresher.store import COMPLETE, read_json
from thresher.train.launch import launch_command


def test_launch_command_for_processes_and_for_a_config_file(tmp_path: Path):
    job = tmp_path / "launch.json"
    cmd = launch_command(job, TrainConfig(launcher="accelerate", num_processes=8))
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert cmd[3:8] == ["--num_processes", "8", "--multi_gpu", "--num_machines", "1"]
    assert cmd[8] == "--main_process_port" and int(cmd[9]) > 0
    assert cmd[10:] == ["-m", "thresher.train.launch", str(job)]

    fsdp = tmp_path / "fsdp.yaml"
    fsdp.write_text("distributed_type: FSDP\nnum_processes: 8\nmain_process_port: 29555\n")
    cfg = TrainConfig(launcher="accelerate", config_file=str(fsdp), launch_args=["--num_machines", "2"])
    assert launch_command(job, cfg)[3:] == ["--config_file", str(fsdp), "--num_machines", "2",
                                            "-m", "thresher.train.launch", str(job)]


def test_launch_settings_are_checked_when_the_config_is_made(tmp_path: Path):
    with pytest.raises(ConfigError, match="num_processes: must be at least 1, got 0"):
        TrainConfig(launcher="accelerate", num_processes=0)
    with pytest.raises(ConfigError, match="config_file: no such file"):
        TrainConfig(launcher="accelerate", config_file=str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="num_processes: only used with launcher: accelerate"):
        TrainConfig(num_processes=2)


def _sft_rows() -> list[dict]:
    return [
        {"messages": [{"role": "user", "content": f"What is {a} + {b}?"},
                      {"role": "assistant", "content": f"The answer is {a + b}."}]}
        for a in range(8) for b in range(4)
    ]


@pytest.mark.slow
def test_sft_on_two_processes_through_accelerate_launch(tiny_lm: Path, tmp_path: Path):
    """`thresher train --launcher accelerate --num-processes 2` on CPU: two gloo processes, DDP, the loss drops."""
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _sft_rows()), encoding="utf-8")
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "thresher.cli", "train", "--data", str(data), "--model", str(tiny_lm),
           "--out", str(out), "--epochs", "6", "--lr", "3e-3", "--batch-size", "8", "--max-length", "64",
           "--launcher", "accelerate", "--num-processes", "2", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = read_json(out / COMPLETE)
    # 32 rows, 8 per process and step, 2 processes: 2 steps an epoch, 12 in 6 epochs.
    assert summary["processes"] == 2 and summary["steps"] == 12 and summary["rows"] == 32
    assert json.loads(done.stdout.strip().splitlines()[-1])["processes"] == 2  # the stage read the launch's result
    losses = [e["loss"] for e in read_json(out / "train_log.json")["log_history"] if "loss" in e]
    assert len(losses) == 12
    assert losses[0] > 5.0  # a random byte-level model: about ln(vocab)
    assert losses[-1] < losses[0] - 1.5, losses
    assert (out / "model.safetensors").is_file() and (out / "launch.log").is_file()
    assert "--num_processes 2 --multi_gpu" in (out / "launch.log").read_text().splitlines()[0]
