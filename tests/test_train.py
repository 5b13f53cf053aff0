"""Real TRL trainers on tiny models: SFT loss drops, LoRA adapters load, DPO steps, reward accuracy rises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from thresher.config import TrainConfig
from thresher.errors import ConfigError, RecordError, UserError
from thresher.store import COMPLETE, read_json


def _sft_rows() -> list[dict]:
    rows = []
    for a in range(8):
        for b in range(4):
            rows.append({
                "messages": [
                    {"role": "user", "content": f"What is {a} + {b}?"},
                    {"role": "assistant", "content": f"The answer is {a + b}."},
                ],
                # provenance of the SFT export: must be ignored by training
                "prompt_id": f"p{a}{b}", "task": "addition", "model": "teacher", "judge": "math",
                "score": 1.0, "metadata": {"operands": [a, b], "note": None if a else "x"},
            })
    return rows


def _pair_rows(flip: bool = False) -> list[dict]:
    rows = []
    for a in range(8):
        for b in range(4):
            good = [{"role": "assistant", "content": f"The answer is {a + b}."}]
            bad = [{"role": "assistant", "content": f"Maybe {a + b + 1}!!"}]
            chosen, rejected = (bad, good) if flip else (good, bad)
            rows.append({
                "prompt": [{"role": "user", "content": f"What is {a} + {b}?"}],
                "chosen": chosen, "rejected": rejected,
                "prompt_id": f"p{a}{b}", "task": "addition", "chosen_score": 1.0, "rejected_score": 0.0,
                "margin": 1.0, "rule": "best_vs_worst", "chosen_model": "t", "rejected_model": "s",
            })
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _changed(a: dict, b: dict) -> bool:
    import torch

    return any(not torch.equal(a[k], b[k]) for k in a if k in b)


# --- fast: data and config errors ----------------------------------------------------------------


def test_bad_rows_name_file_and_line(tmp_path):
    from thresher.train.common import read_rows

    path = tmp_path / "sft.jsonl"
    path.write_text(json.dumps(_sft_rows()[0]) + "\n\n" + json.dumps({"prompt": "x"}) + "\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"sft\.jsonl:3: missing messages"):
        read_rows([path], ["messages"])
    path.write_text(json.dumps({"messages": [{"role": "user"}]}) + "\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"sft\.jsonl:1: messages\[0\]"):
        read_rows([path], ["messages"])
    with pytest.raises(UserError, match="no such training data file"):
        read_rows([tmp_path / "missing.jsonl"], ["messages"])
    rows = read_rows([_write(path, _sft_rows()[:2])], ["messages"])
    assert rows[0] == {"messages": _sft_rows()[0]["messages"]}  # provenance dropped


@pytest.mark.slow  # importing TRL alone takes several seconds
def test_unknown_trainer_arg_names_its_key(tmp_path):
    from trl import SFTConfig

    from thresher.train.common import trainer_config

    with pytest.raises(ConfigError, match=r"args\.warmup_ratioo: unknown key"):
        trainer_config(SFTConfig, TrainConfig(args={"warmup_ratioo": 0.1}), tmp_path, 0, "none")
    args = trainer_config(SFTConfig, TrainConfig(args={"max_steps": 3}), tmp_path, 0, "none")
    assert args.max_steps == 3 and args.use_cpu and not args.bf16


def test_train_stage_dispatch_errors(tmp_path):
    from thresher.train.stage import train_stage

    assert train_stage("some/model", tmp_path, TrainConfig(method="none")) == Path("some/model")
    with pytest.raises(UserError, match=r"sft\.jsonl: no such export"):
        train_stage("m", tmp_path, TrainConfig(method="sft", data=["sft"]))
    with pytest.raises(ConfigError, match=r"^data\[1\]: 'dpo' cannot be used with method 'sft'"):
        TrainConfig(method="sft", data=["sft", "dpo"])


# --- slow: real training -------------------------------------------------------------------------


@pytest.mark.slow
def test_sft_loss_drops_and_finished_model_is_skipped(tiny_lm, tmp_path):
    from thresher.train.stage import train_stage

    round_dir = tmp_path / "round_1"
    round_dir.mkdir()
    _write(round_dir / "sft.jsonl", _sft_rows())
    cfg = TrainConfig(method="sft", epochs=3, learning_rate=3e-3, batch_size=8, max_length=64)
    out = train_stage(str(tiny_lm), round_dir, cfg)
    assert out == round_dir / "model"
    summary = read_json(out / COMPLETE)
    assert summary["steps"] == 12 and summary["rows"] == 32 and summary["saved"] == "full"
    losses = [e["loss"] for e in read_json(out / "train_log.json")["log_history"] if "loss" in e]
    assert len(losses) == 12
    assert losses[0] > 5.0  # a random byte-level model: about ln(vocab)
    assert losses[-1] < losses[0] - 1.5, losses
    assert _changed(_weights(out), _weights(tiny_lm))
    assert json.loads((out / "config.json").read_text())["use_cache"] is True
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(out).chat_template  # the tokenizer travels with the model

    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert train_stage(str(tiny_lm), round_dir, cfg) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_lora_adapter_saved_loadable_and_trained_further(tiny_lm, tmp_path):
    import torch
    from peft import AutoPeftModelForCausalLM

    from thresher.train.sft import train_sft

    data = _write(tmp_path / "sft.jsonl", _sft_rows()[:16])
    cfg = TrainConfig(lora=True, merge_lora=False, lora_r=4, epochs=1, learning_rate=1e-2, batch_size=8,
                      max_length=64)
    out = train_sft(str(tiny_lm), [data], tmp_path / "adapter", cfg)
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert not (out / "model.safetensors").exists()
    assert read_json(out / COMPLETE)["saved"] == "adapter"

    model = AutoPeftModelForCausalLM.from_pretrained(str(out))
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # B starts at zero; training moved it
    ids = torch.tensor([[1, 2, 3]])
    assert model(input_ids=ids).logits.shape[-1] == model.config.vocab_size

    # the next round trains the same adapter further, then merges it for a plain model
    merged = train_sft(str(out), [data], tmp_path / "merged", TrainConfig(
        lora=True, merge_lora=True, epochs=1, learning_rate=1e-2, batch_size=8, max_length=64))
    assert read_json(merged / COMPLETE)["saved"] == "merged"
    assert not (merged / "adapter_config.json").exists()
    assert _changed(_weights(merged), _weights(tiny_lm))


@pytest.mark.slow
def test_dpo_one_step_runs_and_saves(tiny_lm, tmp_path):
    from transformers import AutoModelForCausalLM

    from thresher.train.dpo import train_dpo

    data = _write(tmp_path / "dpo.jsonl", _pair_rows()[:8])
    cfg = TrainConfig(method="dpo", learning_rate=1e-3, batch_size=4, max_length=64, args={"max_steps": 1})
    out = train_dpo(str(tiny_lm), [data], tmp_path / "dpo", cfg)
    summary = read_json(out / COMPLETE)
    assert summary["steps"] == 1 and summary["method"] == "dpo" and summary["ref_model"] == str(tiny_lm)
    assert summary["first_loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference: -log sigmoid(0)
    assert _changed(_weights(out), _weights(tiny_lm))
    AutoModelForCausalLM.from_pretrained(str(out))


@pytest.mark.slow
def test_reward_model_learns_the_training_pairs(tiny_rm, tmp_path):
    from thresher.train.reward import pairwise_accuracy, train_reward_model

    rows = _pair_rows()
    before = pairwise_accuracy(tiny_rm, rows)
    if before > 0.5:  # make the model start out wrong, so learning has to move it
        rows = _pair_rows(flip=True)
        before = 1.0 - before
    data = _write(tmp_path / "pairs.jsonl", rows)
    cfg = TrainConfig(epochs=2, learning_rate=3e-3, batch_size=8, max_length=64)
    out = train_reward_model(str(tiny_rm), [data], tmp_path / "rm", cfg)
    after = pairwise_accuracy(out, rows)
    assert before <= 0.5
    assert after >= 0.9, (before, after)
    assert read_json(out / COMPLETE)["rows_dropped_too_long"] == 0


@pytest.mark.slow
def test_train_command(tiny_lm, tmp_path, capsys):
    from thresher.cli import main

    data = _write(tmp_path / "sft.jsonl", _sft_rows()[:4])
    out = tmp_path / "cli_model"
    rc = main(["train", "--data", str(data), "--model", str(tiny_lm), "--out", str(out),
               "--epochs", "1", "--batch-size", "4", "--max-length", "64"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["steps"] == 1 and printed["rows"] == 4
    assert main(["train", "--data", str(tmp_path / "nope.jsonl"), "--model", str(tiny_lm),
                 "--out", str(tmp_path / "x")]) == 2
