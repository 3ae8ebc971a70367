"""What every pruning strategy receives, the shared rounding rule, scored ranking (one step or an
exponential schedule of steps), the strategy record, and the strategy registry."""
import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from lth_tf.errors import ConfigError
from lth_tf.pruning.mask import Mask, keep_top
from lth_tf.registry import Registry


@dataclasses.dataclass(frozen=True)
class PruneRequest:
  """One pruning round.

  Attributes:
    weights: the weights the strategy scores, by prunable-weight name: the trained weights, or
      for a strategy that prunes at initialisation (`PruningStrategy.at_init`) the weights a
      level restarts from (θk; θ0 when k = 0).
    mask: the current mask (the new one is a subset of it).
    layer_rates: layerwise scope: fraction of each layer's remaining weights to prune; a layer
      absent from the map is not pruned.
    global_layers: global scope: the layers pruned together; None means layerwise scope.
    global_rate: global scope: fraction of the remaining weights of `global_layers` to prune.
    rounds: prune `rounds` rounds' worth at once (one-shot pruning to the density that
      `rounds` iterative rounds reach).
    seed: seed for random strategies and for the batch a gradient strategy scores on.
    model: the wrapped Keras model holding `weights` (all of its weights, not only the
      prunable ones) under `mask`, for strategies that score with gradients or a forward
      pass; or None where no model is at hand.
    batch: `(seed, size, per_class=False) -> (images, labels)`: a seeded batch of normalised
      training examples (`size` of them, or `size` of every class with `per_class`;
      `Splits.batch`), or None.
    score_iterations: score-and-prune steps this round takes, at an exponential density
      schedule ending at the asked density; 0: the strategy's own (`PruningStrategy.iterations`).
    score_examples: training examples a gradient strategy scores on, drawn from the whole split;
      0: ten of every class, drawn class by class.
    kinds: each prunable weight's layer kind (`lth_tf.pruning.kinds`: `fc`, `pointwise`,
      `depthwise`, ...), for a strategy whose rule depends on it; empty where none is known.
    options: the chosen strategy's own options (`lth_tf.options`), parsed, by name (N:M:
      `nm`, (N, M)); a strategy reads its defaults where one is missing.
  """
  weights: Mapping[str, np.ndarray]
  mask: Mask
  layer_rates: Mapping[str, float] = dataclasses.field(default_factory=dict)
  global_layers: Optional[Tuple[str, ...]] = None
  global_rate: float = 0.0
  rounds: int = 1
  seed: int = 0
  model: Optional[Any] = None
  batch: Optional[Callable[..., Tuple[np.ndarray, np.ndarray]]] = None
  score_iterations: int = 0
  score_examples: int = 0
  kinds: Mapping[str, str] = dataclasses.field(default_factory=dict)
  options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


Strategy = Callable[[PruneRequest], Mask]
Scores = Dict[str, np.ndarray]
# What a ranking keeps: a count per layer (layerwise scope) or one count over `global_layers`.
Counts = Union[Dict[str, int], int]

# What a strategy may need beyond the weights and the mask (`PruningStrategy.needs`).
INPUTS = {"model": "the model holding the weights", "batch": "a batch of training data",
          "rewind_weights": "the weights a level restarts from (θk)"}


@dataclasses.dataclass(frozen=True)
class PruningStrategy:
  """A strategy record: how it scores, what it needs, and how it prunes.

  A plain function `PruneRequest -> Mask` registered in `STRATEGIES` is a strategy too: it needs
  nothing but the weights and has no scores (`record` describes it so).

  Attributes:
    score: `PruneRequest -> scores` by weight name, higher kept (over every weight of `mask`;
      the ranking looks at the surviving ones only), or None for a strategy that does not rank
      by a score (its `prune` decides); the `invert` branch ranks by these.
    prune: `PruneRequest -> Mask` for a strategy that does not keep the top scores (ERK
      masks); None: keep the top `score`s, in `iterations` steps.
    needs: what the strategy needs besides the weights and mask: `model`, `batch`.
    at_init: scores the weights a level restarts from (θk) rather than the trained ones, and
      ranks by the config's `init_scope` (pruning at initialisation); it needs the caller to
      have those weights (`rewind_weights` in `inputs`).
    iterations: score-and-prune steps per pruning round by default (SynFlow: 100).
    global_only: its per-layer densities come from an overall count (ERK, uniform): it refuses
      layerwise scope.
    final_after: its mask stops changing after this many pruning rounds (N:M: 1, a fixed
      pattern), so an experiment with more levels is refused before training; it keeps its
      pattern's count, not the rates'. 0: no limit.
    reads_weights: its mask depends on the values of the weights it is given (random pruning's
      does not). With `at_init` False, the mask level 1 prunes depends on how long the dense
      network trained, which is what the early-bird watch follows (`watches_training`).
    options: the names of the options it declares (`lth_tf.options.declare`, N:M: `nm`) and
      alone reads; under any other strategy they must keep their defaults.
    check: `PruneRequest -> notes`: the strategy's check of a model's prunable weights before
      anything trains (the request of a first round on the dense mask); raises `ConfigError`
      for a model it cannot prune and returns lines for the log (e.g. the layers it leaves
      dense). None: nothing to check.
    summary: one line for help.
  """
  score: Optional[Callable[[PruneRequest], Scores]] = None
  prune: Optional[Strategy] = None
  needs: Tuple[str, ...] = ()
  at_init: bool = False
  iterations: int = 1
  global_only: bool = False
  final_after: int = 0
  reads_weights: bool = True
  options: Tuple[str, ...] = ()
  check: Optional[Callable[[PruneRequest], Tuple[str, ...]]] = None
  summary: str = ""

  def __post_init__(self):
    if self.score is None and self.prune is None:
      raise ValueError("a strategy record needs a score or a prune function")

  @property
  def watches_training(self) -> bool:
    """Whether the mask it prunes level 1 with follows the dense training's weights: it scores
    the trained weights (not θk, `at_init`) and reads their values (`reads_weights`). Only such
    a strategy has an early-bird ticket to draw: the others give level 1 the same mask wherever
    the dense training stops."""
    return self.reads_weights and not self.at_init

  @property
  def inputs(self) -> Tuple[str, ...]:
    """Everything the caller must give (names of `INPUTS`)."""
    return (("rewind_weights",) if self.at_init else ()) + tuple(self.needs)

  def __call__(self, request: PruneRequest) -> Mask:
    if self.prune is not None:
      return self.prune(request)
    steps = request.score_iterations or self.iterations
    return prune_in_steps(request, self.score, steps)


