"""Adaptive re-planning: the network's shape follows the evidence while it trains.

The source notes end with "regularly re-evaluating feature importance after a
few epochs ... and adjust the network accordingly". :class:`~archguide.ImportanceRescoring`
moves the penalties; this module moves the architecture, on two kinds of evidence:

1. **The residual check** (:func:`missing_features`), after a network has
   trained: the features the plan called weak are scored again on what the
   network leaves unexplained, its residuals, with the first scores' forest,
   companions and weak test. A weak feature whose signal is there is freed
   (:func:`with_freed`) and the network is planned again. This is how a wrong
   first guess is recovered: the evidence does not pass through the network's
   use of the feature, which the plan itself starved (a small branch shared
   with the noise, the strongest penalty, or none with ``weak="drop"``), and
   it is tested against noise as the first scores were, so noise is not freed.
2. **The network's importance** (:class:`ReplanTrigger`, ``replan=True``), a
   Keras callback placed after an ``ImportanceRescoring``: it plans again from
   the network's smoothed importance at every re-scoring
   (:func:`network_scores` puts it in the plan's terms, then the same
   :func:`~archguide.planning.plan_architecture` with the plan's own options).
   When the new plan would move features (a feature changes branch, or joins
   the weak set: :func:`moved_features`), and the same features would move at
   ``patience`` re-scorings in a row, it stops training and keeps the new plan
   in ``new_plan_``. It does not free weak features (see ``FREE_RATIO``).

:func:`warm_start` copies into the new model what carries over from the old
one: every weight of a branch that reads the same features with the same
widths, the rows of the features two branches share, the head and output
where their shapes match, and the input gate per feature. The estimators
(``replan="residuals"`` or ``True``) run that loop at most ``max_replans``
times and keep each plan in ``plans_``.

The network's importance is put in the plan's terms by rank: the feature the
network ranks ``k``-th gets the ``k``-th largest importance of the scores the
first plan was made from. The methods of :func:`~archguide.network_importance`
measure on different scales (a gradient is about linear in an effect's size, a
permutation drop of R² about quadratic); ranks do not depend on the scale, so
a re-plan changes which features get the units, not how the units are shared
out. A feature joins the weak set when its smoothed importance falls below
``WEAK_RATIO`` (5%) of the largest.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from archguide._backend import import_keras
from archguide._checks import check_int, check_number
from archguide.exceptions import ArchguideWarning, ConfigError
from archguide.planning import ArchitecturePlan, plan_architecture
from archguide.scoring.feature_scores import FeatureScores

keras = import_keras()

__all__ = ["ReplanTrigger", "missing_features", "moved_features", "network_scores", "warm_start", "with_freed"]

#: Share of the largest network importance below which a feature joins the weak set.
WEAK_RATIO = 0.05
#: Share of the largest network importance a weak feature must reach to leave the weak set; None: never by
#: the network's importance (only by the residual check's evidence, :func:`missing_features`). With 0.25,
#: noise features reached 20-55% of the largest gradient importance early in training and were freed.
FREE_RATIO = None
#: Default number of re-scorings in a row that must move the same features before a re-plan.
PATIENCE = 3
#: Default epochs a network trains on its plan before it may be re-planned. With 5, a network whose
#: strongest feature the proxy had called weak was re-planned from a ranking it had not learned yet.
MIN_EPOCHS = 10


def network_scores(
    scores: FeatureScores,
    importance: pd.Series,
    *,
    weak=None,
    weak_ratio: float = WEAK_RATIO,
    free_ratio: float | None = FREE_RATIO,
) -> FeatureScores:
    """``scores`` with the network's ranking and weak set, in the scores' own terms.

    Args:
        scores: The scores the current plan was made from (the proxy's).
        importance: The network's importance per feature (for example an
            ``ImportanceRescoring``'s smoothed scores); negative values count
            as zero.
        weak: The features weak now (the current plan's ``weak``); default
            the weak features of ``scores``.
        weak_ratio: A feature joins the weak set when its importance is below
            this share of the largest.
        free_ratio: A weak feature leaves the weak set when its importance
            reaches this share of the largest; None (the default): never by
            the network's importance. Early in training every input still
            moves the output (noise reached 20-55% of the largest gradient
            importance), and a starved feature moves it little whether the
            data needs it or not: the network's importance is no evidence
            either way, and :func:`missing_features` decides instead.

    Returns:
        A :class:`~archguide.FeatureScores` whose importances
        are the values of ``scores.importances`` re-assigned by the network's
        ranking (ties keep the input order), whose weak flags are the
        network's, and whose groups are those of ``scores`` (a group is weak
        when all its members are). Its ``decisions`` say how it was made.
    """
    missing = [f for f in scores.features if f not in importance.index]
    if missing:
        raise ConfigError(f"The network's importance has no value for {missing[:5]} (features of the scores).")
    values = np.maximum(importance.reindex(scores.features).to_numpy(dtype=float), 0.0)
    order = np.argsort(-values, kind="stable")
    ranked = np.sort(scores.importances.to_numpy(dtype=float))[::-1]
    mapped = np.empty(len(values))
    mapped[order] = ranked
    index = scores.importances.index
    top = values.max()
    was_weak = scores.weak.to_numpy() if weak is None else np.isin(np.asarray(scores.features), list(weak))
    stays = was_weak if free_ratio is None else was_weak & (values < free_ratio * top)
    feature_weak = pd.Series((values < weak_ratio * top) | stays, index=index)
    return _reweighed(
        scores,
        pd.Series(mapped, index=index),
        feature_weak,
        std=pd.Series(0.0, index=index, name="std"),
        group_std=pd.Series(0.0, index=scores.group_importances.index, name="group_std"),
        noise_threshold=float("nan"),
        decisions=(
            f"network importance: the scores' importances re-assigned by the network's ranking; weak below "
            f"{weak_ratio:g} of the largest, "
            + ("and every one weak before" if free_ratio is None else f"or below {free_ratio:g} for one weak before"),
        ),
    )


def _reweighed(scores: FeatureScores, importances: pd.Series, feature_weak: pd.Series, **changes) -> FeatureScores:
    """``scores`` with new importances and weak flags per feature (a group is weak when all its members are),
    the group importances summed from them, and any other ``changes``."""
    weak_group = {g: bool(feature_weak[m].all()) for g, m in scores.groups.items()}
    group_of = scores.group_of
    index = scores.importances.index
    sums = [importances[m].sum() for m in scores.groups.values()]
    return dataclasses.replace(
        scores,
        importances=importances.rename("importance"),
        individual_importances=importances.rename("individual_importance"),
        group_importances=pd.Series(sums, index=scores.group_importances.index, name="group_importance"),
        weak=pd.Series([weak_group[group_of[f]] for f in index], index=index, name="weak", dtype=bool),
        **changes,
    )


def _branch_of(plan: ArchitecturePlan) -> dict[str, int]:
    """Feature -> the rank of the branch that reads it (-1: no branch, a dropped weak feature)."""
    where = dict.fromkeys(plan.features, -1)
    for rank, branch in enumerate(plan.branches):
        for feature in branch.features:
            where[feature] = rank
    return where


def moved_features(plan: ArchitecturePlan, candidate: ArchitecturePlan) -> list[str]:
    """Features that ``candidate`` puts in another branch (by rank) or on the other side of the weak set."""
    before, after = _branch_of(plan), _branch_of(candidate)
    weak_before, weak_after = set(plan.weak), set(candidate.weak)
    return [f for f in plan.features if before[f] != after.get(f, -1) or (f in weak_before) != (f in weak_after)]


def replan_from(plan: ArchitecturePlan, scores: FeatureScores) -> ArchitecturePlan:
    """:func:`~archguide.planning.plan_architecture` on ``scores`` with ``plan``'s own options."""
    options = {k: v for k, v in plan.options.items() if k != "head_units"}
    return plan_architecture(scores, head_units=plan.head_units, **options)


class ReplanTrigger(keras.callbacks.Callback):
    """Stop training when the network's own importance would plan another network.

    Put it after an :class:`~archguide.ImportanceRescoring` in the
    callbacks list. At each epoch the rescoring measured, it plans again from
    the rescoring's smoothed importance (:func:`network_scores`, then
    :func:`replan_from`) and compares with ``plan`` (:func:`moved_features`).
    When the same features would move at ``patience`` re-scorings in a row and
    at least ``min_epochs`` epochs have run, it sets ``model.stop_training``
    and keeps the new plan.

    Args:
        rescoring: The ``ImportanceRescoring`` whose smoothed scores are read.
        plan: The plan the model was built from.
        scores: The scores ``plan`` was made from (their importances give the
            scale; see :func:`network_scores`).
        patience: Re-scorings in a row that must move the same features.
        min_epochs: Epochs before a re-plan may happen (the network needs a
            few to react to its plan).
        weak_ratio, free_ratio: See :func:`network_scores`.

    Attributes:
        new_plan_: The plan to switch to, or None when training ended without one.
        new_scores_: The network's scores ``new_plan_`` was made from.
        moved_: The features that moved.
        epoch_: The epoch (1-based) at which training was stopped.
    """

    def __init__(
        self,
        rescoring,
        plan: ArchitecturePlan,
        scores: FeatureScores,
        *,
        patience: int = PATIENCE,
        min_epochs: int = MIN_EPOCHS,
        weak_ratio: float = WEAK_RATIO,
        free_ratio: float | None = FREE_RATIO,
    ):
        super().__init__()
        check_int("patience", patience)
        check_int("min_epochs", min_epochs, low=0)
        check_number("weak_ratio", weak_ratio, high=1.0)
        if free_ratio is not None:
            check_number("free_ratio", free_ratio, low=weak_ratio, high=1.0)
        self.rescoring = rescoring
        self.plan = plan
        self.scores = scores
        self.patience = patience
        self.min_epochs = min_epochs
        self.weak_ratio = weak_ratio
        self.free_ratio = free_ratio
        self._reset()

    def _reset(self) -> None:
        self.new_plan_ = self.new_scores_ = self.epoch_ = None
        self.moved_: list[str] = []
        self._seen = self._epochs = 0
        self._streak: tuple[list[str], int] = ([], 0)

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        self._epochs += 1
        if self.rescoring.n_rescorings_ == self._seen:  # no new re-scoring this epoch
            return
        self._seen = self.rescoring.n_rescorings_
        candidate_scores = network_scores(
            self.scores,
            self.rescoring.importance_,
            weak=self.plan.weak,
            weak_ratio=self.weak_ratio,
            free_ratio=self.free_ratio,
        )
        candidate = replan_from(self.plan, candidate_scores)
        moved = moved_features(self.plan, candidate)
        previous, count = self._streak
        self._streak = (moved, count + 1 if moved and moved == previous else (1 if moved else 0))
        if self._streak[1] >= self.patience and self._epochs >= self.min_epochs:
            self.new_plan_, self.new_scores_, self.moved_, self.epoch_ = candidate, candidate_scores, moved, epoch + 1
            self.model.stop_training = True


# ------------------------------------------------------------------ residual check


def _residual_targets(network, X: np.ndarray, y_net: np.ndarray, task: str, held: list[int]) -> list[np.ndarray]:
    """What the network leaves unexplained with the columns ``held`` at their means: ``y - prediction``
    (per class indicator for several classes)."""
    X = np.array(X, dtype=np.float64)
    if held:
        X[:, held] = np.nanmean(X[:, held], axis=0)
    pred = np.asarray(network.predict(X, verbose=0, batch_size=4096), dtype=np.float64)
    if task == "regression":
        return [np.asarray(y_net, dtype=np.float64).reshape(len(X), -1)[:, 0] - pred[:, 0]]
    labels = np.asarray(y_net).reshape(-1).astype(int)
    if task == "binary":
        return [labels - pred[:, 0]]
    return [(labels == k).astype(np.float64) - pred[:, k] for k in range(pred.shape[1])]


def missing_features(
    network,
    X: np.ndarray,
    y_net: np.ndarray,
    scores: FeatureScores,
    weak,
    task: str,
    *,
    n_repeats: int = 5,
    random_state=None,
) -> tuple[list[str], dict[str, float]]:
    """Weak features whose signal the trained network has left in its residuals.

    The evidence that moves a feature out of the weak set must not come
    through the network's own use of it: a feature the plan starved (a small
    branch shared with the noise, the strongest penalty) is used little, so
    its network importance stays small whether the data needs it or not. The
    residuals ``y - prediction`` on the rows the network trained on, predicted
    with every weak feature held at its mean, carry what the network learned
    without the weak features; :func:`~archguide.score_features` scores them
    (a regression for each residual: one, or one per class indicator, the
    false discovery rate shared among them), with the same groups, forest,
    companions and weak test as the first scores. A weak feature whose group
    is not weak there holds signal the plan should give a route. Holding the
    weak features at their means matters: a network that fits noise through a
    weak feature leaves the negative of that fit in its residuals, which the
    scoring would call signal; with the feature held, the residuals do not
    depend on it unless the target does.

    Args:
        network: The trained network (encoded features in).
        X, y_net: The rows it trained on, as it takes them.
        scores: The scores the plan was made from (their groups and ``noise_alpha``).
        weak: The features weak in the current plan.
        task: ``"regression"``, ``"binary"`` or ``"multiclass"``.
        n_repeats: Shuffles per group of the residual scoring's forest.
        random_state: Seed of the residual scoring.

    With fewer than :data:`~archguide.scoring.score.MIN_ROWS` rows nothing can be
    scored, and nothing is reported missing.

    Returns:
        ``(missing, importance)``: the weak features found, in input order, and
        each one's importance in the residual, in the scores' units (a share of
        the target's variance for regression, a Brier-score drop for classes).
    """
    from archguide.schema import encoded_table
    from archguide.scoring.score import MIN_ROWS, score_features

    weak = set(weak)
    if not weak or len(X) < MIN_ROWS:  # too few rows to score: nothing can be shown missing
        return [], {}
    held = [j for j, f in enumerate(scores.features) if f in weak]
    residuals = _residual_targets(network, X, y_net, task, held)
    table = encoded_table(X, scores.features)
    groups = {g: list(m) for g, m in scores.groups.items()}
    scale = float(np.var(np.asarray(y_net, dtype=np.float64))) if task == "regression" else 1.0
    found: dict[str, float] = {}
    for r in residuals:
        if np.var(r) <= 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ArchguideWarning)
            result = score_features(
                table, r, task="regression", groups=groups, noise_alpha=scores.noise_alpha / len(residuals),
                n_repeats=n_repeats, random_state=random_state,
            )  # fmt: skip
        share = float(np.var(r)) / (scale if scale > 0 else 1.0)
        for f in scores.features:
            if f in weak and not result.weak[f]:
                found[f] = max(found.get(f, 0.0), float(max(result.importances[f], 0.0)) * share)
    missing = [f for f in scores.features if f in found]
    return missing, {f: found[f] for f in missing}


