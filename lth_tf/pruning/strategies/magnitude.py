"""Magnitude pruning: keep the surviving weights of largest |w| (layerwise or global)."""
from typing import Dict

import numpy as np

from lth_tf.pruning.strategies.base import STRATEGIES, PruneRequest, PruningStrategy


def magnitude_scores(request: PruneRequest) -> Dict[str, np.ndarray]:
  """|w| of every weight of the request's mask."""
  return {name: np.abs(np.asarray(request.weights[name], np.float64)) for name in request.mask}


STRATEGIES.add("magnitude", PruningStrategy(
    score=magnitude_scores, summary="|w| of the trained weights (IMP)"))
