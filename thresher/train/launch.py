"""Training on several processes (GPUs) through `accelerate launch`, for the train stage and `thresher train`.

With `train: {launcher: accelerate, num_processes: 8, config_file: fsdp.yaml}`
the driver writes the job (trainer, base model, data files, settings) to
`<model dir>/launch.json`, runs

    accelerate launch [--config_file F] [--num_processes N] -m thresher.train.launch <model dir>/launch.json

and waits. Every process runs the same trainer function in-process training
runs (`train_sft`, `train_dpo`, `train_reward_model`); TRL and accelerate
split the batches (DDP), or shard the model as the config file says (FSDP,
DeepSpeed ZeRO); the main process saves the model and its summary, which the
stage then reads like any finished model. The launch's output is shown and
kept in `<model dir>/launch.log`.

Without a config file and with several processes the launch is a plain
multi-process one (accelerate's `--multi_gpu`, i.e. torchrun). On a machine
without GPUs that gives data-parallel training on CPU processes (gloo):
accelerate's own `--cpu` flag would start a single process unless MPI is set
up, so it is not used.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thresher.config import TrainConfig
from thresher.errors import UserError

JOB_FILE = "launch.json"
LOG_FILE = "launch.log"


@dataclass(slots=True)
class TrainJob:
    """What every launched process trains: one call of a trainer function, as data."""

    method: str
    """sft, dpo or reward."""
    base_model: str
    data_files: list[str]
    out_dir: str
    config: dict[str, Any]
    """The TrainConfig, as plain data."""
    seed: int = 0
    report_to: str = "none"
    ref_model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(job_file: Path, cfg: TrainConfig) -> list[str]:
    """The `accelerate launch` command line for a job file and the train settings."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    config_text = ""
    if cfg.config_file:
        path = Path(cfg.config_file).expanduser()
        cmd += ["--config_file", str(path)]
        config_text = path.read_text(encoding="utf-8")
    if cfg.num_processes is not None:
        cmd += ["--num_processes", str(cfg.num_processes)]
        if not cfg.config_file and cfg.num_processes > 1:
            cmd += ["--multi_gpu", "--num_machines", "1"]
    port_given = "--main_process_port" in cfg.launch_args or "main_process_port" in config_text
    if not port_given:  # two launches on one machine must not meet on accelerate's default port
        cmd += ["--main_process_port", str(_free_port())]
    cmd += [*cfg.launch_args, "-m", "thresher.train.launch", str(job_file)]
    return cmd


def launch_training(
    method: str,
    base_model: str,
    data_files: list[Path],
    out_dir: Path,
    cfg: TrainConfig,
    seed: int = 0,
    report_to: str = "none",
    ref_model: str | None = None,
) -> Path:
    """Train through `accelerate launch` and wait; returns `out_dir` once the main process has saved the model."""
    from thresher.train.common import is_finished
    from thresher.typed import to_data

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    job = TrainJob(method, str(base_model), [str(f) for f in data_files], str(out_dir), to_data(cfg), seed,
                   report_to, ref_model)
    job_file = out_dir / JOB_FILE
    job_file.write_text(json.dumps(to_data(job), indent=2), encoding="utf-8")
    cmd = launch_command(job_file, cfg)
    log_path = out_dir / LOG_FILE
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:  # shown as it comes, and kept
            sys.stderr.write(line)
            log.write(line)
        rc = proc.wait()
    if rc != 0:
        tail = "".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines(True)[-15:])
        raise UserError(f"accelerate launch exited with {rc} (full output in {log_path}); its last lines:\n{tail}")
    if not is_finished(out_dir):
        raise UserError(f"accelerate launch ended without a finished model in {out_dir} (see {log_path})")
    return out_dir


def run_job(job: TrainJob) -> Path:
    """In one launched process: the trainer function the job names (which trains inline, in this process)."""
    from thresher.typed import from_data

    cfg = from_data(TrainConfig, {**job.config, "launcher": "inline", "num_processes": None, "config_file": None,
                                  "launch_args": []}, "train")
    if job.method == "sft":
        from thresher.train.sft import train_sft

        return train_sft(job.base_model, job.data_files, job.out_dir, cfg, seed=job.seed, report_to=job.report_to)
    if job.method == "dpo":
        from thresher.train.dpo import train_dpo

        return train_dpo(job.base_model, job.data_files, job.out_dir, cfg, seed=job.seed, ref_model=job.ref_model,
                         report_to=job.report_to)
    if job.method == "reward":
        from thresher.train.reward import train_reward_model

        return train_reward_model(job.base_model, job.data_files, job.out_dir, cfg, seed=job.seed,
                                  report_to=job.report_to)
    raise UserError(f"{job.method!r} is not a trainer (expected sft, dpo or reward)")


def main(argv: list[str] | None = None) -> int:
    """`python -m thresher.train.launch JOB.json`: what `accelerate launch` starts in every process."""
    from thresher.typed import from_data

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m thresher.train.launch JOB.json (written by the train stage)", file=sys.stderr)
        return 2
    job = from_data(TrainJob, json.loads(Path(args[0]).read_text(encoding="utf-8")), "job")
    run_job(job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
