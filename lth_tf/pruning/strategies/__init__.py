"""Pruning strategies: pure numpy functions from (weights, mask, rates) to a smaller mask, one module each."""
from lth_tf.pruning.strategies.base import STRATEGIES, PruneRequest, number_to_prune, remaining_after
from lth_tf.pruning.strategies.random import random_mask_like
from lth_tf.registry import import_modules

# Every module of this package is imported and registers its strategy: a new one is one file.
import_modules(__name__, __path__)

__all__ = ["STRATEGIES", "PruneRequest", "number_to_prune", "remaining_after", "random_mask_like"]
