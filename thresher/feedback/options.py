"""`export.args`: the typed options of the export stage, parsed once with key-path errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from thresher.feedback.contamination import ContaminationConfig
from thresher.feedback.critique import CritiqueOptions
from thresher.feedback.dedup import DedupConfig
from thresher.feedback.dpo import DpoOptions
from thresher.feedback.filters import FilterConfig
from thresher.feedback.mixing import MixConfig
from thresher.typed import from_data

if TYPE_CHECKING:  # config builds ExportOptions while it is being imported
    from thresher.config import ExportConfig


@dataclass(slots=True)
class ExportOptions:
    filters: FilterConfig = field(default_factory=FilterConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    dpo: DpoOptions = field(default_factory=DpoOptions)
    critique: CritiqueOptions = field(default_factory=CritiqueOptions)
    mix: list[MixConfig] = field(default_factory=list)
    contamination: ContaminationConfig = field(default_factory=ContaminationConfig)
    """How rows are checked against the round's eval prompts."""
    bucket_mb: float = 32.0
    """Input megabytes grouped in memory at a time; peak memory grows with it."""


def parse_export_options(data: Any) -> ExportOptions:
    """`export.args` parsed into ExportOptions; a wrong key or type fails naming `args.<key>`."""
    return from_data(ExportOptions, {} if data is None else data, "args")


def export_options(export: ExportConfig) -> ExportOptions:
    """The export options of a config (parsed when the config was made)."""
    return export.args
