"""Random pruning at Erdős–Rényi-kernel per-layer densities (a baseline of Frankle et al. 2021,
the density rule of RigL): the overall count of a global round shared by the ERK rule, each
layer's survivors drawn at random (seeded)."""
from lth_tf.pruning import layer_densities
from lth_tf.pruning.strategies.base import STRATEGIES, PruningStrategy
from lth_tf.pruning.strategies.uniform import random_at_densities

STRATEGIES.add("erk", PruningStrategy(
    prune=random_at_densities(layer_densities.erdos_renyi_kernel), at_init=True,
    global_only=True, summary="a random mask at Erdős–Rényi-kernel per-layer densities"))
