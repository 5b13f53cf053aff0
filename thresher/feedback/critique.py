"""Critique-SFT rows: teaching a model to judge, from what the judges wrote and found.

The user turn shows the problem and several candidates (teachers' and
students' alike) in a shuffled order that the row records (`order`); the
assistant turn is the judge's reasoning and conclusion:

- a listwise LLM judge: the exact exchange the judge had. Its output refers
  to candidates by the numbers it saw, so the user turn is its own prompt
  rebuilt (`thresher.judges.llm_templates.listwise_request`) with exactly
  the candidates it judged, in the order it saw them (`metadata["shown"]`, or
  each verdict's `metadata["position"]`), in the language and with or
  without the reference answer as its verdicts record (`language`,
  `with_reference`), and the assistant turn is its output verbatim. When the
  verdicts carry the digest of the judge's request, a rebuilt prompt that
  differs from it is dropped (`judge_request_mismatch`) rather than written
  as an exchange that never happened.
- a pointwise LLM judge: each candidate's critique and score, then the best.
- a verifier (math, code): a critique built from what it found, per
  candidate: the extracted answer against the reference, or the failing test
  and its error; then which candidate is best (the policy's choice among the
  correct ones), or that none is correct.

Rows built by thresher's own templates (verifier and pointwise) are written
in `export.language`; `auto` (the default) writes each in its prompt's own
language. A row whose conclusion contradicts a verifier (the judge names as
best an answer a verifier failed while another shown answer passed) is
dropped and counted: it would teach the wrong judgement.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from thresher.errors import ConfigError
from thresher.feedback.groups import JudgeInfo, PromptGroup, judge_score
from thresher.feedback.policies import Selection, prompt_rng, tie_key
from thresher.judges.llm_templates import LANGUAGES, language_for, listwise_request, prompt_digest
from thresher.records import Candidate, Prompt, Verdict
from thresher.typed import PositiveInt, check_fields

CRITIQUE_JUDGE_FLAG = "--critique-judge NAME"
"""The `thresher export` flag that names the critique judge (`export.args.critique.judge` in a recipe)."""


@dataclass(slots=True)
class CritiqueOptions:
    """`export.args.critique`: which judge's reasoning becomes critique data, and how many candidates a row shows."""

    judge: str | None = None
    """The judge whose critiques are used; by default the only listwise or pointwise LLM judge, else the verifier."""
    max_candidates: PositiveInt = 4
    """Most candidates a row shows (a listwise judge's rows show all it saw)."""
    min_candidates: PositiveInt = 2

    def __post_init__(self) -> None:
        check_fields(self)
        if self.min_candidates > self.max_candidates:
            raise ConfigError("min_candidates", f"must be at most max_candidates ({self.max_candidates}), "
                              f"got {self.min_candidates}")


@dataclass(frozen=True, slots=True)
class CritiqueTemplate:
    instruction: str
    problem: str
    candidate: str
    answer_correct: str
    answer_wrong: str
    answer_missing: str
    tests_pass: str
    correct: str
    wrong: str
    pointwise: str
    best_one: str
    best_many: str
    none_correct: str
    label_sep: str
    label_last: str


TEMPLATES: dict[str, CritiqueTemplate] = {
    "en": CritiqueTemplate(
        instruction=(
            "Below are a problem and {n} candidate answers. Judge each candidate: say whether it is "
            "correct and why. Then name the best candidate."
        ),
        problem="Problem:\n{question}",
        candidate="Candidate {label}:\n{text}",
        answer_correct="Candidate {label} gives the final answer {answer}, which equals the correct answer "
        "{reference}, so it is correct.",
        answer_wrong="Candidate {label} gives the final answer {answer}, but the correct answer is {reference}, "
        "so it is wrong.",
        answer_missing="Candidate {label} gives no clear final answer (the correct answer is {reference}), "
        "so it is wrong.",
        tests_pass="Candidate {label} passes all the tests, so it is correct.",
        correct="Candidate {label} is correct.",
        wrong="Candidate {label} is wrong: {why}",
        pointwise="Candidate {label}: {critique}\nScore: {score}",
        best_one="Conclusion: the best answer is Candidate {label}.",
        best_many="Conclusion: the best answers are Candidates {labels}.",
        none_correct="Conclusion: none of the candidates is correct.",
        label_sep=", ",
        label_last=" and ",
    ),
    "zh": CritiqueTemplate(
        instruction="下面是一道题目和 {n} 个候选答案。请逐一评判每个候选答案是否正确，并说明理由；最后指出最好的候选答案。",
        problem="题目：\n{question}",
        candidate="候选答案 {label}：\n{text}",
        answer_correct="候选答案 {label} 的最终答案是 {answer}，与正确答案 {reference} 相同，因此正确。",
        answer_wrong="候选答案 {label} 的最终答案是 {answer}，但正确答案是 {reference}，因此错误。",
        answer_missing="候选答案 {label} 没有给出明确的最终答案（正确答案是 {reference}），因此错误。",
        tests_pass="候选答案 {label} 通过了全部测试，因此正确。",
        correct="候选答案 {label} 是正确的。",
        wrong="候选答案 {label} 是错误的：{why}",
        pointwise="候选答案 {label}：{critique}\n得分：{score}",
        best_one="结论：最好的答案是候选答案 {label}。",
        best_many="结论：最好的答案是候选答案 {labels}。",
        none_correct="结论：没有一个候选答案是正确的。",
        label_sep="、",
        label_last="和",
    ),
}
"""Critique templates by `export.language`."""

