"""GraSP (Wang et al. 2020): S = −θ ⊙ Hg at the weights a level restarts from, g the gradient of
the loss on the logits divided by a temperature T = 200, on a seeded batch of ten training
examples of every class, and H that loss's Hessian; GraSP removes the weights of highest S (those
whose removal preserves the gradient flow best), so the ranking keeps the highest −S = θ ⊙ Hg.
Ranked globally by default.

As both reference implementations (the authors' `pruner/GraSP.py` and Synaptic-Flow's GraSP
pruner) do: the temperature changes the Hessian-gradient product and so the ranking, not only
its scale. The references also sum g over the batch in two halves; here g is the batch mean in
one pass, the same vector up to a positive factor (the ranking is unchanged). Synaptic-Flow
divides the scores by |ΣS|, which does not change the ranking either."""
from typing import Dict

import numpy as np

from lth_tf.pruning.strategies.base import STRATEGIES, PruneRequest, PruningStrategy, score_batch

TEMPERATURE = 200.0  # the references' T


def grasp_scores(request: PruneRequest) -> Dict[str, np.ndarray]:
  """GraSP's score S = −θ ⊙ Hg (the paper's sign: the highest S are pruned)."""
  images, labels = score_batch(request, "grasp")
  from lth_tf.pruning import saliency  # pylint: disable=import-outside-toplevel
  _, products = saliency.hessian_gradient(request.model, request.mask, images, labels,
                                          temperature=TEMPERATURE)
  return {name: -np.asarray(request.weights[name], np.float64) * request.mask[name] * products[name]
          for name in request.mask}


def keep_ranking(request: PruneRequest) -> Dict[str, np.ndarray]:
  """What is kept first: −S (the lowest GraSP scores)."""
  return {name: -score for name, score in grasp_scores(request).items()}


STRATEGIES.add("grasp", PruningStrategy(
    score=keep_ranking, needs=("model", "batch"), at_init=True,
    summary="−θ ⊙ Hg of the loss at temperature 200 on ten examples per class, highest pruned; "
            "pruning at initialisation (Wang et al. 2020)"))
