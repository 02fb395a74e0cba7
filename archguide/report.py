"""Reports of a run. The plots themselves live in :mod:`archguide.plotting`; no Keras."""

from __future__ import annotations

from archguide.plotting import plot_scores

__all__ = ["plot_scores"]
