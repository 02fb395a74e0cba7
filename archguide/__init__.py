"""archguide: Keras networks for tabular data whose shape follows feature importance.

The pipeline, stage by stage (each stage is a public function over a plain value):

>>> import archguide as ag
>>> scores = ag.score_features(X, y, random_state=0)   # doctest: +SKIP
"""

import importlib
import os
import sys

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_PUBLIC = {
    "ArchguideError": "archguide.exceptions",
    "ArchguideWarning": "archguide.exceptions",
    "ConfigError": "archguide.exceptions",
    "DataError": "archguide.exceptions",
    "NotFittedError": "archguide.exceptions",
    "TrainingError": "archguide.exceptions",
    "ArchitecturePlan": "archguide.planning",
    "Branch": "archguide.planning",
    "l1_strengths": "archguide.planning",
    "plan_architecture": "archguide.planning",
    "FeatureScores": "archguide.scoring",
    "score_features": "archguide.scoring",
    "load_run": "archguide.report",
    "save_run": "archguide.report",
    "write_report": "archguide.report",
    "plot_history": "archguide.plotting",
    "plot_plan": "archguide.plotting",
    "plot_scores": "archguide.plotting",
    "build_model": "archguide.model",
    "ImportanceRescoring": "archguide.model",
    "ColumnSelector": "archguide.model",
    "FeatureGate": "archguide.model",
    "network_importance": "archguide.model",
    "ImportanceGuidedClassifier": "archguide.estimators",
    "ImportanceGuidedRegressor": "archguide.estimators",
    "load": "archguide.estimators",
    "write_predictions": "archguide.estimators",
    # KerasTuner is imported on first use: ``import archguide`` does not pay for it.
    "ImportanceHyperModel": "archguide.tuning",
}

__all__ = sorted([*_PUBLIC, "__version__"])


def _command_line_run() -> bool:
    """Whether this import only starts the command line (``archguide ...`` or ``python -m archguide``).

    The command line imports Keras when a command needs it, so that ``--help``, a bad argument or
    ``archguide report`` answer at once. (While ``python -m`` looks for its module, ``sys.argv[0]``
    is ``"-m"``.)
    """
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 == "-m":  # only `python -m archguide`, not another module whose package imports archguide
        original = list(getattr(sys, "orig_argv", ()))
        at = original.index("-m") + 1 if "-m" in original else len(original)
        return at < len(original) and original[at].split(".")[0] == "archguide"
    return os.path.splitext(os.path.basename(argv0))[0] in ("archguide", "archguide-script")


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'archguide' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if not _command_line_run():
    # Keras is imported with the package so that archguide's registered Keras objects are known
    # before a saved model is loaded (keras.models.load_model after `import archguide`); without a
    # backend this raises one ImportError that says what to install.
    from archguide._backend import import_keras

    import_keras()
    for _name, _module in _PUBLIC.items():
        if _module != "archguide.tuning":
            globals()[_name] = getattr(importlib.import_module(_module), _name)
    del _name, _module, import_keras
