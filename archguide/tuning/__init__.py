"""Stage 5, search: importance-guided architectures with KerasTuner.

:class:`ImportanceHyperModel` is a ``keras_tuner.HyperModel`` whose search space is the
plan's options (budget, tiers, depth, L1) around the scores; the estimators' ``tune``
method runs it with cross-validation folds (:class:`~archguide.tuning.hypermodel.FoldedHyperModel`)
and, on a cluster, through KerasTuner's own chief and workers.
"""

from archguide.tuning.hypermodel import ImportanceHyperModel

__all__ = ["ImportanceHyperModel"]
