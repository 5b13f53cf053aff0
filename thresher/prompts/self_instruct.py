"""Self-Instruct (Wang et al., 2023): grow a few hundred seed instructions into thousands.

Each request shows the model a handful of seed instructions (and a couple it
generated earlier, so the set drifts outward) and asks for new ones. A new
instruction is kept only if it passes the heuristic filters (length, no
images or files, user's voice) and its ROUGE-L against every instruction kept
so far, seeds included, is below a threshold (0.7 in the paper). ROUGE-L is
computed on jieba words or characters for Chinese, where whitespace tokens
would make every pair look unrelated.

Kept instructions then get an input, as in the paper: the model first says
whether the task is classification (a finite label set). Classification
tasks are generated output-first (pick a label, then write an input of that
class), because input-first generation gives inputs that mostly belong to
one label; other tasks are generated input-first, and a task that needs no
input keeps none. The instruction plus its input is the prompt; the model's
own label or output goes to `metadata` only, since thresher samples answers
in the round loop.

Seed prompts may carry different `task` tags; each request draws its
examples from one task and the new instruction inherits that task, so
per-task metrics keep meaning something.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated

from tqdm.auto import tqdm

from thresher.errors import UserError
from thresher.prompts.filters import TextFilter
from thresher.prompts.rouge import Granularity, RougeIndex
from thresher.prompts.synth import Language, SynthesisResult, ask, first_paragraph, resolve_language
from thresher.records import Prompt
from thresher.sampling.params import Sampler, SamplingParams
from thresher.typed import NonNegativeInt, PositiveInt, between, check_fields

TEMPLATES = {
    "en": {
        "generate": (
            "You are asked to come up with new tasks for an AI assistant. Here are some existing tasks:\n\n"
            "{examples}\n\n"
            "Write {n} new tasks, numbered Task {first} to Task {last}. Each must be different from all of the "
            "tasks above, in the same domain, and doable by a text-only assistant (no images, files or web "
            "browsing). If a task needs an input (a passage, a list, a sentence), do not write the input yet."
        ),
        "example": "Task {i}: {text}",
        "classify": (
            "Can the following task be regarded as a classification task with a finite set of output labels "
            "(for example: sentiment positive/negative, true/false, pick one of the options)?\n\n"
            "Task: {instruction}\n\nAnswer Yes or No."
        ),
        "input_first": (
            "Come up with one example input for the following task, then its output. If the task needs no "
            "extra input, write Input: None.\n\nTask: {instruction}\n\n"
            "Answer in exactly this format:\nInput: <the input, or None>\nOutput: <the output>"
        ),
        "output_first": (
            "Given the classification task below, first choose one of its possible class labels, then write an "
            "input that belongs to that class.\n\nTask: {instruction}\n\n"
            "Answer in exactly this format:\nClass label: <label>\nInput: <an input of that class>"
        ),
    },
    "zh": {
        "generate": (
            "请为AI助手设计新的任务。以下是一些已有的任务：\n\n"
            "{examples}\n\n"
            "请写出{n}个新任务，编号从任务{first}到任务{last}。每个任务都要与上面的任务不同、属于同一领域，并且纯文本助手能够完成"
            "（不涉及图片、文件或上网）。如果任务需要输入（一段文字、一个列表、一句话），先不要写出输入。"
        ),
        "example": "任务{i}：{text}",
        "classify": (
            "下面的任务能否看作输出标签有限的分类任务（例如：情感正面/负面、对/错、从选项中选一个）？\n\n"
            "任务：{instruction}\n\n请回答“是”或“否”。"
        ),
        "input_first": (
            "请为下面的任务写一个输入示例，再写出对应的输出。如果任务不需要额外输入，输入写“无”。\n\n任务：{instruction}\n\n"
            "严格按以下格式回答：\n输入：<输入，或“无”>\n输出：<输出>"
        ),
        "output_first": (
            "对于下面的分类任务，先选一个可能的类别标签，再写一个属于该类别的输入。\n\n任务：{instruction}\n\n"
            "严格按以下格式回答：\n类别：<标签>\n输入：<属于该类别的输入>"
        ),
    },
}

_TASK_MARK = re.compile(r"^\s*(?:\*\*)?(?:task|任务)\s*(\d+)\s*(?:\*\*)?\s*[:：.]\s*(?:\*\*)?", re.IGNORECASE | re.MULTILINE)
_NO_INPUT = re.compile(r"^\s*[<(\[]?\s*(none|n/?a|null|no input|empty|无|没有|不需要)\s*[>)\].。]?\s*$", re.IGNORECASE)
_FIELD = re.compile(r"^\s*(?:\*\*)?(input|output|class label|label|输入|输出|类别|标签)\s*(?:\*\*)?\s*[:：]", re.IGNORECASE | re.MULTILINE)
_FIELD_NAMES = {"input": "input", "输入": "input", "output": "output", "输出": "output",
                "class label": "label", "label": "label", "类别": "label", "标签": "label"}


def parse_instructions(text: str) -> list[str]:
    """The tasks in a generation: the items after 'Task N:' markers, or the first paragraph if there are none."""
    marks = list(_TASK_MARK.finditer(text))
    if not marks:
        first = first_paragraph(text)
        return [first] if first else []
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        item = text[m.end() : end].strip()
        if item:
            out.append(item)
    return out


def parse_is_classification(text: str) -> bool | None:
    """Yes/No (是/否) at the start of the answer; None when it says neither."""
    t = text.strip().lstrip("*\"'“ ").lower()
    if t.startswith(("yes", "是", "能", "可以")):
        return True
    if t.startswith(("no", "否", "不")):
        return False
    return None


def parse_fields(text: str) -> dict[str, str]:
    """'Input: ... Output: ...' / 'Class label: ... Input: ...' (or 输入/输出/类别) into a dict; first of each wins."""
    marks = list(_FIELD.finditer(text))
    fields: dict[str, str] = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        name = _FIELD_NAMES[m.group(1).lower()]
        fields.setdefault(name, text[m.end() : end].strip())
    return fields


@dataclass(slots=True)
class Instance:
    """An instruction's generated input (may be empty), and the model's own output or label for it."""

    input: str
    output: str | None = None
    label: str | None = None


def parse_instance(text: str, classification: bool) -> Instance | None:
    """Read an instance generation; None when a classification task got no label or no input.

    Input-first: 'Input: None' or no markers at all means the task needs no
    input (the paper's prompt lets the model write the output directly).
    """
    fields = parse_fields(text)
    if classification:
        inp, label = fields.get("input", ""), fields.get("label", "")
        if not inp or not label or _NO_INPUT.match(inp):
            return None
        return Instance(input=inp, label=label)
    if not fields:
        return Instance(input="", output=text.strip() or None)
    inp = fields.get("input", "")
    return Instance(input="" if _NO_INPUT.match(inp) else inp, output=fields.get("output"))


@dataclass(slots=True)
class SelfInstructConfig:
    """How Self-Instruct asks and filters; defaults follow the paper where it says."""

    num_examples: PositiveInt = 8
    """Instructions shown per request (the paper: 8)."""
    machine_examples: NonNegativeInt = 2
    """Of those, how many are earlier generations of the same task (the paper: 2), once there are some."""
    per_request: PositiveInt = 4
    """New tasks asked for per request."""
    rouge_threshold: Annotated[float, between(0, 1, low_open=True)] = 0.7
    """Reject a new instruction whose ROUGE-L with any kept one (seeds included) reaches this."""
    granularity: Granularity = "auto"
    """ROUGE tokens for Chinese text: jieba words (auto/jieba) or characters (char)."""
    filter: TextFilter = field(default_factory=TextFilter)
    generate_inputs: bool = True
    """Classify each task and generate its input; False keeps bare instructions."""
    language: Language = "auto"
    """Language of the requests to the model; auto follows the seeds."""
    max_requests: PositiveInt | None = None
    """Stop after this many generation requests even if short of the target (default: 20 x count / per_request).

    Only requests for new tasks count here; `SynthesisResult.requests` also
    counts the classification and input requests."""
    batch_size: PositiveInt = 16
    """Generation requests sent to the sampler at once."""

    def __post_init__(self) -> None:
        check_fields(self)


def self_instruct(
    sampler: Sampler,
    seeds: Sequence[Prompt],
    count: int,
    params: SamplingParams | None = None,
    config: SelfInstructConfig | None = None,
    seed: int = 0,
    existing: Sequence[Prompt] = (),
    on_batch: Callable[[list[Prompt]], None] | None = None,
) -> SynthesisResult:
    """Generate up to `count` new prompts from `seeds` (their `question` is the instruction).

    `existing` are prompts from an earlier, interrupted run: they count toward
    `count`, and new instructions must differ from them. `on_batch` receives
    each batch of kept prompts as it is made (the CLI appends them to disk, so
    a killed run loses at most one batch).
    """
    cfg = config or SelfInstructConfig()
    params = params or SamplingParams(temperature=0.7, top_p=0.95, max_tokens=512)
    if not seeds:
        raise UserError("self-instruct needs at least one seed instruction")
    if count < 1:
        raise UserError(f"self-instruct count must be at least 1, got {count}")
    rng = random.Random(seed)
    lang = resolve_language(cfg.language, [p.question for p in seeds])
    tpl = TEMPLATES[lang]
    index = RougeIndex(cfg.rouge_threshold, cfg.granularity)
    index.extend(p.question for p in seeds)

    tasks = sorted({p.task for p in seeds})
    human = {t: [p.question for p in seeds if p.task == t] for t in tasks}
    machine: dict[str, list[str]] = {t: [] for t in tasks}
    result = SynthesisResult()
    made = {t: 0 for t in tasks}
    for p in existing:
        instruction = p.metadata.get("instruction", p.question)
        index.extend([instruction])
        machine.setdefault(p.task, []).append(instruction)
        made[p.task] = made.get(p.task, 0) + 1
    per_task = {t: count // len(tasks) + (1 if i < count % len(tasks) else 0) for i, t in enumerate(tasks)}
    max_requests = cfg.max_requests if cfg.max_requests is not None else 20 * -(-count // cfg.per_request)
    gen_params = replace(params, n=1)

    bar = tqdm(total=count, initial=min(count, len(existing)), desc="self-instruct", unit="prompt")
    generation_requests = 0
    while sum(min(made[t], per_task[t]) for t in tasks) < count and generation_requests < max_requests:
        wanting = [t for t in tasks if made[t] < per_task[t]]
        n_req = min(cfg.batch_size, max_requests - generation_requests)
        req_tasks = [wanting[i % len(wanting)] for i in range(n_req)]
        requests = [_generation_request(tpl, human[t], machine[t], cfg, rng) for t in req_tasks]
        # A fresh sampling seed per batch: a fixed one would redraw the same tasks whenever a request repeats.
        batch_params = replace(gen_params, seed=None if params.seed is None else params.seed + generation_requests)
        outputs = ask(sampler, requests, batch_params, result)
        result.requests += len(requests)
        generation_requests += len(requests)
        fresh: list[tuple[str, str]] = []
        for task, cands in zip(req_tasks, outputs):
            for cand in cands or []:
                instructions = parse_instructions(cand.text)
                if not instructions:
                    result.reject(cand.text, "no_instruction")
                for instruction in instructions:
                    if made[task] + sum(1 for t, _ in fresh if t == task) >= per_task[task]:
                        break
                    if _accept(instruction, cfg, index, result):
                        fresh.append((task, instruction))
        kept = _with_inputs(sampler, fresh, tpl, cfg, params, result) if cfg.generate_inputs else [
            _prompt(task, instruction, Instance(input=""), None) for task, instruction in fresh
        ]
        for p in kept:
            machine[p.task].append(p.metadata["instruction"])
            made[p.task] += 1
        result.prompts.extend(kept)
        bar.update(len(kept))
        if on_batch and kept:
            on_batch(kept)
    bar.close()
    return result


def _generation_request(tpl: dict[str, str], human: list[str], machine: list[str], cfg: SelfInstructConfig,
                        rng: random.Random) -> str:
    n_machine = min(cfg.machine_examples, len(machine), cfg.num_examples)
    examples = rng.sample(machine, n_machine) + rng.sample(human, min(len(human), cfg.num_examples - n_machine))
    rng.shuffle(examples)
    lines = "\n".join(tpl["example"].format(i=i + 1, text=" ".join(e.split())) for i, e in enumerate(examples))
    first = len(examples) + 1
    return tpl["generate"].format(examples=lines, n=cfg.per_request, first=first, last=first + cfg.per_request - 1)


def _accept(instruction: str, cfg: SelfInstructConfig, index: RougeIndex, result: SynthesisResult) -> bool:
    reason = cfg.filter.reason(instruction)
    if reason:
        result.reject(instruction, reason)
        return False
    kept, score, near = index.add(instruction)
    if not kept:
        result.reject(instruction, "near_duplicate", rouge_l=round(score, 4), nearest=near)
    return kept


def _with_inputs(sampler: Sampler, fresh: list[tuple[str, str]], tpl: dict[str, str], cfg: SelfInstructConfig,
                 params: SamplingParams, result: SynthesisResult) -> list[Prompt]:
    """Classify each new instruction, then generate its input output-first or input-first."""
    if not fresh:
        return []
    instructions = [ins for _, ins in fresh]
    verdicts = ask(sampler, [tpl["classify"].format(instruction=i) for i in instructions],
                   replace(params, n=1, temperature=0.0, max_tokens=8), result)
    result.requests += len(instructions)
    answered = [(pair, parse_is_classification(v[0].text)) for pair, v in zip(fresh, verdicts) if v is not None]
    requests = [tpl["output_first" if c else "input_first"].format(instruction=i) for (_, i), c in answered]
    outputs = ask(sampler, requests, replace(params, n=1), result)
    result.requests += len(requests)
    kept = []
    for ((task, instruction), cls), out in zip(answered, outputs):
        if out is None:
            continue
        instance = parse_instance(out[0].text, classification=bool(cls))
        if instance is None:
            result.reject(instruction, "no_instance", generation=out[0].text)
        elif instance.input and instance.input.strip() == instruction.strip():
            result.reject(instruction, "input_repeats_instruction")
        else:
            kept.append(_prompt(task, instruction, instance, cls))
    return kept


def _prompt(task: str, instruction: str, instance: Instance, is_classification: bool | None) -> Prompt:
    text = f"{instruction}\n\n{instance.input}" if instance.input else instruction
    meta = {"method": "self_instruct", "instruction": instruction, "input": instance.input,
            "is_classification": is_classification}
    if instance.output is not None:
        meta["generated_output"] = instance.output
    if instance.label is not None:
        meta["generated_label"] = instance.label
    return Prompt.create(task, [{"role": "user", "content": text}], metadata=meta)
