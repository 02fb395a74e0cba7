import inspect
from pathlib import Path

import pytest
import yaml

from archguide.config import apply_override, default_config, load_config
from archguide.exceptions import ConfigError
from archguide.scoring import score_features

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_scoring_defaults_are_the_functions_defaults():
    params = inspect.signature(score_features).parameters
    for key, value in default_config()["scoring"].items():
        assert params[key].default == value


def test_shipped_default_yaml_matches_the_code():
    assert yaml.safe_load((CONFIGS / "default.yaml").read_text()) == default_config()


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    config = load_config(path)
    assert set(config) == set(default_config())


def test_overrides_are_read_as_yaml():
    config = load_config(
        None,
        [
            "scoring.n_repeats=10",
            "scoring.n_jobs=null",
            "scoring.groups=null",
            "data.target=price",
            "scoring.test_size=0.25",
        ],
    )
    assert config["scoring"]["n_repeats"] == 10
    assert config["scoring"]["n_jobs"] is None and config["scoring"]["groups"] is None
    assert config["data"]["target"] == "price"
    assert config["scoring"]["test_size"] == 0.25


def test_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("scoring:\n  n_repeats: 3\n  random_state: 1\n")
    config = load_config(path, ["scoring.n_repeats=4"])
    assert config["scoring"]["n_repeats"] == 4 and config["scoring"]["random_state"] == 1


def test_unknown_key_lists_the_allowed_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown config key 'scoring.n_repeat'.*n_repeats"):
        load_config(None, ["scoring.n_repeat=3"])
    with pytest.raises(ConfigError, match=r"Unknown config key 'trainig'.*Allowed keys: data, scoring"):
        load_config(None, ["trainig.epochs=3"])
    path = tmp_path / "c.yaml"
    path.write_text("scoring:\n  bogus: 1\n")
    with pytest.raises(ConfigError, match="bogus"):
        load_config(path)


@pytest.mark.parametrize("override", ["scoring.n_repeats", "=3", "scoring=3"])
def test_malformed_overrides(override):
    with pytest.raises(ConfigError):
        apply_override(default_config(), override)


def test_unreadable_or_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="Could not read config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("scoring: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(scalar)
