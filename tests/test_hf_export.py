"""Hugging Face-native exports: one schema for SFT and critique rows, Parquet + card, save_to_disk, a local push."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_feedback import C, P, V, run_export, write_round

from thresher.cli import main
from thresher.config import dump_recipe, parse_recipe
from thresher.errors import UserError
from thresher.feedback import hf_export


def _round(root: Path) -> Path:
    """Six prompts; per prompt teacher 0 and student 1 right, the other two wrong; prompt 5 has no answers."""
    ps = [P(i, reference=str(2 * i)) for i in range(6)]
    cands, vs = [], []
    for i, p in enumerate(ps[:5]):
        for model in ("teacher", "student"):
            for k in range(2):
                right = (model == "teacher") == (k == 0)
                a = 2 * i if right else 2 * i + 1
                c = C(p, model, k, f"{model} {k}: {i}+{i} is \\boxed{{{a}}}")
                cands.append(c)
                vs.append(V(c, "math", float(right), right, f"extracted {a}", answer=str(a)))
                vs.append(V(c, "rm", 0.1 * k + (0.5 if model == "teacher" else 0.2)))
    rd = write_round(root, ps, cands, vs)
    recipe = parse_recipe({
        "name": "hf-check", "models": [{"name": "teacher", "path": "builtin:tiny-teacher", "role": "teacher", "n": 2},
                                       {"name": "student", "path": "builtin:tiny-student", "role": "student", "n": 2}],
        "judges": [{"type": "math"}, {"type": "loglik", "name": "rm", "args": {"model": "builtin:tiny-rm"}}],
        "selection": {"policy": "gated", "args": {"gate": "math", "judge": "rm"}},
        "export": {"sft": True, "critique": True, "dpo": "best_vs_worst"},
    }, check_files=False)
    dump_recipe(recipe, root / "recipe.yaml")
    return rd


@pytest.fixture()
def exported(tmp_path: Path) -> Path:
    rd = _round(tmp_path / "run")
    summary = run_export(rd, "gated", critique=True, dpo="best_vs_worst")
    assert {k: e["rows"] for k, e in summary["exports"].items()} == {"sft": 5, "critique_sft": 5, "dpo": 5}
    return rd


@pytest.mark.parametrize("policy", ["gated", "random"])
def test_sft_and_critique_rows_load_together_in_either_order(tmp_path, policy):
    from datasets import load_dataset

    rd = _round(tmp_path / "run")
    run_export(rd, policy, critique=True)
    files = [str(rd / "sft.jsonl"), str(rd / "critique_sft.jsonl")]
    for order in (files, files[::-1]):
        ds = load_dataset("json", data_files=order, split="train", cache_dir=str(tmp_path / f"cache-{order[0][-9:]}"))
        assert ds.column_names == ["messages", "metadata"]
        kinds = sorted(r["metadata"]["kind"] for r in ds)
        # gated keeps the right teacher answer, random one draw per prompt: 5 SFT rows either way
        assert kinds == ["critique_sft"] * 5 + ["sft"] * 5
    first = json.loads((rd / "sft.jsonl").read_text().splitlines()[0])["metadata"]
    assert first["judge"] == ("rm" if policy == "gated" else "random")
    assert first["judge_kind"] == ("reward" if policy == "gated" else "rule")
    # the random control keeps answers without a score, yet every judge's score is recorded
    assert {s["judge"] for s in first["scores"]} == {"math", "rm"}


def test_parquet_layout_loads_by_config_and_has_a_card(exported, tmp_path):
    from datasets import load_dataset

    counts = hf_export.write_parquet(exported, tmp_path / "hf")
    assert counts == {"sft": 10, "dpo": 5}
    sft = load_dataset(str(tmp_path / "hf"), "sft", split="train", cache_dir=str(tmp_path / "c1"))
    dpo = load_dataset(str(tmp_path / "hf"), "dpo", split="train", cache_dir=str(tmp_path / "c2"))
    assert len(sft) == 10 and len(dpo) == 5
    assert sorted(r["metadata"]["kind"] for r in sft).count("critique_sft") == 5
    assert all(r["margin"] > 0 and r["metadata"]["source"] == "selected" for r in dpo)
    card = (tmp_path / "hf" / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert [c["config_name"] for c in header["configs"]] == ["sft", "dpo"]
    for needle in ("| teacher | teacher | `builtin:tiny-teacher`", "| math | verifier | 20 | 0 |", "Policy `gated`",
                   "prompts: 6, of which 5 kept at least one answer; 1 kept none (no_candidates 1)",
                   "- sft: 5 rows", "every candidate, by decision: wrong 10, kept 5, outranked 5",
                   "## Recipe", "name: hf-check"):
        assert needle in card, needle


def test_save_to_disk_and_push_to_a_local_folder(exported, tmp_path):
    from datasets import load_dataset, load_from_disk

    assert hf_export.save_to_disk(exported, tmp_path / "disk") == {"sft": 10, "dpo": 5}
    ds = load_from_disk(str(tmp_path / "disk"))
    assert sorted(ds) == ["dpo", "sft"] and len(ds["sft"]) == 10
    assert "load_from_disk" in (tmp_path / "disk" / "README.md").read_text()

    where = hf_export.push_to_hub(exported, f"file://{tmp_path / 'hub'}")
    assert where == str(tmp_path / "hub")
    pushed = load_dataset(where, "sft", split="train", cache_dir=str(tmp_path / "c3"))
    assert len(pushed) == 10
    with pytest.raises(UserError, match="expected a Hub dataset id"):
        hf_export.push_to_hub(exported, "not-a-repo-id")
    # an export overwrites an earlier export, never a folder of other files
    assert hf_export.save_to_disk(exported, tmp_path / "disk") == {"sft": 10, "dpo": 5}
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not empty and not an earlier thresher export"):
        hf_export.push_to_hub(exported, str(tmp_path / "mine"))
    with pytest.raises(UserError, match="not empty and not an earlier thresher export"):
        hf_export.save_to_disk(exported, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_rows_in_another_schema_are_named(tmp_path):
    rd = tmp_path / "round_1"
    rd.mkdir()
    (rd / "sft.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "q"}], "task": "x"}) + "\n")
    with pytest.raises(UserError, match=r"sft.jsonl: rows do not fit the export schema.*--force"):
        hf_export.round_datasets(rd, tmp_path / "cache")
    (rd / "sft.jsonl").write_text("")
    with pytest.raises(UserError, match="no exported rows"):
        hf_export.round_datasets(rd, tmp_path / "cache")


def test_cli_flags(exported, tmp_path, capsys):
    run = exported.parent
    code = main(["export", "--run", str(run), "--round", "1", "--format", "parquet",
                 "--save-to-disk", str(tmp_path / "d"), "--push-to-hub", str(tmp_path / "hub")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"parquet: {exported / 'hf'} (sft 10 rows, dpo 5 rows)" in out
    assert (exported / "hf" / "sft" / "train-00000-of-00001.parquet").is_file()
    assert (tmp_path / "d" / "dataset_dict.json").is_file() and (tmp_path / "hub" / "README.md").is_file()
    assert main(["export", "--run", str(run), "--round", "1", "--push-to-hub", "a/b/c"]) == 2
    assert "expected a Hub dataset id" in capsys.readouterr().err
