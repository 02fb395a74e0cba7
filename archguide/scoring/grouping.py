"""Feature groups: features that are shuffled, scored and planned together.

Near-copies hide each other when shuffled one at a time (the forest reads the
other copy), so :func:`correlation_groups` clusters strongly correlated
numeric features and :func:`~archguide.score_features` shuffles each
cluster jointly. Hand-made groups (``groups={"name": [features]}``) are checked
here too. No Keras, no forests.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from scipy.stats import rankdata

from archguide.exceptions import DataError
from archguide.schema import Table, format_names, repeated, unique_name

__all__ = ["correlation_groups", "named_correlation_groups", "named_groups", "resolve_groups"]

#: Rows the correlations are measured on: at most this many, evenly spaced through the table. A
#: rank correlation from 100,000 rows is within about 0.003 (one standard error) of the whole
#: table's, far inside the 0.8 threshold's margins, and the step no longer grows with the rows
#: (5.5 s of a fit on 10^6 rows when it read them all).
MAX_CORRELATION_ROWS = 100_000


def correlation_groups(X: np.ndarray, names: list[str], eligible: list[int], threshold: float) -> list[list[int]]:
    """Cluster columns whose absolute Spearman correlation is at least ``threshold``.

    Complete linkage on ``1 - |rho|`` cut at ``1 - threshold``: within a
    returned group every pair of features correlates at least that strongly.
    Missing values take the column's mean rank. Columns not in ``eligible``
    (categoricals, constants) stay alone. On more than
    :data:`MAX_CORRELATION_ROWS` rows, the correlations are measured on that
    many, evenly spaced.

    Returns:
        Lists of column indices covering every column, ordered by first member.
    """
    singles = [[j] for j in range(len(names))]
    if len(eligible) < 2:
        return singles
    rows = slice(None)
    if len(X) > MAX_CORRELATION_ROWS:
        rows = np.linspace(0, len(X) - 1, MAX_CORRELATION_ROWS).round().astype(np.intp)
    ranks = rankdata(X[rows][:, eligible], axis=0, nan_policy="omit")
    col_mean = np.nanmean(ranks, axis=0)
    ranks = np.where(np.isnan(ranks), col_mean, ranks)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.corrcoef(ranks, rowvar=False)
    rho = np.nan_to_num(np.abs(np.atleast_2d(rho)), nan=0.0)
    dist = np.clip(1.0 - rho, 0.0, 1.0)
    np.fill_diagonal(dist, 0.0)
    labels = fcluster(
        linkage(squareform(dist, checks=False), method="complete"), t=1.0 - threshold, criterion="distance"
    )
    clusters: dict[int, list[int]] = {}
    for j, label in zip(eligible, labels):
        clusters.setdefault(label, []).append(j)
    grouped = {j for members in clusters.values() for j in members}
    out = [m for m in clusters.values()] + [s for s in singles if s[0] not in grouped]
    return sorted((sorted(m) for m in out), key=lambda m: m[0])


def named_correlation_groups(X: np.ndarray, names: list[str], eligible: list[int], threshold: float):
    """:func:`correlation_groups` as ``{group name: members}``: a lone feature by its name, others ``"a+b"``.

    A generated name ("a+b") must not collide with a feature's own name (a
    column called "a+b"): it then becomes ``"a+b#2"``.
    """
    clusters = correlation_groups(X, names, eligible, threshold)
    used = {names[m[0]] for m in clusters if len(m) == 1}
    named = {}
    for m in clusters:
        members = [names[j] for j in m]
        named[members[0] if len(m) == 1 else unique_name(_group_name(members), used, separator="#")] = members
    return named


def resolve_groups(
    groups, table: Table, X: np.ndarray | None, constant: np.ndarray | None, threshold: float
) -> dict[str, list[str]]:
    """``{group: members}`` covering every column of ``table``, in column order.

    ``groups`` is ``None`` (every feature alone), ``"auto"`` (correlation
    clusters of the non-categorical, non-constant columns of the encoded rows
    ``X``) or a dict of hand-made groups, checked against the columns (the
    other features stay alone).

    Raises:
        DataError: a hand-made group names an unknown feature, is empty, lists
            a feature twice, shares a feature with another group, or is named
            like a feature outside it.
    """
    names = list(table.names)
    if groups is None:
        return {n: [n] for n in names}
    if isinstance(groups, str):
        eligible = [j for j, n in enumerate(names) if table.kinds[n] != "categorical" and not constant[j]]
        return named_correlation_groups(X, names, eligible, threshold)
    return named_groups(groups, names)


def named_groups(groups, names: list[str], *, noun: str = "feature") -> dict[str, list[str]]:
    """Hand-made ``{group: [members]}`` checked against ``names``; the others alone; all in ``names``' order.

    ``noun`` is what the messages call a member ("feature", or "column" for
    the estimators, whose groups name raw columns).

    Raises:
        DataError: a group names an unknown member, is empty, lists a member
            twice, shares a member with another group, or is named like a
            member outside it.
    """
    known = set(names)
    out: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for group, members in groups.items():
        group = str(group)
        members = [members] if isinstance(members, str) else [str(m) for m in members]
        unknown = [m for m in members if m not in known]
        if unknown:
            raise DataError(f"groups[{group!r}] names {noun}s that are not in X: {format_names(unknown)}.")
        if not members:
            raise DataError(f"groups[{group!r}] is empty; every group needs at least one {noun}.")
        twice = repeated(members)
        if twice:
            raise DataError(f"groups[{group!r}] lists {format_names(twice)} more than once; list each {noun} once.")
        twice = [m for m in members if m in owner]
        if twice:
            raise DataError(
                f"{noun.capitalize()}s {format_names(twice)} are in groups[{owner[twice[0]]!r}] and "
                f"groups[{group!r}]; a {noun} belongs to one group."
            )
        owner.update(dict.fromkeys(members, group))
        out[group] = members
    for n in names:
        if n not in owner:
            if n in out:
                raise DataError(f"Group name {n!r} is also the name of a {noun} outside it; rename the group.")
            out[n] = [n]
    position = {n: j for j, n in enumerate(names)}
    return {
        g: sorted(m, key=position.get) for g, m in sorted(out.items(), key=lambda kv: min(map(position.get, kv[1])))
    }


def _group_name(members: list[str]) -> str:
    return "+".join(members)
