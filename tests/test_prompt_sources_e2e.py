"""Each prompt-synthesis method end to end on a tiny random model (transformers backend), plus the CLI.

A random model writes byte garbage, so these tests check the mechanics: what
reaches the model, what comes back as Prompt records, which filter dropped
what, and that a model which cannot answer or rate is never taken as having
answered or rated. The filters' judgments on meaningful text are checked on
crafted inputs in test_prompt_sources.py; pool selection's semantics are
checked here with the real packaged all-MiniLM-L6-v2 model.
"""

from __future__ import annotations

import argparse
import itertools
import json
import string

import pytest

from thresher.prompts.filters import TextFilter
from thresher.prompts.rouge import rouge_l
from thresher.records import Prompt
from thresher.sampling.params import SamplingParams

pytestmark = pytest.mark.slow

GARBAGE_OK = TextFilter(min_words=1, max_words=1000, min_letters=0.0)
"""Filters relaxed so a random model's byte soup can pass; the default filters reject it as not_text."""


@pytest.fixture(scope="module")
def hf_sampler(tiny_lm):
    from thresher.sampling.hf import HFSampler

    return HFSampler(str(tiny_lm), batch_size=64)


def _p(task, text, **kw):
    return Prompt.create(task, [{"role": "user", "content": text}], **kw)


def test_self_instruct_end_to_end(hf_sampler):
    from thresher.prompts.self_instruct import SelfInstructConfig, self_instruct

    seeds = [_p("writing", t) for t in ("Write a poem about the sea.", "Write a limerick about a cat.")] + [
        _p("finance", t) for t in ("Explain compound interest.", "What is a bond coupon?")
    ]
    params = SamplingParams(temperature=1.0, max_tokens=12, seed=0)
    cfg = SelfInstructConfig(num_examples=2, machine_examples=1, per_request=1, batch_size=4, filter=GARBAGE_OK)
    result = self_instruct(hf_sampler, seeds, 4, params, cfg, seed=0)
    assert len(result.prompts) == 4
    assert sorted(p.task for p in result.prompts) == ["finance", "finance", "writing", "writing"]
    instructions = [p.metadata["instruction"] for p in result.prompts]
    for p in result.prompts:
        meta = p.metadata
        assert meta["method"] == "self_instruct" and p.question.startswith(meta["instruction"])
        assert p.question == (f"{meta['instruction']}\n\n{meta['input']}" if meta["input"] else meta["instruction"])
    for a, b in itertools.combinations(instructions + [s.question for s in seeds], 2):
        assert rouge_l(a, b) < 0.7
    # 4 kept, each after one generation, one classification and one input request; nothing else asked.
    extra = sum(1 for r in result.rejected if r.reason in ("no_instance", "input_repeats_instruction"))
    assert result.requests >= 3 * (4 + extra)

    # The default filters reject byte soup; the run stops at max_requests instead of looping forever.
    strict = self_instruct(hf_sampler, seeds, 4, params, SelfInstructConfig(per_request=1, batch_size=4,
                                                                               max_requests=4, generate_inputs=False))
    assert strict.prompts == [] and strict.requests == 4
    assert set(strict.reasons()) <= {"not_text", "too_short", "no_instruction"}


def test_self_instruct_resume_rejects_what_was_already_made(hf_sampler):
    """Same seed, same requests: the first batch of a resumed run redraws the first run's tasks, which
    ROUGE-L (1.0 against the earlier prompts) rejects as near-duplicates."""
    from thresher.prompts.self_instruct import SelfInstructConfig, self_instruct

    seeds = [_p("t", "Write a poem about the sea."), _p("t", "Explain compound interest to a child.")]
    params = SamplingParams(temperature=1.0, max_tokens=12, seed=5)
    cfg = SelfInstructConfig(num_examples=2, machine_examples=0, per_request=1, batch_size=2, filter=GARBAGE_OK,
                             generate_inputs=False)
    first = self_instruct(hf_sampler, seeds, 2, params, cfg, seed=0)
    assert len(first.prompts) == 2
    resumed = self_instruct(hf_sampler, seeds, 4, params, cfg, seed=0, existing=first.prompts)
    assert len(resumed.prompts) == 2
    dups = [r for r in resumed.rejected if r.reason == "near_duplicate"]
    assert sorted(r.text for r in dups[:2]) == sorted(p.question for p in first.prompts)
    assert all(r.detail["rouge_l"] == 1.0 for r in dups[:2])
    assert not {p.question for p in resumed.prompts} & {p.question for p in first.prompts}


