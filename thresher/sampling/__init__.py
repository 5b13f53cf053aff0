"""Sampling: N candidate answers per prompt from each model in a pool (teachers and students).

`build_sampler(model_config)` returns a Sampler for a recipe's model entry
(backends: vllm, hf, openai; see `BACKENDS`); `sample_stage` runs the
resumable stage that writes a round's candidates. Backends import their heavy
libraries only when built, so importing this package is cheap.
"""

from __future__ import annotations

from thresher.sampling.params import Sampler, SamplingParams
from thresher.sampling.pool import BACKENDS, build_sampler, close_sampler
from thresher.sampling.stage import sample_stage

__all__ = ["BACKENDS", "Sampler", "SamplingParams", "build_sampler", "close_sampler", "sample_stage"]
