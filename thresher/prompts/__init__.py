"""Where prompts come from: built-in suites, a user's JSONL or Hugging Face dataset.

`load_prompts(source)` turns a recipe's `PromptSource` into Prompt records;
`SOURCES` is the explicit registry of source kinds.
"""

from __future__ import annotations

from thresher.prompts.sources import SOURCES, load_prompts

__all__ = ["SOURCES", "load_prompts"]
