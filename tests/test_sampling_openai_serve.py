"""The OpenAI-compatible backend against a real `vllm serve` of the tiny model on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from thresher.errors import UserError
from thresher.prompts.arithmetic import arithmetic_suite
from thresher.records import Candidate, Prompt, write_jsonl
from thresher.sampling import SamplingParams
from thresher.sampling.openai_backend import OpenAISampler
from thresher.store import ShardedJsonl

pytestmark = pytest.mark.slow


def _prompts() -> list[Prompt]:
    questions = ["What is 2 + 2?", "Hi", "Compute 123 * 7, then add 19 to the result.", "7 - 5?"]
    return [Prompt.create("arith", [{"role": "user", "content": q}]) for q in questions]


def test_n_candidates_per_prompt_in_order_with_token_usage(tiny_vllm_server: str):
    prompts = _prompts()
    sampler = OpenAISampler(tiny_vllm_server, "tiny", name="served", max_concurrency=4)
    out = sampler.sample(prompts, SamplingParams(n=3, temperature=1.0, max_tokens=6, seed=2))
    assert len(out) == 4
    for prompt, row in zip(prompts, out, strict=True):
        assert [c.index for c in row] == [0, 1, 2]
        assert {(c.prompt_id, c.model) for c in row} == {(prompt.id, "served")}
        for c in row:
            assert c.num_tokens == c.metadata["usage"]["completion_tokens"]
            assert 1 <= c.num_tokens <= 6
            assert c.metadata["usage"]["prompt_tokens"] > len(prompt.question)  # template + question bytes
            assert (c.finish_reason == "length") == (c.num_tokens == 6)


def test_server_greedy_equals_offline_greedy(tiny_vllm_server: str, tiny_vllm):
    """The server applies the chat template itself; our offline rendering must give the same answer."""
    prompts = _prompts()
    params = SamplingParams(n=1, temperature=0, max_tokens=8)
    served = OpenAISampler(tiny_vllm_server, "tiny").sample(prompts, params)
    offline = tiny_vllm.sample(prompts, params)
    assert [r[0].text for r in served] == [r[0].text for r in offline]


def test_unknown_served_model_is_a_user_error(tiny_vllm_server: str):
    sampler = OpenAISampler(tiny_vllm_server, "no-such-model", max_retries=0)
    with pytest.raises(UserError, match=r"HTTP 404 for model 'no-such-model'.*does it serve a model named"):
        sampler.sample(_prompts()[:1], SamplingParams(n=1, max_tokens=4))


def test_cli_samples_from_the_server(tiny_vllm_server: str, tmp_path: Path):
    prompts = tmp_path / "p.jsonl"
    write_jsonl(prompts, arithmetic_suite("train", 5, seed=0))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "thresher",
            "sample",
            "--prompts",
            str(prompts),
            "--model",
            "tiny",
            "--backend",
            "openai",
            "--base-url",
            tiny_vllm_server,
            "--n",
            "2",
            "--max-tokens",
            "5",
            "--run",
            str(tmp_path / "run"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    cands = list(ShardedJsonl(tmp_path / "run" / "round_1" / "candidates", Candidate))
    assert Counter(c.model for c in cands) == {"tiny": 10}
    assert "10 candidates for 5 prompts" in r.stderr and "10 sampled in" in r.stderr
