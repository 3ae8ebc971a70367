"""Magnitude at initialisation (a baseline of Frankle et al. 2021): keep the largest |θk|, the
weights a level restarts from (|θ0| when k = 0), ranked globally by default."""
from lth_tf.pruning.strategies.base import STRATEGIES, PruningStrategy
from lth_tf.pruning.strategies.magnitude import magnitude_scores

STRATEGIES.add("magnitude_init", PruningStrategy(
    score=magnitude_scores, at_init=True,
    summary="|θ0| (|θk| with rewinding), pruning at initialisation"))
