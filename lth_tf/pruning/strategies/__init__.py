"""Pruning strategies, one module each: from a `PruneRequest` (weights, mask, rates; the model and a
batch for those that score with gradients) to a smaller mask."""
from lth_tf.pruning.strategies.base import STRATEGIES, PruneRequest, number_to_prune, remaining_after
from lth_tf.pruning.strategies.random import random_mask_like
from lth_tf.registry import import_modules

# Every module of this package is imported and registers its strategy: a new one is one file.
import_modules(__name__, __path__)

__all__ = ["STRATEGIES", "PruneRequest", "number_to_prune", "remaining_after", "random_mask_like"]
