"""Random pruning (a control): keep a uniformly random subset of the surviving weights."""
from lth_tf.pruning.mask import Mask, random_scores
from lth_tf.pruning.strategies.base import (STRATEGIES, PruneRequest, PruningStrategy,
                                            prune_by_scores)


def random(request: PruneRequest) -> Mask:
  return prune_by_scores(request, random_scores(request.mask, request.seed))


STRATEGIES.add("random", PruningStrategy(
    prune=random, reads_weights=False,
    summary="a uniformly random subset of the surviving weights, at the policy's rates"))


def random_mask_like(mask: Mask, seed: int) -> Mask:
  """A random mask with exactly the same number of weights kept in every layer as `mask`."""
  return mask.random_like(seed)
