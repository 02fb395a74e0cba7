"""What the network leans on for its training rows but not for held-out ones: sensitive, not important."""

from __future__ import annotations

import numpy as np
import pandas as pd

from archguide.model.importance import network_importance

#: Training importance over held-out importance above which a column is flagged (``sensitivity_``);
#: the re-scoring callback's ``overfit_ratio`` default.
SENSITIVITY_RATIO = 3.0


def sensitivity(network, scores, validation, training, seed: int) -> pd.DataFrame:
    """Permutation importance of each source column on training rows and on the held-out rows.

    ``validation`` and ``training`` are ``(X, y)`` pairs of encoded rows (at most 2,000 of each are read).

    A column the network leans on for its training rows but not for the held-out ones is
    *sensitive* without being *important*: the network fits noise through it (see
    :func:`sensitive_not_important`).
    """
    rng = np.random.RandomState(seed)
    groups = {g: list(f) for g, f in scores.groups.items()}
    kwargs = {"method": "permutation", "groups": groups, "n_repeats": 3, "max_rows": 2000}
    held_out = network_importance(network, *validation, random_state=rng, **kwargs)
    training = network_importance(network, *training, random_state=rng, **kwargs)
    flagged = sensitive_not_important(held_out, training)
    return pd.DataFrame({"held_out": held_out, "training": training, "flagged": flagged})


def sensitive_not_important(held_out: pd.Series, training: pd.Series) -> pd.Series:
    """Which features are sensitive (on training rows) but not important (on held-out rows).

    A feature is flagged when its training importance is more than ``SENSITIVITY_RATIO`` (3) times
    its held-out importance (negative counts as 0) and more than 1% of the largest training
    importance, and its held-out importance is below 10% of the largest held-out one. The last
    condition keeps a strong feature whose held-out estimate is low by chance (a few held-out rows
    make it noisy) from being called unimportant.
    """
    training_floor = 0.01 * max(float(training.max()), 0.0)
    held_out_ceiling = 0.1 * max(float(held_out.max()), 0.0)
    return (
        (training > SENSITIVITY_RATIO * held_out.clip(lower=0.0))
        & (training > training_floor)
        & (held_out < held_out_ceiling)
    )
