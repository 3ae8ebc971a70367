"""The mask policy: the rate each prunable weight is pruned at, the layers that share a global
threshold, and the next mask those rules and the configured strategy give."""
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from lth_tf.config import PruningConfig
from lth_tf.errors import ConfigError
from lth_tf.pruning.kinds import GLOBAL_SETS, KINDS
from lth_tf.pruning.mask import Mask
from lth_tf.pruning.strategies import STRATEGIES, PruneRequest


def layer_rates(pruning: PruningConfig, kinds: Mapping[str, str],
                overrides: Optional[Mapping[str, float]] = None) -> Dict[str, float]:
  """Layerwise scope: each weight's rate from its kind (`KINDS`: every convolution kind takes
  `conv_rate`), or its own rate from `overrides` (by weight name, e.g. `fc1/kernel`)."""
  by_kind = {kind: getattr(pruning, field) for kind, field in KINDS.items()}
  overrides = dict(overrides or {})
  unknown = sorted(set(overrides) - set(kinds))
  if unknown:
    raise ConfigError(f"per-layer rates for weights the model does not prune: {unknown}; "
                      f"its prunable weights are {sorted(kinds)}")
  for name, rate in overrides.items():
    if not 0.0 <= rate < 1.0:
      raise ConfigError(f"the rate of {name} must be in [0, 1); got {rate}")
  return {name: overrides.get(name, by_kind[kind]) for name, kind in kinds.items()}


def global_layers(pruning: PruningConfig, kinds: Mapping[str, str]) -> Optional[Tuple[str, ...]]:
  """Global scope: the weights ranked together (the kinds `GLOBAL_SETS[global_layers]` names:
  every convolution, 1x1 convolutions only, or all); None when layerwise."""
  if pruning.scope != "global":
    return None
  chosen = tuple(n for n, k in kinds.items() if k in GLOBAL_SETS[pruning.global_layers])
  if not chosen:
    raise ConfigError(f"global pruning over {pruning.global_layers!r} layers, but the model "
                      "has none")
  return chosen


def next_mask(pruning: PruningConfig, kinds: Mapping[str, str],
              weights: Mapping[str, np.ndarray], mask: Mask, rounds: int = 1, seed: int = 0,
              overrides: Optional[Mapping[str, float]] = None, model=None,
              batch=None) -> Mask:
  """The mask after `rounds` rounds of the configured strategy on `weights`, a subset of `mask`
  (`model` and `batch`: see `PruneRequest`)."""
  request = PruneRequest(
      weights={name: weights[name] for name in mask},
      mask=mask,
      layer_rates=layer_rates(pruning, kinds, overrides),
      global_layers=global_layers(pruning, kinds),
      global_rate=pruning.global_rate,
      rounds=rounds,
      seed=seed,
      model=model,
      batch=batch)
  return STRATEGIES.get(pruning.strategy)(request)
