import matplotlib

matplotlib.use("Agg")

import numpy as np

import archguide as ag
from archguide.plotting import plot_scores


def test_plot_marks_weak_features_groups_and_threshold(friedman, tmp_path):
    X, y = friedman
    X = np.column_stack([X, X[:, 0]])  # a near-copy of x0 makes a group
    scores = ag.score_features(X, y, random_state=0)
    ax = plot_scores(scores)
    bars = ax.patches
    assert len(bars) == 21
    assert sum(1 for b in bars if b.get_hatch()) == int(scores.weak.sum())
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "x0  [x0+x20]" in labels and "x20  [x0+x20]" in labels
    threshold = [line for line in ax.get_lines() if line.get_label() == "largest weak importance"]
    assert threshold and threshold[0].get_xdata()[0] == scores.noise_threshold
    assert len(scores.plot(top=5).patches) == 5
    ax.figure.savefig(tmp_path / "scores.png")
    assert (tmp_path / "scores.png").stat().st_size > 1000
