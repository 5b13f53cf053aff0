"""Reward-model training on preference pairs with TRL's RewardTrainer.

The base can be a causal LM (a score head is added) or an existing sequence
classification model; either way the result is an
`AutoModelForSequenceClassification` with one output, usable by the
reward-model judge in the next round. TRL drops pairs longer than
`max_length`; the number dropped is recorded in the summary rather than lost.

`verified_pairs` makes the pairs a reward model should learn from: both
sides answer the same prompt, one verified right and one verified wrong, two
different texts. Pairs across prompts, or a right answer against a made-up
wrong one, teach the easier lessons of which prompts are easy and which texts
look synthetic, and both fail as soon as the candidates change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thresher.config import TrainConfig
from thresher.errors import UserError
from thresher.train.common import (
    is_finished,
    load_tokenizer,
    lora_config,
    read_rows,
    train_and_save,
    trainer_config,
)
from thresher.train.dpo import PAIR_COLUMNS

if TYPE_CHECKING:
    from thresher.records import Candidate, Prompt, Verdict

log = logging.getLogger(__name__)


def load_reward_model(path: str, pad_token_id: int | None) -> Any:
    """A one-output sequence classifier from a reward model or causal LM directory (or hub id)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    try:
        return AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=1, pad_token_id=pad_token_id, dtype=torch.float32
        )
    except OSError as e:
        raise UserError(f"{path}: cannot load as a reward model ({e})") from None


def train_reward_model(
    base_model: str,
    data_files: Sequence[str | Path],
    out_dir: str | Path,
    cfg: TrainConfig,
    seed: int = 0,
    report_to: str = "none",
) -> Path:
    """Train a reward model on the pairs of `data_files`; returns `out_dir`, the saved model.

    The Bradley-Terry loss of TRL's RewardTrainer pushes the score of
    `prompt + chosen` above `prompt + rejected`. Skips when `out_dir` already
    holds a finished model.
    """
    out_dir = Path(out_dir)
    if is_finished(out_dir):
        return out_dir
    from datasets import Dataset
    from transformers import set_seed
    from trl import RewardConfig, RewardTrainer

    rows = read_rows(data_files, PAIR_COLUMNS)
    set_seed(seed)
    tokenizer = load_tokenizer(base_model)
    model = load_reward_model(base_model, tokenizer.pad_token_id)
    args = trainer_config(RewardConfig, cfg, out_dir, seed, report_to)
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(cfg, "SEQ_CLS"),
    )
    kept = len(trainer.train_dataset)
    if kept < len(rows):
        log.warning("reward training: %d of %d pairs exceed max_length=%d and were dropped",
                    len(rows) - kept, len(rows), cfg.max_length)
    summary = {
        "method": "reward",
        "base_model": str(base_model),
        "rows": len(rows),
        "rows_dropped_too_long": len(rows) - kept,
        "lora": cfg.lora,
    }
    return train_and_save(trainer, out_dir, cfg.merge_lora, summary)


def verified_pairs(
    prompts: Sequence[Prompt],
    candidates: Sequence[Sequence[Candidate]],
    verdicts: Sequence[Sequence[Verdict]],
    per_prompt: int = 3,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """TRL preference rows from each prompt's own answers: a verified-right text against a verified-wrong one.

    Texts are deduplicated first (a model often writes the same right answer
    twice; one copy is enough), then up to `per_prompt` (right, wrong) pairs
    are drawn per prompt with a seeded generator. Verdicts with no opinion or
    an error make no pair. Prompts whose answers are all right or all wrong
    give nothing: there is nothing to tell apart within them.
    """
    import random

    rows = []
    for p, cs, vs in zip(prompts, candidates, verdicts, strict=True):
        right = sorted({c.text for c, v in zip(cs, vs, strict=True) if v.ok and v.correct is True})
        wrong = sorted({c.text for c, v in zip(cs, vs, strict=True) if v.ok and v.correct is False})
        pairs = [(r, w) for r in right for w in wrong]
        random.Random(f"{seed}/{p.id}").shuffle(pairs)
        for r, w in pairs[:per_prompt]:
            rows.append({
                "prompt": p.messages,
                "chosen": [{"role": "assistant", "content": r}],
                "rejected": [{"role": "assistant", "content": w}],
            })
    return rows


def pairwise_accuracy(model_path: str | Path, rows: Sequence[dict[str, Any]], batch_size: int = 16) -> float:
    """Fraction of pairs whose chosen answer the reward model at `model_path` scores above the rejected one.

    The pairs are scored by the `rm` judge itself (`judge_pair_accuracy`): chat
    template as the trainer applies it, right padding, the score at the last
    real token, so this number and the judge's ranking can never disagree
    about formatting.
    """
    from thresher.judges.reward_model import reward_model

    if not rows:
        raise ValueError("pairwise_accuracy: no pairs given")
    judge = reward_model(str(model_path), batch_size=batch_size, max_length=1 << 30)
    try:
        return judge_pair_accuracy(judge, rows)
    finally:
        judge.close()


def judge_pair_accuracy(judge: Any, rows: Sequence[dict[str, Any]]) -> float:
    """Fraction of preference rows whose chosen answer `judge` scores above the rejected one.

    Any judge (a reward model, a likelihood judge) scores each row as one
    prompt with two candidates, through its ordinary `judge` call: the number
    is the judge's own ranking, formatting included. Rows are TRL preference
    rows, with an explicit `prompt` or with the prompt turns leading both sides
    (each side's last message is its answer). A tie, or a side the judge gives
    no score, counts as a loss.
    """
    from thresher.records import Candidate, Prompt

    if not rows:
        raise ValueError("judge_pair_accuracy: no pairs given")
    prompts = [
        Prompt.create("pairs", list(r.get("prompt") or r["chosen"][:-1]), id=f"pair-{i}") for i, r in enumerate(rows)
    ]
    candidates = [
        [Candidate(p.id, "pair", k, r[side][-1]["content"]) for k, side in enumerate(("chosen", "rejected"))]
        for p, r in zip(prompts, rows, strict=True)
    ]
    verdicts = judge.judge(prompts, candidates)
    wins = sum(1 for a, b in verdicts if a.score is not None and (b.score is None or a.score > b.score))
    return wins / len(rows)
