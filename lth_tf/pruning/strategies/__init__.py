"""Pruning strategies: pure numpy functions from (weights, mask, rates) to a smaller mask, one module each."""
from lth_tf.pruning.strategies.base import STRATEGIES, PruneRequest, number_to_prune, remaining_after
from lth_tf.pruning.strategies import magnitude as _magnitude  # noqa: F401  (registers itself)
from lth_tf.pruning.strategies import random as _random  # noqa: F401  (registers itself)
from lth_tf.pruning.strategies.random import random_mask_like

__all__ = ["STRATEGIES", "PruneRequest", "number_to_prune", "remaining_after", "random_mask_like"]
