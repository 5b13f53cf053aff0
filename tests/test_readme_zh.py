"""README_zh.md says everything README.md says: the same sections, tables, commands and numbers."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)*")


def _read(name: str) -> str:
    return (REPO / name).read_text(encoding="utf-8")


def _prose(text: str) -> str:
    return _FENCE.sub("", text)


def headings(text: str) -> list[int]:
    """The level of every markdown heading outside code blocks, in order."""
    return [len(m.group(1)) for m in re.finditer(r"^(#+) ", _prose(text), re.MULTILINE)]


def tables(text: str) -> list[int]:
    """Rows of each markdown table, in order."""
    out, rows = [], 0
    for line in _prose(text).splitlines():
        if line.startswith("|"):
            rows += 1
        elif rows:
            out.append(rows)
            rows = 0
    return out + ([rows] if rows else [])


def numbers(text: str) -> Counter[str]:
    """Every number in the text (code included), thousands separators dropped."""
    return Counter(n.replace(",", "") for n in _NUMBER.findall(text))


def commands(text: str) -> list[str]:
    """Every command line in a code block (fenced, or indented by four spaces), comments dropped."""
    code = "\n".join(_FENCE.findall(text)) + "\n" + "\n".join(
        ln for ln in _prose(text).splitlines() if ln.startswith("    ")
    )
    lines = [ln.strip() for ln in code.splitlines() if ln.strip().startswith(("thresher ", "bash ", ".venv/", "python "))]
    return [re.sub(r"\s+#.*$", "", ln) for ln in lines]


def test_the_chinese_readme_has_the_same_sections_tables_commands_and_numbers():
    en, zh = _read("README.md"), _read("README_zh.md")
    assert headings(zh) == headings(en)
    assert tables(zh) == tables(en)
    assert commands(zh) == commands(en)
    missing, extra = numbers(en) - numbers(zh), numbers(zh) - numbers(en)
    assert not missing and not extra, f"numbers only in README.md: {dict(missing)}; only in README_zh.md: {dict(extra)}"
    assert "README_zh.md" in en and "README.md" in zh


def test_the_helpers_see_what_differs():
    assert headings("# a\n```\n# not a heading\n```\n## b\n") == [1, 2]
    assert tables("| a |\n|---|\n| 1 |\n\ntext\n| b |\n") == [3, 1]
    assert numbers("2,000 rows, 1.5x, 3") == Counter({"2000": 1, "1.5": 1, "3": 1})
