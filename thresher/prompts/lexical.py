"""A similarity that reads Chinese: BM25-weighted words and character bigrams, for pool selection.

The packaged embedding model (all-MiniLM-L6-v2) was trained on English: it
maps most Chinese sentences to nearby points, so a Chinese pool row lands in
whichever task happens to be closest, not the one it is about. This scores
texts by the words they share instead. Each text becomes a sparse vector of
terms (jieba words for CJK runs, the same segmentation ROUGE-L uses here,
plus the CJK character bigrams, which catch words jieba splits differently;
lowercased words elsewhere), weighted as BM25 weights a document's terms
(term-frequency saturation `k1`, length normalisation `b`, inverse document
frequency fitted on the texts given), and L2-normalised, so the dot product
of two vectors is a cosine in [0, 1] that `select_from_pool` uses exactly as
it uses embedding similarities.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from thresher.prompts.rouge import cjk_runs, has_cjk, tokenize


def lexical_terms(text: str) -> list[str]:
    """Words of `text` (jieba words for CJK runs), then the character bigrams of its CJK runs."""
    terms = tokenize(text, "jieba" if has_cjk(text) else "char")
    for run in cjk_runs(text):
        terms += [run[i : i + 2] for i in range(len(run) - 1)]
    return terms


class LexicalEmbedder:
    """Texts -> L2-normalised sparse BM25 term vectors (a CSR matrix); an `Embedder` for pool selection."""

    def __init__(self, corpus: Iterable[str], k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        df: Counter[str] = Counter()
        lengths = []
        for text in corpus:
            terms = lexical_terms(text)
            lengths.append(len(terms))
            df.update(set(terms))
        n = max(1, len(lengths))
        self.avg_len = max(1.0, sum(lengths) / n)
        self.vocab = {t: i for i, t in enumerate(sorted(df))}
        self.idf = [math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in sorted(df)]

    def __call__(self, texts: Sequence[str]) -> Any:
        from scipy.sparse import csr_matrix

        rows, cols, vals = [], [], []
        for r, text in enumerate(texts):
            terms = lexical_terms(text)
            norm = self.k1 * (1 - self.b + self.b * len(terms) / self.avg_len)
            weights = {}
            for term, tf in Counter(terms).items():
                j = self.vocab.get(term)
                if j is not None:
                    weights[j] = self.idf[j] * tf * (self.k1 + 1) / (tf + norm)
            length = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            for j, w in weights.items():
                rows.append(r)
                cols.append(j)
                vals.append(w / length)
        return csr_matrix((vals, (rows, cols)), shape=(len(texts), len(self.vocab)), dtype="float32")
