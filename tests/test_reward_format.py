"""Training and judging hold a reward model to one formatting.

A reward model trained with `thresher train --method reward` (TRL's
RewardTrainer) and judged with `rm:` must see the same tokens and be read at
the same position on both sides, or its ranking means nothing. Here a tiny
reward model is trained on pairs, then TRL's own evaluation of the training
pairs (`RewardTrainer.predict`, the trainer's tokenization, collator and
padding) is compared with the `rm` judge's scores of the same pairs: equal to
float32 precision, so they order every pair alike. It is done for the tiny
ChatML template and for a Qwen-style one whose turns end with a newline after
`<|im_end|>`, which puts the last token (where the score is read) on "\\n".
"""

from __future__ import annotations

import json
import random
import shutil

import pytest

from thresher.config import TrainConfig
from thresher.records import Candidate, Prompt

QWEN_STYLE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""Qwen2.5's chat template without its default system turn and tools: every turn ends in "<|im_end|>\\n"."""


def _pairs(n: int = 24, seed: int = 0) -> tuple[list[Prompt], list[tuple[str, str]]]:
    rng = random.Random(seed)
    prompts, sides = [], []
    for _ in range(n):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        prompts.append(Prompt.create("addition", [{"role": "user", "content": f"What is {a} + {b}?"}]))
        wrong = a + b + rng.choice([-11, -1, 1, 9])
        sides.append((f"{a} + {b} = {a + b}", f"{a} + {b} = {wrong}" + " (checked)" * rng.randint(0, 2)))
    return prompts, sides


def _rows(prompts, sides) -> list[dict]:
    return [
        {"prompt": p.messages, "chosen": [{"role": "assistant", "content": c}],
         "rejected": [{"role": "assistant", "content": r}]}
        for p, (c, r) in zip(prompts, sides)
    ]


@pytest.fixture(scope="module", params=["chatml", "qwen-newline"])
def trained(request, tiny_lm, tmp_path_factory):
    """A reward model trained from the tiny LM on 24 pairs, with the template under test."""
    from transformers import AutoTokenizer

    from thresher.train.reward import train_reward_model

    tmp = tmp_path_factory.mktemp(f"rm-{request.param}")
    base = tmp / "base"
    shutil.copytree(tiny_lm, base)
    if request.param == "qwen-newline":
        tok = AutoTokenizer.from_pretrained(base)
        tok.chat_template = QWEN_STYLE
        tok.save_pretrained(base)
    prompts, sides = _pairs()
    data = tmp / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows(prompts, sides)))
    cfg = TrainConfig(epochs=3, learning_rate=3e-3, batch_size=8, max_length=128)
    out = train_reward_model(str(base), [data], tmp / "rm", cfg)
    return request.param, out, prompts, sides


def _trainer_scores(model_dir, rows, batch: int = 4) -> tuple[list[int], list[float], list[float], float]:
    """TRL's own view of the pairs: its token ids of the chosen side, its chosen and rejected rewards, accuracy."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    # float32, as thresher trains on a CPU (TRL's config alone would autocast to bf16, ~3e-3 off)
    args = RewardConfig(
        output_dir=str(model_dir / "eval"), per_device_eval_batch_size=batch, report_to="none", use_cpu=True,
        bf16=False, max_length=128,
    )
    dataset = Dataset.from_list(rows)
    trainer = RewardTrainer(
        model=str(model_dir), args=args, train_dataset=dataset, eval_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(model_dir),
    )
    chosen_ids = trainer.eval_dataset["chosen_ids"]
    logits = trainer.predict(trainer.eval_dataset).predictions.reshape(-1)
    chosen, rejected = [], []
    for start in range(0, len(logits), 2 * batch):  # each batch: its chosen sides, then its rejected sides
        block = logits[start : start + 2 * batch]
        half = len(block) // 2
        chosen += block[:half].tolist()
        rejected += block[half:].tolist()
    accuracy = trainer.evaluate()["eval_accuracy"]
    return chosen_ids, chosen, rejected, accuracy


def test_judge_scores_equal_the_trainers_own_evaluation(trained):
    from thresher.judges.reward_model import reward_model
    from thresher.train.reward import pairwise_accuracy

    template, model_dir, prompts, sides = trained
    rows = _rows(prompts, sides)
    trl_ids, trl_chosen, trl_rejected, trl_accuracy = _trainer_scores(model_dir, rows)

    judge = reward_model(str(model_dir), batch_size=5)
    cands = [[Candidate(p.id, "m", 0, c), Candidate(p.id, "m", 1, r)] for p, (c, r) in zip(prompts, sides)]
    verdicts = judge.judge(prompts, cands)
    chosen = [row[0].score for row in verdicts]
    rejected = [row[1].score for row in verdicts]

    # the same tokens: the judge formats a candidate exactly as the trainer formatted the chosen side
    assert [judge.encode(p, row[0]) for p, row in zip(prompts, cands)] == trl_ids
    last = judge.tokenizer.convert_ids_to_tokens(trl_ids[0][-1])
    assert last == ("Ċ" if template == "qwen-newline" else "<|im_end|>")  # "Ċ" is the byte-level "\n"
    # the same scores, read at the same token: so every pair is ordered alike
    assert max(abs(a - b) for a, b in zip(chosen + rejected, trl_chosen + trl_rejected)) < 1e-4
    assert [a > b for a, b in zip(chosen, rejected)] == [a > b for a, b in zip(trl_chosen, trl_rejected)]
    judge_accuracy = sum(a > b for a, b in zip(chosen, rejected)) / len(rows)
    assert judge_accuracy == pytest.approx(trl_accuracy)
    assert pairwise_accuracy(model_dir, rows) == pytest.approx(judge_accuracy)
    # training moved the model: the pairs are not all tied or all one way by accident
    assert len({round(s, 4) for s in chosen + rejected}) > 40
    assert judge_accuracy >= 0.75
