"""Stage 1, scoring: which features matter, measured without a network.

A random-forest permutation proxy on held-out rows (:func:`score_features`), groups of
correlated features that share credit (:mod:`~archguide.scoring.grouping`), row splits
(:mod:`~archguide.scoring.splitting`), and a test that tells which features are
indistinguishable from noise. The result is a :class:`FeatureScores`.

Nothing in this package imports Keras.
"""

from archguide.scoring.feature_scores import FeatureScores
from archguide.scoring.score import permutation_scores, resolve_task, score_features

__all__ = ["FeatureScores", "permutation_scores", "resolve_task", "score_features"]
