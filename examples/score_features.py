"""
Score the features of a table with a known truth
================================================

See what archguide finds.

Friedman #1: y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise, plus
15 features y ignores. We add a near-copy of x3, which permutation importance
alone would hide (shuffling one copy leaves the other), and a categorical column.

Run: python examples/score_features.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from sklearn.datasets import make_friedman1

import archguide as ag

X, y = make_friedman1(n_samples=5000, n_features=20, noise=1.0, random_state=0)
X = pd.DataFrame(X, columns=[f"x{i}" for i in range(20)])
rng = np.random.default_rng(0)
X["x3_copy"] = X["x3"] + 0.01 * rng.standard_normal(len(X))
X["colour"] = rng.choice(["red", "green", "blue"], size=len(X))  # y ignores it
X.loc[rng.random(len(X)) < 0.05, "x4"] = np.nan  # missing values are fine

scores = ag.score_features(X, y, random_state=0)
print(scores)
print("\ngroups with more than one feature:", {g: m for g, m in scores.groups.items() if len(m) > 1})
print("features indistinguishable from noise:", scores.weak[scores.weak].index.tolist())
print(
    "informative (x0..x4, x3_copy) all above every noise feature:",
    scores.importances[["x0", "x1", "x2", "x3", "x4", "x3_copy"]].min()
    > scores.importances.drop(["x0", "x1", "x2", "x3", "x4", "x3_copy"]).max(),
)

# The scores as bars: weak features grey and hatched, the largest weak importance a dashed line.
scores.plot()
