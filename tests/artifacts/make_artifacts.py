"""Write the saved-model fixtures that ``tests/test_saved_artifacts.py`` loads.

Run once from the repository root with the archguide whose format the fixtures pin
(``python tests/artifacts/make_artifacts.py``); the files go to ``tests/artifacts/0.1.0/``.
They were written by the code of commit ae0e6cb, before the package was cut into
sub-packages, so the test shows that a model saved then still loads and predicts the same.

Between them the two models hold every registered Keras object archguide saves:
numeric and category encoders, the feature gate, periodic numeric embeddings, category
embeddings, an efficient ensemble, the smoothed cross-entropy loss and the data-loss metric.
"""

from pathlib import Path

import numpy as np
import pandas as pd

import archguide as ag

OUT = Path(__file__).parent / "0.1.0"


def table(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "size": rng.lognormal(0.0, 0.6, n),
            "age": rng.uniform(0, 40, n),
            "colour": rng.choice(["red", "green", "blue", "white"], n),
            "organic": rng.random(n) < 0.4,
            "noise": rng.normal(size=n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "age"] = np.nan
    return frame


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    X = table()
    X.to_csv(OUT / "table.csv", index=False)
    X = pd.read_csv(OUT / "table.csv")  # what the test reads
    colour = X["colour"].map({"red": 1.0, "green": -0.5, "blue": 0.0, "white": 0.5})
    y = 2 * np.log(X["size"]) + colour + 0.5 * X["organic"] + np.random.default_rng(1).normal(0, 0.1, len(X))
    common = dict(epochs=4, n_repeats=2, random_state=0)
    regressor = ag.ImportanceGuidedRegressor(embedding=4, category_embedding=4, ensemble_size=2, **common)
    regressor.fit(X, y)
    regressor.save(OUT / "regressor.keras")
    labels = np.where(y > 0.5, "high", np.where(y > -0.5, "middle", "low"))
    classifier = ag.ImportanceGuidedClassifier(label_smoothing=0.1, **common).fit(X, labels)
    classifier.save(OUT / "classifier.keras")
    np.savez(
        OUT / "predictions.npz",
        regressor=regressor.predict(X),
        classifier=classifier.predict(X),
        classifier_proba=classifier.predict_proba(X),
    )


if __name__ == "__main__":
    main()
