"""Likelihood judge on tiny real causal LMs: exact log-probabilities, batching that changes nothing, DPO log-ratios."""

from __future__ import annotations

import json
import random

import pytest
import torch

from thresher.config import JudgeConfig, TrainConfig
from thresher.errors import ConfigError, UserError
from thresher.judges.loglik import loglik_judge
from thresher.judges.registry import build_judge
from thresher.records import Candidate, Prompt


def _question(a: int, b: int) -> Prompt:
    return Prompt.create("addition", [{"role": "user", "content": f"What is {a} + {b}?"}], reference=str(a + b))


def _sums(n: int, seed: int = 0) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    return [(rng.randint(10, 99), rng.randint(10, 99)) for _ in range(n)]


def _right(a: int, b: int) -> str:
    return f"{a} + {b} = {a + b}"


def _candidates(prompts, sums, seed: int = 0):
    """Per prompt: the right answer and three near misses, in shuffled order."""
    rng = random.Random(seed)
    out = []
    for p, (a, b) in zip(prompts, sums):
        texts = [_right(a, b)] + [f"{a} + {b} = {a + b + d}" for d in (-10, -1, 1)]
        rng.shuffle(texts)
        out.append([Candidate(p.id, "m", k, t) for k, t in enumerate(texts)])
    return out


@pytest.fixture(scope="module")
def judge(tiny_lm):
    return loglik_judge(str(tiny_lm), batch_size=8)


def _direct_logprob(model, ids: list[int], start: int) -> float:
    """Sum of log p(token | prefix) over ids[start:], from one unbatched forward pass."""
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
    return sum(logits[i - 1, ids[i]].item() for i in range(start, len(ids)))


def test_scores_are_the_mean_log_probability_of_the_answer_tokens(judge):
    prompts = [_question(a, b) for a, b in _sums(3)]
    cands = _candidates(prompts, _sums(3))
    verdicts = judge.judge(prompts, cands)
    encoded = judge.encode(prompts, cands)
    for v, (ids, start) in zip([v for row in verdicts for v in row], encoded):
        text = judge.tokenizer.decode(ids[start:])
        assert text.endswith("<|im_end|>") and "assistant" not in text  # the answer and its end-of-turn only
        total = _direct_logprob(judge.model, ids, start)
        assert v.ok and v.metadata["tokens"] == len(ids) - start
        assert v.metadata["logprob"] == pytest.approx(total, abs=1e-4)
        assert v.score == pytest.approx(total / (len(ids) - start), abs=1e-5)
        assert v.metadata["logprob_per_token"] == v.score and v.judge == "loglik" and v.correct is None


def test_batched_scores_equal_one_at_a_time(judge):
    rng = random.Random(1)
    prompts = [Prompt.create("t", [{"role": "user", "content": "q " * rng.randint(1, 40)}]) for _ in range(7)]
    cands = [[Candidate(p.id, "m", k, "word " * rng.randint(1, 50) + "终") for k in range(3)] for p in prompts]
    batched = [v.score for row in judge.judge(prompts, cands) for v in row]
    inputs = judge.encode(prompts, cands)
    assert len({len(ids) for ids, _ in inputs}) > 10  # lengths really differ, so batches really pad
    single = [sum(lp) / len(lp) for lp in judge.logprobs(judge.model, inputs, batch_size=1)]
    assert max(abs(a - b) for a, b in zip(batched, single)) < 1e-4


def test_total_score_and_over_long_inputs(tiny_lm):
    prompts = [_question(12, 30)]
    cands = [[Candidate(prompts[0].id, "m", 0, "42"), Candidate(prompts[0].id, "m", 1, "4" * 300)]]
    short, long = loglik_judge(str(tiny_lm), score="total", max_length=200).judge(prompts, cands)[0]
    assert short.ok and short.score == pytest.approx(short.metadata["logprob"])
    assert long.score is None and long.error.startswith("input is ") and "max_length 200" in long.error