STRATEGIES: Registry[Strategy] = Registry("pruning strategy")


def record(strategy: Strategy) -> PruningStrategy:
  """The record of a registered strategy; a plain function is one that needs nothing more."""
  return strategy if isinstance(strategy, PruningStrategy) else PruningStrategy(prune=strategy)


def require(request: PruneRequest, name: str, *inputs: str) -> None:
  """Raises a one-line `ConfigError` when `request` lacks one of `inputs` that strategy `name`
  needs (e.g. a direct call without a model)."""
  for what in inputs:
    if getattr(request, what) is None:
      raise ConfigError(f"pruning strategy {name!r} needs {INPUTS[what]}; none was given")


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


def target_counts(request: PruneRequest) -> Counts:
  """What this request keeps: per layer (layerwise scope) or over `global_layers`."""
  return keep_counts(request) if request.global_layers is None else global_keep_count(request)


def keep_by_scores(mask: Mask, scores: Mapping[str, np.ndarray], counts: Counts,
                   global_layers: Optional[Tuple[str, ...]]) -> Mask:
  """Keeps the highest-scoring surviving weights of `mask`, `counts` of them; pruned weights
  score -inf and never return.

  Layerwise scope (`global_layers` None) ranks within each layer; global scope ranks across
  `global_layers` and leaves every other layer as it is.
  """
  live = {name: np.where(mask[name], scores[name], -np.inf) for name in mask}
  new = dict(mask.to_arrays())
  if global_layers is None:
    for name, keep in counts.items():
      new[name] = keep_top(live[name], keep)
  else:
    names = list(global_layers)
    flat = np.concatenate([live[name].reshape(-1) for name in names])
    kept = keep_top(flat, counts)
    offset = 0
    for name in names:
      size = live[name].size
      new[name] = kept[offset:offset + size].reshape(live[name].shape)
      offset += size
  return Mask.from_dict(new)


def prune_by_scores(request: PruneRequest, scores: Mapping[str, np.ndarray]) -> Mask:
  """Keeps the highest-scoring surviving weights, as many as the request's rates leave."""
  return keep_by_scores(request.mask, scores, target_counts(request), request.global_layers)


def exponential_schedule(start: int, target: int, steps: int):
  """The counts kept after each of `steps` steps from `start` to `target` weights, at a
  constant ratio per step (rounded); the last one is `target` exactly."""
  if start <= 0 or target >= start:
    return [target] * steps
  ratio = max(target, 1) / start
  counts = [min(start, max(target, int(round(start * ratio ** (step / steps)))))
            for step in range(1, steps)]
  return counts + [target]


def _step_counts(start: Counts, target: Counts, steps: int):
  if isinstance(target, int):
    return exponential_schedule(start, target, steps)
  per_layer = {name: exponential_schedule(start[name], target[name], steps) for name in target}
  return [{name: per_layer[name][step] for name in target} for step in range(steps)]


def prune_in_steps(request: PruneRequest, score: Callable[[PruneRequest], Scores],
                   steps: int) -> Mask:
  """Keeps the top scores in `steps` score-and-prune steps (scores recomputed on each step's
  mask) at an exponential density schedule that reaches the request's count exactly."""
  if steps <= 1:
    return prune_by_scores(request, score(request))
  layers = request.mask.layer_counts()
  start = (layers if request.global_layers is None
           else sum(layers[name] for name in request.global_layers))
  mask = request.mask
  for counts in _step_counts(start, target_counts(request), steps):
    mask = keep_by_scores(mask, score(dataclasses.replace(request, mask=mask)), counts,
                          request.global_layers)
  return mask


EXAMPLES_PER_CLASS = 10  # GraSP's default batch: ten training examples of every class


def score_batch(request: PruneRequest, name: str) -> Tuple[np.ndarray, np.ndarray]:
  """The seeded batch a gradient strategy scores on: ten training examples of every class, drawn
  class by class as GraSP's reference code does (`GraSP_fetch_data`); or with
  `score_examples` that many examples of the whole training split, whatever their classes."""
  require(request, name, "model", "batch")
  if request.score_examples:
    return request.batch(request.seed, request.score_examples)
  return request.batch(request.seed, EXAMPLES_PER_CLASS, per_class=True)
