"""The estimators: scikit-learn faces that chain every stage, and their one-file artifact.

:class:`ImportanceGuidedRegressor` and :class:`ImportanceGuidedClassifier` take a raw
table (numeric, boolean and categorical columns, missing values), encode it inside the
network (:mod:`~archguide.estimators.preprocessing`), score, plan, build and train, and
save a ``.keras`` file that :func:`load` reads back.
"""

from archguide.estimators._streaming import write_predictions
from archguide.estimators.artifact import load
from archguide.estimators.estimator import ImportanceGuidedClassifier, ImportanceGuidedRegressor

__all__ = ["ImportanceGuidedClassifier", "ImportanceGuidedRegressor", "load", "write_predictions"]
