"""The result of :func:`~archguide.score_features`: a plain value object.

No Keras, no forests: scores load from JSON (:meth:`FeatureScores.from_dict`)
and feed :func:`~archguide.planning.plan_architecture` on their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from archguide.exceptions import DataError
from archguide.schema import format_names

__all__ = ["FeatureScores"]


@dataclass(frozen=True, eq=False)
class FeatureScores:
    """Feature importances from :func:`score_features`.

    Attributes:
        importances: Importance per feature (pd.Series, index = feature names in
            the input's column order; higher = more important). It is the drop
            of the proxy's held-out score when the feature's group is shuffled;
            members of a multi-feature group share their group's importance in
            proportion to their importance when shuffled alone.
        std: Spread of ``importances`` over the repeats (pd.Series). For a
            member of a multi-feature group this is not a spread measured on
            its own: it is the group's spread (``group_std``) times the
            member's share of the group's importance, the same scaling its
            importance gets.
        groups: Group name -> its features. Every feature is in exactly one group.
        group_importances: Importance per group (pd.Series), the drop when the
            whole group is shuffled jointly.
        group_std: Spread of ``group_importances`` over the repeats.
        weak: pd.Series[bool]: the feature's group cannot be told apart from
            noise: the weak test (see :func:`~archguide.score_features`)
            did not reject "no effect" for it at false discovery rate ``noise_alpha``.
        task: ``"regression"``, ``"binary"`` or ``"multiclass"``.
        metric: The score whose drop is measured (``"r2"``, ``"accuracy"``, ...).
        baseline_score: The proxy's held-out score with nothing shuffled.
        noise_threshold: The largest importance among weak groups (0 when no
            group is weak): every group above it is not weak. Groups are
            tested one by one, each against its own spread, so a group below
            it may still be told apart from noise.
        individual_importances: Importance of each feature shuffled alone;
            for features in multi-feature groups this is usually much smaller
            than the group's, as their near-copies stand in for them.
        feature_types: Feature -> ``"numeric"`` | ``"boolean"`` | ``"categorical"``.
        group_p_values: Per group, the one-sided p-value of the weak test
            (small: the group's shuffles raise the held-out loss).
        noise_alpha: False discovery rate the weak flags were decided at.
        n_train: Rows each proxy forest was fitted on (the largest, with folds).
        n_eval: Held-out rows importance was measured on, over all folds.
        n_repeats: Shuffles per group (per fold).
        n_folds: Proxy forests, each scored on its own held-out rows (1: a
            single split).
        decisions: What ``score_features`` decided and why, one line each
            (task, folds, trees, the weak rule), as it logs them.
    """

    importances: pd.Series
    std: pd.Series
    groups: dict[str, list[str]]
    group_importances: pd.Series
    group_std: pd.Series
    weak: pd.Series
    task: str
    metric: str
    baseline_score: float
    noise_threshold: float
    individual_importances: pd.Series
    feature_types: dict[str, str] = field(default_factory=dict)
    group_p_values: pd.Series | None = None
    noise_alpha: float = float("nan")
    n_train: int = 0
    n_eval: int = 0
    n_repeats: int = 0
    n_folds: int = 1
    decisions: tuple[str, ...] = ()

    @property
    def features(self) -> list[str]:
        """Feature names, in the input's column order."""
        return list(self.importances.index)

    @property
    def group_of(self) -> dict[str, str]:
        """Feature -> the name of its group."""
        return {f: g for g, members in self.groups.items() for f in members}

    @property
    def _p_values(self) -> dict[str, float]:
        return {} if self.group_p_values is None else dict(self.group_p_values.items())

    def to_frame(self, *, sort: bool = True) -> pd.DataFrame:
        """One row per feature: importance, std, group, group importance, weak, ...

        Args:
            sort: Most important first (the default); otherwise input order.
        """
        group_of = self.group_of
        p_values = self._p_values
        frame = pd.DataFrame(
            {
                "importance": self.importances,
                "std": self.std,
                "group": [group_of[f] for f in self.features],
                "group_importance": [self.group_importances[group_of[f]] for f in self.features],
                "weak": self.weak,
                "p_value": [p_values.get(group_of[f], float("nan")) for f in self.features],
                "individual_importance": self.individual_importances,
                "type": [self.feature_types.get(f, "numeric") for f in self.features],
            },
            index=pd.Index(self.features, name="feature"),
        )
        if sort:
            frame = frame.sort_values("importance", ascending=False, kind="stable")
        return frame

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (plain lists, floats and strings); see :meth:`from_dict`."""
        return {
            "features": self.features,
            "importances": _floats(self.importances),
            "std": _floats(self.std),
            "individual_importances": _floats(self.individual_importances),
            "weak": [bool(v) for v in self.weak],
            "groups": {g: list(m) for g, m in self.groups.items()},
            "group_importances": dict(zip(self.group_importances.index, _floats(self.group_importances))),
            "group_std": dict(zip(self.group_std.index, _floats(self.group_std))),
            "task": self.task,
            "metric": self.metric,
            "baseline_score": float(self.baseline_score),
            "noise_threshold": float(self.noise_threshold),
            "feature_types": dict(self.feature_types),
            "group_p_values": {g: float(v) for g, v in self._p_values.items()},
            "noise_alpha": float(self.noise_alpha),
            "n_train": int(self.n_train),
            "n_eval": int(self.n_eval),
            "n_repeats": int(self.n_repeats),
            "n_folds": int(self.n_folds),
            "decisions": list(self.decisions),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureScores:
        """Rebuild scores from :meth:`to_dict` output.

        Raises:
            DataError: a required key is missing or the lists disagree in length.
        """
        required = ("features", "importances", "std", "weak", "groups", "group_importances", "task")
        missing = [k for k in required if k not in data]
        if missing:
            raise DataError(f"FeatureScores.from_dict: missing keys {format_names(missing)}.")
        features = [str(f) for f in data["features"]]
        for key in ("importances", "std", "weak"):
            if len(data[key]) != len(features):
                raise DataError(
                    f"FeatureScores.from_dict: {key!r} has {len(data[key])} values for {len(features)} features."
                )
        groups = {str(g): [str(f) for f in m] for g, m in data["groups"].items()}
        names = list(groups)

        def series(values, index, name, dtype=float):
            return pd.Series(np.asarray(values, dtype=dtype), index=pd.Index(index, dtype=object), name=name)

        gi = data["group_importances"]
        gs = data.get("group_std", dict.fromkeys(names, 0.0))
        gp = data.get("group_p_values")
        gp = gp if gp and all(g in gp for g in names) else None
        return cls(
            importances=series(data["importances"], features, "importance"),
            std=series(data["std"], features, "std"),
            groups=groups,
            group_importances=series([gi[g] for g in names], names, "group_importance"),
            group_std=series([gs[g] for g in names], names, "group_std"),
            weak=series(data["weak"], features, "weak", dtype=bool),
            task=str(data["task"]),
            metric=str(data.get("metric", "")),
            baseline_score=float(data.get("baseline_score", float("nan"))),
            noise_threshold=float(data.get("noise_threshold", 0.0)),
            individual_importances=series(
                data.get("individual_importances", data["importances"]), features, "individual_importance"
            ),
            feature_types={str(k): str(v) for k, v in data.get("feature_types", {}).items()},
            group_p_values=series([gp[g] for g in names], names, "p_value") if gp is not None else None,
            noise_alpha=float(data.get("noise_alpha", float("nan"))),
            n_train=int(data.get("n_train", 0)),
            n_eval=int(data.get("n_eval", 0)),
            n_repeats=int(data.get("n_repeats", 0)),
            n_folds=int(data.get("n_folds", 1)),
            decisions=tuple(str(d) for d in data.get("decisions", ())),
        )

    def plot(self, ax=None, *, top: int | None = None):
        """Bar chart of importances with error bars; weak features set apart, groups coloured.

        Args:
            ax: A matplotlib Axes to draw on (a new figure when None).
            top: Show only the ``top`` most important features.

        Returns:
            The matplotlib Axes.
        """
        from archguide.plotting import plot_scores

        return plot_scores(self, ax=ax, top=top)

    def __repr__(self) -> str:
        n_groups = len(self.groups)
        head = (
            f"FeatureScores(task={self.task!r}, metric={self.metric!r}, {len(self.features)} features "
            f"in {n_groups} groups, {int(self.weak.sum())} weak at false discovery rate {self.noise_alpha:.3g})"
        )
        frame = self.to_frame()[["importance", "std", "group", "weak"]]
        shown = frame.head(10).to_string(float_format=lambda v: f"{v:.4f}")
        more = f"\n... {len(frame) - 10} more" if len(frame) > 10 else ""
        return f"{head}\n{shown}{more}"


def _floats(series: pd.Series) -> list[float]:
    return [float(v) for v in series.to_numpy()]
