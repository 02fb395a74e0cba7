"""Options from YAML files, with dotted overrides.

A configuration is a nested dict of sections. Each section's allowed keys and
defaults come from the signature of the function it configures, so the
defaults are written in one place only: the function. A YAML file or a
``--set section.key=value`` override may change any of them; an unknown key is
a :class:`~archguide.exceptions.ConfigError` that lists the allowed ones.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from archguide.exceptions import ConfigError

__all__ = ["default_config", "load_config", "apply_override"]


def _section_defaults(function, exclude: Iterable[str]) -> dict[str, Any]:
    params = inspect.signature(function).parameters.values()
    return {
        p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in set(exclude)
    }


def default_config() -> dict[str, Any]:
    """The default configuration: every section with every allowed key."""
    from archguide.scoring import score_features

    return {
        "data": {"target": None, "sep": ","},
        "scoring": _section_defaults(score_features, exclude=("estimator", "verbose", "n_shadow")),
    }


def _merge(base: dict[str, Any], update: Mapping[str, Any], where: str = "") -> None:
    for key, value in update.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in base:
            allowed = ", ".join(sorted(base))
            raise ConfigError(f"Unknown config key {path!r}. Allowed keys{' in ' + where if where else ''}: {allowed}.")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"Config key {path!r} must be a mapping of options. Received: {value!r}")
            _merge(base[key], value, path)
        else:
            base[key] = value


def apply_override(config: dict[str, Any], override: str) -> None:
    """Apply one ``section.key=value`` override in place; the value is read as YAML.

    Raises:
        ConfigError: the override is not of the form ``a.b=value`` or names an unknown key.
    """
    path, sep, raw = override.partition("=")
    if not sep or not path.strip():
        raise ConfigError(
            f"An override must look like section.key=value (for example scoring.n_repeats=10). Received: {override!r}"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"Could not read the value of override {override!r}: {exc}") from exc
    nested: Any = value
    for part in reversed(path.strip().split(".")):
        nested = {part: nested}
    _merge(config, nested)


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Defaults, updated by a YAML file, updated by overrides.

    Args:
        path: A YAML file whose top-level keys are sections (``scoring``, ...).
        overrides: Strings ``section.key=value``.

    Returns:
        The full configuration (a new dict).

    Raises:
        ConfigError: the file cannot be read or parsed, or a key is unknown.
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
            _merge(config, loaded)
    for override in overrides:
        apply_override(config, override)
    return config
