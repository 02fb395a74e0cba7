"""Options from YAML files, with dotted overrides, in typed sections validated on load.

A configuration is a nested dict of sections:

- ``data``: where the target is and how the file is read: ``target``, ``sep``, ``drop`` (columns
  to leave out) and ``id`` (a row key, never a feature, that ``predict`` writes beside the predictions);
- ``scoring``: the options of :func:`~archguide.score_features`;
- ``planning``: how the estimators plan the network (``total_units``, ``weak``, ...);
- ``training``: how they train it (``epochs``, ``batch_size``, ...);
- ``rescoring``: how they re-score while training (``method``, ``every_n_epochs``) and whether
  the network is re-planned from its own importance (``replan``, ``max_replans``);
- ``tuning``: how ``archguide tune`` searches (``max_trials``, ``tuner``, ``cv``, ``search_space``).

Each key has a type (``SCHEMA``). A YAML file or a ``--set section.key=value``
override may change any key; an unknown key is a
:class:`~archguide.exceptions.ConfigError` that lists the allowed ones and
suggests the nearest (``training.epochz`` -> ``epochs``), and a value of the
wrong type names the key, the expected type and what came. The defaults are
the functions' own, written here once and checked against each function's
signature by the tests (this module imports neither scikit-learn nor Keras).
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from archguide.exceptions import ConfigError

__all__ = [
    "SCHEMA",
    "apply_override",
    "default_config",
    "estimator_params",
    "load_config",
    "validate",
    "with_estimator_params",
]

# Kinds a key accepts. Any other string in a key's kinds is a literal value it accepts.
_KIND_NAMES = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "null": "null",
    "list": "a list",
    "mapping": "a mapping",
}

_TASKS = ("auto", "regression", "classification", "binary", "multiclass")

#: section -> key -> (default, accepted kinds). The defaults are the functions' own (the tests check each
#: against its function's signature: reading the estimators' here would import Keras).
SCHEMA: dict[str, dict[str, tuple[Any, tuple[str, ...]]]] = {
    "data": {
        "target": (None, ("str", "null")),
        "sep": (",", ("str",)),
        "drop": (None, ("list", "null")),
        "id": (None, ("str", "null")),
    },
    "scoring": {
        "task": ("auto", _TASKS),
        "groups": ("auto", ("auto", "null", "mapping")),
        "n_repeats": (5, ("int",)),
        "random_state": (None, ("int", "null")),
        "n_jobs": (None, ("int", "null")),
        "scoring": (None, ("str", "null")),
        "cv": ("auto", ("auto", "int", "null")),
        "test_size": (0.2, ("float",)),
        "max_train_samples": (3000, ("int", "null")),
        "max_eval_samples": (2000, ("int", "null")),
        "n_estimators": ("auto", ("auto", "int")),
        "correlation_threshold": (0.8, ("float",)),
        "noise_alpha": (0.05, ("float",)),
        "companion": ("pairwise", ("pairwise", "linear", "null")),
    },
    "planning": {
        "total_units": (128, ("int",)),
        "grouping": ("tiers", ("tiers", "groups")),
        "n_tiers": (3, ("int",)),
        "depth": (2, ("int",)),
        "head_units": (None, ("list", "null")),
        "l1": (1e-4, ("float",)),
        "l1_power": (1.0, ("float",)),
        "weak": ("penalize", ("penalize", "drop")),
        "dropout": (0.0, ("float",)),
        "scaling": ("robust", ("robust", "standard")),
        "min_frequency": (None, ("float", "null")),
        "max_categories": (None, ("int", "null")),
        "embedding": (0, ("int",)),
        "category_embedding": (0, ("int",)),
        "ensemble_size": (1, ("int",)),
    },
    "training": {
        "epochs": (300, ("int",)),
        "batch_size": ("auto", ("auto", "int")),
        "learning_rate": (1e-3, ("float",)),
        "weight_decay": (0.0, ("float",)),
        "label_smoothing": (0.0, ("float",)),
        "validation_fraction": (0.2, ("float",)),
        "patience": (20, ("int",)),
        "min_improvement": (0.0, ("float",)),
        "lr_patience": (10, ("int", "null")),
        "lr_schedule": ("plateau", ("str",)),
        "refit": (False, ("bool",)),
        "random_state": (None, ("int", "null")),
    },
    "rescoring": {
        "method": ("permutation", ("str", "null")),
        "every_n_epochs": (1, ("int",)),
        "replan": ("residuals", ("residuals", "bool")),
        "max_replans": (2, ("int",)),
    },
    "tuning": {
        "max_trials": (20, ("int",)),
        "tuner": ("random", ("random", "bayesian", "hyperband")),
        "cv": (None, ("int", "null")),
        "search_space": (None, ("mapping", "null")),
    },
}

#: ``(section, key)`` -> the estimators' parameter it sets, where the names differ.
_ESTIMATOR_NAMES = {("rescoring", "method"): "rescoring", ("rescoring", "every_n_epochs"): "rescoring_period"}
#: Scoring keys the estimators take (the others only ``archguide score`` uses).
_ESTIMATOR_SCORING = ("groups", "n_repeats")


def default_config() -> dict[str, Any]:
    """The default configuration: every section with every allowed key."""
    return {section: {key: default for key, (default, _) in keys.items()} for section, keys in SCHEMA.items()}


def _describe(kinds: tuple[str, ...]) -> str:
    words = [_KIND_NAMES.get(k, repr(k)) for k in kinds]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "null":
        return value is None
    if kind == "list":
        return isinstance(value, list)
    if kind == "mapping":
        return isinstance(value, Mapping)
    return value == kind  # a literal


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _check_value(path: str, value: Any, kinds: tuple[str, ...]) -> Any:
    numeric = "float" in kinds or "int" in kinds
    if isinstance(value, str) and numeric and "str" not in kinds and _NUMBER.match(value.strip()):
        value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string; a number is meant
    if "int" in kinds and "float" not in kinds and isinstance(value, float) and value.is_integer():
        value = int(value)  # 1e2 or 100.0 for a count: the number is whole
    if not any(_is_kind(value, k) for k in kinds):
        shown = "null" if value is None else f"{value!r} ({type(value).__name__})"
        raise ConfigError(f"Config key {path!r} must be {_describe(kinds)}. Received: {shown}.")
    if "float" in kinds and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _unknown(path: str, key: str, allowed: Iterable[str], where: str) -> ConfigError:
    allowed = sorted(allowed)
    nearest = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    hint = f" Did you mean {nearest[0]!r}?" if nearest else ""
    return ConfigError(
        f"Unknown config key {path!r}.{hint} Allowed keys{' in ' + where if where else ''}: {', '.join(allowed)}."
    )


def _merge(config: dict[str, Any], update: Mapping[str, Any]) -> None:
    for section, values in update.items():
        if section not in SCHEMA:
            raise _unknown(str(section), section, SCHEMA, "")
        if not isinstance(values, Mapping):
            raise ConfigError(f"Config section {section!r} must be a mapping of options. Received: {values!r}")
        for key, value in values.items():
            path = f"{section}.{key}"
            if key not in SCHEMA[section]:
                raise _unknown(path, key, SCHEMA[section], section)
            config[section][key] = _check_value(path, value, SCHEMA[section][key][1])


def validate(config: Mapping[str, Any]) -> dict[str, Any]:
    """A full configuration from a (partial) nested mapping: defaults, updated and type-checked.

    Raises:
        ConfigError: an unknown section or key, or a value of the wrong type.
    """
    result = default_config()
    _merge(result, config)
    return result


def apply_override(config: dict[str, Any], override: str) -> None:
    """Apply one ``section.key=value`` override in place; the value is read as YAML.

    Raises:
        ConfigError: the override is not of the form ``section.key=value``, names an
            unknown key, or gives a value of the wrong type.
    """
    path, sep, raw = override.partition("=")
    parts = path.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise ConfigError(
            f"An override must look like section.key=value (for example scoring.n_repeats=10). Received: {override!r}"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"Could not read the value of override {override!r}: {exc}") from exc
    _merge(config, {parts[0]: {parts[1]: value}})


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Defaults, updated by a YAML file, updated by overrides; every value type-checked.

    Args:
        path: A YAML file whose top-level keys are sections (``scoring``, ``training``, ...).
        overrides: Strings ``section.key=value``.

    Returns:
        The full configuration (a new dict).

    Raises:
        ConfigError: the file cannot be read or parsed, a key is unknown or a value has the wrong type.
    """
    config = copy.deepcopy(default_config())
    if path is not None:
        path = Path(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"Could not read config file {str(path)!r}: {exc.strerror or exc}.") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"Config file {str(path)!r} is not valid YAML: {exc}") from exc
        if loaded is not None:
            if not isinstance(loaded, Mapping):
                raise ConfigError(
                    f"Config file {str(path)!r} must hold a mapping of sections. Received: {type(loaded).__name__}"
                )
            try:
                _merge(config, loaded)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None
    for override in overrides:
        apply_override(config, override)
    return config


def estimator_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """The estimators' parameters a configuration sets (planning, training, rescoring, and scoring's
    ``groups`` and ``n_repeats``); ``training.random_state`` is the estimator's ``random_state``."""
    params = {key: config["scoring"][key] for key in _ESTIMATOR_SCORING}
    for section in ("planning", "training", "rescoring"):
        for key, value in config[section].items():
            params[_ESTIMATOR_NAMES.get((section, key), key)] = value
    if isinstance(params.get("head_units"), list):
        params["head_units"] = tuple(params["head_units"])
    return params


def with_estimator_params(config: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` whose estimator keys (see :func:`estimator_params`) hold ``params``' values.

    NumPy scalars become Python numbers and tuples lists, so that the result writes as plain YAML.
    """

    def plain(value):
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value.item() if hasattr(value, "item") else value

    config = copy.deepcopy(dict(config))
    for section in ("planning", "training", "rescoring"):
        for key in config[section]:
            name = _ESTIMATOR_NAMES.get((section, key), key)
            if name in params:
                config[section][key] = plain(params[name])
    for key in _ESTIMATOR_SCORING:
        if key in params:
            config["scoring"][key] = plain(params[key])
    return config
