"""What an input *is*, for fingerprints: a model's checkpoint, a prompt set, a file of records.

A fingerprint that records only a model's path would reuse old candidates
after the directory was trained again; one that hashes every weight byte
would make a 70B rerun read 140 GB to decide to skip. These functions take
the cheap identity that still changes when the content does:

- a local directory (a checkpoint, a model thresher trained): the names,
  sizes and modification times of its weight, config and tokenizer files,
  plus the text of its config, so training it again gives a new identity;
- a hub id: the id and revision (plus the cached snapshot's commit when
  the hub cache has one); a served model: URL and name;
- prompts: their ids and contents; a records file: its bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from thresher.config import is_local_path
from thresher.records import Prompt
from thresher.runner import digest, file_digest, stage_fingerprint

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf", ".json", ".model", ".txt", ".jinja")


def model_identity(path: str, revision: str | None = None, base_url: str | None = None) -> dict[str, Any]:
    """A JSON-able identity of the model at `path` that changes when its weights do."""
    if base_url:
        return {"served": base_url, "model": path}
    expanded = Path(os.path.expanduser(str(path)))
    if is_local_path(str(path)) or expanded.is_dir():
        return {"dir": str(expanded.resolve()), "checkpoint": checkpoint_hash(expanded)}
    out: dict[str, Any] = {"hub": str(path), "revision": revision}
    commit = _cached_commit(str(path), revision)
    if commit:
        out["commit"] = commit
    return out


def checkpoint_hash(directory: Path) -> str | None:
    """A hash of the stats of a checkpoint directory's weight, config and tokenizer files."""
    if not directory.is_dir():
        return None
    stats = []
    for f in sorted(directory.rglob("*")):
        inner = f.relative_to(directory).parts
        if f.is_file() and f.suffix in _WEIGHT_SUFFIXES and "checkpoints" not in inner and ".stages" not in inner:
            st = f.stat()
            stats.append([str(f.relative_to(directory)), st.st_size, st.st_mtime_ns])
    config = directory / "config.json"
    return digest([stats, config.read_text(encoding="utf-8", errors="replace") if config.is_file() else None])


def _cached_commit(repo: str, revision: str | None) -> str | None:
    """The commit of a hub model's cached snapshot, when the local hub cache has one."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo, "config.json", revision=revision)
    except Exception:  # noqa: BLE001 - an odd repo id is simply "not cached"
        return None
    if isinstance(found, str):
        parts = Path(found).parts
        if "snapshots" in parts:
            return parts[parts.index("snapshots") + 1]
    return None


def prompts_identity(prompts: Sequence[Prompt]) -> dict[str, Any]:
    """The prompt set: how many, and a hash of every prompt's id and content."""
    from thresher.records import record_to_dict

    return {"count": len(prompts), "hash": digest([record_to_dict(p) for p in prompts])}


def records_identity(path: str | Path, stage_marker: Path | None = None) -> dict[str, Any]:
    """A records file or shard directory: the producing stage's fingerprint when known, else its bytes."""
    if stage_marker is not None:
        fp = stage_fingerprint(stage_marker)
        if fp:
            return {"stage": fp}
    p = Path(path)
    if not p.exists():
        return {"missing": str(p)}
    return {"bytes": file_digest(p)}


def plain(value: Any) -> Any:
    """A config value as plain JSON data (dataclasses, Paths and tuples flattened)."""
    from thresher.typed import to_data

    return json.loads(json.dumps(to_data(value), default=str))
