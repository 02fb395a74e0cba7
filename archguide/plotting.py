"""Plots of archguide's results: feature scores, plans and training histories.

Each function takes a result object (or what a saved run holds) and returns
matplotlib objects that users can restyle or save. The functions read their
arguments' public attributes and import no scores type, so that
``FeatureScores.plot`` can call this module without an import cycle.
matplotlib is imported inside the functions; no Keras.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archguide.planning import ArchitecturePlan

__all__ = ["plot_history", "plot_plan", "plot_scores"]

_WEAK_COLOR = "#b0b0b0"
_SINGLE_COLOR = "#1f77b4"


def plot_scores(scores, ax=None, *, top: int | None = None):
    """Horizontal bar chart of feature importances.

    Bars carry the repeats' spread as error bars and are sorted, most
    important on top. Weak features are grey and hatched, and the largest
    importance among weak groups is a dashed line (every group right of it
    is not weak). Features of a multi-feature group share a colour, and the
    group's name follows theirs.

    Args:
        scores: A :class:`~archguide.FeatureScores`.
        ax: A matplotlib Axes to draw on; a new figure when None.
        top: Show only the ``top`` most important features.

    Returns:
        The matplotlib Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

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
    ax.set_ylabel("feature  [group]" if group_color else "feature")
    ax.set_title(f"Feature importance ({scores.task})")
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Patch(facecolor=_WEAK_COLOR, hatch="//", label="weak: indistinguishable from noise"))
    # below the axes: a legend inside would cover the bars of the least important features
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.6 / ax.figure.get_figheight()),
              ncols=2, fontsize=8, frameon=False)  # fmt: skip
    ax.figure.tight_layout()
    return ax


def plot_plan(plan: ArchitecturePlan, ax=None, *, max_names: int = 6):
    """The plan drawn as branches: each branch's layers as boxes as wide as their units, with the
    features it reads and their L1 strengths, merging into the shared head.

    Args:
        plan: An :class:`~archguide.planning.ArchitecturePlan`.
        ax: A matplotlib Axes to draw on; a new figure when None.
        max_names: Features named per branch; the rest are counted.

    Returns:
        The matplotlib Axes. Each layer is one rectangle patch whose label is
        ``"<branch> layer <i>: <units>"`` (the head's ``"head layer <i>: <units>"``).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    branches = plan.branches
    if ax is None:
        _, ax = plt.subplots(figsize=(9, max(2.5, 0.9 * len(branches) + 1.2)))
    widest = max([u for b in branches for u in b.units] + list(plan.head_units) + [1])
    depth = max([len(b.units) for b in branches] + [1])
    head_x = 2.2 + depth * 1.1
    centre = (len(branches) - 1) / 2
    strengths = plan.l1_strengths
    floor = min(strengths.values()) if strengths else 1.0
    for row, branch in enumerate(branches):
        y = len(branches) - 1 - row
        names = list(branch.features)
        shown = ", ".join(names[:max_names]) + (f" (+{len(names) - max_names})" if len(names) > max_names else "")
        ratio = [strengths[f] / floor for f in branch.features if f in strengths]
        low, high = (min(ratio), max(ratio)) if ratio else (None, None)
        penalty = (
            "" if low is None else f"L1 x{low:.3g}" if f"{low:.3g}" == f"{high:.3g}" else f"L1 x{low:.3g}-{high:.3g}"
        )
        ax.text(2.0, y + 0.18, branch.name, ha="right", va="center", fontsize=9, fontweight="bold")
        ax.text(2.0, y - 0.12, shown, ha="right", va="center", fontsize=7.5, color="#444444")
        ax.text(2.0, y - 0.35, penalty, ha="right", va="center", fontsize=7, color="#b22222")
        for i, units in enumerate(branch.units):
            height = _box_height(units, widest)
            box = Rectangle((2.3 + i * 1.1, y - height / 2), 0.8, height, color="#1f77b4", alpha=0.8,
                            label=f"{branch.name} layer {i + 1}: {units}")  # fmt: skip
            ax.add_patch(box)
            _units_label(ax, 2.7 + i * 1.1, y, height, units)
        last = 2.3 + (len(branch.units) - 1) * 1.1 + 0.8
        ax.annotate("", xy=(head_x, centre), xytext=(last, y), arrowprops={"arrowstyle": "->", "color": "#888888"})
    for i, units in enumerate(plan.head_units):
        height = _box_height(units, widest)
        box = Rectangle((head_x + i * 1.1, centre - height / 2), 0.8, height, color="#2ca02c", alpha=0.8,
                        label=f"head layer {i + 1}: {units}")  # fmt: skip
        ax.add_patch(box)
        _units_label(ax, head_x + 0.4 + i * 1.1, centre, height, units)
    ax.set_xlim(-2.5, head_x + max(1, len(plan.head_units)) * 1.1 + 0.3)
    ax.set_ylim(-0.8, len(branches) - 0.2)
    ax.axis("off")
    ax.set_title(
        f"Plan: {len(branches)} branches, {sum(b.units[0] for b in branches)} first-layer units\n"
        f"box height proportional to units (tallest: {widest}); red: L1 strength relative to the weakest penalty"
    , fontsize=9)  # fmt: skip
    ax.figure.tight_layout()
    return ax


def _units_label(ax, x: float, y: float, height: float, units: int) -> None:
    """The units in the box, or just above a box too thin to hold them."""
    if height >= 0.2:
        ax.text(x, y, str(units), ha="center", va="center", fontsize=8, color="white")
    else:
        ax.text(x, y + height / 2 + 0.03, str(units), ha="center", va="bottom", fontsize=8, color="#1f3f5f")


def _box_height(units: int, widest: int) -> float:
    """A layer's box height: proportional to its units (0.85 for the widest), never thinner than a line."""
    return max(0.85 * units / widest, 0.02)


