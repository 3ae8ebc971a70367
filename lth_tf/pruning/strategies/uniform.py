"""Random pruning at uniform per-layer densities (a baseline of Frankle et al. 2021): every layer
of a global round keeps the same fraction, its survivors drawn at random (seeded)."""
import numpy as np

from lth_tf.errors import ConfigError
from lth_tf.pruning import layer_densities
from lth_tf.pruning.mask import Mask, keep_top, random_scores
from lth_tf.pruning.strategies.base import (STRATEGIES, PruneRequest, PruningStrategy,
                                            global_keep_count)


def random_at_densities(rule):
  """A strategy keeping, in every layer of `global_layers`, the count `rule` gives it (see
  `layer_densities.allocate`), chosen at random among its survivors."""

  def prune(request: PruneRequest) -> Mask:
    names = request.global_layers
    if names is None:
      raise ConfigError("a random mask at per-layer densities shares an overall count among the "
                        "layers: it needs global scope (--init_scope=global)")
    counts = layer_densities.allocate(
        global_keep_count(request), {name: request.mask[name].shape for name in names}, rule,
        {name: int(request.mask[name].sum()) for name in names})
    scores = random_scores(request.mask, request.seed)
    new = dict(request.mask.to_arrays())
    for name in names:
      new[name] = keep_top(np.where(request.mask[name], scores[name], -np.inf), counts[name])
    return Mask.from_dict(new)

  return prune


STRATEGIES.add("uniform", PruningStrategy(
    prune=random_at_densities(layer_densities.uniform), at_init=True, global_only=True,
    summary="a random mask at the same density in every layer"))
