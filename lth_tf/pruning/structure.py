"""A Keras model's structure as lth_tf names it: canonical layer names, every weight by its path,
and the weights lth_tf prunes, with the reason every other weight stays dense.

Names do not depend on build order. Keras names an unnamed layer from a counter per process
(`dense`, `dense_1`, ... then `dense_7` after other models were built), so `canonicalise` renames
every weighted layer whose name is such a default to the name a fresh process gives it: layers
of one default prefix are ranked by their counter (which follows creation order) and renamed
`prefix`, `prefix_1`, ... in that order. A name the user chose is kept.

A weight's name is the path of layer names from the model down to the layer that owns it, then
the variable's own name (`fc1/kernel`, `multi_head_attention/query/kernel`,
`bidirectional/forward_lstm/kernel`). A layer whose weights all belong to one sub-layer (an RNN
and its cell, `TimeDistributed` and its layer) names them as its own (`lstm/kernel`), which is
also the name they had before nested layers were named at all.

Which weights are pruned:
- a top-level layer that tfmot's prune registry supports or that implements `PrunableLayer` is
  wrapped in the mask-freeze wrapper (`lth_tf.pruning.wrapper`), and its mask is the wrapper's;
- every other weight that `RULES` names (layers inside a nested model, `Bidirectional`,
  `TimeDistributed` or attention, recurrent cells, `EinsumDense`, and every layer of a
  subclassed model) is pruned at its variable: lth_tf keeps its mask beside the model, and the
  training loop treats it as it treats wrapped ones (`lth_tf.training.loop`: the weight and its
  optimizer slots zeroed at the start of every chunk, its gradient masked at every step, so it
  stays exactly zero after every step).
"""
from __future__ import annotations

import dataclasses
import functools
import re
from collections import defaultdict
from typing import List, Optional, Tuple

from lth_tf import mechanism
from lth_tf.compat import keras, tf
from lth_tf.errors import ConfigError

# Layers named by Bidirectional from its layer's name.
_DERIVED_PREFIXES = ("forward_", "backward_")


def snake_case(class_name: str) -> str:
  """Keras' default layer name for a class (`SeparableConv2D` → `separable_conv2d`)."""
  name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", class_name)
  name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
  return name if not name.startswith("_") else "private" + name


def default_name_parts(layer) -> Optional[Tuple[str, int]]:
  """(prefix, counter) when `layer.name` is a Keras default name (`dense_3` → ('dense', 3),
  `forward_lstm` → ('forward_lstm', 0)); None for a name the user chose."""
  snakes = [snake_case(type(layer).__name__)]
  implementation = mechanism.of(layer)
  if isinstance(layer, implementation.keras.Model):
    # Keras names a functional model `model`, `model_1`, ... (Keras 3: `functional`, ...).
    snakes += list(implementation.model_names)
  snake = "|".join(re.escape(name) for name in snakes)
  match = re.fullmatch(rf"((?:forward_|backward_)?(?:{snake}))(?:_(\d+))?", layer.name)
  if match is None:
    return None
  return match.group(1), int(match.group(2) or 0)


def children(layer) -> List:
  """The direct sub-layers of `layer` (a mask-freeze wrapper is seen through)."""
  return [unwrap(child) for child in mechanism.of(layer).sublayers(layer)]


def unwrap(layer):
  """The layer a mask-freeze wrapper wraps, or `layer`."""
  return mechanism.of(layer).unwrap(layer)


def weights(layer) -> List:
  """Every weight of `layer` as the variable training reads and assigns (`Mechanism.weights`)."""
  return mechanism.of(layer).weights(layer)


def trainable_weights(model: keras.Model) -> List:
  """The trainable weights of `model` as variables, in the order an optimizer takes them."""
  return mechanism.of(model).trainable_weights(model)


def graph_inputs(model: keras.Model) -> List:
  """The Inputs of a functional or Sequential model; [] for a subclassed one."""
  return mechanism.of(model).graph_inputs(model)


def top_layers(model: keras.Model) -> List:
  """The model's own layers, wrappers seen through, in model order."""
  return [unwrap(layer) for layer in model.layers]


def descendants(layer):
  """Every layer inside `layer`, depth first in model order (wrappers seen through)."""
  for child in children(layer):
    yield child
    yield from descendants(child)


def canonicalise(model: keras.Model) -> keras.Model:
  """Renames every weighted layer of `model` (nested ones included) whose name is a Keras default
  to the name a fresh process would give it (see the module docstring). Idempotent; returns
  `model`."""
  groups = defaultdict(list)
  for order, layer in enumerate(descendants(model)):
    if not layer.weights:
      continue
    parts = default_name_parts(layer)
    if parts is not None:
      groups[parts[0]].append((parts[1], order, layer))
  names = []
  for prefix, members in groups.items():
    for rank, (_, _, layer) in enumerate(sorted(members, key=lambda m: m[:2])):
      name = prefix if rank == 0 else f"{prefix}_{rank}"
      if layer.name != name:
        names.append((layer, name))
  if names:
    mechanism.of(model).rename_layers(model, names)
  return model


