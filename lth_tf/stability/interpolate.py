"""The linear path between two trained networks: its points, their evaluation, the error barrier.

A point of the path at α is `(1 - α) θA + α θB` for every weight, evaluated with the mask
applied (pruned weights are exactly zero at every point). α runs over `alphas(points)`: both
endpoints and `points` evenly spaced values strictly between them. At α = 0 and α = 1 the
point is exactly θA and θB (`(1 - α) a + α b` is exact there, unlike `a + α (b - a)`).

BatchNorm statistics (the moving mean and variance) are not weights that training moves along
a path: a normalisation rule (`NORMALISATION`) says what they are at each point. `recompute`
(the default, the usual choice) sets them to the average of the batch statistics of the network
at that point over fixed training batches, by the layer's own update in training mode;
`interpolate` keeps them interpolated like the weights.

Instability (Frankle et al. 2020) is the largest error on the path minus the mean of the two
endpoint errors: 0 when the path has no barrier above its ends.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from lth_tf import mechanism
from lth_tf.compat import keras
from lth_tf.pruning import structure
from lth_tf.registry import Registry
from lth_tf.training import get_weights, set_weights

Weights = Dict[str, np.ndarray]
# (x, y) -> (mean loss, accuracy) of the model as it is: the trainer's own evaluation.
Evaluate = Callable[[np.ndarray, np.ndarray], Tuple[float, float]]


def alphas(points: int) -> np.ndarray:
  """0, `points` evenly spaced values strictly inside (0, 1), and 1."""
  return np.linspace(0.0, 1.0, points + 2)


def interpolate(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray],
                alpha: float) -> Weights:
  """`(1 - alpha) a + alpha b` for every array, computed in float64, in the array's dtype."""
  return {name: ((1.0 - alpha) * np.asarray(value, np.float64)
                 + alpha * np.asarray(b[name], np.float64)).astype(np.asarray(value).dtype)
          for name, value in a.items()}


def masked(weights: Mapping[str, np.ndarray], mask) -> Weights:
  """The weights with every pruned one (where `mask`, a `Mask`, is False) exactly zero."""
  return {name: value * mask[name].astype(value.dtype) if name in mask else value
          for name, value in weights.items()}


def instability(errors: Sequence[float]) -> float:
  """The error barrier of a path: its largest error minus the mean of its endpoint errors."""
  return float(max(errors) - (errors[0] + errors[-1]) / 2.0)


# ---- BatchNorm statistics along the path ----------------------------------------------------

def batch_norm_layers(model: keras.Model) -> List[keras.layers.BatchNormalization]:
  """Every BatchNormalization layer of the model (nested ones too), in model order, of the
  model's own Keras (tf_keras or Keras 3)."""
  batch_norm = mechanism.of(model).keras.layers.BatchNormalization
  found = []
  for layer in structure.descendants(model):
    if isinstance(layer, batch_norm) and not any(layer is seen for seen in found):
      found.append(layer)
  return found


# (model, batches of training images) -> None: sets the BatchNorm statistics of the point.
Normalisation = Callable[[keras.Model, Sequence[np.ndarray]], None]
NORMALISATION: Registry[Normalisation] = Registry("normalisation rule")


@NORMALISATION.register("recompute")
def recompute(model: keras.Model, batches: Sequence[np.ndarray]) -> None:
  """Sets every BatchNorm layer's moving mean and variance to the mean, over `batches`, of its
  batch statistics in training mode (each layer sees the earlier layers normalised by their
  batch statistics, as in training): the layer's own update with momentum i / (i + 1) at the
  i-th batch is that running average. The variance averaged is the one the layer's own update
  takes: biased after a Dense layer (Keras's unfused kernel), Bessel-corrected (n − 1 over the
  batch × height × width values of a channel) after a convolution (the fused kernel)."""
  layers = batch_norm_layers(model)
  if not layers:
    return
  with _momentum_kept(layers):
    for index, images in enumerate(batches):
      for layer in layers:
        layer.momentum = index / (index + 1.0)
      model(images, training=True)


@NORMALISATION.register("interpolate")
def keep_interpolated(model: keras.Model, batches: Sequence[np.ndarray]) -> None:
  """Keeps the statistics interpolated linearly between the endpoints', like the weights."""
  del model, batches


@contextlib.contextmanager
def _momentum_kept(layers):
  saved = [layer.momentum for layer in layers]
  try:
    yield
  finally:
    for layer, momentum in zip(layers, saved):
      layer.momentum = momentum


# ---- evaluating a path --------------------------------------------------------------------------

class PathEvaluator:
  """Evaluates points of the linear path between two networks of one wrapped model.

  Args:
    model: the wrapped model the points are loaded into (its weights are changed).
    evaluate: the trainer's evaluation of the model as it is on arrays (x, y).
    sets: the evaluation sets by name (`test`, `train`): (x, y) each.
    mask: the mask both networks trained under; applied at every point.
    normalisation: a rule of `NORMALISATION`.
    batches: the training images the `recompute` rule averages BatchNorm statistics over.
  """

  def __init__(self, model: keras.Model, evaluate: Evaluate,
               sets: Mapping[str, Tuple[np.ndarray, np.ndarray]], mask, normalisation: str,
               batches: Sequence[np.ndarray]):
    self.model = model
    self.evaluate = evaluate
    self.sets = dict(sets)
    self.mask = mask
    self.normalise = NORMALISATION.get(normalisation)
    self.batches = list(batches)

  def at(self, weights: Mapping[str, np.ndarray]) -> Dict[str, float]:
    """`<set>_loss` and `<set>_error` of the network `weights` (masked) under the rule."""
    set_weights(self.model, masked(weights, self.mask))
    self.normalise(self.model, self.batches)
    row = {}
    for name, (x, y) in self.sets.items():
      loss, accuracy = self.evaluate(x, y)
      row[f"{name}_loss"], row[f"{name}_error"] = loss, 1.0 - accuracy
    return row

  def path(self, a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray],
           points: Sequence[float]) -> List[Dict[str, float]]:
    """One row per α of `points`: `alpha` and the evaluation of the point there."""
    return [dict(alpha=float(alpha), **self.at(interpolate(a, b, float(alpha))))
            for alpha in points]

  def weights(self) -> Weights:
    """The weights the model holds now (the last point evaluated, statistics included)."""
    return get_weights(self.model)
