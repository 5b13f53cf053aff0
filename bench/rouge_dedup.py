"""ROUGE-L near-duplicate filtering as Self-Instruct runs it: each new instruction against every kept one.

Baseline: `rouge_score.RougeScorer(["rougeL"]).score(kept, new)` for every kept
instruction (what the Self-Instruct code does, minus its process pool).
Measured: `thresher.prompts.rouge.RougeIndex.add` (tokens cached once,
bit-parallel LCS, length bound). Both must make the same keep/reject decision
for every text; the script checks that before printing timings.

    python bench/rouge_dedup.py            # 1,000 kept instructions, 100 new ones
    python bench/rouge_dedup.py --kept 5000 --new 300
"""

from __future__ import annotations

import argparse
import random
import time

from rouge_score import rouge_scorer

from thresher.prompts.rouge import RougeIndex

VERBS = ["Write", "Explain", "List", "Describe", "Summarize", "Compare", "Translate", "Classify", "Suggest", "Rewrite"]
_VOCABULARY = ("the a an of for to in on with about between how why what which simple short detailed formal friendly "
         "email poem story essay letter plan recipe list table summary report argument tax law contract loan bond "
         "stock market interest rate inflation budget invoice customer employee manager student teacher child city "
         "river ocean mountain forest history science physics chemistry biology computer program function data "
         "network security privacy health diet exercise sleep travel hotel flight museum music painting film")
WORDS = _VOCABULARY.split()


def make_instructions(n: int, seed: int) -> list[str]:
    """Synthetic instructions of 6-30 words; a third are light edits of an earlier one (near-duplicates)."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(n):
        if out and rng.random() < 0.33:
            words = rng.choice(out).split()
            for _ in range(rng.randint(1, 3)):
                words[rng.randrange(len(words))] = rng.choice(WORDS)
            out.append(" ".join(words))
        else:
            out.append(" ".join([rng.choice(VERBS)] + [rng.choice(WORDS) for _ in range(rng.randint(5, 29))]) + ".")
    return out


def baseline(kept: list[str], new: list[str], threshold: float) -> tuple[list[bool], float]:
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pool = list(kept)
    decisions = []
    t = time.perf_counter()
    for text in new:
        best = max((scorer.score(k, text)["rougeL"].fmeasure for k in pool), default=0.0)
        keep = best < threshold
        decisions.append(keep)
        if keep:
            pool.append(text)
    return decisions, time.perf_counter() - t


def indexed(kept: list[str], new: list[str], threshold: float) -> tuple[list[bool], float]:
    index = RougeIndex(threshold=threshold, granularity="char")
    index.extend(kept)
    t = time.perf_counter()
    decisions = [index.add(text)[0] for text in new]
    return decisions, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kept", type=int, default=1000)
    ap.add_argument("--new", type=int, default=100)
    ap.add_argument("--threshold", type=float, default=0.7)
    args = ap.parse_args()
    texts = make_instructions(args.kept + args.new, seed=0)
    kept, new = texts[: args.kept], texts[args.kept :]
    base_dec, base_s = baseline(kept, new, args.threshold)
    fast_dec, fast_s = indexed(kept, new, args.threshold)
    if base_dec != fast_dec:
        raise SystemExit("decisions differ between rouge-score and RougeIndex")
    print(f"{args.new} new instructions against {args.kept} kept; {sum(fast_dec)} kept, "
          f"{len(fast_dec) - sum(fast_dec)} rejected (same decisions in both)")
    print(f"rouge-score loop: {base_s:.2f} s ({1e3 * base_s / args.new:.1f} ms per instruction)")
    print(f"RougeIndex:       {fast_s:.2f} s ({1e3 * fast_s / args.new:.1f} ms per instruction)")
    print(f"speedup (rouge-score time / RougeIndex time): {base_s / fast_s:.1f}x")


if __name__ == "__main__":
    main()
