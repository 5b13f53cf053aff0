"""`evaluate` text metrics over greedy answers, loaded from a metric script (no hub access here)."""

from __future__ import annotations

import pytest

from thresher.errors import UserError
from thresher.eval.stage import _text_metrics
from thresher.records import Candidate, Prompt

pytestmark = pytest.mark.slow  # importing evaluate and datasets takes several seconds

SCRIPT = '''
import datasets
import evaluate


class ExactStrip(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="exact match after stripping whitespace", citation="", inputs_description="",
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references):
        hits = sum(p.strip() == r.strip() for p, r in zip(predictions, references))
        return {"exact_strip": hits / len(predictions)}
'''


def test_text_metrics_per_task(tmp_path):
    script = tmp_path / "exact_strip.py"
    script.write_text(SCRIPT, encoding="utf-8")
    prompts = [
        Prompt.create("qa", [{"role": "user", "content": q}], reference=r)
        for q, r in [("capital of France?", "Paris"), ("2+2?", "4"), ("colour of sky?", "blue")]
    ] + [Prompt.create("open", [{"role": "user", "content": "write a poem"}])]
    answers = ["Paris ", "5", "blue", "roses"]
    greedy = [[Candidate(p.id, "m", 0, a)] for p, a in zip(prompts, answers)]
    out = _text_metrics([str(script)], prompts, greedy)
    assert out == {"qa": {"exact_strip": pytest.approx(2 / 3)}}  # the task without references is left out


def test_unloadable_metric_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot load evaluate metric"):
        _text_metrics([str(tmp_path / "missing_metric.py")], [], [])
