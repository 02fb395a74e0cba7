"""
Source notes, scenario 2: a wider path for the important pair
=============================================================

A narrower one for the rest.

The notes hand-build two branches, Dense(16) for feature1/feature2 and Dense(8) for
feature3/feature4, concatenated into a shared Dense(32) and a linear output. Here the
scores decide which features are the important pair, and the plan gives them the units.

Run: python examples/scenario2_two_branches.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd

import archguide as ag

rng = np.random.default_rng(0)
n = 4000
X = pd.DataFrame(rng.uniform(size=(n, 4)), columns=["feature1", "feature2", "feature3", "feature4"])
# feature1 and feature2 matter a lot and interact; feature3 and feature4 a little.
y = 4 * np.sin(3 * X.feature1 * X.feature2) + 3 * X.feature2 + 0.4 * X.feature3 + 0.3 * X.feature4
y = y + 0.1 * rng.standard_normal(n)

scores = ag.score_features(X, y, random_state=0)
print(scores, end="\n\n")

# Two tiers, 24 first-layer units with a floor of 8: the important pair gets 16, the rest 8,
# merged into a shared Dense(32) head (the notes' layout).
plan = ag.plan_architecture(scores, n_tiers=2, total_units=24, min_units=8, depth=1, head_units=32)
print(plan.summary(), end="\n\n")
assert [b.units for b in plan.branches] == [(16,), (8,)]
assert set(plan.branches[0].features) == {"feature1", "feature2"}

model = ag.build_model(plan, task="regression", seed=0)
history = model.fit(X.to_numpy("float32"), y.to_numpy(), epochs=30, batch_size=64, validation_split=0.2, verbose=0)
print(
    f"validation MSE: first epoch {history.history['val_data_loss'][0]:.3f}, "
    f"last epoch {history.history['val_data_loss'][-1]:.3f} (target variance {y.var():.3f})"
)
