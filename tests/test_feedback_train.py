"""Every export loads with `datasets` and trains one real TRL step on a tiny model, unchanged."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from test_feedback import C, P, V, run_export, write_round

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A round with teacher and student answers, a math verifier and an LLM judge, exported three ways."""
    ps = [P(i, reference=str(2 * i)) for i in range(6)]
    cands, vs = [], []
    for i, p in enumerate(ps):
        for model, answers in (("teacher", [2 * i, 2 * i + 1]), ("student", [2 * i + 1, 2 * i])):
            for k, a in enumerate(answers):
                c = C(p, model, k, f"{i} + {i}: first {i}, then {i} more, so \\boxed{{{a}}}. ({model} {k})")
                cands.append(c)
                ok = a == 2 * i
                vs.append(V(c, "math", float(ok), ok, f"extracted {a}, reference {2 * i}", answer=str(a)))
                vs.append(V(c, "rm", (0.8 if ok else 0.2) + 0.01 * k))
    rd = write_round(tmp_path_factory.mktemp("train_round"), ps, cands, vs)
    summary = run_export(rd, "gated", critique=True, dpo="best_vs_worst", language="zh")
    assert {k: e["rows"] for k, e in summary["exports"].items()} == {"sft": 6, "critique_sft": 6, "dpo": 6}
    return rd


def _train_config(cls, out: Path, **extra):
    return cls(
        output_dir=str(out), max_steps=1, per_device_train_batch_size=2, learning_rate=1e-3,
        report_to="none", use_cpu=True, save_strategy="no", logging_steps=1, seed=0, max_length=512, **extra,
    )


def _loss(trainer) -> float:
    logged = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert trainer.state.global_step == 1 and len(logged) == 1
    return logged[0]


@pytest.mark.parametrize("name", ["sft.jsonl", "critique_sft.jsonl"])
def test_sft_trainer_takes_one_step_on_the_export(exported, tiny_lm, tmp_path, name):
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    ds = load_dataset("json", data_files=str(exported / name), split="train")
    assert len(ds) == 6 and ds[0]["messages"][-1]["role"] == "assistant"
    model = AutoModelForCausalLM.from_pretrained(tiny_lm)
    before = next(model.parameters()).detach().clone()
    trainer = SFTTrainer(
        model=model, args=_train_config(SFTConfig, tmp_path, assistant_only_loss=True), train_dataset=ds,
        processing_class=AutoTokenizer.from_pretrained(tiny_lm),
    )
    trainer.train()
    loss = _loss(trainer)
    # a random byte-level model: about ln(vocab) nats per answer token
    assert math.isfinite(loss) and 4.0 < loss < 7.0, loss
    assert not next(model.parameters()).detach().equal(before)


def test_sft_and_critique_rows_train_together_from_one_load_dataset_call(exported, tiny_lm, tmp_path):
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    files = [str(exported / "sft.jsonl"), str(exported / "critique_sft.jsonl")]
    ds = load_dataset("json", data_files=files, split="train")
    assert len(ds) == 12 and sorted(set(ds["metadata"][i]["kind"] for i in range(12))) == ["critique_sft", "sft"]
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_lm),
        args=_train_config(SFTConfig, tmp_path, assistant_only_loss=True),
        train_dataset=ds, processing_class=AutoTokenizer.from_pretrained(tiny_lm),
    )
    trainer.train()
    loss = _loss(trainer)
    assert math.isfinite(loss) and 4.0 < loss < 7.0, loss


def test_dpo_trainer_takes_one_step_on_the_export(exported, tiny_lm, tmp_path):
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    ds = load_dataset("json", data_files=str(exported / "dpo.jsonl"), split="train")
    assert len(ds) == 6 and all(r["margin"] > 0 for r in ds)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm)
    trainer = DPOTrainer(
        model=model, args=_train_config(DPOConfig, tmp_path), train_dataset=ds,
        processing_class=AutoTokenizer.from_pretrained(tiny_lm),
    )
    trainer.train()
    # before any update the policy equals the reference model: the DPO loss is exactly ln 2
    assert _loss(trainer) == pytest.approx(math.log(2), abs=1e-3)
