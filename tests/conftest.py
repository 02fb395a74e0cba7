"""Shared fixtures. Quiet logs and a headless plot backend before anything imports them."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")
# scikit-learn's estimator checks include one that needs SciPy's array API mode, set before SciPy loads.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_friedman1

N_INFORMATIVE = 5


@pytest.fixture(autouse=True)
def _seed():
    """Fix the global seeds so that no test depends on the order tests run in."""
    np.random.seed(0)  # noqa: NPY002 (the legacy global state is what unseeded code draws from)
    import random

    random.seed(0)


@pytest.fixture(scope="session")
def friedman():
    """Friedman #1: y depends on x0..x4 only; x5..x19 are noise."""
    X, y = make_friedman1(n_samples=3000, n_features=20, noise=1.0, random_state=0)
    return X, y


@pytest.fixture(scope="session")
def classification():
    """make_classification without shuffling: x0..x4 informative, x5..x19 noise."""
    X, y = make_classification(
        n_samples=4000,
        n_features=20,
        n_informative=N_INFORMATIVE,
        n_redundant=0,
        n_repeated=0,
        n_clusters_per_class=1,
        shuffle=False,
        random_state=0,
    )
    return X, y


@pytest.fixture
def mixed_frame():
    """A table with every column kind, missing values, and a known truth.

    y depends on ``num`` (numeric, with missing values), ``city`` (a string
    categorical) and ``flag`` (boolean); ``noise`` is noise.
    """
    rng = np.random.default_rng(1)
    n = 1500
    num = rng.normal(size=n)
    city = rng.choice(["paris", "lyon", "nice"], size=n)
    flag = rng.random(n) < 0.5
    y = 2 * num + np.select([city == "paris", city == "lyon"], [3.0, -3.0], 0.0) + 2.0 * flag
    y = y + 0.3 * rng.normal(size=n)
    num_with_gaps = num.copy()
    num_with_gaps[rng.random(n) < 0.05] = np.nan
    frame = pd.DataFrame({"num": num_with_gaps, "city": city, "flag": flag, "noise": rng.normal(size=n)})
    return frame, pd.Series(y, name="target")


def make_scores(importances, weak=(), groups=None, task="regression"):
    """FeatureScores with chosen importances, without running the scorer."""
    from archguide.scoring.score import FeatureScores

    features = list(importances)
    groups = groups or {f: [f] for f in features}
    return FeatureScores.from_dict(
        {
            "features": features,
            "importances": [float(importances[f]) for f in features],
            "std": [0.0] * len(features),
            "weak": [f in set(weak) for f in features],
            "groups": groups,
            "group_importances": {g: float(sum(importances[f] for f in m)) for g, m in groups.items()},
            "task": task,
            "feature_types": dict.fromkeys(features, "numeric"),
        }
    )


@pytest.fixture(scope="session")
def friedman_scores(friedman):
    import archguide as ag

    X, y = friedman
    return ag.score_features(X, y, random_state=0)


def run_python(code: str, *args: str, check: bool = True, timeout: float = 600):
    """Run ``python -c code`` (or ``python *args`` when code is empty) in a fresh process with quiet logs.

    The process runs with ``-X faulthandler``: should it die of a signal, its
    Python stack (every thread's) is in the failure message, with the end of
    what it printed.
    """
    import subprocess
    import sys
    import textwrap

    command = [sys.executable, "-X", "faulthandler", *(("-c", textwrap.dedent(code)) if code else ()), *args]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    )
    if check:
        assert result.returncode == 0, (
            f"exit code {result.returncode}\n--- stdout (end) ---\n{result.stdout[-1500:]}"
            f"\n--- stderr (end) ---\n{result.stderr[-6000:]}"
        )
    return result


def chromium():
    """A headless-capable Chromium on this machine, or None (Debian: apt-get install chromium)."""
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


#: Chromium's flags for a closed network: no background connections, no sandbox as root.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