def _short_name(variable) -> str:
  return variable.name.split("/")[-1].split(":")[0]


def _layer_weights(layer, path: str) -> List[Tuple[str, tf.Variable]]:
  """(name, variable) for every weight of `layer`, named under `path`."""
  weighted = [child for child in children(layer) if child.weights]
  single = len(weighted) == 1 and len(weighted[0].weights) == len(layer.weights)
  owned = {}
  for child in weighted:
    for name, variable in _layer_weights(child, path if single else f"{path}/{child.name}"):
      owned.setdefault(variable.ref(), name)
  implementation = mechanism.of(layer)
  return [(owned.get(v.ref(), f"{path}/{implementation.weight_name(layer, _short_name(v))}"), v)
          for v in weights(layer)]


def named_weights(model: keras.Model) -> List[Tuple[str, tf.Variable]]:
  """(name, variable) for every weight of `model` in model order, masks and the wrappers' own
  variables excluded; a variable shared by two layers is listed once.

  Raises:
    ConfigError: two different weights would have the same name.
  """
  out, seen, names = [], set(), {}
  layers = top_layers(model)
  pairs = [pair for layer in layers for pair in _layer_weights(layer, layer.name)]
  covered = {v.ref() for _, v in pairs}
  wrappers = {v.ref() for v in mechanism.of(model).wrapper_variables(model)}
  # A subclassed model may own variables itself (`add_weight` in the model); the wrappers' own
  # variables (mask, threshold, step) are not weights of the model.
  pairs += [(_short_name(v), v) for v in weights(model)
            if v.ref() not in covered and v.ref() not in wrappers]
  for name, variable in pairs:
    if variable.ref() in seen:
      continue
    if name in names:
      raise ConfigError(f"two weights of {model.name} would both be named {name!r}: give "
                        "their layers or variables distinct names")
    seen.add(variable.ref())
    names[name] = variable
    out.append((name, variable))
  return out


# ---- which weights are pruned --------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Rule:
  """Which weights of a layer class lth_tf prunes (by attribute name), and its family."""
  attributes: Tuple[str, ...]
  family: str
  why_dense: str = ""


_SEPARABLE = "depthwise kernel: tfmot's rule prunes the pointwise kernel only"


@functools.lru_cache(maxsize=None)
def _rules(layers):
  """The rules for the layer classes of `layers` (a Keras implementation's `keras.layers`)."""
  recurrent = ("kernel", "recurrent_kernel")
  # Most specific classes first: SeparableConv and DepthwiseConv derive from Conv.
  return [
      (layers.DepthwiseConv2D, Rule((), "depthwise", "depthwise kernel: tfmot's registry prunes "
                                    "none (a few weights per channel)")),
      (layers.DepthwiseConv1D, Rule((), "depthwise", "depthwise kernel: tfmot's registry "
                                    "prunes none (a few weights per channel)")),
      (layers.SeparableConv1D, Rule(("pointwise_kernel",), "conv", _SEPARABLE)),
      (layers.SeparableConv2D, Rule(("pointwise_kernel",), "conv", _SEPARABLE)),
      (layers.Conv1D, Rule(("kernel",), "conv")),
      (layers.Conv2D, Rule(("kernel",), "conv")),
      (layers.Conv3D, Rule(("kernel",), "conv")),
      (layers.Conv2DTranspose, Rule(("kernel",), "conv")),
      (layers.Conv3DTranspose, Rule(("kernel",), "conv")),
      (layers.Dense, Rule(("kernel",), "fc")),
      (layers.EinsumDense, Rule(("kernel",), "fc")),
      (layers.Embedding, Rule(("embeddings",), "embedding")),
      (layers.LSTMCell, Rule(recurrent, "recurrent")),
      (layers.GRUCell, Rule(recurrent, "recurrent")),
      (layers.SimpleRNNCell, Rule(recurrent, "recurrent")),
      (layers.BatchNormalization, Rule((), "norm", "normalisation")),
      (layers.LayerNormalization, Rule((), "norm", "normalisation")),
  ]


@dataclasses.dataclass(frozen=True)
class Prunable:
  """One pruned weight.

  Attributes:
    name: the weight's name (`named_weights`).
    weight: its variable.
    layer: the layer that owns it (the inner layer of a wrapper).
    family: `conv`, `depthwise`, `fc`, `embedding`, `recurrent`, `attention` (a projection
      inside `MultiHeadAttention`), or `custom` (a `PrunableLayer`).
    wrapped: pruned through tfmot's wrapper (else at its variable).
  """
  name: str
  weight: tf.Variable
  layer: object
  family: str
  wrapped: bool


@dataclasses.dataclass(frozen=True)
class Dense:
  """One weight left dense, and why."""
  name: str
  layer: object
  why: str


