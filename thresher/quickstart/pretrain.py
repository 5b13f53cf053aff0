"""Pretraining the quickstart's tiny causal LMs on worked arithmetic answers, with transformers' Trainer.

One run trains from random weights; the student is saved part way (an
under-trained checkpoint: right format, weak arithmetic) and the teacher at
the end. Loss covers the answer tokens only, as in SFT, so the models learn
to answer ChatML prompts exactly as the samplers will render them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thresher.records import Prompt


@dataclass(slots=True)
class Example:
    input_ids: list[int]
    labels: list[int]


def encode_examples(tokenizer: Any, prompts: Sequence[Prompt], answers: Sequence[str]) -> list[Example]:
    """Token ids of prompt + answer + EOS, with the prompt masked out of the labels."""
    out = []
    for p, answer in zip(prompts, answers, strict=True):
        head = tokenizer.apply_chat_template(p.messages, add_generation_prompt=True, tokenize=False)
        prompt_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        out.append(Example(prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids))
    return out


class PadCollator:
    """Right-pads a batch of examples (training needs no left padding: every position is scored)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[Example]) -> dict[str, Any]:
        import torch

        width = max(len(e.input_ids) for e in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, e in enumerate(batch):
            n = len(e.input_ids)
            ids[i, :n] = torch.tensor(e.input_ids)
            labels[i, :n] = torch.tensor(e.labels)
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def new_causal_lm(tokenizer: Any, seed: int, **config: Any) -> Any:
    """A randomly initialised tiny Qwen2 causal LM for `tokenizer` (EOS = <|im_end|>)."""
    import torch
    from transformers import GenerationConfig, Qwen2ForCausalLM

    from thresher.tiny_models import tiny_qwen2_config

    cfg = tiny_qwen2_config(len(tokenizer), **config)
    cfg.eos_token_id = tokenizer.eos_token_id
    cfg.pad_token_id = tokenizer.pad_token_id
    cfg.bos_token_id = None
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(cfg)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return model


def save_model(model: Any, tokenizer: Any, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    use_cache = model.config.use_cache
    model.config.use_cache = True
    model.save_pretrained(str(out_dir))
    model.config.use_cache = use_cache
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


def pretrain(
    model: Any,
    tokenizer: Any,
    examples: list[Example],
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    work_dir: Path,
    save_at: dict[int, Path],
    progress: bool = True,
) -> None:
    """Train `model` for `steps` batches (cosine schedule), saving it at each step named in `save_at`."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class SaveAt(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step in save_at:
                save_model(kwargs["model"], tokenizer, save_at[state.global_step])

    random.Random(seed).shuffle(examples)
    args = TrainingArguments(
        output_dir=str(work_dir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=min(50, steps // 10),
        weight_decay=0.01,
        adam_beta2=0.98,
        max_grad_norm=1.0,
        logging_steps=max(1, steps // 20),
        save_strategy="no",
        report_to="none",
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=not progress,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=examples, data_collator=PadCollator(tokenizer.pad_token_id)
    )
    trainer.add_callback(SaveAt())
    trainer.train()
