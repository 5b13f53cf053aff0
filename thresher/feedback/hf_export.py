"""A round's exports as a Hugging Face dataset: Parquet with a dataset card, `save_to_disk`, the Hub.

The JSONL exports already load with `load_dataset("json", ...)`; this module
gives them the form people publish and share datasets in:

- `write_parquet(round_dir, out)`: the Hub layout, `sft/train-*.parquet`
  (SFT and critique-SFT rows together, one schema, `metadata.kind` tells them
  apart), `dpo/train-*.parquet`, and a `README.md` whose YAML header names
  the configs, so `load_dataset(out, "sft")` works on the folder and on the
  Hub alike;
- `save_to_disk(round_dir, out)`: a `DatasetDict` with an `sft` and a `dpo`
  entry for `datasets.load_from_disk`, with the same card;
- `push_to_hub(round_dir, repo)`: the Parquet layout uploaded to a Hub
  dataset repository, or copied to a local folder when `repo` is a path
  (`./dir`, `/abs/dir`, `file://dir`), which is how it is tested offline.

The card says what was sampled from which models, the judges and their
errors, the selection policy, row counts, every drop reason and the recipe.
Columns are cast to fixed `datasets.Features` (`rows.py`), so a null never
changes a column's type between rounds or shards.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from thresher.errors import UserError
from thresher.feedback.decisions import DECISIONS_FILE
from thresher.feedback.rows import dpo_features, sft_features
from thresher.runner import stage_summary
from thresher.store import RoundDir

CARD = "README.md"


def _nonempty(paths: list[Path]) -> list[Path]:
    return [p for p in paths if p.is_file() and p.stat().st_size > 0]


def _load(files: list[Path], features: Any, cache_dir: Path) -> Any:
    """One `datasets.Dataset` of JSONL files cast to `features`; a row in another schema is a UserError."""
    from datasets import load_dataset
    from datasets.exceptions import DatasetGenerationError

    try:
        return load_dataset(
            "json", data_files=[str(f) for f in files], features=features, split="train", cache_dir=str(cache_dir)
        )
    except DatasetGenerationError as e:  # it wraps the cast error; name the files and the way out
        cause = e.__cause__ or e
        raise UserError(
            f"{', '.join(str(f) for f in files)}: rows do not fit the export schema ({str(cause).splitlines()[0][:200]}); "
            "export the round again with `thresher export --force`"
        ) from None


def round_datasets(round_dir: str | Path, cache_dir: str | Path) -> dict[str, Any]:
    """The round's exports as datasets: "sft" (SFT + critique-SFT rows) and "dpo", whichever have rows."""
    rd = RoundDir(Path(round_dir))
    out: dict[str, Any] = {}
    sft_files = _nonempty([rd.sft, rd.critique_sft])
    if sft_files:
        out["sft"] = _load(sft_files, sft_features(), Path(cache_dir))
    dpo_files = _nonempty([rd.dpo])
    if dpo_files:
        out["dpo"] = _load(dpo_files, dpo_features(), Path(cache_dir))
    if not out:
        raise UserError(f"{rd.path}: no exported rows to convert (run `thresher export` first)")
    return out


# the dataset card ------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("-" if v is None else str(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"


def decision_counts(round_dir: str | Path) -> Counter[str]:
    """Candidates by decision reason ("kept" for kept ones), from `export_decisions.jsonl`."""
    path = Path(round_dir) / DECISIONS_FILE
    counts: Counter[str] = Counter()
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    d = json.loads(line)
                    counts[d["reason"] or "kept"] += 1
    return counts


