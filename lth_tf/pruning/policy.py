"""The mask policy: the rate each prunable weight is pruned at, the layers that share a global
threshold, the weights the configured strategy scores, and the next mask (or the scores) those
rules and the strategy give."""
from typing import Dict, Iterable, Mapping, Optional, Tuple

import numpy as np

from lth_tf.config import PruningConfig
from lth_tf import options as options_lib
from lth_tf.errors import ConfigError
from lth_tf.pruning.kinds import GLOBAL_SETS, KINDS
from lth_tf.pruning.mask import Mask
from lth_tf.pruning.strategies import STRATEGIES, PruneRequest
from lth_tf.pruning.strategies.base import INPUTS, PruningStrategy, number_to_prune, record


def strategy(pruning: PruningConfig) -> PruningStrategy:
  """The configured strategy's record (an unknown name is a `ConfigError` listing the choices)."""
  return record(STRATEGIES.get(pruning.strategy))


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


_DEFAULTS = PruningConfig()


def _ranking(pruning: PruningConfig) -> Tuple[str, str]:
  """(scope, global_layers) the configured strategy ranks by: a strategy that prunes at
  initialisation follows `init_scope` unless it is `scope`."""
  if not strategy(pruning).at_init or pruning.init_scope == "scope":
    return pruning.scope, pruning.global_layers
  if (pruning.scope, pruning.global_layers) != (_DEFAULTS.scope, _DEFAULTS.global_layers):
    raise ConfigError(
        f"--pruning_strategy={pruning.strategy} prunes at initialisation and ranks by "
        f"--init_scope={pruning.init_scope}, not by --scope and --global_layers; give "
        "--init_scope=scope to rank it by those")
  return ("global", "all") if pruning.init_scope == "global" else ("layerwise", "all")


def global_layers(pruning: PruningConfig, kinds: Mapping[str, str]) -> Optional[Tuple[str, ...]]:
  """Global scope: the weights ranked together (the kinds `GLOBAL_SETS[global_layers]` names:
  every convolution, 1x1 convolutions only, or all); None when layerwise. Refuses a scope the
  strategy cannot prune by (one-line `ConfigError`)."""
  scope, layers = _ranking(pruning)
  if scope != "global":
    if strategy(pruning).global_only:
      raise ConfigError(f"--pruning_strategy={pruning.strategy} shares an overall count among "
                        "the layers by its own rule: it needs global scope "
                        "(--init_scope=global)")
    return None
  chosen = tuple(n for n, k in kinds.items() if k in GLOBAL_SETS[layers])
  if not chosen:
    raise ConfigError(f"global pruning over {layers!r} layers, but the model has none")
  return chosen


def check_inputs(pruning: PruningConfig, available: Iterable[str], where: str) -> None:
  """Refuses a strategy that needs what `where` cannot give it (names of `INPUTS`: `model`,
  `batch`, `rewind_weights`), in one line, before anything trains."""
  missing = [name for name in strategy(pruning).inputs if name not in set(available)]
  if missing:
    raise ConfigError(f"pruning strategy {pruning.strategy!r} needs "
                      f"{' and '.join(INPUTS[name] for name in missing)}, which {where} does "
                      "not give it")


def parsed_options(pruning: PruningConfig):
  """The chosen strategy's options, parsed (`lth_tf.options`), defaults filled in."""
  declared = options_lib.declared("pruning")
  return {name: declared[name].parse(pruning.option(name)) for name in strategy(pruning).options}


def check_config(pruning: PruningConfig) -> None:
  """Refuses, in one line before anything trains, an option of another strategy set away from
  its default (`PruningStrategy.options`, e.g. `--nm` without `--pruning_strategy=nm`), an
  early-bird threshold under a strategy whose level-1 mask does not follow the dense training
  (`PruningStrategy.watches_training`), and more levels than the strategy's mask changes in
  (`PruningStrategy.final_after`)."""
  chosen = strategy(pruning)
  declared = options_lib.declared("pruning")
  for option, _ in pruning.options:
    if option not in chosen.options:
      raise ConfigError(f"--{option} is read by --pruning_strategy={declared[option].owner} "
                        f"only; this experiment prunes with --pruning_strategy={pruning.strategy}")
  if pruning.early_bird_threshold and not chosen.watches_training:
    what = ("scores θk, the weights a level restarts from" if chosen.at_init
            else "does not read the weights' values")
    raise ConfigError(
        f"--early_bird_threshold watches the dense training for the mask level 1 would prune, "
        f"but --pruning_strategy={pruning.strategy} {what}: its level-1 mask is the same "
        "wherever the dense training stops, so there is no early-bird ticket to draw (use a "
        "strategy that scores the trained weights, such as magnitude)")
  if chosen.final_after and pruning.levels > chosen.final_after:
    raise ConfigError(
        f"--pruning_strategy={pruning.strategy} reaches its final mask in {chosen.final_after} "
        f"pruning round(s) (a fixed pattern: more rounds give the same mask); --levels="
        f"{pruning.levels} asks for more: give --levels={chosen.final_after}")