def with_freed(scores: FeatureScores, importance: Mapping[str, float], weak) -> FeatureScores:
    """``scores`` with the features of ``importance`` out of the weak set, each at least that important.

    ``weak`` is the current plan's weak set (the others in it stay weak).
    """
    freed, weak = set(importance), set(weak)
    index = scores.importances.index
    values = scores.importances.copy()
    for f, v in importance.items():
        values[f] = max(float(values[f]), float(v))
    feature_weak = pd.Series([f in weak and f not in freed for f in index], index=index)
    return _reweighed(
        scores,
        values,
        feature_weak,
        decisions=(
            *scores.decisions,
            f"residual check: {', '.join(sorted(freed))} left the weak set (their signal is in the network's "
            "residuals)",
        ),
    )


# ---------------------------------------------------------------------- warm start


def _dense_layers(model, prefix: str) -> list:
    layers, i = [], 1
    while True:
        try:
            layers.append(model.get_layer(f"{prefix}_dense_{i}"))
        except ValueError:
            return layers
        i += 1


def _copy_overlap(target, source, rows: list[tuple[int, int]] | None = None) -> None:
    """Copy into a Dense layer ``target`` what fits of ``source``: kernel rows by ``rows`` (pairs of
    (target row, source row); default: the leading rows both have) and the leading columns both have.
    An ensemble's output layers (one kernel per member) are copied member by member."""
    kernel, bias = (w.copy() for w in target.get_weights())
    old_kernel, old_bias = source.get_weights()
    if kernel.ndim == 3:  # EnsembleHead: (members, inputs, units); the same members in both networks
        n, columns = min(kernel.shape[1], old_kernel.shape[1]), min(kernel.shape[2], old_kernel.shape[2])
        kernel[:, :n, :columns] = old_kernel[:, :n, :columns]
        bias[:, :columns] = old_bias[:, :columns]
        target.set_weights([kernel, bias])
        return
    columns = min(kernel.shape[1], old_kernel.shape[1])
    if rows is None:
        n = min(kernel.shape[0], old_kernel.shape[0])
        rows = [(i, i) for i in range(n)]
    for new_row, old_row in rows:
        kernel[new_row, :columns] = old_kernel[old_row, :columns]
    bias[:columns] = old_bias[:columns]
    target.set_weights([kernel, bias])