def test_reference_must_share_the_tokenizer_and_args_are_typed(tiny_lm, tmp_path):
    from thresher.quickstart.pretrain import new_causal_lm, save_model
    from thresher.quickstart.tokenizer import build_arithmetic_tokenizer

    tok = build_arithmetic_tokenizer(["What is 12 + 30? 42"] * 20, vocab_size=300)
    other = save_model(new_causal_lm(tok, 0, num_hidden_layers=1), tok, tmp_path / "other")
    with pytest.raises(UserError, match="does not share the tokenizer"):
        loglik_judge(str(tiny_lm), reference=str(other))
    with pytest.raises(ConfigError, match=r"^args\.score: "):
        JudgeConfig(type="loglik", args={"model": str(tiny_lm), "score": "best"})
    with pytest.raises(ConfigError, match=r"^args\.batch_size: "):
        JudgeConfig(type="loglik", args={"model": str(tiny_lm), "batch_size": 0})
    judge = build_judge(JudgeConfig(type="loglik", name="teacher", args={"model": str(tiny_lm), "score": "total"}))
    assert (judge.name, judge.kind, judge.score_kind) == ("teacher", "reward", "total")
    with pytest.raises(UserError, match="cannot load"):
        loglik_judge(str(tmp_path))


@pytest.mark.slow
def test_a_model_trained_on_right_answers_picks_them_and_its_dpo_reward_does_too(tiny_lm, tmp_path):
    """SFT on the right answers of 8 sums: the judge then picks the right one of four on every prompt.

    The untrained model picks by chance (about 1 in 4); the DPO implicit
    reward of the trained model against the untrained one picks as well.
    """
    from thresher.train.sft import train_sft

    sums = _sums(8, seed=2)
    prompts = [_question(a, b) for a, b in sums]
    rows = [{"messages": [*p.messages, {"role": "assistant", "content": _right(a, b)}]} for p, (a, b) in zip(prompts, sums)]
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = TrainConfig(epochs=200, learning_rate=1e-2, batch_size=8, max_length=128)
    trained = train_sft(str(tiny_lm), [data], tmp_path / "sft", cfg)
    cands = _candidates(prompts, sums, seed=3)

    def pick_accuracy(judge) -> float:
        verdicts = judge.judge(prompts, cands)
        picks = [max(zip(row, vs), key=lambda cv: cv[1].score)[0] for row, vs in zip(cands, verdicts)]
        return sum(c.text == _right(a, b) for c, (a, b) in zip(picks, sums)) / len(sums)

    assert pick_accuracy(loglik_judge(str(tiny_lm))) <= 0.5
    assert pick_accuracy(loglik_judge(str(trained))) == 1.0
    dpo = loglik_judge(str(trained), reference=str(tiny_lm))
    assert pick_accuracy(dpo) == 1.0
    v = dpo.judge(prompts[:1], cands[:1])[0][0]
    assert v.score == pytest.approx(v.metadata["logprob"] - v.metadata["ref_logprob"], abs=1e-4)
    assert v.score == pytest.approx(v.metadata["log_ratio"])


def test_the_quickstart_reward_model_recipe_ranks_its_pairs_by_mean_log_probability(tiny_lm, tmp_path):
    """DPO with an SFT term on the chosen answer (how the quickstart trains its reward model) on right/wrong pairs:
    the mean log-probability of the trained model, as `judge_pair_accuracy` reads it through the judge, puts
    every chosen answer first, and the same pairs swapped last; the untrained model does not."""
    from thresher.train.dpo import train_dpo
    from thresher.train.reward import judge_pair_accuracy

    sums = _sums(8, seed=4)
    rows = [
        {"prompt": _question(a, b).messages, "chosen": [{"role": "assistant", "content": _right(a, b)}],
         "rejected": [{"role": "assistant", "content": f"{a} + {b} = {a + b + d}"}]}
        for (a, b) in sums for d in (-1, 1)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = TrainConfig(method="dpo", epochs=60, learning_rate=5e-3, batch_size=8, max_length=128,
                      args={"beta": 0.1, "loss_type": ["sigmoid", "sft"]})
    trained = train_dpo(str(tiny_lm), [data], tmp_path / "rm", cfg)
    swapped = [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in rows]
    before = judge_pair_accuracy(loglik_judge(str(tiny_lm), score="mean"), rows)
    after = loglik_judge(str(trained), score="mean")
    assert before < 0.8
    assert judge_pair_accuracy(after, rows) == 1.0
    assert judge_pair_accuracy(after, swapped) == 0.0
