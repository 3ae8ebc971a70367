"""SNIP (Lee et al. 2019): connection sensitivity |g ⊙ θ| at the weights a level restarts from,
g the loss gradient on a seeded batch of training data; ranked globally by default."""
from typing import Dict

import numpy as np

from lth_tf.pruning.strategies.base import STRATEGIES, PruneRequest, PruningStrategy, score_batch


def snip_scores(request: PruneRequest) -> Dict[str, np.ndarray]:
  images, labels = score_batch(request, "snip")
  from lth_tf.pruning import saliency  # pylint: disable=import-outside-toplevel
  grads = saliency.loss_gradient(request.model, request.mask, images, labels)
  return {name: np.abs(grads[name] * np.asarray(request.weights[name], np.float64) * request.mask[name])
          for name in request.mask}


STRATEGIES.add("snip", PruningStrategy(
    score=snip_scores, needs=("model", "batch"), at_init=True,
    summary="|g ⊙ θ| on a seeded batch, pruning at initialisation (Lee et al. 2019)"))
