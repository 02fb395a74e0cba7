"""Planning: from feature scores to an architecture. Pure arithmetic, no Keras.

:func:`plan_architecture` turns :class:`~archguide.FeatureScores` into an
:class:`ArchitecturePlan`: which features each branch reads, how many units each
branch's layers get, and the per-feature L1 strength of the model's input gate.

Rules (each is a documented, tested invariant):

- **Branches.** ``grouping="tiers"``: weak features form the last tier; the other
  features, sorted by importance, are cut into the remaining tiers where the
  importance drops most steeply (the largest ratios between consecutive
  importances). The least important kept features that together carry no
  more importance than the weak tier place no cut: they join the last tier
  above them (a near-zero keep is the steepest drop of all, and a tier of its
  own there would put every strong feature in one tier). ``grouping="groups"``: one branch per feature group of the
  scores (correlated clusters, groups given by hand).
- **Units.** A branch's first-layer width is proportional to its importance (the
  sum of its features' importances, negatives counted as zero, capped at the
  importance of every branch ranked above it) raised to ``alpha``, with a floor
  of ``min_units``. Widths are whole numbers that sum exactly to ``total_units``
  (largest-remainder rounding), and a branch never gets more units than one
  ranked above it: tiers rank in order, the weak tier last (sixty weak features
  of small importance do not outweigh a strong tier), groups by importance.
  Layer ``i`` of a branch has ``max(min_units, round(width * shrink**i))`` units.
- **Penalties.** :func:`l1_strengths`: an adaptive-lasso rule, strongest for weak
  features, weakest (exactly ``l1``) for the most important one, finite at zero.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from archguide._checks import check_choice, check_int, check_number, check_units
from archguide.exceptions import ArchguideWarning, ConfigError, DataError
from archguide.schema import format_names, repeated, unique_name

__all__ = ["ArchitecturePlan", "Branch", "allocate_units", "l1_strengths", "plan_architecture"]

GROUPINGS = ("tiers", "groups")
WEAK_MODES = ("penalize", "drop")
#: Importance (relative to the largest) added in :func:`l1_strengths` so that zero stays finite.
L1_EPS = 0.01


@dataclass(frozen=True)
class Branch:
    """One branch of the network: the features it reads and its layer widths.

    Attributes:
        name: A name usable in layer names: ASCII letters, digits and ``_``
            (:func:`plan_architecture` derives one from any column name).
        features: The features the branch reads, in the plan's input order.
        units: Widths of the branch's Dense layers, first to last.
        importance: The branch's share of importance the units were allotted by.
        categories: Blocks of one-hot level features (each a categorical
            column's levels that this branch reads) that enter the branch
            through a learned embedding of the given width
            (:class:`~archguide.model.layers.CategoryEmbedding`) instead of a
            kernel row each: ``((features, width), ...)``.
    """

    name: str
    features: tuple[str, ...]
    units: tuple[int, ...]
    importance: float = 0.0
    categories: tuple[tuple[tuple[str, ...], int], ...] = ()

    @property
    def first_layer_rows(self) -> list[tuple[str, ...]]:
        """What each row of the branch's first Dense kernel reads, in order.

        The features outside the category blocks, each ``(feature,)``, then
        each block's embedding, one row ``(*block_features, str(k))`` per
        dimension ``k``: two plans' rows with equal labels read the same thing.
        """
        embedded = {f for block, _ in self.categories for f in block}
        rows = [(f,) for f in self.features if f not in embedded]
        return rows + [(*block, str(k)) for block, width in self.categories for k in range(width)]


@dataclass(frozen=True)
class ArchitecturePlan:
    """What to build: input features, branches, head and per-feature L1 strengths.

    Attributes:
        features: The model's inputs: every scored feature, in the scores' order,
            whatever the branches, so every plan from the same scores takes the
            same input.
        branches: The branches, most important first.
        l1_strengths: Feature -> L1 strength of its input gate.
        head_units: Widths of the shared Dense layers after the branches merge.
        importances: Feature -> the importance the plan was made from.
        weak: Features the scores marked weak.
        options: The options the plan was made with (for the record).
        embeddings: Feature -> how many periodic frequencies its embedding
            has (:class:`~archguide.model.layers.PeriodicEncoding`); a feature not
            listed enters its branch as it is.

    Plans compare equal when their content is equal, and hash by it.
    """

    features: tuple[str, ...]
    branches: tuple[Branch, ...]
    l1_strengths: dict[str, float]
    head_units: tuple[int, ...]
    importances: dict[str, float] = field(default_factory=dict)
    weak: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    embeddings: dict[str, int] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=str))

    @property
    def total_units(self) -> int:
        """Units of the branches' first layers, summed."""
        return sum(b.units[0] for b in self.branches)

    def feature_indices(self, branch: Branch) -> list[int]:
        """Column positions, in the model input, of a branch's features."""
        position = {f: i for i, f in enumerate(self.features)}
        return [position[f] for f in branch.features]

    def n_params(self, n_outputs: int = 1) -> int:
        """Trainable parameters of the model :func:`~archguide.build_model` makes.

        Counts the input gate (one per feature), every Dense kernel and bias,
        the embeddings (each frequency, and its cosine's and sine's weights
        into the branch's first layer), the category embeddings (a weight per
        level and dimension) and the output layer with
        ``n_outputs`` units.
        """
        total = len(self.features)
        merged = 0
        for b in self.branches:
            frequencies = sum(self.embeddings.get(f, 0) for f in b.features)
            total += frequencies + 2 * frequencies * b.units[0]
            total += sum(len(block) * width for block, width in b.categories)
            width_in = len(b.first_layer_rows)
            for w in b.units:
                total += width_in * w + w
                width_in = w
            merged += width_in
        width_in = merged
        for w in self.head_units:
            total += width_in * w + w
            width_in = w
        return total + width_in * n_outputs + n_outputs

    def to_dict(self) -> dict[str, Any]:
        """A JSON- and YAML-safe dict; see :meth:`from_dict`."""
        return {
            "features": list(self.features),
            "branches": [
                {
                    "name": b.name,
                    "features": list(b.features),
                    "units": list(b.units),
                    "importance": b.importance,
                    # only where there are some: plans written before category embeddings read the same
                    **({"categories": [[list(f), int(w)] for f, w in b.categories]} if b.categories else {}),
                }
                for b in self.branches
            ],
            "l1_strengths": {f: float(v) for f, v in self.l1_strengths.items()},
            "head_units": list(self.head_units),
            "importances": {f: float(v) for f, v in self.importances.items()},
            "weak": list(self.weak),
            "options": dict(self.options),
            "embeddings": {f: int(m) for f, m in self.embeddings.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArchitecturePlan:
        """Rebuild a plan from :meth:`to_dict` output, checking that it is consistent.

        Raises:
            DataError: not a mapping, a key is missing or malformed, or a branch reads a feature that is
                not an input.
        """
        if not isinstance(data, Mapping):
            raise DataError(
                "ArchitecturePlan.from_dict expects a mapping with keys 'features', 'branches', 'l1_strengths' and "
                f"'head_units' (what to_dict writes). Received: {type(data).__name__}"
            )
        missing = [k for k in ("features", "branches", "l1_strengths", "head_units") if k not in data]
        if missing:
            raise DataError(f"ArchitecturePlan.from_dict: missing keys {format_names(missing)}.")
        try:
            return cls._from_checked_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"ArchitecturePlan.from_dict: a malformed value ({type(exc).__name__}: {exc}).") from exc

    @classmethod
    def _from_checked_dict(cls, data: Mapping[str, Any]) -> ArchitecturePlan:
        features = tuple(str(f) for f in data["features"])
        branches = tuple(
            Branch(
                name=str(b["name"]),
                features=tuple(str(f) for f in b["features"]),
                units=tuple(int(u) for u in b["units"]),
                importance=float(b.get("importance", 0.0)),
                categories=tuple((tuple(str(f) for f in block), int(w)) for block, w in b.get("categories", ())),
            )
            for b in data["branches"]
        )
        plan = cls(
            features=features,
            branches=branches,
            l1_strengths={str(f): float(v) for f, v in data["l1_strengths"].items()},
            head_units=tuple(int(u) for u in data["head_units"]),
            importances={str(f): float(v) for f, v in data.get("importances", {}).items()},
            weak=tuple(str(f) for f in data.get("weak", ())),
            options=dict(data.get("options", {})),
            embeddings={str(f): int(m) for f, m in data.get("embeddings", {}).items()},
        )
        plan.validate()
        return plan

    def to_yaml(self) -> str:
        """The plan as YAML text (the same content as :meth:`to_dict`)."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> ArchitecturePlan:
        """Rebuild a plan from :meth:`to_yaml` text.

        Raises:
            DataError: the text is not YAML, or not a plan (see :meth:`from_dict`).
        """
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DataError(
                f"ArchitecturePlan.from_yaml: the text is not valid YAML ({' '.join(str(exc).split())})."
            ) from None
        return cls.from_dict(data)

    def validate(self, scores=None) -> None:
        """Check that the plan describes a model :func:`~archguide.build_model` can build.

        Args:
            scores: Optional :class:`~archguide.FeatureScores` the plan
                is used with; its features must be the plan's inputs.

        Raises:
            DataError: there is no branch or no head layer, a branch reads a
                feature that is not among ``features`` (or one twice), a
                feature has no L1 strength or a negative or non-finite one, a
                width is not positive, a branch name is not a safe layer name
                or is used twice, or the plan has features the scores do not.
        """
        if scores is not None:
            scored = set(scores.features)
            unknown = [f for f in self.features if f not in scored]
            if unknown:
                raise DataError(
                    f"The plan's features {format_names(unknown)} are not in the scores; "
                    "make the plan from these scores (plan_architecture(scores))."
                )
        twice = repeated(self.features)
        if twice:
            raise DataError(f"The plan lists the features {format_names(twice)} more than once among its inputs.")
        if not self.branches:
            raise DataError("The plan has no branch; a model needs at least one.")
        known = set(self.features)
        for b in self.branches:
            _check_branch(b, known)
        names = repeated([b.name for b in self.branches])
        if names:
            raise DataError(f"Branch names {format_names(names)} are used more than once; each names its layers.")
        no_strength = [f for f in self.features if f not in self.l1_strengths]
        if no_strength:
            raise DataError(f"Features {format_names(no_strength)} have no L1 strength in the plan.")
        bad = [f for f in self.features if not (math.isfinite(self.l1_strengths[f]) and self.l1_strengths[f] >= 0)]
        if bad:
            raise DataError(
                f"L1 strengths must be finite numbers >= 0; features {format_names(bad)} have "
                f"{[self.l1_strengths[f] for f in bad][:5]}."
            )
        if not self.head_units:
            raise DataError(
                "The plan has no head layer: the shared head is not optional (without it the model is additive "
                "across branches and cannot learn interactions between them)."
            )
        if any(u < 1 for u in self.head_units):
            raise DataError(f"head_units must be positive integers. Received: {self.head_units}")
        bad = [f for f, m in self.embeddings.items() if f not in known or isinstance(m, bool) or int(m) != m or m < 1]
        if bad:
            raise DataError(
                f"embeddings must map plan features to positive numbers of frequencies; {format_names(bad)} do not."
            )

    def summary(self) -> str:
        """A readable table of the branches, the head and the parameter count."""
        rows = [
            f"ArchitecturePlan: {len(self.features)} inputs, {len(self.branches)} branches, "
            f"{self.total_units} first-layer units, head {list(self.head_units)}, "
            f"~{self.n_params():,} parameters"
        ]
        width = max([len(b.name) for b in self.branches] + [6])
        rows.append(f"  {'branch':<{width}}  {'units':<14} {'importance':>10}  features")
        for b in self.branches:
            shown = ", ".join(b.features[:6]) + (f", ... ({len(b.features)})" if len(b.features) > 6 else "")
            rows.append(f"  {b.name:<{width}}  {str(list(b.units)):<14} {b.importance:>10.4f}  {shown}")
        read = {f for b in self.branches for f in b.features}
        unread = [f for f in self.features if f not in read]
        if unread:
            rows.append(
                f"  not read by any branch (weak, dropped): {', '.join(unread[:10])}"
                + (" ..." if len(unread) > 10 else "")
            )
        if self.embeddings:
            rows.append(
                f"  embedded: {len(self.embeddings)} features, "
                f"{min(self.embeddings.values())}-{max(self.embeddings.values())} frequencies"
            )
        blocks = [(b.name, len(block), w) for b in self.branches for block, w in b.categories]
        if blocks:
            rows.append(
                "  category embeddings: " + ", ".join(f"{n}: {levels} levels -> {w}" for n, levels, w in blocks[:6])
            )
        strengths = sorted(self.l1_strengths.items(), key=lambda kv: kv[1])
        rows.append(
            f"  L1 strengths: weakest {strengths[0][0]}={strengths[0][1]:.3g}, "
            f"strongest {strengths[-1][0]}={strengths[-1][1]:.3g}"
        )
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.summary()


def _check_branch(b: Branch, known: set) -> None:
    """Raise DataError unless branch ``b`` is well formed and reads only the plan's features (``known``)."""
    if not _SAFE_NAME.fullmatch(b.name):
        raise DataError(
            f"Branch name {b.name!r} cannot name Keras layers: use ASCII letters, digits and '_' "
            "(starting with a letter or digit)."
        )
    unknown = [f for f in b.features if f not in known]
    if unknown:
        raise DataError(f"Branch {b.name!r} reads features that are not plan inputs: {format_names(unknown)}.")
    if not b.features or repeated(b.features):
        raise DataError(f"Branch {b.name!r} must read at least one feature, each once. Received: {b.features}")
    if not b.units or min(b.units) < 1:
        raise DataError(f"Branch {b.name!r} has invalid units {b.units}; expected positive integers.")
    in_blocks = [f for block, _ in b.categories for f in block]
    if (
        set(in_blocks) - set(b.features)
        or repeated(in_blocks)
        or any(not block or isinstance(w, bool) or int(w) != w or w < 1 for block, w in b.categories)
    ):
        raise DataError(
            f"Branch {b.name!r}: each category block must list features the branch reads, each in one "
            f"block, with a positive width. Received: {b.categories}"
        )


def l1_strengths(
    importances: Mapping[str, float] | pd.Series,
    *,
    l1: float = 1e-3,
    l1_power: float = 1.0,
    weak: Sequence[str] = (),
) -> dict[str, float]:
    """Per-feature L1 strengths in the spirit of the adaptive lasso.

    With ``r`` the importance relative to the largest (negatives count as 0)::

        strength = l1 * ((1 + eps) / (r + eps)) ** l1_power,   eps = 0.01

    so the most important feature gets exactly ``l1``, a feature of zero
    importance gets ``l1 * 101 ** l1_power`` (finite), and strength falls
    steadily as importance rises. Features in ``weak`` get the strongest value
    whatever their measured importance. If every importance is zero, every
    feature gets ``l1``. The re-scoring callbacks use this same rule.

    Args:
        importances: Feature -> importance.
        l1: Scale: the strength of the most important feature.
        l1_power: How steeply strength follows importance (0: the same for all).
        weak: Features to give the strongest strength.

    Returns:
        Feature -> strength, in the order of ``importances``.

    Raises:
        ConfigError: ``l1`` or ``l1_power`` is negative or not finite.
    """
    check_number("l1", l1)
    check_number("l1_power", l1_power)
    names = list(importances.keys())
    values = np.clip(np.nan_to_num(np.asarray([importances[n] for n in names], dtype=float)), 0.0, None)
    top = values.max() if len(values) else 0.0
    if top <= 0:
        return dict.fromkeys(names, float(l1))
    relative = values / top
    weak = set(weak)
    relative[[i for i, n in enumerate(names) if n in weak]] = 0.0
    strengths = l1 * ((1.0 + L1_EPS) / (relative + L1_EPS)) ** l1_power
    return {n: float(s) for n, s in zip(names, strengths)}


def allocate_units(weights: Sequence[float], total_units: int, *, min_units: int = 1) -> list[int]:
    """Split ``total_units`` into whole numbers proportional to ``weights`` with a floor.

    Branches whose proportional share falls below ``min_units`` get exactly
    ``min_units``; the rest is shared in proportion among the others
    (repeatedly, until no share is below the floor), then rounded by largest
    remainder. The result sums to ``total_units`` and is monotone: a larger
    weight never gets fewer units. All-zero weights split evenly.

    Raises:
        ConfigError: ``total_units`` is less than ``min_units * len(weights)``.
    """
    k = len(weights)
    if k == 0:
        return []
    if total_units < min_units * k:
        raise ConfigError(
            f"total_units={total_units} is too small for {k} branches of at least min_units={min_units}: "
            f"the minimum is {min_units * k}."
        )
    w = np.clip(np.asarray(weights, dtype=float), 0.0, None)
    if w.sum() <= 0:
        w = np.ones(k)
    floored = np.zeros(k, dtype=bool)
    while True:
        free = total_units - min_units * floored.sum()
        share = np.where(floored, float(min_units), 0.0)
        active = ~floored
        share[active] = free * w[active] / w[active].sum() if w[active].sum() > 0 else free / active.sum()
        below = active & (share < min_units)
        if not below.any():
            break
        floored |= below
    units = np.floor(share).astype(int)
    remainder = share - units
    # Ties go to the larger weight, then the earlier branch: keeps the result monotone and deterministic.
    order = sorted(range(k), key=lambda i: (-remainder[i], -w[i], i))
    for i in order[: total_units - units.sum()]:
        units[i] += 1
    return units.tolist()


def _tiers(order: list[str], importances: dict[str, float], weak: set[str], n_tiers: int) -> list[list[str]]:
    strong = [f for f in order if f not in weak]
    weak_tier = [f for f in order if f in weak]
    # The least important kept features that together weigh no more than the weak tier place no cut.
    weak_weight = sum(max(importances[f], 0.0) for f in weak_tier)
    tail = np.cumsum([max(importances[f], 0.0) for f in reversed(strong)])
    clear = strong[: len(strong) - int(np.sum(tail <= weak_weight))] if weak_tier else strong
    clear = clear or strong
    n_strong_tiers = max(1, n_tiers - (1 if weak_tier else 0))
    n_strong_tiers = min(n_strong_tiers, len(clear))
    tiers: list[list[str]] = []
    if strong:
        values = np.array([max(importances[f], 0.0) for f in clear])
        floor = max(values.max() * 1e-6, np.finfo(float).tiny)
        drops = np.log(np.maximum(values[:-1], floor)) - np.log(np.maximum(values[1:], floor))
        cuts = sorted(np.argsort(-drops, kind="stable")[: n_strong_tiers - 1] + 1) if n_strong_tiers > 1 else []
        bounds = [0, *cuts, len(clear)]
        tiers = [clear[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        tiers[-1].extend(strong[len(clear) :])
    if weak_tier:
        if len(tiers) < n_tiers:
            tiers.append(weak_tier)
        else:  # a single tier asked for: everything in it
            tiers[-1].extend(weak_tier)
    return tiers


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*")


def _safe_name(text: str, used: set[str]) -> str:
    """An ASCII layer-name part for any text (TensorFlow scopes refuse other characters), unique in ``used``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9]", "_", ascii_text))[:40].strip("_") or "branch"
    return unique_name(name, used)


def _listed(values):
    return None if values is None else list(values)


def plan_architecture(
    scores,
    *,
    total_units: int = 128,
    grouping: str = "tiers",
    n_tiers: int = 3,
    min_units: int = 4,
    depth: int = 2,
    shrink: float = 0.5,
    alpha: float = 1.0,
    l1: float = 1e-3,
    l1_power: float = 1.0,
    weak: str = "penalize",
    head_units: Sequence[int] | None = None,
    embedding: int = 0,
    embeddable: Sequence[str] | None = None,
    category_embedding: int = 0,
    categorical: Mapping[str, Sequence[str]] | None = None,
) -> ArchitecturePlan:
    """Plan a multi-branch architecture from feature scores.

    Args:
        scores: A :class:`~archguide.FeatureScores`.
        total_units: First-layer units of all branches together.
        grouping: ``"tiers"`` (importance tiers) or ``"groups"`` (one branch
            per feature group of the scores).
        n_tiers: Tiers with ``grouping="tiers"``; weak features take the last.
        min_units: The fewest units a branch layer gets.
        depth: Dense layers per branch.
        shrink: Each deeper branch layer has ``shrink`` times the units of the
            first, to the power of its index (at least ``min_units``).
        alpha: Units follow ``importance ** alpha`` (0: even split; >1:
            favour the top branches more).
        l1: L1 strength of the most important feature (see :func:`l1_strengths`).
        l1_power: How steeply the strength follows importance.
        weak: ``"penalize"`` (weak features are read, with the strongest
            penalty) or ``"drop"`` (no branch reads them; they stay inputs).
        head_units: Widths of the shared layers after the merge (at least
            one: the head is not optional); default one layer of
            ``max(16, total_units // 4)`` units.
        embedding: Periodic frequencies of the embedding of each feature in
            the first branch (0: no embeddings). Richer for more important
            features: the ``i``-th branch's features get ``embedding // 2**i``
            (none below 2), weak features none.
        embeddable: The features that may be embedded (continuous numbers,
            not one-hot levels or missing-value flags); default every feature.
        category_embedding: Width of the learned embedding of a categorical
            column's levels in the first branch (0: none; the levels stay
            one-hot, a kernel row each). The ``i``-th branch's blocks get
            ``category_embedding // 2**i`` (none below 2); a block is
            embedded only where it has more levels than its width, and weak
            levels never are (see :attr:`Branch.categories`).
        categorical: Column -> its one-hot level features (not its missing
            flag): the blocks ``category_embedding`` may embed. Required
            with ``category_embedding`` (empty: there is nothing to embed).

    Returns:
        A frozen :class:`ArchitecturePlan`.

    Raises:
        ConfigError: an option is out of range, or ``total_units`` is below
            the branches' floors (the message states the minimum).

    Warns:
        ArchguideWarning: every importance is zero (the plan is even).
    """
    options = {
        "total_units": total_units, "grouping": grouping, "n_tiers": n_tiers, "min_units": min_units, "depth": depth,
        "shrink": shrink, "alpha": alpha, "l1": l1, "l1_power": l1_power, "weak": weak,
    }  # fmt: skip
    head_units = _check_plan_options(scores, options, head_units, embedding, category_embedding, categorical)
    features = list(scores.importances.index)
    importances = {f: float(v) for f, v in scores.importances.items()}
    weak_set = {f for f, is_weak in scores.weak.items() if is_weak}
    if not any(v > 0 for v in importances.values()):
        warnings.warn(
            "Every feature importance is zero or below: the plan splits units evenly and penalises every "
            "feature alike. Check the scores (is the target predictable from these features?).",
            ArchguideWarning,
            stacklevel=2,
        )
    names, members = _branch_members(scores, features, importances, weak_set, grouping, n_tiers, weak)
    position = {f: i for i, f in enumerate(features)}
    members = [sorted(m, key=position.get) for m in members]
    branch_importance = [_weight(importances, m) for m in members]
    # Units follow the branches' rank: a tier's summed importance can exceed a stronger tier's
    # (many weak features), but it never earns more units than the tiers ranked above it.
    ranked = np.minimum.accumulate(np.asarray(branch_importance, dtype=float)) if members else []
    widths = allocate_units([v**alpha if v > 0 else 0.0 for v in ranked], total_units, min_units=min_units)
    _check_named("categorical", [f for levels in (categorical or {}).values() for f in levels], importances)
    level_sets = [set(levels) for levels in (categorical or {}).values()] if category_embedding else None
    branches = tuple(
        Branch(
            name=n,
            features=tuple(m),
            units=tuple(max(min_units, int(round(w * shrink**i))) if i else w for i in range(depth)),
            importance=float(v),
            categories=_category_blocks(m, category_embedding >> index, level_sets, weak_set),
        )
        for index, (n, m, w, v) in enumerate(zip(names, members, widths, branch_importance))
    )
    _check_named("embeddable", embeddable or [], importances)
    allowed = set(features if embeddable is None else embeddable) - weak_set
    embeddings = {
        f: embedding >> i for i, b in enumerate(branches) for f in b.features if f in allowed and embedding >> i >= 2
    }
    # recorded only when used: a re-plan passes these options back to this function
    if embedding:
        options.update(embedding=embedding, embeddable=_listed(embeddable))
    if category_embedding:
        options.update(category_embedding=category_embedding, categorical={c: list(v) for c, v in categorical.items()})
    plan = ArchitecturePlan(
        features=tuple(features),
        branches=branches,
        l1_strengths=l1_strengths(importances, l1=l1, l1_power=l1_power, weak=sorted(weak_set)),
        head_units=head_units,
        importances=importances,
        weak=tuple(f for f in features if f in weak_set),
        options=options,
        embeddings={f: embeddings[f] for f in features if f in embeddings},
    )
    plan.validate()
    return plan


def _check_plan_options(scores, options, head_units, embedding, category_embedding, categorical) -> tuple[int, ...]:
    """Check :func:`plan_architecture`'s options before any work; return the head's widths."""
    if not hasattr(scores, "importances") or not hasattr(scores, "weak"):
        raise ConfigError(
            "Received an invalid value for scores, expected a FeatureScores (what score_features returns). "
            f"Received: {type(scores).__name__}"
        )
    for name in ("total_units", "n_tiers", "min_units", "depth"):
        check_int(name, options[name])
    check_choice("grouping", options["grouping"], GROUPINGS)
    check_choice("weak", options["weak"], WEAK_MODES)
    check_number("alpha", options["alpha"])
    check_number("shrink", options["shrink"], high=1.0)
    check_int("embedding", embedding, low=0)
    check_int("category_embedding", category_embedding, low=0)
    if category_embedding and categorical is None:
        raise ConfigError(
            "category_embedding needs categorical= (column -> its one-hot level features): without it no "
            "block of levels is known."
        )
    return check_units("head_units", (max(16, options["total_units"] // 4),) if head_units is None else head_units)


def _weight(importances: Mapping[str, float], members) -> float:
    """A branch's importance: its features' summed importance, negatives counting as zero."""
    return sum(max(importances[f], 0.0) for f in members)


def _branch_members(scores, features, importances, weak_set, grouping: str, n_tiers: int, weak: str):
    """The branches' names and features, most important first (weak features left out with ``weak="drop"``)."""
    order = sorted(features, key=lambda f: -importances[f])  # stable: input order breaks ties
    if grouping == "tiers":
        members = _tiers(order, importances, weak_set, n_tiers)
        names = [f"tier_{i + 1}" for i in range(len(members))]
    else:
        by_importance = sorted(scores.groups.items(), key=lambda kv: -_weight(importances, kv[1]))
        used: set[str] = set()
        names = [_safe_name(g, used) for g, _ in by_importance]
        members = [list(m) for _, m in by_importance]
    if weak == "drop":
        kept = [(n, [f for f in m if f not in weak_set]) for n, m in zip(names, members)]
        kept = [(n, m) for n, m in kept if m]
        if not kept:
            raise DataError("weak='drop' would drop every feature: all are weak. Use weak='penalize'.")
        names, members = [n for n, _ in kept], [m for _, m in kept]
    return names, members


def _check_named(argument: str, named, importances) -> None:
    unknown = [f for f in named if f not in importances]
    if unknown:
        raise ConfigError(f"{argument} names features that are not scored: {format_names(unknown)}.")


def _category_blocks(members, width: int, level_sets, weak_set) -> tuple:
    """The category blocks a branch reading ``members`` embeds at ``width`` (none without ``level_sets``)."""
    if level_sets is None or width < 2:
        return ()
    found = [tuple(f for f in members if f in levels and f not in weak_set) for levels in level_sets]
    return tuple((block, width) for block in found if len(block) > width)
