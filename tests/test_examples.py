"""Every example runs and prints what it claims."""

from pathlib import Path

import pytest
from conftest import run_python

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXPECTED = {
    "score_features.py": "informative (x0..x4, x3_copy) all above every noise feature: True",
    "scenario2_two_branches.py": "tier_1  [16]",
    "scenario3_l1_on_weak_features.py": "mean |gate|: informative",
    "estimator_mixed_table.py": "loaded model predicts exactly as the fitted one: True",
    "dask_scoring.py": "importance",
    "mirrored_training.py": "2 replicas; network importance at the end:",
}


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name):
    if name == "dask_scoring.py":
        pytest.importorskip("distributed")
    result = run_python("", str(EXAMPLES / name))
    assert EXPECTED[name] in result.stdout