DOC = (
    "The Basel III framework requires banks to hold common equity tier 1 capital of at least 4.5 percent of "
    "risk-weighted assets. On top of this minimum, a capital conservation buffer of 2.5 percent applies.\n\n"
    "A countercyclical buffer of up to 2.5 percent may be imposed by national regulators when credit grows "
    "too fast. Global systemically important banks face an additional surcharge of 1 to 3.5 percent."
)


def test_selfqa_end_to_end_drops_pairs_a_random_model_cannot_answer(hf_sampler):
    from thresher.prompts.selfqa import SelfQAConfig, selfqa

    docs = [("basel.txt", DOC), ("title.txt", "Basel III summary")]
    params = SamplingParams(temperature=1.0, max_tokens=12, seed=0)
    cfg = SelfQAConfig(questions_per_passage=2, answer_samples=2, max_chars=260, min_chars=100, filter=GARBAGE_OK)
    result = selfqa(hf_sampler, docs, "basel", params, cfg)
    assert result.prompts == []
    reasons = result.reasons()
    assert reasons["passage_too_short"] == 1
    checked = [r for r in result.rejected if r.reason in ("unanswerable", "inconsistent", "unsupported")]
    assert checked, result.summary()
    assert all(len(r.detail["answers"]) == 2 and r.detail["source"] == "basel.txt" for r in checked)

    # With the answer check switched off, the same questions become prompts that keep their passage.
    loose = SelfQAConfig(questions_per_passage=2, answer_samples=2, max_chars=260, min_chars=100, filter=GARBAGE_OK,
                         min_answered=0.0, min_agreement=0.0, min_support=0.0, open_book=True)
    kept = selfqa(hf_sampler, docs, "basel", params, loose)
    assert kept.prompts
    for p in kept.prompts:
        assert p.task == "basel" and p.metadata["context"] in DOC
        assert p.question.startswith(p.metadata["context"])  # open book: the passage is in the prompt
        assert p.reference is None or p.reference in [a.strip() for a in p.metadata["answers"]]


def test_magpie_end_to_end_with_chat_template_prefix(hf_sampler):
    from thresher.prompts.magpie import MagpieConfig, magpie

    stop = list(string.digits + string.punctuation)  # end the byte soup early, as an end-of-turn would
    params = SamplingParams(temperature=1.0, max_tokens=12, seed=0, stop=stop)
    cfg = MagpieConfig(system="You help tax accountants.", keep_system=True, batch_size=8, filter=GARBAGE_OK)
    result = magpie(hf_sampler, hf_sampler.tokenizer, 3, "tax", params, cfg)
    assert len(result.prompts) == 3
    for p in result.prompts:
        assert p.messages[0] == {"role": "system", "content": "You help tax accountants."}
        assert p.task == "tax" and p.metadata["method"] == "magpie"
        assert not any(c in p.question for c in stop)
    assert len({p.question for p in result.prompts}) == 3

    # Without a stop string a random model rarely ends its turn within 12 tokens: those are cut, and dropped.
    cut = magpie(hf_sampler, hf_sampler.tokenizer, 3, "tax", SamplingParams(max_tokens=4, seed=0),
                 MagpieConfig(batch_size=8, max_requests=8, filter=GARBAGE_OK))
    assert cut.requests == 8 and cut.reasons()["truncated"] >= 6