def _history_of(source) -> tuple[Mapping, object, object]:
    """``(training history, re-scoring history, strengths history)`` from an estimator or a mapping."""
    if isinstance(source, Mapping):
        return source, None, None
    history = getattr(source, "history_", None)
    if not isinstance(history, Mapping):
        raise TypeError(
            "plot_history takes a fitted archguide estimator or a training history (a mapping of metric -> "
            f"values per epoch). Received: {type(source).__name__}"
        )
    return history, getattr(source, "rescoring_history_", None), getattr(source, "strengths_history_", None)


def _has_epochs(frame) -> bool:
    return frame is not None and len(frame) > 0 and "epoch" in frame


def _loss_label(source, task: str | None) -> str:
    """What the data loss is, in words: the regressor's is on the standardised target, not in its units."""
    if task is None and not isinstance(source, Mapping):
        task = "classification" if hasattr(source, "classes_") else "regression"
    if task == "regression":
        return "MSE of the standardised target"
    if task in ("binary", "multiclass", "classification"):
        return "log loss"
    return "data loss"


def _legend_beside(ax, fontsize: float = 7) -> None:
    """A legend right of the axes, where it covers no line."""
    ax.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)


def plot_history(
    source,
    *,
    rescoring_history=None,
    strengths_history=None,
    top: int = 8,
    ncols: int | None = None,
    task: str | None = None,
):
    """Training curves (data loss and penalty apart) and, when re-scored, importance and L1 strengths over epochs.

    Args:
        source: A fitted :class:`~archguide.ImportanceGuidedRegressor` /
            :class:`~archguide.ImportanceGuidedClassifier`, or a training
            history (``{"data_loss": [...], "val_data_loss": [...], "loss": [...], ...}``).
        rescoring_history: The re-scoring history (``epoch`` and one column per
            feature) when ``source`` is a mapping; an estimator brings its own.
        strengths_history: The L1 strengths after each re-scoring (``epoch`` and
            one column per feature), likewise. A history with ``"plan"`` (an
            estimator fitted with ``replan=True``) gets a dotted line at each
            re-plan in every panel.
        top: Features drawn in the importance and strength panels (the most
            important at the end of training).
        ncols: Panels per row (default: all in one row).
        task: ``"regression"``, ``"binary"`` or ``"multiclass"``: names the data loss's units on
            its axis (the regressor's is the MSE of the standardised target). An estimator
            brings its own.

    Returns:
        The matplotlib Figure: axes ``[loss, penalty]``, then ``importance``
        when there is a re-scoring history and ``strength`` when there is a
        strengths history.

    Raises:
        TypeError: ``source`` is neither.
    """
    import matplotlib.pyplot as plt

    history, own_rescoring, own_strengths = _history_of(source)
    rescored = own_rescoring if rescoring_history is None else rescoring_history
    strengths = own_strengths if strengths_history is None else strengths_history
    panels = 2 + _has_epochs(rescored) + _has_epochs(strengths)
    ncols = panels if ncols is None else max(1, min(int(ncols), panels))
    nrows = -(-panels // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(5.6 * ncols + 0.4, 3.6 * nrows), squeeze=False)
    axes = grid.ravel()
    for extra in axes[panels:]:
        extra.remove()
    axes = axes[:panels]
    loss_ax = axes[0]
    _plot_losses(loss_ax, axes[1], history, _loss_label(source, task))
    shown = None
    if _has_epochs(rescored):
        imp_ax = axes[2]
        features = [c for c in rescored.columns if c != "epoch"]
        shown = list(rescored[features].iloc[-1].sort_values().index[-top:])
        for feature in shown:
            imp_ax.plot(rescored["epoch"], rescored[feature], label=str(feature))
        imp_ax.set_xlabel("epoch")
        imp_ax.set_ylabel("importance on held-out rows")
        imp_ax.set_title(f"Network importance (top {min(top, len(features))}, smoothed)", fontsize=10)
        _legend_beside(imp_ax)
    if _has_epochs(strengths):
        l1_ax = axes[-1]
        features = [c for c in strengths.columns if c != "epoch"]
        if shown is None:  # the weakest penalties: the features the network leans on
            shown = list(strengths[features].iloc[-1].sort_values(ascending=False).index[-top:])
        for feature in [f for f in shown if f in strengths]:
            l1_ax.plot(strengths["epoch"], strengths[feature], label=str(feature))
        l1_ax.set_yscale("log")
        l1_ax.set_xlabel("epoch")
        l1_ax.set_ylabel("L1 strength")
        l1_ax.set_title("L1 strength (same features)", fontsize=10)
        _legend_beside(l1_ax)
    replans = _replan_epochs(history)
    for ax in axes:
        for i, epoch in enumerate(replans):
            ax.axvline(epoch, color="#555555", linestyle=":", linewidth=1, label="re-plan" if i == 0 else None)
    if replans:
        loss_ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _plot_losses(loss_ax, penalty_ax, history: Mapping, loss_label: str) -> None:
    """The first two panels of :func:`plot_history`: the data losses, and the penalty."""
    import numpy as np

    for key, label, style in (("data_loss", "training", "-"), ("val_data_loss", "validation", "-")):
        if key in history:
            values = history[key]
            loss_ax.plot(np.arange(1, len(values) + 1), values, style, label=f"{label} data loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel(loss_label)
    scaled = "standardised" in loss_label  # the regressor's: say how to get the target's units
    units = "\nin target units: x std(y)²" if scaled else ""
    loss_ax.set_title(f"Data loss (without the penalty){units}", fontsize=10)
    loss_ax.legend(fontsize=8)
    if "loss" in history and "data_loss" in history:
        penalty = np.asarray(history["loss"], dtype=float) - np.asarray(history["data_loss"], dtype=float)
        penalty_ax.plot(np.arange(1, len(penalty) + 1), penalty, color="#b22222", label="L1 penalty")
        penalty_ax.legend(fontsize=8)
    penalty_ax.set_xlabel("epoch")
    penalty_ax.set_ylabel("loss - data loss")
    penalty_ax.set_title("Penalty (loss - data loss)", fontsize=10)


def _replan_epochs(history: Mapping) -> list[float]:
    """The epochs after which a new plan was trained (``history["plan"]`` changes), 1-based x positions."""
    plan = history.get("plan")
    if plan is None or len(plan) < 2:
        return []
    values = [float(v) for v in plan]
    return [i + 0.5 for i in range(1, len(values)) if values[i] != values[i - 1]]
