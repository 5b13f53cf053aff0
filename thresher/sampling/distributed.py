"""A Sampler whose work runs through an executor: eval on the same replicas as sampling.

The eval stage and the LLM judge only know the Sampler protocol. Wrapping an
executor in it sends their prompts out in chunks (to data-parallel replicas
on a Ray cluster, or in process) and gives the answers back in input order,
so neither needs to know where its model runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from thresher.executors import Executor
from thresher.records import Candidate, Prompt
from thresher.sampling.params import SamplingParams
from thresher.sampling.stage import DEFAULT_CHUNK, SampleChunk, sampler_task

if TYPE_CHECKING:
    from thresher.config import ModelConfig


class ExecutorSampler:
    """`sample()` through `executor.map` over chunks of prompts, answers in input order."""

    def __init__(self, executor: Executor, model: ModelConfig, chunk_size: int = DEFAULT_CHUNK):
        self.executor, self.model, self.chunk_size = executor, model, chunk_size
        self.name = model.name

    def sample(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Candidate]]:
        longest_first = sorted(prompts, key=lambda p: -sum(len(m["content"]) for m in p.messages))
        chunks = []
        for s in range(0, len(longest_first), self.chunk_size):
            part = longest_first[s : s + self.chunk_size]
            chunks.append(SampleChunk(self.model, part, [list(range(params.n))] * len(part), params))
        rows: dict[str, list[Candidate]] = {}
        for _chunk, cands in self.executor.map(sampler_task(self.model), chunks):
            for c in cands:
                rows.setdefault(c.prompt_id, []).append(c)
        return [sorted(rows.get(p.id, []), key=lambda c: c.index) for p in prompts]
