"""Cheap filters for generated instructions, each giving the reason it rejected a text.

A synthesized prompt set is only as good as what was thrown away. These are
the heuristic filters the Self-Instruct and Magpie papers apply before any
model-based judgment: length bounds, tasks a text model cannot do (look at an
image, open a file), replies written in the assistant's voice instead of the
user's, degenerate repetition, and text that is mostly symbols (noisy OCR, a
broken model). Each returns a short reason string, so a generation run can
report how many texts each filter removed instead of a bare "kept 312".
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from thresher.errors import ConfigError
from thresher.prompts.rouge import Granularity, tokenize
from thresher.typed import Fraction, NonNegativeInt, PositiveInt, check_fields

_MEDIA_EN = re.compile(
    r"\b(images?|pictures?|photos?|photographs?|graphs?|plots?|draw|drawing|diagrams?|flowcharts?|"
    r"videos?|audio|music|recordings?|attachments?|attached|uploaded|screenshots?|pdfs?|spreadsheets?|urls?|"
    r"(a|the) map|(the|this|these|following) files?|go to)\b",
    re.IGNORECASE,
)
"""Self-Instruct's list (image, graph, picture, file, map, draw, plot, go to, video, audio, music,
flowchart, diagram) and the same family: things a text-only model cannot see, hear or open. Bare
"file" and "map" are narrowed ("the file", "a map") so "file a claim" or "map out a plan" pass."""

_MEDIA_ZH = re.compile(r"图片|图像|照片|图表|示意图|流程图|画一|画出|绘制|地图|视频|音频|音乐|录音|附件|上传|截图|链接|网址")
"""The same for Chinese; 文件 (also "document", common in law and finance) is left alone."""

_ASSISTANT_OPENERS = re.compile(
    r"^\s*(sure|certainly|of course|absolutely|great question|i'?m sorry|i am sorry|i apologi[sz]e|as an ai|"
    r"i can(not|'t) |here is|here's|好的|当然|没问题|抱歉|对不起|作为一个?(ai|人工智能)|以下是)",
    re.IGNORECASE,
)
"""How answers start, not questions: a model asked to write the user's turn sometimes answers instead."""

_LETTER = re.compile(r"[^\W\d_]")


@dataclass(slots=True)
class TextFilter:
    """Which heuristic filters to apply to a generated instruction, and their bounds."""

    min_words: NonNegativeInt = 3
    """Fewer ROUGE tokens (words; jieba words for Chinese) than this is too short to be a task."""
    max_words: PositiveInt = 150
    """More tokens than this is a document, not an instruction."""
    text_only: bool = True
    """Reject tasks that need images, audio, files or the web."""
    user_voice: bool = True
    """Reject texts that open like an assistant's answer ("Sure, here is...")."""
    max_repeat: Fraction = 0.5
    """Reject when more than this fraction of word 3-grams are repeats (a generation stuck in a loop)."""
    min_letters: Fraction = 0.5
    """Reject when fewer than this fraction of non-space characters are letters (symbols, mojibake)."""
    granularity: Granularity = "auto"

    def __post_init__(self) -> None:
        check_fields(self)
        if self.min_words > self.max_words:
            raise ConfigError("min_words", f"must be at most max_words ({self.max_words}), got {self.min_words}")

    def reason(self, text: str) -> str | None:
        """Why `text` is rejected ("too_short", "needs_media", ...), or None to keep it."""
        stripped = text.strip()
        if not stripped:
            return "empty"
        chars = [c for c in stripped if not c.isspace()]
        if sum(1 for c in chars if _LETTER.match(c)) < self.min_letters * len(chars):
            return "not_text"
        tokens = tokenize(stripped, self.granularity)
        if len(tokens) < self.min_words:
            return "too_short"
        if len(tokens) > self.max_words:
            return "too_long"
        if self.text_only and (_MEDIA_EN.search(stripped) or _MEDIA_ZH.search(stripped)):
            return "needs_media"
        if self.user_voice and _ASSISTANT_OPENERS.match(stripped):
            return "assistant_voice"
        if repeat_fraction(tokens) > self.max_repeat:
            return "repetitive"
        return None


def repeat_fraction(tokens: list[str], n: int = 3) -> float:
    """Fraction of a text's word n-grams that repeat an earlier one (0 for short texts)."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if len(grams) < 4:
        return 0.0
    counts = Counter(grams)
    return sum(c - 1 for c in counts.values()) / len(grams)


def normalize(text: str) -> str:
    """Lowercased, whitespace-collapsed, punctuation-free form for exact-duplicate checks."""
    return " ".join(tokenize(text, "char"))
