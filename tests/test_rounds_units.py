"""Fast checks of the round loop's helpers: which model trains, each round's prompts and pool, stage notes."""

from __future__ import annotations

import pytest

from thresher.config import parse_recipe
from thresher.errors import ConfigError
from thresher.store import RunDir


def recipe(tmp_path, **over):
    data = {
        "name": "r",
        "out_dir": str(tmp_path),
        "prompts": {"train": {"source": "arithmetic", "count": 8, "seed": 3}},
        "models": [
            {"name": "teacher", "path": "/t", "backend": "hf"},
            {"name": "student", "path": "/s", "role": "student", "backend": "hf"},
        ],
        "judges": [{"type": "math"}],
    }
    data.update(over)
    return parse_recipe(data, check_files=False)


def test_training_needs_exactly_one_student(tmp_path):
    from thresher.rounds import trained_student

    assert trained_student(recipe(tmp_path)).name == "student"
    models = [{"name": "a", "path": "/a"}, {"name": "b", "path": "/b"}]
    with pytest.raises(ConfigError, match="exactly one model with role: student.*none"):
        trained_student(recipe(tmp_path, models=models))
    two = [{**m, "role": "student"} for m in models]
    with pytest.raises(ConfigError, match="found: a, b"):
        trained_student(recipe(tmp_path, models=two))
    assert trained_student(recipe(tmp_path, models=models, train={"method": "none"})) is None


def test_pool_samples_the_current_student_and_keeps_the_teacher(tmp_path):
    from thresher.rounds import pool_for_round

    r = recipe(tmp_path)
    assert [m.path for m in pool_for_round(r, None)] == ["/t", "/s"]
    pool = pool_for_round(r, "/runs/r/round_1/model")
    assert [(m.name, m.path) for m in pool] == [("teacher", "/t"), ("student", "/runs/r/round_1/model")]
    assert r.models[1].path == "/s", "the recipe itself is left alone"


@pytest.mark.parametrize("per_round", ["same", "fresh"])
def test_round_prompts_are_drawn_once_and_kept(tmp_path, per_round):
    from thresher.rounds import round_prompts

    r = recipe(tmp_path, prompts={"train": {"source": "arithmetic", "count": 8, "seed": 3}, "per_round": per_round})
    run = RunDir(r.run_dir)
    ids = {}
    for k in (1, 2):
        rd = run.round(k)
        rd.path.mkdir(parents=True)
        ids[k] = [p.id for p in round_prompts(r, rd, k)]
        assert rd.prompts.is_file() and len(ids[k]) == 8
    assert (ids[1] == ids[2]) == (per_round == "same")
    again = recipe(tmp_path, prompts={"train": {"source": "arithmetic", "count": 8, "seed": 3}, "per_round": per_round})
    assert [p.id for p in round_prompts(again, run.round(1), 1)] == ids[1], "a resumed round keeps its prompts"
    changed = recipe(tmp_path, prompts={"train": {"source": "arithmetic", "count": 8, "seed": 99}})
    assert [p.id for p in round_prompts(changed, run.round(1), 1)] != ids[1], "a changed source draws again"


def test_eval_follows_the_students_backend_unless_told(tmp_path):
    from thresher.rounds import eval_config

    assert eval_config(recipe(tmp_path)).args.backend == "hf"
    told = recipe(tmp_path, eval={"args": {"backend": "vllm"}})
    assert eval_config(told).args.backend == "vllm"