_WHY_CHARS = 600
"""A verifier's failure detail (failing test, stderr tail) is cut to this many characters."""


def resolve_critique_judge(judges: Mapping[str, JudgeInfo], name: str | None) -> str:
    """The judge whose reasoning the rows teach: named, or the only LLM judge, or the only verifier.

    Every refusal names its cause (which judges there are, of what kind, and
    why one is unusable: all its verdicts failed, with the first error) and
    what fixes it (`--critique-judge NAME`, recipe key `export.args.critique.judge`).
    """
    key = "export.args.critique.judge"
    listing = ", ".join(j.describe() for j in judges.values()) or "none"
    if name is not None:
        if name not in judges:
            raise ConfigError(key, f"no verdicts from judge {name!r} in this round (judges: {listing})")
        if not judges[name].usable:
            raise ConfigError(key, f"judge {judges[name].describe()}: no critique to build rows from; "
                              f"name another judge with {CRITIQUE_JUDGE_FLAG}")
        return name
    for kinds in (("listwise", "llm"), ("verifier",)):
        fitting = sorted(j.name for j in judges.values() if j.kind in kinds and j.usable)
        if len(fitting) == 1:
            return fitting[0]
        if len(fitting) > 1:
            raise ConfigError(
                key,
                f"several judges could write the critiques ({', '.join(fitting)}); "
                f"choose one with {CRITIQUE_JUDGE_FLAG} (or set {key} in the recipe)",
            )
    failed = [j for j in judges.values() if j.kind in ("listwise", "llm", "pairwise", "verifier") and not j.usable]
    if failed:
        raise ConfigError(
            key,
            "no judge that writes critiques has a usable verdict this round: "
            + "; ".join(j.describe() for j in failed)
            + f". Fix or rerun that judge, or name another one with {CRITIQUE_JUDGE_FLAG} (judges: {listing})",
        )
    raise ConfigError(
        key,
        "critique export needs an LLM judge's critiques or a verifier's findings; "
        f"judges in this round: {listing}",
    )


def _join_labels(labels: list[str], t: CritiqueTemplate) -> str:
    if len(labels) == 1:
        return labels[0]
    return t.label_sep.join(labels[:-1]) + t.label_last + labels[-1]


def _fmt_score(s: float) -> str:
    return f"{s:g}"


