"""Shared fixtures: tiny real models built once per test session, from a config, with no download."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny_models")


@pytest.fixture(scope="session")
def tiny_lm(tiny_dir: Path) -> Path:
    """A tiny random Qwen2ForCausalLM directory (weights, config, tokenizer with chat template)."""
    from thresher.tiny_models import build_causal_lm

    return build_causal_lm(tiny_dir / "lm", seed=0)


@pytest.fixture(scope="session")
def tiny_rm(tiny_dir: Path) -> Path:
    """A tiny random Qwen2ForSequenceClassification reward model directory (num_labels=1)."""
    from thresher.tiny_models import build_reward_model

    return build_reward_model(tiny_dir / "rm", seed=0)
