"""95% bootstrap intervals for per-prompt means: how sure a per-task number is.

With 100 held-out prompts a task's pass@1 of 0.50 is really "somewhere in
0.40-0.60"; a drop of 0.03 from one round to the next is noise, not a
regression, and a judge lift of +0.02 is not a judge worth running. Every
per-task metric and every judge lift is a mean over prompts, so each gets a
percentile bootstrap interval over its prompts (scipy's `bootstrap`,
seeded, so the same numbers give the same interval) and the number of
prompts it rests on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RESAMPLES = 2000
LEVEL = 0.95
_CELLS = 4_000_000
"""Resampled values held in memory at once (scipy resamples in batches of this size)."""


def bootstrap_interval(
    values: Sequence[float], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0
) -> list[float] | None:
    """[low, high] of the `level` percentile bootstrap interval of the mean; None for fewer than 2 values."""
    import numpy as np
    from scipy.stats import bootstrap

    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return None
    if np.all(x == x[0]):  # nothing varies: every resample has the same mean
        return [float(x[0]), float(x[0])]
    res = bootstrap(
        (x,), np.mean, confidence_level=level, n_resamples=resamples, method="percentile",
        rng=np.random.default_rng(seed), vectorized=True, batch=max(1, _CELLS // x.size),
    )
    ci = res.confidence_interval
    return [float(ci.low), float(ci.high)]


def mean_with_interval(out: dict[str, Any], name: str, values: Sequence[float], seed: int = 0) -> None:
    """Set `out[name]` to the mean of `values` and `out[name + "_ci"]` to its interval (when there is one)."""
    if not values:
        raise ValueError(f"{name}: mean of no values")
    out[name] = sum(values) / len(values)
    ci = bootstrap_interval(values, seed=seed)
    if ci is not None:
        out[f"{name}_ci"] = ci


def ci_key(metric: str) -> str:
    return f"{metric}_ci"


def is_ci_key(key: str) -> bool:
    return key.endswith("_ci")
