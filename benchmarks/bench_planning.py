"""Time plan_architecture (pure arithmetic) as the number of features grows.

Target: 1,000 features plan in well under a second.

Usage: python benchmarks/bench_planning.py
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from archguide.planning import plan_architecture
from archguide.scoring.score import FeatureScores


def synthetic_scores(n_features: int) -> FeatureScores:
    rng = np.random.default_rng(0)
    features = [f"f{i}" for i in range(n_features)]
    importances = rng.exponential(size=n_features)
    weak = importances < np.quantile(importances, 0.3)
    return FeatureScores.from_dict(
        {
            "features": features,
            "importances": importances.tolist(),
            "std": [0.0] * n_features,
            "weak": weak.tolist(),
            "groups": {f: [f] for f in features},
            "group_importances": dict(zip(features, importances.tolist())),
            "task": "regression",
        }
    )


def main() -> None:
    print(f"{'features':>9} | {'grouping':<8} | {'branches':>8} | {'seconds (best of 5)':>19}")
    print("-" * 56)
    for n in (10, 100, 1_000, 10_000):
        scores = synthetic_scores(n)
        for grouping in ("tiers", "groups"):
            times = []
            for _ in range(5):
                start = time.perf_counter()
                plan = plan_architecture(scores, total_units=max(128, 4 * n), grouping=grouping)
                times.append(time.perf_counter() - start)
            print(f"{n:>9,} | {grouping:<8} | {len(plan.branches):>8} | {min(times):>19.4f}")
    print("\nTarget: 1,000 features in well under a second.")


if __name__ == "__main__":
    main()
