"""Models saved by an earlier archguide load and predict exactly as they did when saved.

The fixtures in ``tests/artifacts/0.1.0/`` were written by ``tests/artifacts/make_artifacts.py``
before the package was cut into sub-packages; between them they hold every registered Keras
object archguide saves. Each is loaded in a fresh process, as a user would.
"""

from pathlib import Path

import pytest
from conftest import run_python

FIXTURES = Path(__file__).parent / "artifacts" / "0.1.0"

pytestmark = pytest.mark.slow


def test_models_saved_before_load_in_a_fresh_process_and_predict_the_same():
    result = run_python(
        f"""
        import numpy as np, pandas as pd
        import archguide as ag

        folder = {str(FIXTURES)!r}
        X = pd.read_csv(folder + "/table.csv")
        expected = np.load(folder + "/predictions.npz")
        regressor = ag.load(folder + "/regressor.keras")
        classifier = ag.load(folder + "/classifier.keras")
        assert type(regressor) is ag.ImportanceGuidedRegressor
        assert type(classifier) is ag.ImportanceGuidedClassifier
        np.testing.assert_array_equal(regressor.predict(X), expected["regressor"])
        np.testing.assert_array_equal(classifier.predict(X), expected["classifier"])
        np.testing.assert_array_equal(classifier.predict_proba(X), expected["classifier_proba"])
        # Raw columns in another order are still read by name.
        np.testing.assert_array_equal(regressor.predict(X[X.columns[::-1]]), expected["regressor"])
        print(*classifier.classes_, regressor.embedding, regressor.ensemble_size)
        """
    )
    assert result.stdout.split("\n")[-2] == "high low middle 4 2"