def dataset_card(round_dir: str | Path, configs: dict[str, int], layout: str = "parquet") -> str:
    """The README.md of an exported round: YAML header for the Hub, then what the data is and how it was made."""
    rd = RoundDir(Path(round_dir))
    run_dir = rd.path.parent
    recipe_text = (run_dir / "recipe.yaml").read_text(encoding="utf-8") if (run_dir / "recipe.yaml").is_file() else ""
    recipe = yaml.safe_load(recipe_text) if recipe_text else {}
    recipe = recipe if isinstance(recipe, dict) else {}
    export = stage_summary(rd.marker("export")) or {}
    sampled = stage_summary(rd.marker("sample")) or {}

    header: dict[str, Any] = {"tags": ["thresher", "synthetic", "rejection-sampling"],
                              "task_categories": ["text-generation"]}
    if layout == "parquet":
        header["configs"] = [
            {"config_name": name, "data_files": [{"split": "train", "path": f"{name}/*.parquet"}],
             **({"default": True} if i == 0 else {})}
            for i, name in enumerate(configs)
        ]
    name = recipe.get("name") or run_dir.name
    parts = [f"---\n{yaml.safe_dump(header, sort_keys=False).strip()}\n---\n",
             f"# {name}, round {rd.index}: {_CARD_TITLE}\n",
             ("Candidate answers were sampled from several models, scored by judges, and the ones the "
              "selection policy kept became SFT rows; critique-SFT rows teach a model the judges' reasoning, "
              "and DPO rows pair a better answer with a worse one.\n")]

    parts.append("## How to load\n")
    if layout == "parquet":
        parts.append("```python\nfrom datasets import load_dataset\n\n"
                     + "\n".join(f'{n} = load_dataset("REPO_OR_FOLDER", "{n}", split="train")' for n in configs)
                     + "\n```\n")
    else:
        parts.append("```python\nfrom datasets import load_from_disk\n\nds = load_from_disk(\"FOLDER\")\n"
                     + "\n".join(f'{n} = ds["{n}"]' for n in configs) + "\n```\n")
    parts.append(_table(["config", "rows", "columns"], [
        [n, rows, "messages, metadata" if n == "sft" else "prompt, chosen, rejected, scores, margin, rule, models, metadata"]
        for n, rows in configs.items()
    ]) + "\n")
    parts.append("`sft` holds SFT rows (`metadata.kind` \"sft\") and critique-SFT rows (\"critique_sft\") in one "
                 "schema, so TRL's `SFTTrainer` reads it as it is; `metadata` carries the prompt id, task, policy, "
                 "the judge that chose the row, the candidates it is made of with their models, and every judge "
                 "score on them.\n")

    models = recipe.get("models") or []
    per_model = sampled.get("models", {})
    parts.append("## What was sampled\n")
    parts.append(_table(["model", "role", "path", "backend", "answers per prompt", "candidates", "truncated"], [
        [m.get("name"), m.get("role"), f"`{m.get('path')}`", m.get("backend"), m.get("n"),
         per_model.get(m.get("name"), {}).get("candidates"), per_model.get(m.get("name"), {}).get("truncated")]
        for m in models
    ]) + "\n")
    if sampled:
        parts.append(f"{sampled.get('candidates')} candidates for {sampled.get('prompts')} prompts.\n")

    judges = (export.get("verdicts") or {}).get("judges", {})
    parts.append("## Judges\n")
    parts.append(_table(["judge", "kind", "verdicts", "errors"], [
        [n, j.get("kind"), j.get("verdicts"), j.get("errors")] for n, j in sorted(judges.items())
    ]) + "\n")

    selection = recipe.get("selection") or {}
    parts.append("## Selection\n")
    parts.append(f"Policy `{export.get('policy') or selection.get('policy')}` with arguments "
                 f"`{json.dumps(selection.get('args') or {}, sort_keys=True)}`; seed {export.get('seed')}.\n")

    parts.append("## Counts and drop reasons\n")
    if export:
        no_pass = export.get("no_pass") or {}
        parts.append(f"- prompts: {export.get('prompts')}, of which {export.get('prompts_passed')} kept at least one "
                     f"answer; {no_pass.get('count', 0)} kept none ({_reasons(no_pass.get('reasons') or {})})")
        cands = export.get("candidates") or {}
        parts.append(f"- candidates read: {cands.get('read')}; removed by filters: {_reasons(cands.get('filtered') or {})}")
        for kind, e in sorted((export.get("exports") or {}).items()):
            parts.append(f"- {kind}: {e.get('rows')} rows; dropped: {_reasons(e.get('dropped') or {})}")
    per_candidate = decision_counts(rd.path)
    if per_candidate:
        parts.append(f"- every candidate, by decision: {_reasons(dict(per_candidate))}")
    parts.append("")
    if recipe_text:
        parts.append("## Recipe\n")
        parts.append("```yaml\n" + recipe_text.rstrip() + "\n```\n")
    return "\n".join(parts)


