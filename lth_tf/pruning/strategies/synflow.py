"""SynFlow (Tanaka et al. 2020): data-free scores |∂R/∂θ ⊙ θ|, R the output sum of the network
with every weight replaced by its absolute value on an all-ones input; iterative, 100
score-and-prune steps per pruning round by default at an exponential density schedule that
reaches the asked density exactly. Ranked globally by default."""
from typing import Dict

import numpy as np

from lth_tf.pruning.strategies.base import STRATEGIES, PruneRequest, PruningStrategy, require

ITERATIONS = 100  # the paper's default


def synflow_scores(request: PruneRequest) -> Dict[str, np.ndarray]:
  require(request, "synflow", "model")
  from lth_tf.pruning import saliency  # pylint: disable=import-outside-toplevel
  grads = saliency.path_norm_gradient(request.model, request.mask)
  return {name: np.abs(grads[name] * np.asarray(request.weights[name], np.float64) * request.mask[name])
          for name in request.mask}


STRATEGIES.add("synflow", PruningStrategy(
    score=synflow_scores, needs=("model",), at_init=True, iterations=ITERATIONS,
    summary="|∂R/∂θ ⊙ θ| of the path norm, data-free and iterative, pruning at initialisation "
            "(Tanaka et al. 2020)"))
