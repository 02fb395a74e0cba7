import inspect
from pathlib import Path

import pytest
import yaml

from archguide.config import SCHEMA, apply_override, default_config, estimator_params, load_config, validate
from archguide.exceptions import ConfigError
from archguide.scoring.score import score_features

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_scoring_defaults_are_the_functions_defaults():
    params = inspect.signature(score_features).parameters
    options = {p.name for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(default_config()["scoring"]) == options - {"estimator", "verbose", "n_shadow"}
    for key, value in default_config()["scoring"].items():
        assert params[key].default == value


def test_tuning_defaults_are_tunes_defaults():
    from archguide.estimators.estimator import ImportanceGuidedRegressor

    params = inspect.signature(ImportanceGuidedRegressor.tune).parameters
    for key, value in default_config()["tuning"].items():
        assert params[key].default == value, key


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
    with pytest.raises(ConfigError, match=r"Unknown config key 'trainig'.*Allowed keys: data, planning, rescoring"):
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


def test_estimator_sections_default_to_the_estimators_defaults():
    from archguide import ImportanceGuidedClassifier, ImportanceGuidedRegressor

    params = estimator_params(default_config())
    for cls in (ImportanceGuidedRegressor, ImportanceGuidedClassifier):
        defaults = cls().get_params()
        assert set(params) == set(defaults) - {"verbose"}
        assert {k: defaults[k] for k in params} == params


def test_estimator_params_build_the_configured_estimator():
    from archguide import ImportanceGuidedRegressor

    config = load_config(
        None,
        ["training.epochs=7", "rescoring.method=null", "rescoring.every_n_epochs=2", "planning.head_units=[16, 8]",
         "training.batch_size=auto", "planning.ensemble_size=4", "training.weight_decay=0.01",
         "training.lr_schedule=cosine", "training.min_improvement=0.01"],
    )  # fmt: skip
    est = ImportanceGuidedRegressor(**estimator_params(config))
    assert est.epochs == 7 and est.rescoring is None and est.rescoring_period == 2
    assert est.head_units == (16, 8)
    assert (est.batch_size, est.ensemble_size, est.weight_decay, est.lr_schedule) == ("auto", 4, 0.01, "cosine")
    assert est.min_improvement == 0.01
    with pytest.raises(ConfigError, match="'training.batch_size' must be 'auto' or an integer"):
        load_config(None, ["training.batch_size=big"])


@pytest.mark.parametrize(
    ("override", "nearest"),
    [("training.epochz=5", "epochs"), ("planning.total_unit=64", "total_units"), ("scoring.n_repeat=3", "n_repeats"),
     ("traning.epochs=5", "training")],
)  # fmt: skip
def test_unknown_key_suggests_the_nearest(override, nearest):
    with pytest.raises(ConfigError, match=f"Did you mean '{nearest}'"):
        load_config(None, [override])


def test_no_suggestion_when_nothing_is_near():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["training.zzzzzz=1"])
    assert "Did you mean" not in str(info.value) and "epochs" in str(info.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.epochs=ten", r"'training.epochs' must be an integer. Received: 'ten' \(str\)"),
        ("training.epochs=2.5", r"'training.epochs' must be an integer. Received: 2.5 \(float\)"),
        ("training.epochs=true", r"'training.epochs' must be an integer. Received: True \(bool\)"),
        ("training.refit=1", r"'training.refit' must be true or false"),
        ("planning.l1=strong", r"'planning.l1' must be a number"),
        ("planning.weak=ignore", r"'planning.weak' must be 'penalize' or 'drop'. Received: 'ignore'"),
        ("scoring.cv=five", r"'scoring.cv' must be 'auto', an integer or null"),
        ("scoring.task=regresion", r"'scoring.task' must be 'auto', 'regression'"),
        ("training.batch_size=null", r"'training.batch_size' must be 'auto' or an integer. Received: null"),
        ("planning.head_units=16", r"'planning.head_units' must be a list or null"),
    ],
)
def test_wrong_types_name_the_key_and_the_type(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_wrong_type_in_a_file_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  epochs: many\n")
    with pytest.raises(ConfigError, match=r"c.yaml: Config key 'training.epochs' must be an integer"):
        load_config(path)
    path.write_text("training: 5\n")
    with pytest.raises(ConfigError, match="'training' must be a mapping"):
        load_config(path)


def test_integers_are_numbers_and_become_floats():
    config = load_config(None, ["planning.l1=1", "scoring.test_size=0.25"])
    assert config["planning"]["l1"] == 1.0 and isinstance(config["planning"]["l1"], float)


def test_validate_fills_defaults_and_does_not_modify_its_input():
    partial = {"training": {"epochs": 3}}
    config = validate(partial)
    assert partial == {"training": {"epochs": 3}}
    assert config["training"]["epochs"] == 3 and config["training"]["batch_size"] == "auto"
    assert set(config) == set(SCHEMA)


def test_every_key_has_a_default_of_its_own_type():
    from archguide.config import _check_value

    for section, keys in default_config().items():
        for key, value in keys.items():
            _check_value(f"{section}.{key}", value, SCHEMA[section][key][1])


def test_exponent_notation_is_a_number_where_a_number_is_expected(tmp_path):
    # YAML 1.1 (PyYAML) reads 1e-4 without a dot as a string; a number key takes it as the number
    config = load_config(None, ["training.learning_rate=1e-4", "planning.l1=5E-3"])
    assert config["training"]["learning_rate"] == 1e-4 and config["planning"]["l1"] == 5e-3
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  learning_rate: 3e-4\n")
    assert load_config(path)["training"]["learning_rate"] == 3e-4
    # a whole number in exponent notation is a count too; a fraction is not
    config = load_config(None, ["training.epochs=1e2", "training.batch_size=3.2E1"])
    assert config["training"]["epochs"] == 100 and isinstance(config["training"]["epochs"], int)
    assert config["training"]["batch_size"] == 32
    with pytest.raises(ConfigError, match=r"'training.epochs' must be an integer. Received: 2.5 \(float\)"):
        load_config(None, ["training.epochs=2.5e0"])
    with pytest.raises(ConfigError, match="must be an integer"):
        load_config(None, ["training.epochs=true"])


@pytest.mark.parametrize("name", ["default", "small", "wide", "classification"])
def test_the_configs_for_fit_make_an_estimator(name):
    """archguide fit takes these files as they are (exact.yaml is for archguide score)."""
    import numpy as np

    from archguide.cli import _estimator_for

    config = load_config(CONFIGS / f"{name}.yaml")
    labels = np.arange(100) % 3
    estimator = _estimator_for(config, labels)
    expected = "ImportanceGuidedClassifier" if name == "classification" else "ImportanceGuidedRegressor"
    if name != "classification":  # three whole numbers: auto reads them as classes too
        assert type(estimator).__name__ == "ImportanceGuidedClassifier"
        estimator = _estimator_for(config, labels + np.linspace(0, 0.5, 100))
    assert type(estimator).__name__ == expected
    assert estimator.get_params()["weak"] == ("drop" if name in ("small", "wide") else "penalize")
    estimator._check_params()
    with pytest.raises(ConfigError, match="scoring.random_state is an option of archguide score only"):
        _estimator_for(load_config(CONFIGS / "exact.yaml"), labels)
