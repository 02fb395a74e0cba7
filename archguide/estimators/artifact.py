"""The one-file artifact: the trained network with its preprocessing and metadata in one ``.keras`` file.

``save`` writes it (:class:`_Artifact`, a part of the estimators) and :func:`load` gives the
estimator back; the metadata (parameters, encoding, scores, plans, histories) rides in
:class:`ArtifactInfo`, an identity layer at the model's output.
"""

from __future__ import annotations

import json
import numbers
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from archguide._backend import import_keras
from archguide._files import atomic_write
from archguide.estimators.preprocessing import ColumnEncoding, dict_keys_not_names
from archguide.exceptions import ConfigError, DataError
from archguide.model.replanning import restore_record
from archguide.planning import ArchitecturePlan
from archguide.scoring.feature_scores import FeatureScores

keras = import_keras()

#: Version of the artifact's metadata layout.
ARTIFACT_FORMAT = 1
_INFO_LAYER = "archguide_info"

#: Parameters added after artifacts were first saved, with the values an artifact without them was fitted with.
_BEFORE_SAVED = {
    "scaling": "standard",
    "embedding": 0,
    "ensemble_size": 1,
    "weight_decay": 0.0,
    "label_smoothing": 0.0,
    "min_improvement": 0.0,
}


#: Estimator class name -> class, for load (filled as the estimators are defined).
_ESTIMATORS: dict[str, type] = {}


@keras.saving.register_keras_serializable(package="archguide")
class ArtifactInfo(keras.layers.Layer):
    """Identity layer that carries an estimator's metadata (plain JSON) inside a saved model.

    Args:
        info: A JSON-safe dict: the estimator's class and parameters, the
            column encoding, the scores, the plan and the histories.
    """

    def __init__(self, info: Mapping[str, Any] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.info = dict(info or {})

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "info": self.info}


def _json_safe(value):
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return None  # a RandomState or another object: not kept in the file


class _Artifact:
    """Save the fitted estimator and restore it (a part of the estimators; not public)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _ESTIMATORS[cls.__name__] = cls

    def _output_layers(self, outputs, task: str):
        return outputs

    def _assemble(self, encoding: ColumnEncoding, network, task: str):
        """The artifact: raw columns (a dict) -> encoding -> network -> output, with the metadata inside."""
        inputs = encoding.inputs()
        outputs = self._output_layers(network(encoding.encode_layers(inputs)), task)
        outputs = ArtifactInfo(self._info(task), name=_INFO_LAYER)(outputs)
        with dict_keys_not_names():
            return keras.Model(inputs, outputs, name="archguide_" + type(self).__name__)

    def _info(self, task: str) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT,
            "estimator": type(self).__name__,
            "params": {k: _json_safe(v) for k, v in self.get_params().items()},
            "task": task,
            "encoding": self.encoding_.to_dict(),
            "scores": self.scores_.to_dict(),
            "plan": self.plan_.to_dict(),
            "plans": [{**r, "plan": r["plan"].to_dict()} for r in self.plans_],
            "history": self.history_,
            "rescoring_history": json.loads(self.rescoring_history_.to_json(orient="split", double_precision=15)),
            "strengths_history": json.loads(self.strengths_history_.to_json(orient="split", double_precision=15)),
            "sensitivity": json.loads(self.sensitivity_.to_json(orient="split", double_precision=15)),
            "feature_names_in": None if not hasattr(self, "feature_names_in_") else list(self.feature_names_in_),
            "n_epochs": self.n_epochs_,
            "best_epoch": self.best_epoch_,
            "batch_size": self.batch_size_,
            "refit_history": self.refit_history_,
            **self._target_info(),
        }

    def _target_info(self) -> dict[str, Any]:
        return {}

    def _restore(self, model, info: Mapping[str, Any]) -> None:
        self.encoding_ = ColumnEncoding.from_dict(info["encoding"])
        self.scores_ = FeatureScores.from_dict(info["scores"])
        self.plan_ = ArchitecturePlan.from_dict(info["plan"])
        self.plans_ = [restore_record(r) for r in info.get("plans", [])] or [
            {"epoch": 0, "reason": "scores", "moved": [], "importances": {}, "weak": [], "plan": self.plan_}
        ]
        self.history_ = {k: list(v) for k, v in info["history"].items()}
        self.rescoring_history_ = _frame(info["rescoring_history"]).apply(pd.to_numeric)
        self.strengths_history_ = _frame(info.get("strengths_history")).apply(pd.to_numeric)
        sensitivity = _frame(info.get("sensitivity")).reindex(columns=["held_out", "training", "flagged"])
        sensitivity.index = pd.Index(sensitivity.index, dtype=object)
        self.sensitivity_ = sensitivity.astype({"held_out": float, "training": float, "flagged": bool})
        self.n_features_in_ = len(self.encoding_.columns)
        if info.get("feature_names_in") is not None:
            self.feature_names_in_ = np.asarray(info["feature_names_in"], dtype=object)
        self.n_epochs_ = int(info["n_epochs"])
        self.best_epoch_ = int(info["best_epoch"])
        self.batch_size_ = int(info.get("batch_size", self.batch_size))  # saved before "auto": the parameter
        refit_history = info.get("refit_history")
        self.refit_history_ = None if refit_history is None else {k: list(v) for k, v in refit_history.items()}
        self._restore_target(info)
        self.model_ = model

    def _restore_target(self, info: Mapping[str, Any]) -> None:
        pass

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path) -> None:
        """Write the fitted estimator to one ``.keras`` file.

        The file holds the network with its preprocessing (it takes raw
        columns), the plan, the scores and the histories. Read it with
        :func:`archguide.load`, or with ``keras.models.load_model`` after
        ``import archguide``. The file is written to a temporary name first:
        if saving fails, an existing file at ``path`` is left as it was.

        Raises:
            NotFittedError: before ``fit``.
            ConfigError: ``path`` does not end in ``.keras``.
        """
        self._check_fitted()
        path = Path(path)
        if path.suffix != ".keras":
            raise ConfigError(
                f"Received an invalid value for path, expected a name ending in '.keras'. Received: {path}"
            )
        atomic_write(path, lambda tmp: self.model_.save(tmp))


def _frame(split) -> pd.DataFrame:
    """A DataFrame from ``to_json(orient="split")``'s content (an artifact before a key existed: empty)."""
    if not split:
        return pd.DataFrame()
    return pd.DataFrame(split["data"], columns=split["columns"], index=split["index"])


