"""What every pruning strategy receives, the shared rounding rule, and the strategy registry."""
import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from lth_tf.pruning.mask import Mask, keep_top
from lth_tf.registry import Registry


@dataclasses.dataclass(frozen=True)
class PruneRequest:
  """One pruning round.

  Attributes:
    weights: trained weights by prunable-weight name.
    mask: the current mask (the new one is a subset of it).
    layer_rates: layerwise scope: fraction of each layer's remaining weights to prune; a layer
      absent from the map is not pruned.
    global_layers: global scope: the layers pruned together; None means layerwise scope.
    global_rate: global scope: fraction of the remaining weights of `global_layers` to prune.
    rounds: prune `rounds` rounds' worth at once (one-shot pruning to the density that
      `rounds` iterative rounds reach).
    seed: seed for random strategies.
    model: the wrapped Keras model holding `weights` under `mask` (for strategies that score
      with gradients or a forward pass), or None where no model is at hand.
    batch: `(seed, size) -> (images, labels)`: a seeded batch of normalised training examples,
      or None.
  """
  weights: Mapping[str, np.ndarray]
  mask: Mask
  layer_rates: Mapping[str, float] = dataclasses.field(default_factory=dict)
  global_layers: Optional[Tuple[str, ...]] = None
  global_rate: float = 0.0
  rounds: int = 1
  seed: int = 0
  model: Optional[Any] = None
  batch: Optional[Callable[[int, int], Tuple[np.ndarray, np.ndarray]]] = None


Strategy = Callable[[PruneRequest], Mask]
STRATEGIES: Registry[Strategy] = Registry("pruning strategy")


def number_to_prune(remaining: int, rate: float) -> int:
  """Weights removed from `remaining` by one round at `rate` (round half up)."""
  return int(np.floor(rate * remaining + 0.5))


def remaining_after(remaining: int, rate: float, rounds: int) -> int:
  """Weights left after `rounds` iterative rounds at `rate`, with the per-round rounding."""
  for _ in range(rounds):
    remaining -= number_to_prune(remaining, rate)
  return remaining


def keep_counts(request: PruneRequest) -> Dict[str, int]:
  """Layerwise scope: how many weights each layer keeps after this request."""
  counts = request.mask.layer_counts()
  return {name: remaining_after(counts[name], request.layer_rates.get(name, 0.0), request.rounds)
          for name in counts}


def global_keep_count(request: PruneRequest) -> int:
  counts = request.mask.layer_counts()
  total = sum(counts[name] for name in request.global_layers)
  return remaining_after(total, request.global_rate, request.rounds)


def prune_by_scores(request: PruneRequest, scores: Mapping[str, np.ndarray]) -> Mask:
  """Keeps the highest-scoring surviving weights; pruned weights score -inf and never return.

  Layerwise scope ranks within each layer; global scope ranks across `global_layers` and
  leaves every other layer as it is.
  """
  live = {name: np.where(request.mask[name], scores[name], -np.inf) for name in request.mask}
  new = dict(request.mask.to_arrays())
  if request.global_layers is None:
    for name, keep in keep_counts(request).items():
      new[name] = keep_top(live[name], keep)
  else:
    names = list(request.global_layers)
    flat = np.concatenate([live[name].reshape(-1) for name in names])
    kept = keep_top(flat, global_keep_count(request))
    offset = 0
    for name in names:
      size = live[name].size
      new[name] = kept[offset:offset + size].reshape(live[name].shape)
      offset += size
  return Mask.from_dict(new)
