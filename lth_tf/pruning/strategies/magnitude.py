"""Magnitude pruning: keep the surviving weights of largest |w| (layerwise or global)."""
import numpy as np

from lth_tf.pruning.mask import Mask
from lth_tf.pruning.strategies.base import STRATEGIES, PruneRequest, prune_by_scores


@STRATEGIES.register("magnitude")
def magnitude(request: PruneRequest) -> Mask:
  scores = {name: np.abs(np.asarray(request.weights[name], np.float64)) for name in request.mask}
  return prune_by_scores(request, scores)
