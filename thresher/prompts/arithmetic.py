"""A built-in arithmetic suite: seeded, procedurally generated, with reference answers.

It gives the quickstart and the tests a domain with several task buckets
(addition, subtraction, multiplication, a two-step word problem) whose answers
a verifier can check exactly, so gains and regressions per task are real
numbers rather than judgments. `word_problem_zh` is the same word problem
written in Chinese: asked for by name (it is not in the default `TASKS`), it
puts the Chinese judge and critique templates in a measured loop.

Train and eval splits are disjoint by construction: a problem's split is a
hash of its task and operands, so the same problem can never land in both,
whatever seed or count is asked for.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence

from thresher.errors import UserError
from thresher.records import Prompt

TASKS = ("addition", "subtraction", "multiplication", "word_problem")
"""The suite's tasks when none are named."""
ZH_TASKS = ("word_problem_zh",)
"""Tasks written in Chinese; named in `tasks` to be drawn."""
EVAL_FRACTION = 0.2

_NAMES = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun")
_ITEMS = ("apples", "books", "coins", "pens", "stamps", "shells", "cards", "marbles")
_NAMES_ZH = ("小明", "小红", "小华", "小丽", "小刚", "小芳", "小军", "小燕", "小强", "小美")
_ITEMS_ZH = (("苹果", "个"), ("书", "本"), ("硬币", "枚"), ("铅笔", "支"), ("邮票", "张"), ("贝壳", "个"),
             ("卡片", "张"), ("弹珠", "颗"))
"""Chinese items with their measure words."""


def _split_of(task: str, operands: Sequence[object]) -> str:
    h = hashlib.sha1(f"{task}:{operands}".encode()).digest()
    return "eval" if h[0] / 256 < EVAL_FRACTION else "train"


def _number(rng: random.Random, digits: int) -> int:
    return rng.randint(0, 10**digits - 1)


def _addition(rng: random.Random, digits: int) -> tuple[tuple[object, ...], str, int]:
    a, b = _number(rng, digits), _number(rng, digits)
    return (a, b), f"What is {a} + {b}?", a + b


def _subtraction(rng: random.Random, digits: int) -> tuple[tuple[object, ...], str, int]:
    a, b = sorted((_number(rng, digits), _number(rng, digits)), reverse=True)
    return (a, b), f"What is {a} - {b}?", a - b


def _multiplication(rng: random.Random, digits: int) -> tuple[tuple[object, ...], str, int]:
    a, b = _number(rng, digits), rng.randint(2, 9)
    return (a, b), f"What is {a} * {b}?", a * b


def _word_problem(rng: random.Random, digits: int) -> tuple[tuple[object, ...], str, int]:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    a, b = _number(rng, digits), _number(rng, digits)
    c = rng.randint(0, a + b)
    text = f"{name} has {a} {item}, gets {b} more, then gives away {c}. How many {item} now?"
    return (name, item, a, b, c), text, a + b - c


def _word_problem_zh(rng: random.Random, digits: int) -> tuple[tuple[object, ...], str, int]:
    name, (item, unit) = rng.choice(_NAMES_ZH), rng.choice(_ITEMS_ZH)
    a, b = _number(rng, digits), _number(rng, digits)
    c = rng.randint(0, a + b)
    text = f"{name}有{a}{unit}{item}，又得到{b}{unit}，然后送出{c}{unit}。现在有多少{unit}{item}？"
    return (name, item, a, b, c), text, a + b - c


GENERATORS: dict[str, Callable[[random.Random, int], tuple[tuple[object, ...], str, int]]] = {
    "addition": _addition,
    "subtraction": _subtraction,
    "multiplication": _multiplication,
    "word_problem": _word_problem,
    "word_problem_zh": _word_problem_zh,
}


def arithmetic_suite(
    split: str = "train",
    count: int = 400,
    seed: int = 0,
    digits: int = 2,
    tasks: Sequence[str] | None = None,
) -> list[Prompt]:
    """`count` prompts of `split` ("train" or "eval"), spread evenly over `tasks`, deterministic by seed.

    Each prompt's reference is the exact integer answer; `metadata` holds the
    operands so analyses can slice by difficulty, and the language (`en`, `zh`).
    """
    if split not in ("train", "eval"):
        raise UserError(f"arithmetic split {split!r}: expected 'train' or 'eval'")
    tasks = tuple(tasks or TASKS)
    for t in tasks:
        if t not in GENERATORS:
            raise UserError(f"arithmetic task {t!r}: expected one of {', '.join(GENERATORS)}")
    rng = random.Random(f"{seed}:{split}:{digits}")
    per_task = [count // len(tasks) + (1 if i < count % len(tasks) else 0) for i in range(len(tasks))]
    prompts: list[Prompt] = []
    for task, want in zip(tasks, per_task):
        seen: set[tuple[object, ...]] = set()
        tries = 0
        while len(seen) < want:
            tries += 1
            if tries > 200 * want + 1000:
                raise UserError(f"arithmetic: cannot draw {want} distinct {split} {task} problems with {digits} digits")
            operands, text, answer = GENERATORS[task](rng, digits)
            if operands in seen or _split_of(task, operands) != split:
                continue
            seen.add(operands)
            prompts.append(
                Prompt.create(
                    task,
                    [{"role": "user", "content": text}],
                    reference=str(answer),
                    metadata={"operands": list(operands), "digits": digits, "split": split,
                              "language": "zh" if task in ZH_TASKS else "en"},
                )
            )
    return prompts
