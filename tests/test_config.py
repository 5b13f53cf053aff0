"""Recipes parse once into typed config; every mistake names its key path."""

from __future__ import annotations

import pytest
import yaml

from thresher.config import Recipe, is_local_path, load_recipe, parse_recipe
from thresher.errors import ConfigError, UserError
from thresher.typed import PositiveInt, parse_args


def _data(tmp_path, **over):
    model_dir = tmp_path / "student"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "config.json").write_text("{}")
    data = {
        "name": "demo",
        "rounds": 2,
        "models": [
            {"name": "teacher", "path": "Qwen/Qwen2.5-72B-Instruct", "backend": "openai", "base_url": "http://127.0.0.1:8000/v1"},
            {"name": "student", "path": str(model_dir), "role": "student", "n": 8, "sampling": {"temperature": 0.7}},
        ],
        "judges": [{"type": "math"}, {"type": "rm", "args": {"model": str(model_dir)}}],
        "train": {"method": "sft", "epochs": 2},
    }
    data.update(over)
    return data


def _write(tmp_path, data):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_valid_recipe_parses_into_typed_config(tmp_path):
    r = load_recipe(_write(tmp_path, _data(tmp_path)))
    assert isinstance(r, Recipe)
    assert r.models[1].sampling.temperature == 0.7 and r.models[1].n == 8
    assert r.train.epochs == 2.0 and isinstance(r.train.epochs, float)
    assert [m.name for m in r.students()] == ["student"]
    assert r.run_dir.as_posix() == "runs/demo"


@pytest.mark.parametrize(
    "mutate, key, reason",
    [
        (lambda d: d.update(epochs=3), "epochs", "unknown key"),
        (lambda d: d["models"][1].update(temprature=0.5), "models[1].temprature", "unknown key"),
        (lambda d: d["models"][1]["sampling"].update(top_p="high"), "models[1].sampling.top_p", "expected a number"),
        (lambda d: d["models"][1].update(n=0), "models[1].n", "at least 1"),
        (lambda d: d["models"][1].update(backend="tgi"), "models[1].backend", "is not one of"),
        (lambda d: d["judges"][1].pop("type"), "judges[1].type", "missing required key"),
        (lambda d: d["judges"][1]["args"].update(model="./no/such/rm"), "judges[1].args.model", "does not exist"),
        (lambda d: d["models"][1].update(path="./missing-model"), "models[1].path", "does not exist"),
        (lambda d: d["models"][0].pop("base_url"), "models[0].base_url", "required for backend openai"),
        (lambda d: d.update(rounds="two"), "rounds", "expected an integer"),
        (lambda d: d["models"].append(dict(d["models"][1])), "models[2].name", "duplicate model name"),
        (lambda d: d["train"].update(lora="yes"), "train.lora", "expected true/false"),
    ],
)
def test_errors_name_the_key_path(tmp_path, mutate, key, reason):
    data = _data(tmp_path)
    mutate(data)
    with pytest.raises(ConfigError) as err:
        load_recipe(_write(tmp_path, data))
    assert err.value.key == key
    assert reason in str(err.value)
    assert str(err.value).startswith(f"{key}: ")


def test_overrides_apply_before_validation(tmp_path):
    path = _write(tmp_path, _data(tmp_path))
    r = load_recipe(path, ["rounds=5", "models[1].n=2", "train.lora=true"])
    assert (r.rounds, r.models[1].n, r.train.lora) == (5, 2, True)
    with pytest.raises(ConfigError, match=r"^models\[1\]\.n: expected an integer"):
        load_recipe(path, ["models[1].n=many"])
    with pytest.raises(UserError, match="no item 7"):
        load_recipe(path, ["models[7].n=2"])


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodels: [\n")
    with pytest.raises(UserError, match=r"bad.yaml:\d+: invalid YAML"):
        load_recipe(bad)
    with pytest.raises(UserError, match="no such recipe file"):
        load_recipe(tmp_path / "none.yaml")


def test_local_paths_versus_hub_ids():
    assert is_local_path("./m") and is_local_path("/abs/m") and is_local_path("runs/x/round_1/model")
    assert not is_local_path("Qwen/Qwen2.5-0.5B-Instruct")
    assert not is_local_path("builtin:tiny-student") and not is_local_path("http://127.0.0.1:8000/v1")


def test_builder_arguments_are_checked_against_the_signature():
    def reward_model(model: str, batch_size: PositiveInt = 16, name: str = "rm"):
        return None

    args = parse_args(reward_model, {"model": "x", "batch_size": 4}, "judges[1].args", ("name",))
    assert (args.model, args.batch_size) == ("x", 4)
    with pytest.raises(ConfigError, match=r"^judges\[1\]\.args\.batchsize: unknown key"):
        parse_args(reward_model, {"model": "x", "batchsize": 4}, "judges[1].args", ("name",))
    with pytest.raises(ConfigError, match=r"^judges\[1\]\.args\.model: missing required key"):
        parse_args(reward_model, {}, "judges[1].args", ("name",))
    with pytest.raises(ConfigError, match=r"^judges\[1\]\.args\.batch_size: must be at least 1, got 0"):
        parse_args(reward_model, {"model": "x", "batch_size": 0}, "judges[1].args", ("name",))
    with pytest.raises(ConfigError, match=r"^judges\[1\]\.args\.name: unknown key"):
        parse_args(reward_model, {"model": "x", "name": "y"}, "judges[1].args", ("name",))


def test_parse_without_file_checks_allows_paths_made_later(tmp_path):
    data = _data(tmp_path)
    data["models"][1]["path"] = "./made/by/round/1"
    assert parse_recipe(data, check_files=False).models[1].path == "./made/by/round/1"
