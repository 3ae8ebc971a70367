"""Masks on a wrapped Keras model: read, set, enforce, and the layer kinds that pick per-layer rates."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from lth_tf.compat import keras, tf
from lth_tf.pruning import structure
from lth_tf.pruning.kinds import KINDS, is_conv, layer_kind
from lth_tf.pruning.mask import Mask


def mask_pairs(model: keras.Model) -> List[Tuple[str, tf.Variable, tf.Variable]]:
  """(name, weight variable, mask variable) for every prunable weight, in model order."""
  return [(entry.name, entry.weight, entry.mask) for entry in structure.masked(model)]


def prunable_shapes(model: keras.Model) -> Dict[str, Tuple[int, ...]]:
  return {name: tuple(weight.shape) for name, weight, _ in mask_pairs(model)}


def prunable_weights(model: keras.Model) -> Dict[str, np.ndarray]:
  return {name: weight.numpy() for name, weight, _ in mask_pairs(model)}


def get_mask(model: keras.Model) -> Mask:
  return Mask.from_dict({name: mask.numpy() > 0.5 for name, _, mask in mask_pairs(model)})


def set_mask(model: keras.Model, mask: Mask) -> None:
  """Assigns `mask` (checked to fit the model) and zeroes the pruned weights."""
  mask.check_fits(prunable_shapes(model))
  for name, weight, mask_var in mask_pairs(model):
    mask_var.assign(mask[name].astype(np.dtype(mask_var.dtype.name)))
  apply_mask(model)


def zero_pruned(targets, mask) -> None:
  """Sets the entries of every variable of `targets` (a weight, its optimizer slots) where
  `mask` is zero to exactly zero: the one place that multiplies a variable by its mask (in and
  out of traced functions; a mask of the variable's dtype is used as it is). A variable that
  is not TensorFlow's (a Keras 3 variable on JAX, `lth_tf.mechanism.keras3.JaxVariable`) zeroes
  itself."""
  for target in targets:
    if hasattr(target, "zero_pruned"):
      target.zero_pruned(mask)
    else:
      target.assign(target * tf.cast(mask, target.dtype))


def apply_mask(model: keras.Model) -> None:
  """Sets every pruned weight to exactly zero."""
  for _, weight, mask_var in mask_pairs(model):
    zero_pruned([weight], mask_var)


LAYER_KINDS = tuple(KINDS)


def layer_kinds(model: keras.Model) -> Dict[str, str]:
  """The kind (`lth_tf.pruning.kinds.KINDS`) of every prunable weight: `stem` for the model's
  first convolution, `depthwise`, `pointwise` (1x1), other `conv`, `fc`, `embedding`,
  `recurrent`, `attention`, and `output` for the classifier: the layer named `output`, or the
  weighted layer whose output the model returns."""
  kinds = {}
  entries = structure.masked(model)
  stem = next((entry.layer for entry in entries if is_conv(entry.layer)), None)
  classifier = structure.classifier_layer(model)
  for entry in entries:
    kinds[entry.name] = layer_kind(entry.layer, first_conv=entry.layer is stem,
                                   family=entry.family, classifier=entry.layer is classifier)
  return kinds


def pruning_table(model: keras.Model, kinds: Dict[str, str], shown: int = 3,
                  global_layers: Optional[Tuple[str, ...]] = None) -> str:
  """What `model` prunes and what stays dense and why, one row per layer type, weight and
  decision (a markdown table `lth find` prints before training). `global_layers`: the weights
  ranked together at `global_rate` under global scope (`pruning.global_layers`); None when
  every weight is pruned at its kind's rate."""
  pruned, dense = structure.classify(model)
  ranked = set(global_layers or ())
  rows: Dict[Tuple[str, str, str], List[str]] = {}
  for entry in pruned:
    kind = kinds.get(entry.name, "")
    if global_layers is None:
      decision = f"pruned: {kind} ({KINDS.get(kind, '')})"
    elif entry.name in ranked:
      decision = f"pruned: {kind} (ranked globally at global_rate)"
    else:
      decision = f"dense: {kind}, outside the global ranking (--global_layers)"
    key = (type(entry.layer).__name__, entry.name.rsplit("/", 1)[-1], decision)
    rows.setdefault(key, []).append(entry.name.rsplit("/", 1)[0])
  for entry in dense:
    key = (type(entry.layer).__name__, entry.name.rsplit("/", 1)[-1], f"dense: {entry.why}")
    rows.setdefault(key, []).append(entry.name.rsplit("/", 1)[0])
  lines = ["| layer type | weight | decision | layers |", "|---|---|---|---|"]
  for (kind, weight, decision), layers in rows.items():
    names = ", ".join(layers[:shown]) + (f" and {len(layers) - shown} more" if len(layers) > shown else "")
    lines.append(f"| {kind} | {weight} | {decision} | {names} |")
  return "\n".join(lines)
