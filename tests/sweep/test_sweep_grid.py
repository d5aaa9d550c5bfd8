"""`--grid` options: parsing, keys, the product, every point validated up front, and refusals.

Nothing here trains: the grid is checked before the first run starts, so every refusal must
leave no sweep folder behind.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest

from cli_helpers import run_ethos
from ethos.config import RunConfig
from ethos.errors import EthosError
from ethos.sweep import Grid, GridError, expand, parse_grid
from ethos.sweep.grid import resolve_key
from ethos.sweep.runner import prepare_folder

TINY = {
    "data": {"source": "compas", "sample": 300, "min_group_size": 1},
    "model": {"max_length": 32},
    "train": {"epochs": 1, "batch_size": 16, "max_steps": 4},
    "policy": "criminal-justice",
}


def base(**train: object) -> RunConfig:
    return RunConfig.model_validate({**TINY, "train": {**TINY["train"], **train}})


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("fairness.lambda", "train.fairness.lambda"),
        ("fairness.lambda_", "train.fairness.lambda"),  # the field's Python name, same key
        ("train.fairness.lambda", "train.fairness.lambda"),
        ("privacy.epsilon", "train.privacy.epsilon"),
        ("learning_rate", "train.learning_rate"),
        ("seed", "seed"),  # a top-level key stays top-level
        ("data.split.seed", "data.split.seed"),
        ("model.max_length", "model.max_length"),
    ],
)
def test_keys_resolve_below_train_unless_top_level(text: str, key: str) -> None:
    assert resolve_key(text) == key


def test_the_product_with_infinity_and_json_numbers() -> None:
    grid = parse_grid(["fairness.lambda=[0,0.5,1,2]", "privacy.epsilon=[1,4,8,inf]"])
    assert grid.size == 16
    assert grid.axes[1].values == (1, 4, 8, math.inf)
    points = grid.combinations()
    assert points[0] == {"train.fairness.lambda": 0, "train.privacy.epsilon": 1}
    assert points[3]["train.privacy.epsilon"] == math.inf  # first axis slowest
    assert "16 points" in repr(grid) and "∞" in repr(grid)
    values = parse_grid(["learning_rate=[1e-4, 3E-4, .inf, -Infinity, 'inf', 2]"]).axes[0].values
    assert values == (1e-4, 3e-4, math.inf, -math.inf, "inf", 2)  # quoted 'inf' stays text


def test_every_point_becomes_a_validated_config() -> None:
    config = base(fairness={"method": "penalty"}, privacy={"epsilon": 1.0})
    grid = parse_grid(["fairness.lambda=[0,2]", "privacy.epsilon=[8,inf]"])
    points = expand(config, grid)
    assert [p.label for p in points][-1] == "fairness.lambda=2, privacy.epsilon=∞"
    last = points[-1].config
    assert last.train.fairness is not None and last.train.fairness.lambda_ == 2
    assert last.train.privacy is not None and not last.train.privacy.enabled
    assert last.train.fairness.method == "penalty"  # the rest of the section is kept
    assert last.train.max_steps == 4 and last.data.sample == 300


def test_left_out_fields_stay_left_out_for_bundled_defaults() -> None:
    # compas takes its label and text fields from the bundle only where the config is silent
    [point] = expand(base(), parse_grid(["seed=[7]"]))
    assert point.config.seed == 7
    assert "label" not in point.config.data.model_fields_set
    # a section left to its defaults can still be varied
    [point] = expand(base(), parse_grid(["qa.n_best=[5]"]))
    assert point.config.qa.n_best == 5


def test_relative_paths_in_values_are_taken_from_the_config_folder(tmp_path: Path) -> None:
    [point] = expand(base(), parse_grid(["data.source=[rows.csv]"]), base_dir=tmp_path)
    assert point.config.data.source == str(tmp_path / "rows.csv")


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (["fairness.lambda=[0,-1]"], r"(?s)grid point 2/2 \(fairness.lambda=-1\).*greater than or"),
        (["privacy.epsilon=[1,0]"], r"(?s)grid point 2/2 \(privacy.epsilon=0\).*greater than 0"),
        (["learning_rate=[fast]"], r"(?s)learning_rate=fast.*valid number"),
        (["seed=['1; rm -rf /']"], r"valid integer"),
        (["data.sample=[1]"], r"(?s)data.sample=1.*greater than or equal to 2"),
        (["learning_rate=[1e-4, null]"], r"learning_rate=null|valid number"),
    ],
)
def test_a_bad_value_fails_before_training_naming_the_point(grid: list[str], message: str) -> None:
    config = base(fairness={"method": "penalty"}, privacy={"epsilon": 1.0})
    with pytest.raises(GridError, match=message):
        expand(config, parse_grid(grid))


def test_a_key_below_an_unset_section_asks_to_declare_it() -> None:
    with pytest.raises(GridError, match=r"does not set train\.privacy") as caught:
        expand(base(), parse_grid(["privacy.epsilon=[1,8]"]))
    assert caught.value.hint is not None and "declare train.privacy" in caught.value.hint
    # the whole section may be given as values
    points = expand(base(), parse_grid(["privacy=[null, {epsilon: 8}]"]))
    assert points[0].config.train.privacy is None
    assert points[1].config.train.privacy is not None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "at least one --grid"),
        (["learning_rate"], "is not KEY=\\[VALUES\\]"),
        (["=[1,2]"], "is not KEY=\\[VALUES\\]"),
        (["learning_rate="], "is not KEY=\\[VALUES\\]"),
        (["learning_rate=1e-4"], "must be a list"),
        (["learning_rate={a: 1}"], "must be a list"),
        (["learning_rate=[]"], "value list is empty"),
        (["learning_rate=[1e-4"], "not a YAML/JSON list"),
        (["learning_rate=[1e-4, 1e-4]"], "appears twice"),
        (["seed=[1]", "seed=[2]"], "varies seed again"),
        (["fairness.lambda=[1]", "train.fairness.lambda_=[2]"], "varies train.fairness.lambda"),
        (["seed=[[[1]]]"], "nested too deeply"),
        (["seed=[!!python/object/apply:os.system [echo]]"], "not a YAML/JSON list"),
        (["lr=[1]"], "train has no key 'lr'"),
        (["data.labl=[x]"], "did you mean 'label'"),
        (["__class__=[1]"], "not a dotted config path"),
        (["train.__dict__=[1]"], "not a dotted config path"),
        (["model_config=[1]"], "train has no key 'model_config'"),
        (["data..source=[x]"], "not a dotted config path"),
        (["../../etc/passwd=[1]"], "not a dotted config path"),
        (["seed.bits=[1]"], "seed is a value, not a section"),
        (["output_dir=[a, b]"], "cannot vary output_dir"),
        (["policy=[medical, credit]"], "cannot vary policy"),
        (["seed=[" + ",".join(map(str, range(65))) + "]"], "65 values, more than --max-points 64"),
        (["seed=[1,2,3,4,5,6,7,8,9]", "learning_rate=[1,2,3,4,5,6,7,8]"], "72 points \\(9 x 8\\)"),
    ],
)
def test_malformed_or_hostile_grids_are_refused(options: list[str], message: str) -> None:
    with pytest.raises(GridError, match=message):
        parse_grid(options)


def test_max_points_can_be_raised_and_a_built_grid_is_checked_too() -> None:
    options = ["seed=[" + ",".join(map(str, range(100))) + "]"]
    assert parse_grid(options, max_points=100).size == 100
    huge = "seed=[" + ",".join(map(str, range(200_000))) + "]"
    with pytest.raises(GridError, match="characters long, more than 64 values"):
        parse_grid([huge])  # refused before YAML parses 200000 values
    with pytest.raises(GridError, match="150 values, more than --max-points 100"):
        parse_grid(["seed=[" + ",".join(map(str, range(150))) + "]"], max_points=100)


def test_grid_errors_are_user_errors() -> None:
    assert issubclass(GridError, EthosError)
    assert isinstance(parse_grid(["seed=[1]"]), Grid)


def test_the_output_folder_is_new_or_empty(tmp_path: Path) -> None:
    odd = tmp_path / "a" / ".." / "b"  # traversal is resolved, not trusted as written
    assert prepare_folder(odd) == (tmp_path / "b").resolve()
    assert prepare_folder(tmp_path / "b") == (tmp_path / "b").resolve()  # empty: fine
    (tmp_path / "b" / "sweep.json").write_text("{}")
    with pytest.raises(EthosError, match="already exists and is not empty"):
        prepare_folder(tmp_path / "b")
    (tmp_path / "file").write_text("x")
    with pytest.raises(EthosError, match="is a file"):
        prepare_folder(tmp_path / "file")


def _ethos(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_ethos(*args, cwd=cwd, timeout=300)


def test_cli_refuses_a_bad_point_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "data: {source: compas, sample: 300, min_group_size: 1}\n"
        "train: {max_steps: 4, privacy: {epsilon: 8}}\npolicy: criminal-justice\n"
    )
    out = tmp_path / "sweep"
    done = _ethos(
        "sweep", str(config), "--grid", "privacy.epsilon=[8,inf,-1]", "--out", str(out),
        "--ledger", str(tmp_path / "ledger.db"), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "grid point 3/3 (privacy.epsilon=-1)" in done.stderr
    assert "train.privacy.epsilon: Input should be greater than 0" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists() and not (tmp_path / "runs").exists()
    assert not (tmp_path / "ledger.db").exists()
    helped = _ethos("sweep", "--help", cwd=tmp_path)
    assert helped.returncode == 0
    assert "accelerate launch" in helped.stdout and "--max-points" in helped.stdout
