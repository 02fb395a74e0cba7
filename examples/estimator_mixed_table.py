"""
One call: fit, save and load an estimator on raw columns
========================================================

Fit an importance-guided network on a table of raw columns, save it, load it.

The table has a numeric column with gaps, a categorical column, a boolean column
and a noise column; the target depends on the first three. The saved file takes
raw columns, so it predicts on a new table as it is.
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd

import archguide as ag

rng = np.random.default_rng(0)
n = 600
table = pd.DataFrame(
    {
        "size": rng.normal(size=n),
        "city": rng.choice(["paris", "lyon", "nice"], size=n),
        "garden": rng.random(n) < 0.5,
        "noise": rng.normal(size=n),
    }
)
price = 2 * table["size"] + table["city"].map({"paris": 3.0, "lyon": -3.0, "nice": 0.0}) + 2.0 * table["garden"]
price = price + 0.3 * rng.normal(size=n)
table.loc[rng.random(n) < 0.1, "size"] = np.nan  # gaps: imputed inside the model, with an indicator

est = ag.ImportanceGuidedRegressor(random_state=0).fit(table, price)
print(est.scores_.group_importances.sort_values(ascending=False).round(3).to_string())
print("weak:", [g for g, members in est.scores_.groups.items() if est.scores_.weak[members].all()])
print(est.plan_.summary())
print(f"R^2 on the training table: {est.score(table, price):.3f}")

# The plan as a drawing (branch widths follow importance), and how training went: the data loss, the
# penalty, the network's own importance and the L1 strengths it moved.
ag.plot_plan(est.plan_)
ag.plot_history(est)

with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "price.keras")
    est.save(path)
    loaded = ag.load(path)
    new = pd.DataFrame({"garden": [True, False], "city": ["paris", "berlin"], "size": [0.5, np.nan], "noise": 0.0})
    print("predictions on new rows (an unseen city, a gap, columns in another order):", loaded.predict(new).round(2))
    print("loaded model predicts exactly as the fitted one:", np.array_equal(loaded.predict(table), est.predict(table)))