def warm_start(model, old_model, plan: ArchitecturePlan, old_plan: ArchitecturePlan) -> dict[str, str]:
    """Copy into ``model`` (built from ``plan``) the weights of ``old_model`` (built from ``old_plan``) that carry over.

    - A branch of ``plan`` is matched to the branch of ``old_plan`` that shares
      most of its features (ties: the earlier). Its first layer gets the old
      kernel rows of the shared features, for the units both have (a
      category embedding, and its rows, only where the block of levels and
      the width are the same; see ``Branch.first_layer_rows``); deeper
      layers get the leading block both have. A branch with the same features
      and widths as its match therefore keeps every weight.
    - The head's first layer gets, for each matched branch, the rows of the
      units both have; deeper head layers and the output the leading block.
    - The input gate keeps each feature's learned gate, except features that
      leave the weak set: the old plan's strongest penalty shrank their gates
      on the proxy's mistaken word, so they start again at 1, the value every
      gate starts at. The strengths are the new plan's.

    Returns:
        New branch name -> the old branch it was warm-started from.
    """
    if plan.features != old_plan.features:
        raise ConfigError("warm_start needs plans over the same features (in the same order).")
    gates = old_model.get_layer("gate").get_gates().copy()
    freed = [i for i, f in enumerate(plan.features) if f in old_plan.weak and f not in plan.weak]
    gates[freed] = 1.0  # the old plan's penalty shrank them wrongly: they start afresh, as every gate starts
    model.get_layer("gate").gate.assign(gates)
    matches: dict[str, str] = {}
    offsets_new, offsets_old = {}, {}
    position = 0
    for branch in old_plan.branches:
        offsets_old[branch.name] = position
        position += branch.units[-1]
    position = 0
    for branch in plan.branches:
        offsets_new[branch.name] = position
        position += branch.units[-1]
    head_rows: list[tuple[int, int]] = []
    for branch in plan.branches:
        overlap = [len(set(branch.features) & set(old.features)) for old in old_plan.branches]
        if not overlap or max(overlap) == 0:
            continue
        old = old_plan.branches[int(np.argmax(overlap))]
        matches[branch.name] = old.name
        new_layers = _dense_layers(model, f"branch_{branch.name}")
        old_layers = _dense_layers(old_model, f"branch_{old.name}")
        old_row = {label: i for i, label in enumerate(old.first_layer_rows)}
        shared = [(i, old_row[label]) for i, label in enumerate(branch.first_layer_rows) if label in old_row]
        for depth, (new_layer, old_layer) in enumerate(zip(new_layers, old_layers)):
            _copy_overlap(new_layer, old_layer, shared if depth == 0 else None)
        for k, block in enumerate(branch.categories):  # an embedding carries over where its block is the same
            if block in old.categories:
                source = old_model.get_layer(f"branch_{old.name}_category_{old.categories.index(block)}")
                model.get_layer(f"branch_{branch.name}_category_{k}").set_weights(source.get_weights())
        units = min(branch.units[-1], old.units[-1]) if len(new_layers) == len(old_layers) else 0
        head_rows += [(offsets_new[branch.name] + u, offsets_old[old.name] + u) for u in range(units)]
    head_new, head_old = _dense_layers(model, "head"), _dense_layers(old_model, "head")
    for depth, (new_layer, old_layer) in enumerate(zip(head_new, head_old)):
        _copy_overlap(new_layer, old_layer, head_rows if depth == 0 else None)
    if len(head_new) == len(head_old):
        _copy_overlap(model.get_layer("output"), old_model.get_layer("output"))
    if _has_layer(model, "ensemble_adapter") and _has_layer(old_model, "ensemble_adapter"):
        model.get_layer("ensemble_adapter").set_weights(old_model.get_layer("ensemble_adapter").get_weights())
    return matches


def _has_layer(model, name: str) -> bool:
    return any(layer.name == name for layer in model.layers)


def plan_record(
    epoch: int, plan: ArchitecturePlan, scores: FeatureScores, moved: list[str], reason: str
) -> dict[str, Any]:
    """One entry of an estimator's ``plans_``: the epoch after which it was trained, why, which features
    moved, the importances and weak features it was made from, and the plan."""
    return {
        "epoch": int(epoch),
        "reason": reason,
        "moved": list(moved),
        "importances": {f: float(v) for f, v in scores.importances.items()},
        "weak": [f for f, w in scores.weak.items() if w],
        "plan": plan,
    }


def restore_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """An entry of ``plans_`` read back from a saved artifact (its plan as an ``ArchitecturePlan``)."""
    return {**record, "plan": ArchitecturePlan.from_dict(record["plan"]), "moved": list(record.get("moved", []))}