def _artifact_info(path: Path) -> Mapping[str, Any]:
    """The metadata in a ``.keras`` file, read from its config without building the model."""
    if not path.exists():
        raise FileNotFoundError(f"No such file: {str(path)!r}")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{str(path)!r} is not a .keras file (a .keras file is a zip archive written by model.save).")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError) as exc:
        raise DataError(f"{str(path)!r} is not a .keras file: it has no readable config.json ({exc}).") from None

    def find(node):
        if isinstance(node, dict):
            if node.get("registered_name") == "archguide>ArtifactInfo":
                return node.get("config", {}).get("info")
            for value in node.values():
                found = find(value)
                if found is not None:
                    return found
        elif isinstance(node, list):
            for value in node:
                found = find(value)
                if found is not None:
                    return found
        return None

    info = find(config)
    if not info or info.get("estimator") not in _ESTIMATORS:
        raise DataError(
            f"{str(path)!r} is a Keras model but not an archguide artifact (it was not written by "
            "ImportanceGuidedRegressor.save or ImportanceGuidedClassifier.save). Load it with "
            "keras.models.load_model."
        )
    if int(info.get("format", 0)) > ARTIFACT_FORMAT:
        raise DataError(
            f"{str(path)!r} was written by a newer archguide (artifact format {info['format']}); upgrade archguide."
        )
    return info


def load(path: str | Path):
    """Load an estimator saved with ``save``.

    The returned estimator predicts exactly what the saved one did. Loading
    uses Keras' safe mode (no arbitrary code is run).

    Args:
        path: A ``.keras`` file written by ``ImportanceGuidedRegressor.save``
            or ``ImportanceGuidedClassifier.save``.

    Returns:
        A fitted :class:`ImportanceGuidedRegressor` or :class:`ImportanceGuidedClassifier`.

    Raises:
        FileNotFoundError: no file at ``path``.
        DataError: the file is not a ``.keras`` file, or not an archguide artifact.
    """
    path = Path(path)
    info = _artifact_info(path)
    try:
        with dict_keys_not_names():
            model = keras.models.load_model(path, safe_mode=True, compile=False)
        cls = _ESTIMATORS[info["estimator"]]
        params = {**_BEFORE_SAVED, **{k: v for k, v in info["params"].items() if k in cls().get_params()}}
        estimator = cls(**params)
        estimator._restore(model, info)
    except (KeyError, TypeError, ValueError, AttributeError, OSError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else " ".join(str(exc).split())[:200]
        raise DataError(
            f"{str(path)!r} is damaged: an archguide artifact whose model or metadata cannot be read ({detail}). "
            "Save the estimator again."
        ) from exc
    return estimator