def test_backtranslation_never_reads_a_missing_score_as_a_score(hf_sampler):
    from thresher.prompts.backtranslation import BacktranslationConfig, backtranslate

    responses = [
        "To reset the router, hold the recessed button on the back for ten seconds until the lights blink.",
        "Compound interest is interest earned on both the principal and the interest already added to it.",
        "Too short.",
    ]
    params = SamplingParams(temperature=1.0, max_tokens=12, seed=0)
    result = backtranslate(hf_sampler, responses, "support", params,
                           BacktranslationConfig(filter=GARBAGE_OK, score_samples=2, score_max_tokens=16))
    assert result.prompts == []
    assert result.reasons()["response_too_short"] == 1
    unscored = [r for r in result.rejected if r.reason == "unscored"]
    assert unscored and all(r.detail["scores"] == [None, None] and len(r.detail["ratings"]) == 2 for r in unscored)
    assert "low_score" not in result.reasons()


def test_pool_selection_returns_the_planted_nearest_rows_with_minilm():
    from thresher.prompts.pool_select import PoolSelectConfig, select_from_pool, sentence_embedder

    targets = [
        _p("tax", "How do I deduct home office expenses on my federal income tax return?"),
        _p("tax", "What is the capital gains tax rate on stocks held for more than a year?"),
        _p("cooking", "How long should I boil an egg to get a soft, runny yolk?"),
        _p("cooking", "What is the best way to caramelize onions in a pan?"),
    ]
    planted = {
        "tax": ["Can I claim a tax deduction for my home office if I am self-employed?",
                "How are long-term capital gains on shares taxed?"],
        "cooking": ["How many minutes do I boil eggs for a soft-boiled egg?",
                    "How do I caramelize onions without burning them?"],
    }
    distractors = [
        "Write a haiku about autumn leaves.", "Explain how a transistor works.",
        "Who won the 1998 football World Cup?", "Translate 'good morning' into French.",
        "What is the derivative of x squared?", "Summarize the plot of Hamlet.",
        "How do I reverse a linked list in Python?", "What causes the northern lights?",
        "Recommend a good book on Roman history.", "How do vaccines train the immune system?",
        "Describe the water cycle.", "What is the difference between TCP and UDP?",
    ]
    pool = [_p("pool", t) for t in distractors[:6]] + [_p("pool", t) for v in planted.values() for t in v]
    pool += [_p("pool", t) for t in distractors[6:]] + [_p("pool", targets[0].question)]
    result = select_from_pool(pool, targets, PoolSelectConfig(per_task=2), embedder=sentence_embedder())
    got = {t: sorted(p.question for p in result.prompts if p.task == t) for t in planted}
    assert got == {t: sorted(v) for t, v in planted.items()}
    assert [r.reason for r in result.rejected].count("near_copy_of_target") == 1
    below = [r for r in result.rejected if r.reason == "below_min_score"]
    assert sorted(r.text for r in below) == sorted(distractors) and result.reasons().total() == len(distractors) + 1
    assert all(p.metadata["similarity"] > 0.5 for p in result.prompts)


def _cli(argv):
    from thresher.commands import prompts

    parser = argparse.ArgumentParser()
    prompts.add_arguments(parser)
    args = parser.parse_args(argv)
    return prompts.run(args)


def test_cli_self_instruct_writes_prompts_and_resumes(tiny_lm, tmp_path, capsys):
    from thresher.errors import UserError
    from thresher.records import read_jsonl

    seeds = tmp_path / "seeds.txt"
    seeds.write_text("Write a poem about the sea.\nExplain compound interest.\nList three uses of vinegar.\n")
    out, rejected = tmp_path / "prompts.jsonl", tmp_path / "rejected.jsonl"
    base = ["self-instruct", "--seeds", str(seeds), "--backend", "hf", "--model", str(tiny_lm), "--out", str(out),
            "--max-tokens", "12", "--min-words", "1", "--min-letters", "0", "--no-inputs", "--per-request", "1",
            "--rejected", str(rejected)]
    assert _cli([*base, "--count", "2"]) == 0
    first = list(read_jsonl(out, Prompt))
    assert len(first) == 2 and {p.task for p in first} == {"self_instruct"}
    assert "kept 2" in capsys.readouterr().out
    with pytest.raises(UserError, match="exists"):
        _cli([*base, "--count", "3"])
    assert _cli([*base, "--count", "3", "--resume"]) == 0
    again = list(read_jsonl(out, Prompt))
    assert len(again) == 3 and again[:2] == first
    assert all(json.loads(line)["reason"] for line in rejected.read_text().splitlines())