def first_idle_level(pruning: PruningConfig, kinds: Mapping[str, str],
                     shapes: Mapping[str, Tuple[int, ...]]) -> Optional[int]:
  """The first level up to `pruning.levels` whose round prunes no weight (the rates round to
  zero on every layer's survivors: the mask would never change again), or None. Walks the
  counts round by round, stopping there: never as many steps as a huge `levels` asks."""
  if strategy(pruning).final_after:
    return None  # its own count, checked by `check_config`
  sizes = {name: int(np.prod(shape)) for name, shape in shapes.items()}
  ranked = global_layers(pruning, kinds)
  if ranked is None:
    rates = layer_rates(pruning, kinds)
    groups = {name: (sizes[name], rates[name]) for name in rates}
  else:
    groups = {"global": (sum(sizes[name] for name in ranked), pruning.global_rate)}
  counts = {name: count for name, (count, _) in groups.items()}
  for level in range(1, pruning.levels + 1):
    pruned = {name: number_to_prune(counts[name], groups[name][1]) for name in counts}
    if not any(pruned.values()):
      return level
    counts = {name: counts[name] - pruned[name] for name in counts}
  return None


def level_limit(pruning: PruningConfig, levels: int) -> int:
  """`levels`, or fewer where the configured strategy's mask is final sooner (for a search
  that chooses the level count itself)."""
  final = strategy(pruning).final_after
  return min(levels, final) if final else levels


def check_model(pruning: PruningConfig, kinds: Mapping[str, str],
                weights: Mapping[str, np.ndarray]) -> Tuple[str, ...]:
  """The configured strategy's own check of a model's prunable `weights` before anything
  trains (`PruningStrategy.check`, on a first round from the dense mask): raises `ConfigError`
  for a model it cannot prune; returns the lines to log."""
  check = strategy(pruning).check
  if check is None:
    return ()
  return tuple(check(request(pruning, kinds, weights, Mask.ones_like(weights))))


def scored_weights(pruning: PruningConfig, trained: Mapping[str, np.ndarray],
                   rewind: Optional[Mapping[str, np.ndarray]]) -> Mapping[str, np.ndarray]:
  """The weights the configured strategy scores: the trained ones, or for a strategy that
  prunes at initialisation the weights a level restarts from (θk)."""
  if not strategy(pruning).at_init:
    return trained
  if rewind is None:
    raise ConfigError(f"pruning strategy {pruning.strategy!r} scores the rewind weights θk; "
                      "none were given")
  return rewind


def request(pruning: PruningConfig, kinds: Mapping[str, str], weights: Mapping[str, np.ndarray],
            mask: Mask, rounds: int = 1, seed: int = 0,
            overrides: Optional[Mapping[str, float]] = None, model=None,
            batch=None) -> PruneRequest:
  """The `PruneRequest` of `rounds` rounds of the configured policy on `weights` (the weights
  the strategy scores: see `scored_weights`)."""
  return PruneRequest(
      weights={name: weights[name] for name in mask},
      mask=mask,
      layer_rates=layer_rates(pruning, kinds, overrides),
      global_layers=global_layers(pruning, kinds),
      global_rate=pruning.global_rate,
      rounds=rounds,
      seed=seed,
      model=model,
      batch=batch,
      score_iterations=pruning.score_iterations,
      score_examples=pruning.score_examples,
      kinds=dict(kinds),
      options=parsed_options(pruning))


def next_mask(pruning: PruningConfig, kinds: Mapping[str, str],
              weights: Mapping[str, np.ndarray], mask: Mask, rounds: int = 1, seed: int = 0,
              overrides: Optional[Mapping[str, float]] = None, model=None,
              batch=None) -> Mask:
  """The mask after `rounds` rounds of the configured strategy on `weights`, a subset of `mask`
  (`model` and `batch`: see `PruneRequest`)."""
  return STRATEGIES.get(pruning.strategy)(
      request(pruning, kinds, weights, mask, rounds, seed, overrides, model, batch))


def score_steps(pruning: PruningConfig) -> int:
  """The score-and-prune steps the configured strategy takes per pruning call (its own, or
  `score_iterations`); 1 for a strategy that does not rank by a score."""
  chosen = strategy(pruning)
  if chosen.score is None:
    return 1
  return max(1, pruning.score_iterations or chosen.iterations)


def has_scores(pruning: PruningConfig) -> bool:
  """Whether the configured strategy ranks weights by a score (what `scores` returns)."""
  return strategy(pruning).score is not None


def scores(pruning: PruningConfig, kinds: Mapping[str, str], weights: Mapping[str, np.ndarray],
           mask: Mask, seed: int = 0, model=None, batch=None) -> Dict[str, np.ndarray]:
  """The configured strategy's scores of the weights of `mask` (higher kept) in one scoring
  pass on `mask`: the ranking its pruning of `mask` starts from."""
  scorer = strategy(pruning).score
  if scorer is None:
    raise ConfigError(f"pruning strategy {pruning.strategy!r} does not rank weights by a score")
  return scorer(request(pruning, kinds, weights, mask, seed=seed, model=model, batch=batch))
