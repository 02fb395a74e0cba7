"""Plots and reports. Uses matplotlib, never Keras."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archguide.feature_scores import FeatureScores

__all__ = ["plot_scores"]

_WEAK_COLOR = "#b0b0b0"
_SINGLE_COLOR = "#1f77b4"


def plot_scores(scores: FeatureScores, ax=None, *, top: int | None = None):
    """Horizontal bar chart of feature importances.

    Bars carry the repeats' spread as error bars and are sorted, most
    important on top. Weak features are grey and hatched, and the largest
    importance among weak groups is a dashed line (every group right of it
    is not weak). Features of a multi-feature group share a colour, and the
    group's name follows theirs.

    Args:
        scores: A :class:`~archguide.scoring.FeatureScores`.
        ax: A matplotlib Axes to draw on; a new figure when None.
        top: Show only the ``top`` most important features.

    Returns:
        The matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    frame = scores.to_frame(sort=True)
    if top is not None:
        frame = frame.head(top)
    frame = frame.iloc[::-1]  # barh draws bottom-up
    if ax is None:
        _, ax = plt.subplots(figsize=(7, max(2.5, 0.3 * len(frame) + 1.2)))

    palette = plt.get_cmap("tab10").colors[1:]
    multi = [g for g, members in scores.groups.items() if len(members) > 1]
    group_color = {g: palette[i % len(palette)] for i, g in enumerate(multi)}
    colors = [
        _WEAK_COLOR if weak else group_color.get(group, _SINGLE_COLOR)
        for group, weak in zip(frame["group"], frame["weak"])
    ]
    labels = [f"{f}  [{g}]" if g in group_color else str(f) for f, g in zip(frame.index, frame["group"])]
    bars = ax.barh(labels, frame["importance"], xerr=frame["std"], color=colors, ecolor="#333333", capsize=2)
    for bar, weak in zip(bars, frame["weak"]):
        if weak:
            bar.set_hatch("//")
    ax.axvline(scores.noise_threshold, color="#d62728", linestyle="--", linewidth=1, label="largest weak importance")
    ax.axvline(0.0, color="black", linewidth=0.5)
    ax.set_xlabel(f"drop in held-out {scores.metric} when shuffled")
    ax.set_title(f"Feature importance ({scores.task}); grey, hatched: weak")
    ax.legend(loc="lower right")
    ax.figure.tight_layout()
    return ax