def test_cli_select_writes_task_tagged_rows(tmp_path):
    from thresher.records import read_jsonl, write_jsonl

    targets = [_p("tax", "How do I deduct home office expenses on my income tax return?"),
               _p("cooking", "How long should I boil an egg for a runny yolk?")]
    pool = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "..."}]} for q in
            ("Can I deduct my home office on my taxes?", "How many minutes to soft-boil an egg?",
             "Write a haiku about autumn.")]
    write_jsonl(tmp_path / "targets.jsonl", targets)
    write_jsonl(tmp_path / "pool.jsonl", pool)
    out = tmp_path / "selected.jsonl"
    assert _cli(["select", "--pool", str(tmp_path / "pool.jsonl"), "--targets", str(tmp_path / "targets.jsonl"),
                 "--per-task", "5", "--out", str(out)]) == 0
    rows = {p.task: p for p in read_jsonl(out, Prompt)}
    assert sorted(rows) == ["cooking", "tax"]
    assert rows["tax"].messages == [{"role": "user", "content": "Can I deduct my home office on my taxes?"}]


def test_recipe_sources_run_a_method_from_a_prompt_source(tiny_lm, tmp_path):
    from thresher.config import PromptSource
    from thresher.prompts.synth_sources import SYNTH_SOURCES

    seeds = tmp_path / "seeds.txt"
    seeds.write_text("Write a poem about the sea.\nExplain compound interest.\n")
    model = {"name": "gen", "path": str(tiny_lm), "backend": "hf"}
    relaxed = {"min_words": 1, "min_letters": 0.0}
    src = PromptSource(source="self_instruct", path=str(seeds), count=2, task="writing",
                       args={"model": model, "sampling": {"max_tokens": 12}, "per_request": 1,
                             "generate_inputs": False, "filter": relaxed})
    made = SYNTH_SOURCES["self_instruct"](src)
    assert len(made) == 2 and {p.task for p in made} == {"writing"}
    src = PromptSource(source="magpie", count=2, args={"model": model, "filter": relaxed,
                                                       "sampling": {"max_tokens": 8, "stop": ["e", "a", "o", " "]}})
    made = SYNTH_SOURCES["magpie"](src)
    assert len(made) == 2 and {p.task for p in made} == {"magpie"}


def test_magpie_raw_completion_on_vllm_and_openai_server(hf_sampler, tiny_vllm, tiny_vllm_server):
    """The same raw-completion path on the three backends; greedy continuations of the prefix agree."""
    from thresher.prompts.magpie import MagpieConfig, magpie, magpie_prefix
    from thresher.sampling.openai_backend import OpenAISampler

    server = OpenAISampler(tiny_vllm_server, "tiny", "served")
    prefix = magpie_prefix(hf_sampler.tokenizer, "You help tax accountants.")
    greedy = SamplingParams(n=2, temperature=0.0, max_tokens=6)
    texts = {name: [[c.text for c in row] for row in s.complete([prefix, prefix + "Hi"], greedy)]
             for name, s in (("hf", hf_sampler), ("vllm", tiny_vllm), ("openai", server))}
    assert texts["hf"] == texts["vllm"] == texts["openai"]
    assert all(len(row) == 2 and row[0] == row[1] for row in texts["hf"])

    # OpenAI's API takes at most 4 stop strings: 3 here plus the template's end of turn.
    params = SamplingParams(temperature=1.0, max_tokens=12, seed=0, stop=["e", "a", " "])
    for sampler in (tiny_vllm, server):
        result = magpie(sampler, hf_sampler.tokenizer, 3, "tax", params, MagpieConfig(batch_size=8, filter=GARBAGE_OK))
        assert len(result.prompts) == 3 and len({p.question for p in result.prompts}) == 3
