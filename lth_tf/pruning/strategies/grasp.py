"""GraSP (Wang et al. 2020): S = −θ ⊙ Hg at the weights a level restarts from, g the loss
gradient on a seeded batch and H its Hessian; GraSP removes the weights of highest S (those
whose removal preserves the gradient flow best), so the ranking keeps the highest −S = θ ⊙ Hg.
Ranked globally by default."""
from typing import Dict

import numpy as np

from lth_tf.pruning.strategies.base import STRATEGIES, PruneRequest, PruningStrategy, score_batch


def grasp_scores(request: PruneRequest) -> Dict[str, np.ndarray]:
  """GraSP's score S = −θ ⊙ Hg (the paper's sign: the highest S are pruned)."""
  images, labels = score_batch(request, "grasp")
  from lth_tf.pruning import saliency  # pylint: disable=import-outside-toplevel
  _, products = saliency.hessian_gradient(request.model, request.mask, images, labels)
  return {name: -np.asarray(request.weights[name], np.float64) * request.mask[name] * products[name]
          for name in request.mask}


def keep_ranking(request: PruneRequest) -> Dict[str, np.ndarray]:
  """What is kept first: −S (the lowest GraSP scores)."""
  return {name: -score for name, score in grasp_scores(request).items()}


STRATEGIES.add("grasp", PruningStrategy(
    score=keep_ranking, needs=("model", "batch"), at_init=True,
    summary="−θ ⊙ Hg on a seeded batch, highest pruned; pruning at initialisation "
            "(Wang et al. 2020)"))
