"""Model inputs for judges that read (prompt, answer) chats: one rendering per prompt, batched tokenizing.

A reward model or a likelihood judge must see a candidate exactly as its
trainer formatted it: the prompt's messages plus the candidate as the
assistant turn, through the model's own chat template, tokenized without
extra special tokens (what TRL's trainers do). Rendering that template once
per candidate costs more than a small model's forward pass, so each prompt's
chat is rendered once with a marker as the answer and cut into the text
before and after it; each candidate's text is then `before + answer + after`.

That splice is exact only for templates that copy the answer verbatim. A
template that edits the answer (strips it, drops a reasoning block) is caught
when the formatter is built, by rendering a few probe answers both ways; such
a template is then rendered once per candidate, as before, and stays exact.

Texts are tokenized in one batched call (the Rust tokenizer works on the
batch in parallel) and batches are padded on the right with plain tensors,
so a causal model sees every sequence at the positions it would see alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from thresher.records import Prompt

_MARK = "\u2063THRESHER-ANSWER\u2063"
"""Stands in for the answer when a prompt's chat is rendered once; never part of a real answer."""
_PROBES = ("7", " a b \n", "\n\n<think>x</think>y", "{{ '}}' }}")
"""Answers a template might edit (whitespace at the ends, a reasoning block, template syntax)."""
_PROBE_PROMPT = [{"role": "user", "content": "q"}]


def _assistant(answer: str) -> dict[str, str]:
    return {"role": "assistant", "content": answer}


class ChatFormatter:
    """Renders (prompt, answer) chats with a tokenizer's chat template and tokenizes them in batches."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.has_template = bool(getattr(tokenizer, "chat_template", None))
        self.splices = self.has_template and self._template_copies_answers()

    def render(self, messages: list[dict[str, str]], **kwargs: Any) -> str:
        """One chat through the template, untokenized (what TRL tokenizes for a conversational row)."""
        return self.tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)

    def _split(self, messages: list[dict[str, str]]) -> tuple[str, str] | None:
        """(text before the answer, text after it), or None when the marker does not come through once."""
        text = self.render([*messages, _assistant(_MARK)])
        if text.count(_MARK) != 1:
            return None
        before, _, after = text.partition(_MARK)
        return before, after

    def _template_copies_answers(self) -> bool:
        from jinja2 import TemplateError

        try:
            parts = self._split(_PROBE_PROMPT)
        except TemplateError:  # a template with rules of its own about turns: render per candidate
            return False
        if parts is None:
            return False
        before, after = parts
        return all(self.render([*_PROBE_PROMPT, _assistant(a)]) == before + a + after for a in _PROBES)

    def chats(self, prompt: Prompt, answers: Sequence[str]) -> list[str]:
        """The full chat text of each answer to `prompt` (prompt messages + the answer as assistant turn)."""
        if self.splices:
            parts = self._split(prompt.messages)
            if parts is not None:
                before, after = parts
                return [before + a + after for a in answers]
        return [self.render([*prompt.messages, _assistant(a)]) for a in answers]

    def prompt_text(self, prompt: Prompt) -> str:
        """The prompt up to where the assistant's answer starts (what a sampler feeds the model)."""
        from thresher.sampling.common import render_chat

        return render_chat(self.tokenizer, prompt.messages)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of rendered texts, in one batched call; special tokens come from the template only."""
        if not texts:
            return []
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def encode_pairs(self, prompts: Sequence[Prompt], answers: Sequence[Sequence[str]]) -> list[list[int]]:
        """Token ids of every (prompt, answer) chat, flattened in order: prompt 0's answers, then prompt 1's."""
        if self.has_template:
            return self.encode([t for p, row in zip(prompts, answers) for t in self.chats(p, row)])
        # Encoder reward models without a chat template (DeBERTa-style) read (question, answer) pairs.
        questions = [p.question for p, row in zip(prompts, answers) for _ in row]
        flat = [a for row in answers for a in row]
        return self.tokenizer(questions, flat)["input_ids"] if flat else []


def right_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """(input_ids, attention_mask) tensors for `seqs`, padded on the right to the longest."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), so batches carry little padding."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
