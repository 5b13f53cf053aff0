"""Exact and near-duplicate removal over export rows (MinHash LSH from datasketch).

Duplicates skew training towards whatever was repeated: the same prompt
sampled twice, two candidates that differ in one space, a teacher answer
pasted into many prompts. A row is first checked exactly (its normalised
text: lower case, whitespace collapsed, so whitespace-identical texts are
exact duplicates), then for near duplicates: character n-gram MinHash
signatures in an LSH index propose earlier rows, and the proposal counts only
if the estimated Jaccard similarity really reaches the threshold (LSH alone
lets some less similar pairs through). The first row seen is kept.

Memory is one digest per row plus one signature and the LSH band keys per
row (about 2 KB at the default 64 permutations), so a few hundred thousand
rows fit easily; rows themselves are never held.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np

from thresher.typed import PositiveInt, between, check_fields

_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lower case with runs of whitespace collapsed: what makes two texts "the same" for dedup."""
    return _SPACE.sub(" ", text).strip().lower()


def ngram_hashes(text: str, n: int) -> np.ndarray:
    """Distinct 32-bit hashes of every character n-gram of `text` (the whole text when shorter than n).

    A polynomial hash over code points, vectorised: hashing each shingle in
    Python (encode, then crc32) cost more than everything else in an export.
    """
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if cps.size == 0:
        return np.zeros(1, dtype=np.uint64)
    k = min(n, cps.size)
    h = np.zeros(cps.size - k + 1, dtype=np.uint64)
    for j in range(k):
        h = h * np.uint64(1_000_003) + cps[j : j + h.size]
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(32)
    return np.unique(h & np.uint64(0xFFFFFFFF))


@dataclass(slots=True)
class DedupConfig:
    """`export.args.dedup`: how duplicate rows are found."""

    exact: bool = True
    near: bool = True
    threshold: Annotated[float, between(0, 1, low_open=True)] = 0.85
    """Estimated Jaccard similarity of character n-grams at which a row is a near duplicate."""
    num_perm: PositiveInt = 64
    ngram: PositiveInt = 5
    on: Literal["all", "prompt", "response"] = "all"
    """Compare the prompt and answer together (all), only prompts (across prompts), or only answers."""

    def __post_init__(self) -> None:
        check_fields(self)


class Deduplicator:
    """Decides, row after row, whether a row repeats an earlier one; counts the drops by reason."""

    def __init__(self, config: DedupConfig):
        from datasketch import MinHash, MinHashLSH

        self.config = config
        self.removed: Counter[str] = Counter()
        self._digests: set[bytes] = set()
        self._by_group: dict[str, str | None] = {}
        self._lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm) if config.near else None
        self._proto = MinHash(num_perm=config.num_perm, seed=1) if config.near else None
        self._signatures: list[np.ndarray] = []

    def _minhash(self, norm: str) -> Any:
        """A datasketch MinHash (affine32 scheme) of the text's character n-grams, computed with numpy.

        The same permutations h -> a*h + b mod 2^32 that `MinHash.update_batch`
        applies, over all n-gram hashes at once: feeding hashes one by one
        through its Python-level hash function cost more than the whole rest
        of an export.
        """
        from datasketch import MinHash

        a, b = self._proto.permutations  # type: ignore[union-attr]
        hv = ngram_hashes(norm, self.config.ngram).astype(np.uint32)
        signature = (hv[:, None] * a[None, :] + b[None, :]).min(axis=0)
        return MinHash(
            num_perm=self.config.num_perm,
            hashvalues=signature,
            permutations=self._proto.permutations,  # type: ignore[union-attr]
            scheme=self._proto.scheme,  # type: ignore[union-attr]
        )

    def check(self, text: str, group: str | None = None) -> str | None:
        """"exact_duplicate" / "near_duplicate" when `text` repeats an earlier row, else None (and remember it).

        `group` (the prompt id, for `on: prompt`) makes the decision once per
        group: rows of the same prompt never count as each other's duplicates.
        """
        if group is not None:
            if group in self._by_group:
                why = self._by_group[group]
                if why is not None:
                    self.removed[why] += 1
                return why
            why = self._check(text)
            self._by_group[group] = why
            return why
        return self._check(text)

    def _check(self, text: str) -> str | None:
        norm = normalize_text(text)
        if self.config.exact:
            digest = hashlib.blake2b(norm.encode("utf-8"), digest_size=16).digest()
            if digest in self._digests:
                self.removed["exact_duplicate"] += 1
                return "exact_duplicate"
            self._digests.add(digest)
        if self._lsh is not None:
            m = self._minhash(norm)
            for key in self._lsh.query(m):
                other = self._signatures[key]
                if float(np.mean(other == m.hashvalues)) >= self.config.threshold:
                    self.removed["near_duplicate"] += 1
                    return "near_duplicate"
            key = len(self._signatures)
            self._signatures.append(m.hashvalues)
            self._lsh.insert(key, m, check_duplication=False)
        return None
