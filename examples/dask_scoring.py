"""
Score features on a dask cluster
================================

scikit-learn's forests run their trees through joblib's dask backend.

    pip install "archguide[dask]"
    python examples/dask_scoring.py                          # a local cluster of 2 worker processes
    python examples/dask_scoring.py tcp://scheduler:8786     # an existing cluster

The scores are the default backend's (same seed, same trees; the last digits of a sum may differ, as
with any n_jobs > 1). Cluster set-up stays under ``if __name__ == "__main__":``: dask's worker
processes import this file.
"""

import sys

import joblib
from sklearn.datasets import make_friedman1

import archguide as ag

if __name__ == "__main__":
    from distributed import Client, LocalCluster

    X, y = make_friedman1(n_samples=20_000, n_features=50, noise=1.0, random_state=0)
    if len(sys.argv) > 1:
        client = Client(sys.argv[1])
    else:
        client = Client(LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None))
    with client, joblib.parallel_config(backend="dask"):
        scores = ag.score_features(X, y, random_state=0, n_jobs=-1)  # n_jobs: trees fitted in parallel
    print(scores.to_frame()[["importance", "std", "weak"]].head(10))