def _declared(layer, rule: Optional["Rule"]) -> Optional[List]:
  """The weights a layer declares prunable itself (a `PrunableLayer`, or a layer without a rule
  that has `get_prunable_weights`), or None. (tfmot gives the built-in layers it wraps a
  `get_prunable_weights` of their own; their rule decides.)"""
  return mechanism.of(layer).declared_prunable(layer, rule is not None)


def _rule(layer) -> Optional[Rule]:
  for cls, rule in _rules(mechanism.of(layer).keras.layers):
    if isinstance(layer, cls):
      return rule
  return None


def _in_attention(ancestors) -> bool:
  return any(isinstance(a, mechanism.of(a).keras.layers.MultiHeadAttention) for a in ancestors)


def classify(model: keras.Model) -> Tuple[List[Prunable], List[Dense]]:
  """Every weight of `model`, pruned (`Prunable`, in model order) or left dense (`Dense`)."""
  named = named_weights(model)
  names = {v.ref(): n for n, v in named}
  wrapped = {weight.ref(): layer for weight, _, layer in mechanism.of(model).wrapper_masks(model)}
  pruned, dense, done = [], [], set()

  def visit(layer, ancestors):
    rule = _rule(layer)
    declared = _declared(layer, rule)
    for child in children(layer):
      visit(child, ancestors + (layer,))
    implementation = mechanism.of(layer)
    chosen = {v.ref() for v in declared} if declared is not None else {
        implementation.variable(getattr(layer, a)).ref() for a in (rule.attributes if rule else ())
        if getattr(layer, a, None) is not None}
    for variable in weights(layer):
      ref = variable.ref()
      if ref in done or ref not in names:
        continue
      done.add(ref)
      if ref in wrapped or ref in chosen:
        family = "custom" if declared is not None else rule.family
        if family == "fc" and _in_attention(ancestors):
          family = "attention"
        pruned.append(Prunable(names[ref], variable, layer, family, ref in wrapped))
      else:
        dense.append(Dense(names[ref], layer, _why_dense(layer, variable, rule, declared)))

  for layer in top_layers(model):
    visit(layer, ())
  order = {n: i for i, (n, _) in enumerate(named)}
  pruned.sort(key=lambda p: order[p.name])
  dense.sort(key=lambda d: order[d.name])
  return pruned, dense


def _why_dense(layer, variable, rule: Optional[Rule], declared) -> str:
  short = _short_name(variable)
  if declared is not None:
    return "not in the layer's get_prunable_weights()"
  if "bias" in short:
    return "bias"
  if rule is not None and rule.why_dense:
    return rule.why_dense
  if rule is not None:
    return f"{type(layer).__name__}: only {', '.join(rule.attributes)} pruned"
  return (f"no pruning rule for {type(layer).__name__} (declare its prunable weights with "
          "tfmot's PrunableLayer.get_prunable_weights)")


def classifier_layer(model: keras.Model):
  """The weighted layer whose output the model returns (followed back through weightless layers
  such as an activation, a cast or dropout), or None (a subclassed model, several outputs)."""
  layers = mechanism.of(model).output_layers(model)
  if len(layers) != 1:
    return None
  layer = unwrap(layers[0])
  while not layer.weights:
    inbound = mechanism.of(layer).inbound_layers(layer)
    if len(inbound) != 1:
      return None
    layer = unwrap(inbound[0])
  return layer


@dataclasses.dataclass(frozen=True)
class Masked:
  """A pruned weight of a wrapped model and its mask variable (`Prunable` plus the mask)."""
  name: str
  weight: tf.Variable
  mask: tf.Variable
  layer: object
  family: str


def masked(model: keras.Model) -> List[Masked]:
  """The pruned weights of a model made by `lth_tf.pruning.wrapper.wrap_model`, with their masks,
  in model order ([] for a model that was never wrapped)."""
  return list(getattr(model, "_lth_masked", ()))


def attach_masks(model: keras.Model, entries: List[Masked]) -> None:
  """Records the pruned weights and their masks on `model`."""
  # Set past Keras' attribute tracking: the masks are not weights of the model.
  object.__setattr__(model, "_lth_masked", tuple(entries))


# ---- the head -------------------------------------------------------------------------------
# A user's model may end in a softmax (or, for two classes, one sigmoid unit). lth_tf trains the
# logits under it (`lth_tf.models.heads`) and records the head on the model, so that an exported
# model returns what the user's model returned.

def head(model: keras.Model) -> str:
  """`logits` (the model returns logits), `softmax` or `sigmoid` (a head lth_tf took off)."""
  return getattr(model, "_lth_head", "logits")


def set_head(model: keras.Model, name: str) -> None:
  object.__setattr__(model, "_lth_head", name)


def copy_head(source: keras.Model, target: keras.Model) -> None:
  set_head(target, head(source))
