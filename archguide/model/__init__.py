"""Stages 3 and 4, the network: build it from a plan, measure and move it while it trains.

- :mod:`~archguide.model.layers`: the registered Keras objects (the feature gate that holds
  each feature's L1 strength, numeric and category embeddings, the efficient ensemble);
- :mod:`~archguide.model.builder`: :func:`build_model`, a multi-branch network from an
  :class:`~archguide.ArchitecturePlan`;
- :mod:`~archguide.model.importance`: :func:`network_importance`, importance measured on a
  trained network;
- :mod:`~archguide.model.callbacks`: :class:`ImportanceRescoring`, which re-scores during
  training and moves the penalties, and the training loop's other callbacks;
- :mod:`~archguide.model.replanning`: re-planning from the network's own importance.
"""

from archguide.model.builder import build_model
from archguide.model.callbacks import ImportanceRescoring
from archguide.model.importance import network_importance
from archguide.model.layers import ColumnSelector, FeatureGate

__all__ = ["ColumnSelector", "FeatureGate", "ImportanceRescoring", "build_model", "network_importance"]
