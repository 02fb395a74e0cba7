"""archguide: Keras networks for tabular data whose shape follows feature importance.

The pipeline, stage by stage (each stage is a public function over a plain value):

>>> import archguide as ag
>>> scores = ag.score_features(X, y, random_state=0)   # doctest: +SKIP
"""

from archguide._backend import import_keras

# Keras is imported with the package so that archguide's registered Keras
# objects are known before a saved model is loaded; without a backend this
# raises one ImportError that says what to install.
keras = import_keras()

from archguide.builder import build_model  # noqa: E402
from archguide.callbacks import ImportanceRescoring  # noqa: E402
from archguide.estimators import ImportanceGuidedClassifier, ImportanceGuidedRegressor, load  # noqa: E402
from archguide.exceptions import (  # noqa: E402
    ArchguideError,
    ArchguideWarning,
    ConfigError,
    DataError,
    NotFittedError,
    TrainingError,
)
from archguide.layers import ColumnSelector, FeatureGate  # noqa: E402
from archguide.network import network_importance  # noqa: E402
from archguide.planning import ArchitecturePlan, Branch, l1_strengths, plan_architecture  # noqa: E402
from archguide.plotting import plot_history, plot_plan, plot_scores  # noqa: E402
from archguide.report import load_run, save_run, write_report  # noqa: E402
from archguide.scoring import FeatureScores, score_features  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ArchguideError",
    "ArchguideWarning",
    "ArchitecturePlan",
    "Branch",
    "ColumnSelector",
    "ConfigError",
    "DataError",
    "FeatureGate",
    "FeatureScores",
    "ImportanceGuidedClassifier",
    "ImportanceGuidedRegressor",
    "ImportanceHyperModel",
    "ImportanceRescoring",
    "NotFittedError",
    "TrainingError",
    "__version__",
    "build_model",
    "l1_strengths",
    "load",
    "load_run",
    "network_importance",
    "plan_architecture",
    "plot_history",
    "plot_plan",
    "plot_scores",
    "save_run",
    "score_features",
    "write_report",
]

del keras


def __getattr__(name: str):
    # KerasTuner is imported on first use: ``import archguide`` does not pay for it.
    if name == "ImportanceHyperModel":
        from archguide.tuning import ImportanceHyperModel

        return ImportanceHyperModel
    raise AttributeError(f"module 'archguide' has no attribute {name!r}")