class CritiqueBuilder:
    """Builds one critique-SFT row per prompt; counts prompts without a row by reason."""

    def __init__(self, judge: JudgeInfo, options: CritiqueOptions, language: str, seed: int):
        if language not in TEMPLATES and language != "auto":
            raise ConfigError("export.language", f"{language!r} is not one of auto, {', '.join(TEMPLATES)}")
        self.judge = judge
        self.options = options
        self.language = language
        self.seed = seed
        self.dropped: Counter[str] = Counter()
        self.languages: Counter[str] = Counter()
        """Rows built, by the language they are written in."""

    def language_of(self, prompt: Prompt) -> str:
        """The language of a row built from thresher's own templates: `export.language`, or the prompt's (auto)."""
        return language_for(self.language, prompt)

    def row(self, group: PromptGroup, selection: Selection) -> dict[str, Any] | None:
        """The row for this prompt, or None (and a counted reason)."""
        kind = self.judge.kind
        built = self._listwise(group) if kind == "listwise" else self._shown(group, selection)
        if isinstance(built, str):
            self.dropped[built] += 1
            return None
        shown, labels = built
        language = self.language_of(group.prompt)
        if len(shown) < self.options.min_candidates:
            self.dropped["too_few_candidates"] += 1
            return None
        if kind == "listwise":
            verdicts = [group.verdict(c.id, self.judge.name) for c in shown]
            reasoning = next((v.critique for v in verdicts if v is not None and v.critique), None)
            if not reasoning:
                self.dropped["no_critique"] += 1
                return None
            best = [c for c, v in zip(shown, verdicts, strict=True) if v is not None and v.metadata.get("chosen")]
            if not best:
                ranked = [(judge_score(v), c) for c, v in zip(shown, verdicts, strict=True)]
                ranked = [(s, c) for s, c in ranked if s is not None]
                best = [max(ranked, key=lambda sc: sc[0])[1]] if ranked else []
            answer = reasoning.strip()
        elif kind == "verifier":
            answer, best = self._verifier_text(group, selection, shown, labels)
        else:
            answer, best = self._pointwise_text(group, shown, labels)
        if self._contradicts_verifier(group, shown, best):
            self.dropped["judge_contradicts_verifier"] += 1
            return None
        if kind == "listwise":
            asked = self._asked(group, shown)
            language = asked.get("language") if asked.get("language") in LANGUAGES else language
            request = listwise_request(
                group.prompt, [c.text for c in shown], language, bool(asked.get("with_reference", True))  # type: ignore[arg-type]
            )
            if "request" in asked and prompt_digest(request) != asked["request"]:
                self.dropped["judge_request_mismatch"] += 1
                return None
            user = request[-1]["content"]
        else:
            t = TEMPLATES[language]
            parts = [t.instruction.format(n=len(shown)), t.problem.format(question=group.prompt.question)]
            parts += [t.candidate.format(label=lab, text=c.text) for c, lab in zip(shown, labels, strict=True)]
            user = "\n\n".join(parts)
        self.languages[language] += 1
        return {
            "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
            "order": [c.id for c in shown],
            "candidate_labels": labels,
            "models": [c.model for c in shown],
            "best": [c.id for c in best],
            "prompt_id": group.prompt.id,
            "task": group.prompt.task,
            "judge": self.judge.name,
            "judge_kind": kind,
            "language": language,
        }

    def _asked(self, group: PromptGroup, shown: list[Candidate]) -> dict[str, Any]:
        """How the listwise judge was asked about this prompt, as its verdicts record it."""
        for c in shown:
            v = group.verdict(c.id, self.judge.name)
            if v is not None and v.error is None and "language" in v.metadata:
                return v.metadata
        return {}

    # which candidates a row shows ------------------------------------------------------
    def _listwise(self, group: PromptGroup) -> tuple[list[Candidate], list[str]] | str:
        """The candidates the judge saw, in its order, numbered as it numbered them (1..N)."""
        seen = []
        by_id = {}
        for i, c in enumerate(group.candidates):
            v = group.verdict(c.id, self.judge.name)
            if v is None:
                continue
            if v.error is not None:
                return "judge_failed"
            by_id[c.id] = c
            pos = v.metadata.get("position")
            seen.append((pos if isinstance(pos, int) and not isinstance(pos, bool) else i, i, c))
        shown_ids = None
        for c in by_id.values():
            meta = group.verdicts[c.id][self.judge.name].metadata
            if isinstance(meta.get("shown"), list):
                shown_ids = meta["shown"]
                break
        if shown_ids is not None:
            if not all(cid in by_id for cid in shown_ids):
                return "judged_candidate_missing"  # a candidate it saw is gone: its numbers would not match
            ordered = [by_id[cid] for cid in shown_ids]
        else:
            ordered = [c for _, _, c in sorted(seen, key=lambda x: (x[0], x[1]))]
        return ordered, [str(k + 1) for k in range(len(ordered))]

    def _shown(self, group: PromptGroup, selection: Selection) -> tuple[list[Candidate], list[str]] | str:
        usable = []
        failed = 0
        for c in group.candidates:
            v = group.verdict(c.id, self.judge.name)
            if v is None:
                continue
            if v.error is not None:
                failed += 1
                continue
            if self.judge.kind == "verifier" and v.correct is None:
                continue
            if self.judge.kind != "verifier" and judge_score(v) is None:
                continue
            usable.append(c)
        if not usable:
            return "judge_failed" if failed else "no_verdicts"
        rng = prompt_rng(self.seed, group.prompt.id, "critique")
        pool = sorted(usable, key=lambda c: tie_key(self.seed, c.id))
        rng.shuffle(pool)
        cap = self.options.max_candidates
        picked: list[Candidate] = []
        if self.judge.kind == "verifier":
            # show the policy's choice, and both a right and a wrong answer where there are some
            kept_ids = [k.candidate.id for k in selection.kept]
            first = [c for c in pool if c.id in kept_ids[:1]]
            right = [c for c in pool if group.verdict(c.id, self.judge.name).correct]  # type: ignore[union-attr]
            wrong = [c for c in pool if not group.verdict(c.id, self.judge.name).correct]  # type: ignore[union-attr]
            for c in first + right[:1] + wrong[:1] + pool:
                if c not in picked and len(picked) < cap:
                    picked.append(c)
        else:
            picked = pool[:cap]
        rng.shuffle(picked)
        return picked, [str(i + 1) for i in range(len(picked))]

    # what the assistant says -------------------------------------------------------------
    def _verifier_text(
        self, group: PromptGroup, selection: Selection, shown: list[Candidate], labels: list[str]
    ) -> tuple[str, list[Candidate]]:
        t = TEMPLATES[self.language_of(group.prompt)]
        ref = group.prompt.reference
        lines = []
        right = []
        for c, lab in zip(shown, labels, strict=True):
            v: Verdict = group.verdict(c.id, self.judge.name)  # type: ignore[assignment]
            answer = v.metadata.get("answer")
            if v.correct:
                right.append(c)
                if ref is not None and answer is not None:
                    lines.append(t.answer_correct.format(label=lab, answer=answer, reference=ref))
                elif group.prompt.tests:
                    lines.append(t.tests_pass.format(label=lab))
                else:
                    lines.append(t.correct.format(label=lab))
            elif ref is not None and answer is not None:
                lines.append(t.answer_wrong.format(label=lab, answer=answer, reference=ref))
            elif ref is not None and not group.prompt.tests:
                lines.append(t.answer_missing.format(label=lab, reference=ref))
            else:
                why = (v.critique or "").strip()
                why = why if len(why) <= _WHY_CHARS else why[:_WHY_CHARS] + " ..."
                lines.append(t.wrong.format(label=lab, why=why or "-"))
        if not right:
            return "\n".join(lines) + "\n\n" + t.none_correct, []
        kept = [k.candidate.id for k in selection.kept]
        by_policy = sorted(right, key=lambda c: (kept.index(c.id) if c.id in kept else len(kept),
                                                  -selection.scores.get(c.id, 0.0), tie_key(self.seed, c.id)))
        best = by_policy[0]
        label = labels[shown.index(best)]
        return "\n".join(lines) + "\n\n" + t.best_one.format(label=label), [best]

    def _pointwise_text(
        self, group: PromptGroup, shown: list[Candidate], labels: list[str]
    ) -> tuple[str, list[Candidate]]:
        t = TEMPLATES[self.language_of(group.prompt)]
        blocks = []
        scores = []
        for c, lab in zip(shown, labels, strict=True):
            v: Verdict = group.verdict(c.id, self.judge.name)  # type: ignore[assignment]
            s = judge_score(v)
            scores.append(s)
            blocks.append(t.pointwise.format(label=lab, critique=(v.critique or "").strip(), score=_fmt_score(s)))  # type: ignore[arg-type]
        top = max(scores)  # type: ignore[type-var]
        best = [c for c, s in zip(shown, scores, strict=True) if s == top]
        best_labels = [labels[shown.index(c)] for c in best]
        if len(best) == 1:
            conclusion = t.best_one.format(label=best_labels[0])
        else:
            conclusion = t.best_many.format(labels=_join_labels(best_labels, t))
        return "\n\n".join(blocks) + "\n\n" + conclusion, best

    def _contradicts_verifier(self, group: PromptGroup, shown: list[Candidate], best: list[Candidate]) -> bool:
        """True when a named-best answer failed a verifier that passed another shown answer."""
        if self.judge.kind == "verifier":
            return False
        for c in best:
            for j, ok in group.verifier_results(c.id).items():
                if ok is False and any(group.verifier_results(o.id).get(j) is True for o in shown if o is not c):
                    return True
        return False
