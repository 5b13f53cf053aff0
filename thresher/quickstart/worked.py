"""Worked answers for the arithmetic suite: what the tiny teacher and student are pretrained to write.

Answers are column arithmetic, units first, ending in the result:

    What is 67 + 85?      7+5=12, 6+8+1=15, so 152
    What is 67 - 29?      17-9=8, 6-1-2=3, so 38
    What is 67 * 8?       7*8=56, 6*8+5=53, so 536
    word problem          (the addition, then the subtraction), so 122
    Chinese word problem  the same steps, 7+5=12，6+8+1=15，所以 152。...，所以 122

Each step is a one-digit fact plus a carry or borrow that a model of a few
hundred thousand parameters learns in minutes on a CPU, where the bare
answer ("152") would take it many times longer; and a held-out problem is
made of the same facts as the training ones, so what is learned carries
over. The last number is the answer, which is what the math verifier reads.
"""

from __future__ import annotations

import random

from thresher.records import Prompt


def _digits(n: int) -> list[int]:
    """Digits of n, units first."""
    return [int(c) for c in str(n)][::-1]


def _join(steps: list[str], result: int, zh: bool) -> str:
    return ("，".join(steps) + f"，所以 {result}") if zh else (", ".join(steps) + f", so {result}")


def column_add(x: int, y: int, zh: bool = False) -> str:
    xs, ys = _digits(x), _digits(y)
    n = max(len(xs), len(ys))
    xs, ys = xs + [0] * (n - len(xs)), ys + [0] * (n - len(ys))
    steps, carry = [], 0
    for i in range(n):
        s = xs[i] + ys[i] + carry
        steps.append(f"{xs[i]}+{ys[i]}={s}" if i == 0 else f"{xs[i]}+{ys[i]}+{carry}={s}")
        carry = s // 10
    return _join(steps, x + y, zh)


def column_sub(x: int, y: int, zh: bool = False) -> str:
    """x - y for x >= y, borrowing column by column."""
    xs, ys = _digits(x), _digits(y)
    ys += [0] * (len(xs) - len(ys))
    steps, borrow = [], 0
    for i in range(len(xs)):
        out = 1 if xs[i] - borrow < ys[i] else 0
        d = xs[i] - borrow + 10 * out - ys[i]
        top = xs[i] + 10 * out
        steps.append(f"{top}-{ys[i]}={d}" if i == 0 else f"{top}-{borrow}-{ys[i]}={d}")
        borrow = out
    return _join(steps, x - y, zh)


def column_mul(x: int, m: int) -> str:
    """x * m for a one-digit m."""
    steps, carry = [], 0
    for i, d in enumerate(_digits(x)):
        p = d * m + carry
        steps.append(f"{d}*{m}={p}" if i == 0 else f"{d}*{m}+{carry}={p}")
        carry = p // 10
    return _join(steps, x * m, False)


def worked_answer(prompt: Prompt) -> str:
    """The correct worked answer of an arithmetic-suite prompt, built from its operands."""
    ops = prompt.metadata["operands"]
    if prompt.task == "addition":
        return column_add(*ops)
    if prompt.task == "subtraction":
        return column_sub(*ops)
    if prompt.task == "multiplication":
        return column_mul(*ops)
    if prompt.task == "word_problem":
        _name, _item, a, b, c = ops
        return f"{column_add(a, b)}. {column_sub(a + b, c)}"
    if prompt.task == "word_problem_zh":
        _name, _item, a, b, c = ops
        return f"{column_add(a, b, zh=True)}。{column_sub(a + b, c, zh=True)}"
    raise ValueError(f"no worked answer for task {prompt.task!r}")


def wrong_answer(prompt: Prompt, rng: random.Random) -> str:
    """A worked answer whose result is off by a little: the rejected side of a reward-model pair."""
    right = worked_answer(prompt)
    head, _, last = right.rpartition(" ")
    value = int(last)
    delta = rng.choice([-10, -2, -1, 1, 2, 10, rng.randint(-30, 30) or 3])
    return f"{head} {value + delta if value + delta >= 0 else value + abs(delta)}"
