"""Random pruning (a control): keep a uniformly random subset of the surviving weights."""
import numpy as np

from lth_tf.pruning.mask import Mask
from lth_tf.pruning.strategies.base import STRATEGIES, PruneRequest, keep_top, prune_by_scores


def _random_scores(mask: Mask, seed: int):
  rng = np.random.default_rng(seed)
  return {name: rng.random(mask[name].shape) for name in mask}


@STRATEGIES.register("random")
def random(request: PruneRequest) -> Mask:
  return prune_by_scores(request, _random_scores(request.mask, request.seed))


def random_mask_like(mask: Mask, seed: int) -> Mask:
  """A random mask with exactly the same number of weights kept in every layer as `mask`."""
  scores = _random_scores(mask, seed)
  return Mask.from_dict({name: keep_top(scores[name], int(mask[name].sum())) for name in mask})
