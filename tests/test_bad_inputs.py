"""Bad inputs end with exit code 2 and one line naming the thing at fault, never a traceback.

One test (or more) per class of mistake: bytes that are not UTF-8 in JSONL and
YAML inputs, a model directory that holds no model, every numeric range on
the command line, the prompt-synthesis flags (checked before a model loads or
an output file changes), errors of the user's environment (a path that is a
file, a full disk, a read-only directory), and output piped into a reader
that leaves early. The synthesis cases that need a model's answers use
`FakeOpenAIServer`, a fake standing in for a hosted model, so its answers
are known.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fake_openai import FakeOpenAIServer

from thresher.records import Candidate, Prompt, Verdict, read_jsonl, write_jsonl


def thresher(*args: str, cwd: Path | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "thresher", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, check=False, **kw)


def one_line(out: subprocess.CompletedProcess) -> str:
    """The single stderr line of a run that ended with exit code 2 (no traceback)."""
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def _model_dir(tmp: Path) -> Path:
    """A directory that looks like a model to a path check (it is never loaded in these tests)."""
    d = tmp / "model"
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text("{}")
    return d


def _prompts(tmp: Path, n: int = 2) -> Path:
    path = tmp / "prompts.jsonl"
    write_jsonl(path, [Prompt.create("add", [{"role": "user", "content": f"{i}+1?"}], reference=str(i + 1))
                       for i in range(n)])
    return path


# ---------------------------------------------------------------------------------------------- encoding


def test_non_utf8_prompts_file_names_its_line(tmp_path):
    path = _prompts(tmp_path)
    bad = b'{"id": "x", "task": "add", "messages": [{"role": "user", "content": "caf\xe9"}]}\n'
    with open(path, "ab") as f:
        f.write(bad)
    line = one_line(thresher("sample", "--prompts", str(path), "--model", str(_model_dir(tmp_path)),
                             "--run", str(tmp_path / "run")))
    assert line.endswith(f"{path}:3: not UTF-8 text (byte 0xe9 at column {bad.index(0xE9) + 1})")


def test_non_utf8_recipe_names_its_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_bytes(b"name: r\nmodels: []\n# caf\xe9\n")
    assert one_line(thresher("run", str(path), "--dry-run")) == (
        f"thresher run: error: {path}:3: not UTF-8 text (byte 0xe9 at column 6)"
    )


def test_non_utf8_candidate_shard_names_its_line(tmp_path):
    prompts = _prompts(tmp_path)
    shards = tmp_path / "round_1" / "candidates"
    shards.mkdir(parents=True)
    pid = next(read_jsonl(prompts, Prompt)).id
    shard = shards / "shard-00000.jsonl"
    shard.write_bytes(json.dumps({"prompt_id": pid, "model": "m", "index": 0, "text": "2"}).encode() + b"\n\xff\n")
    line = one_line(thresher("judge", "--prompts", str(prompts), "--candidates", str(shards), "--judge", "math",
                             "--run", str(tmp_path / "run")))
    assert line.endswith(f"{shard}:2: not UTF-8 text (byte 0xff at column 1)")


def test_a_recipe_jsonl_source_rejects_a_task_that_is_not_text(tmp_path):
    """`task: 5` in a data row is an error naming file:line, as `--prompts` makes it, not the task "5"."""
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"prompt": "1+1?", "answer": "2", "task": 5}) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "r", "models": [{"name": "s", "path": str(_model_dir(tmp_path)), "role": "student"}],
        "judges": [{"type": "math"}], "prompts": {"train": {"source": "jsonl", "path": str(data)}},
    }))
    assert one_line(thresher("run", str(recipe), "--dry-run")).endswith(
        f"{data}:1: task: expected a string, got int 5"
    )


# ---------------------------------------------------------------------------------------------- models


def test_a_reward_model_directory_without_a_model(tmp_path):
    prompts = _prompts(tmp_path)
    empty = tmp_path / "my-rm"
    empty.mkdir()
    line = one_line(thresher("judge", "--prompts", str(prompts), "--candidates", str(prompts), "--judge",
                             f"rm:{empty}", "--run", str(tmp_path / "run")))
    assert line == (f"thresher judge: error: --judge rm:{empty}: directory '{empty}' holds no model "
                    "(no config.json or adapter_config.json)")


# ---------------------------------------------------------------------------------------------- ranges


RANGES = [
    (["sample", "--prompts", "P", "--model", "M", "--run", "O", "--chunk-size", "0"],
     "thresher sample: error: --chunk-size: must be at least 1, got 0"),
    (["judge", "--judge", "math", "--run", "O", "--chunk-size", "0"],
     "thresher judge: error: --chunk-size: must be at least 1, got 0"),
    (["sample", "--prompts", "P", "--model", "M", "--run", "O", "--top-p", "2"],
     "thresher sample: error: --top-p: must be in (0, 1], got 2"),
    (["sample", "--prompts", "P", "--model", "M", "--run", "O", "--n", "0"],
     "thresher sample: error: --n: must be at least 1, got 0"),
    (["train", "--data", "D", "--model", "M", "--out", "O", "--lr", "-1"],
     "thresher train: error: --lr: must be greater than 0, got -1"),
    (["train", "--data", "D", "--model", "M", "--out", "O", "--epochs", "0"],
     "thresher train: error: --epochs: must be greater than 0, got 0"),
    (["eval", "--model", "M", "--prompts", "P", "--run", "O", "--temperature", "-1"],
     "thresher eval: error: --temperature: must be at least 0, got -1"),
    (["eval", "--model", "M", "--prompts", "P", "--run", "O", "--max-tokens", "0"],
     "thresher eval: error: --max-tokens: must be at least 1, got 0"),
]


@pytest.mark.parametrize(("argv", "message"), RANGES, ids=[" ".join(a[-2:]) for a, _ in RANGES])
def test_each_numeric_flag_is_range_checked(tmp_path, argv, message):
    prompts, data = _prompts(tmp_path), tmp_path / "d.jsonl"
    data.write_text("")
    names = {"P": str(prompts), "M": str(_model_dir(tmp_path)), "O": str(tmp_path / "out"), "D": str(data)}
    assert one_line(thresher(*[names.get(a, a) for a in argv])) == message
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------- prompt synthesis


SYNTH = [
    (["self-instruct", "--seeds", "S", "--count", "3", "--rouge-threshold", "0"],
     "--rouge-threshold: must be in (0, 1], got 0"),
    (["self-instruct", "--seeds", "S", "--count", "3", "--min-letters", "1.5"], "--min-letters: must be in [0, 1]"),
    (["self-instruct", "--seeds", "S", "--count", "3", "--min-words", "9", "--max-words", "3"],
     "--min-words: must be at most max_words (3), got 9"),
    (["magpie", "--count", "0"], "argument --count: must be at least 1, got 0"),
    (["magpie", "--count", "2", "--max-requests", "0"], "--max-requests: must be at least 1, got 0"),
    (["selfqa", "--docs", "S", "--min-agreement", "2"], "--min-agreement: must be in [0, 1], got 2"),
    (["backtranslate", "--responses", "S", "--min-score", "9"], "--min-score: must be in [1, 5], got 9"),
    (["backtranslate", "--responses", "S", "--top-p", "0"], "--top-p: must be in (0, 1], got 0"),
    (["backtranslate", "--responses", "S", "--model-arg", "batchsize=2", "--backend", "hf"],
     "--model-arg batchsize: unknown key"),
    (["select", "--pool", "S", "--targets", "S", "--per-task", "0"], "--per-task: must be at least 1, got 0"),
    (["select", "--pool", "S", "--targets", "S", "--per-task", "2", "--tag-weight", "2"],
     "--tag-weight: must be in [0, 1], got 2"),
]


@pytest.mark.parametrize(("argv", "message"), SYNTH, ids=[" ".join(a[-2:]) for a, _ in SYNTH])
def test_synthesis_flags_are_checked_before_anything_changes(tmp_path, argv, message):
    """Each bad flag: exit 2 naming it, the existing output untouched although --overwrite was given."""
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("Write a poem about the sea.\n")
    out = tmp_path / "prompts.jsonl"
    out.write_text("precious\n")
    model = [] if argv[0] == "select" else ["--model", str(_model_dir(tmp_path))]
    argv = [str(seeds) if a == "S" else a for a in argv]
    line = one_line(thresher("prompts", *argv, *model, "--out", str(out), "--overwrite"))
    assert line.startswith("thresher prompts") and ": error: " in line and message in line, line
    assert out.read_text() == "precious\n"
    assert not (tmp_path / "prompts.jsonl.partial").exists()


def test_a_run_that_fails_after_the_checks_leaves_the_output_as_it_was(tmp_path):
    """The model cannot load (a directory with a config but no tokenizer): --out keeps what it had."""
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("Write a poem about the sea.\n")
    out = tmp_path / "prompts.jsonl"
    out.write_text("precious\n")
    line = one_line(thresher("prompts", "self-instruct", "--seeds", str(seeds), "--count", "2", "--backend", "hf",
                             "--model", str(_model_dir(tmp_path)), "--out", str(out), "--overwrite"))
    assert "cannot load the tokenizer" in line
    assert out.read_text() == "precious\n" and not (tmp_path / "prompts.jsonl.partial").exists()


def _in_process(argv: list[str], capsys) -> tuple[int, str]:
    from thresher.cli import main

    code = main(argv)
    return code, capsys.readouterr().err


def test_backtranslate_never_writes_one_prompt_id_twice(tmp_path, capsys):
    """Three responses, all answered with the same request: one prompt, the other two listed as duplicates."""
    with FakeOpenAIServer(lambda text, body: (200, "Clear and complete.\nScore: 5" if "Score: N" in text
                                              else "How do I reset my home router?")) as server:
        responses = tmp_path / "responses.jsonl"
        write_jsonl(responses, [{"text": f"Hold the reset button for {n} seconds until the lights blink, then wait."}
                                for n in (5, 10, 15)])
        out, rejected = tmp_path / "prompts.jsonl", tmp_path / "rejected.jsonl"
        code, _ = _in_process(["prompts", "backtranslate", "--responses", str(responses), "--backend", "openai",
                               "--base-url", server.url, "--model", "served", "--out", str(out),
                               "--rejected", str(rejected)], capsys)
    assert code == 0
    made = list(read_jsonl(out, Prompt))
    assert [p.question for p in made] == ["How do I reset my home router?"]
    assert [r["reason"] for r in read_jsonl(rejected)] == ["duplicate", "duplicate"]


def test_a_run_short_of_count_says_so(tmp_path, capsys):
    """Every new task repeats a seed, so nothing is kept before --max-requests runs out."""
    with FakeOpenAIServer(lambda text, body: (200, "Task 2: Write a poem about the sea.")) as server:
        seeds = tmp_path / "seeds.txt"
        seeds.write_text("Write a poem about the sea.\n")
        out = tmp_path / "prompts.jsonl"
        code, err = _in_process(["prompts", "self-instruct", "--seeds", str(seeds), "--count", "3", "--backend",
                                 "openai", "--base-url", server.url, "--model", "served", "--max-requests", "2",
                                 "--no-inputs", "--out", str(out)], capsys)
    assert code == 0 and out.read_text() == ""
    assert "made 0 of --count 3 prompts (2 model requests spent)" in err


def test_select_rejected_lists_rows_dropped_by_score_and_cap(tmp_path, capsys):
    def tagged(task: str, text: str, tags: list[str]) -> Prompt:
        return Prompt.create(task, [{"role": "user", "content": text}], metadata={"tags": tags})

    targets = [tagged("tax", "How do I deduct my home office?", ["tax", "deductions"])]
    pool = [tagged("pool", f"Tax question {i}", ["tax", "deductions"]) for i in range(3)]
    pool += [tagged("pool", "Tax question 0", ["tax", "deductions"]), tagged("pool", "Bake bread", ["baking"])]
    write_jsonl(tmp_path / "targets.jsonl", targets)
    write_jsonl(tmp_path / "pool.jsonl", pool)
    out, rejected = tmp_path / "selected.jsonl", tmp_path / "rejected.jsonl"
    code, _ = _in_process(["prompts", "select", "--pool", str(tmp_path / "pool.jsonl"), "--targets",
                           str(tmp_path / "targets.jsonl"), "--per-task", "1", "--tag-weight", "1",
                           "--max-similarity", "1.01", "--out", str(out), "--rejected", str(rejected)], capsys)
    assert code == 0 and len(list(read_jsonl(out))) == 1
    reasons = sorted((r["reason"], r["text"]) for r in read_jsonl(rejected))
    assert reasons == [("below_min_score", "Bake bread"), ("duplicate", "Tax question 0"),
                       ("over_task_cap", "Tax question 1"), ("over_task_cap", "Tax question 2")]


# ---------------------------------------------------------------------------------------------- environment


def _export_round(tmp: Path, answer_chars: int = 20) -> Path:
    """A judged round (math verdicts) that `thresher export` can select from without any model."""
    run = tmp / "run"
    rd = run / "round_1"
    prompts = [Prompt.create("add", [{"role": "user", "content": f"{i}+1?"}], reference=str(i + 1)) for i in range(4)]
    write_jsonl(rd / "prompts.jsonl", prompts)
    cands = [Candidate(p.id, "teacher", 0, f"{'x' * answer_chars} {i + 1}", finish_reason="stop")
             for i, p in enumerate(prompts)]
    write_jsonl(rd / "candidates" / "shard-00000.jsonl", cands)
    write_jsonl(rd / "verdicts" / "shard-00000.jsonl", [Verdict(c.id, "math", 1.0, True) for c in cands])
    return run


def test_an_output_path_that_is_a_directory(tmp_path):
    run = _export_round(tmp_path)
    (run / "round_1" / "sft.jsonl").mkdir()
    line = one_line(thresher("export", "--run", str(run), "--sft"))
    assert line.startswith("thresher export: error: ") and f"{run / 'round_1' / 'sft.jsonl'}" in line
    assert line.endswith(": Is a directory")


def test_an_output_path_under_a_file(tmp_path):
    pool = tmp_path / "pool.jsonl"
    write_jsonl(pool, [Prompt.create("t", [{"role": "user", "content": "x"}], metadata={"tags": ["a"]})])
    (tmp_path / "file").write_text("")
    line = one_line(thresher("prompts", "select", "--pool", str(pool), "--targets", str(pool), "--per-task", "1",
                             "--out", str(tmp_path / "file" / "out.jsonl")))
    assert line == f"thresher prompts: error: --out {tmp_path / 'file' / 'out.jsonl'}: {tmp_path / 'file'} is a file, " \
                   "not a directory"


def test_a_full_disk_names_the_file(tmp_path):
    """A file-size limit makes the write fail as a full disk does (EFBIG instead of ENOSPC)."""
    run = _export_round(tmp_path, answer_chars=4000)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (8000, 8000))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    line = one_line(thresher("export", "--run", str(run), "--sft", preexec_fn=limit))
    assert line.startswith("thresher export: error: ") and line.endswith(": File too large"), line
    assert "round_1" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_names_the_path(tmp_path):
    run = _export_round(tmp_path)
    (run / "round_1").chmod(0o555)
    try:
        line = one_line(thresher("export", "--run", str(run), "--sft"))
    finally:
        (run / "round_1").chmod(0o755)
    assert str(run / "round_1") in line and line.endswith("Permission denied")


def test_output_piped_into_a_reader_that_left_ends_quietly(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "r", "models": [{"name": "s", "path": str(_model_dir(tmp_path)), "role": "student"}],
        "judges": [{"type": "math"}], "prompts": {"train": {"source": "arithmetic", "count": 4}},
    }))
    proc = subprocess.Popen([sys.executable, "-m", "thresher", "run", str(recipe), "--dry-run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head -0`: the reader is gone before anything is written
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and err == b""
