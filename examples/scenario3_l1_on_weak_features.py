"""
Source notes, scenario 3: L1 on the features that are not important
===================================================================

The notes apply one L1 strength to a whole Dense layer and wish for "a stronger
regularization on the less important features". archguide's input gate holds one L1
strength per feature. Here only the weak features are penalised (the notes' scenario
taken literally); ``plan_architecture`` alone gives the adaptive-lasso version, where
strength falls smoothly as importance rises.

Run: python examples/scenario3_l1_on_weak_features.py
"""

import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from sklearn.datasets import make_friedman1

import archguide as ag

X, y = make_friedman1(n_samples=4000, n_features=12, noise=1.0, random_state=0)
y = (y - y.mean()) / y.std()
scores = ag.score_features(X, y, random_state=0)
print("weak features:", scores.weak[scores.weak].index.tolist(), end="\n\n")

plan = ag.plan_architecture(scores, total_units=48, grouping="groups")
# L1 on the weak features only: strength 0.05 there, none elsewhere.
plan = dataclasses.replace(plan, l1_strengths={f: (0.05 if f in plan.weak else 0.0) for f in plan.features})
model = ag.build_model(plan, seed=0, learning_rate=3e-3)
model.fit(X.astype("float32"), y, epochs=40, batch_size=64, verbose=0)

gates = np.abs(model.get_layer("gate").get_gates())
weak = np.array([f in plan.weak for f in plan.features])
print(f"{'feature':>8}  {'L1':>5}  {'|gate|':>6}")
for f, g in zip(plan.features, gates):
    print(f"{f:>8}  {plan.l1_strengths[f]:>5.2f}  {g:>6.3f}")
print(
    f"\nmean |gate|: informative {gates[~weak].mean():.3f}, weak {gates[weak].mean():.3f} "
    f"(ratio {gates[~weak].mean() / max(gates[weak].mean(), 1e-9):.0f}x)"
)
