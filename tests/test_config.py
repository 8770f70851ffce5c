"""Config: defaults from the schema, and one clear line naming the key for every bad input."""

import pytest
import yaml

from conftest import BIN, REPO, TINY, run, wm
from wm.config import ConfigError, load_config


def write(tmp_path, data, name="bad.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_schema_defaults_and_paper_preset_are_the_papers(tmp_path):
    for config in (load_config([write(tmp_path, "{}", "empty.yaml")]),
                   load_config([REPO / "config.yaml", REPO / "presets" / "paper.yaml"])):
        assert config["vae"]["kl_tolerance"] == 0.5 and config["vae"]["learning_rate"] == 1e-4
        assert config["vae"]["batch_size"] == 100 and config["mdn"]["learning_rate"] == 1e-3
        assert config["mdn"]["hidden"] == 256 and config["mdn"]["gaussians"] == 5
        assert config["controller"]["sigma0"] == 0.1 and config["controller"]["l2_coefficient"] == 0.01
        assert config["controller"]["popsize"] == 64 and config["controller"]["rollouts"] == 16
        assert config["controller"]["no_progress_steps"] == 0 and config["controller"]["eval_solution"] == "mean"
        assert config["collect"]["shards"] * config["collect"]["episodes_per_shard"] == 10_000
        assert config["collect"]["policy"] == "random_controller"
        assert config["evaluate"]["episodes"] == 100


def test_presets_are_valid():
    for preset in sorted((REPO / "presets").glob("*.yaml")):
        load_config([REPO / "config.yaml", preset])


@pytest.mark.parametrize("data, message", [
    ({"vae": {"epoks": 3}}, "key 'vae': Additional properties are not allowed ('epoks' was unexpected)"),
    ({"vae": {"epochs": "three"}}, "key 'vae.epochs': 'three' is not of type 'integer'"),
    ({"controller": {"popsize": 1}}, "key 'controller.popsize': 1 is less than the minimum of 2"),
    ({"collect": {"policy": "random"}}, "key 'collect.policy': 'random' is not one of"),
    ({"controller": {"variants": []}}, "key 'controller.variants'"),
    ("vae: [unclosed", "not valid YAML"),
    ("- a list", "a config must be a mapping"),
])
def test_bad_config_fails_with_one_line_naming_the_key(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as error:
        load_config([REPO / "config.yaml", path])
    assert message in str(error.value)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_cli_reports_bad_config_before_any_work(tmp_path):
    path = write(tmp_path, {"collect": {"max_steps": 5000}})
    result = wm("collect", "--config", path, "--shard", "0", "--out", tmp_path / "s.zarr", check=False)
    assert result.returncode == 2
    assert "key 'collect.max_steps': 5000 is more than env.name 'car_racing' allows (1000 steps an episode)" in result.stderr
    assert not (tmp_path / "s.zarr").exists()
    missing = wm("collect", "--config", tmp_path / "nope.yaml", "--shard", "0", "--out", tmp_path / "s.zarr",
                 check=False)
    assert missing.returncode == 2 and "nope.yaml: config file not found" in missing.stderr


def test_snakemake_refuses_bad_config_before_any_job(tmp_path):
    path = write(tmp_path, {"mdn": {"gaussians": 0}, "run_dir": str(tmp_path / "out")})
    result = run([str(BIN / "snakemake"), "--profile", "profiles/local", "--configfile", str(TINY), str(path)],
                 check=False)
    assert result.returncode != 0
    assert "gaussians" in result.stdout + result.stderr
    assert not (tmp_path / "out").exists()