# writers ---------------------------------------------------------------------------------

_CARD_TITLE = "training data selected by thresher"


def _check_target(out: Path) -> None:
    """Refuse to overwrite a folder that is neither empty nor an earlier export (its files would be replaced)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    card = out / CARD
    ours = card.is_file() and _CARD_TITLE in card.read_text(encoding="utf-8", errors="replace")
    if any(out.iterdir()) and not ours:
        raise UserError(f"{out}: not empty and not an earlier thresher export; choose a new or empty folder")


def write_parquet(round_dir: str | Path, out: str | Path) -> dict[str, int]:
    """Write the Hub layout (`<config>/train-00000-of-00001.parquet` and README.md) to `out`; rows per config."""
    out = Path(out)
    _check_target(out)
    with tempfile.TemporaryDirectory(prefix="thresher-hf-") as cache:
        data = round_datasets(round_dir, cache)
        out.mkdir(parents=True, exist_ok=True)
        counts = {}
        for name, ds in data.items():
            folder = out / name
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            ds.to_parquet(str(folder / "train-00000-of-00001.parquet"))
            counts[name] = len(ds)
    (out / CARD).write_text(dataset_card(round_dir, counts, "parquet"), encoding="utf-8")
    return counts


def save_to_disk(round_dir: str | Path, out: str | Path) -> dict[str, int]:
    """Write a `DatasetDict` ("sft", "dpo") for `datasets.load_from_disk`, with the dataset card beside it."""
    from datasets import DatasetDict

    out = Path(out)
    _check_target(out)
    with tempfile.TemporaryDirectory(prefix="thresher-hf-") as cache:
        data = DatasetDict(round_datasets(round_dir, cache))
        if out.exists():
            shutil.rmtree(out)
        data.save_to_disk(str(out))
        counts = {name: len(ds) for name, ds in data.items()}
    (out / CARD).write_text(dataset_card(round_dir, counts, "disk"), encoding="utf-8")
    return counts


def local_target(repo: str) -> Path | None:
    """The folder a `--push-to-hub` target names, or None for a Hub repository id (`user/name`)."""
    if repo.startswith("file://"):
        return Path(repo[len("file://"):]).expanduser()
    if repo.startswith(("/", "./", "../", "~")):
        return Path(repo).expanduser()
    return None


def push_to_hub(round_dir: str | Path, repo: str, private: bool = False) -> str:
    """Upload the Parquet layout to the Hub dataset repo `repo` (or copy it to a local folder); returns where."""
    local = local_target(repo)
    if local is not None:
        write_parquet(round_dir, local)
        return str(local)
    if repo.count("/") != 1 or any(not part for part in repo.split("/")):
        raise UserError(f"--push-to-hub {repo!r}: expected a Hub dataset id 'user/name' or a local path (./dir)")
    from huggingface_hub import HfApi

    with tempfile.TemporaryDirectory(prefix="thresher-hub-") as staging:
        write_parquet(round_dir, staging)
        api = HfApi()
        try:
            api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
            api.upload_folder(repo_id=repo, repo_type="dataset", folder_path=staging,
                              commit_message=f"thresher export of {Path(round_dir).name}")
        except OSError as e:  # the Hub's HTTP, auth and connection errors: one line, not a traceback
            raise UserError(f"--push-to-hub {repo}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    return f"https://huggingface.co/datasets/{repo}"
