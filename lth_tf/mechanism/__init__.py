"""The mechanism: what lth_tf needs from a Keras implementation to train a network under a
frozen mask, in one place.

lth_tf prunes by keeping a mask beside every prunable weight and training with masked gradients,
so that pruned weights and their optimizer slots stay exactly zero. What that takes from the
Keras underneath is the `Mechanism` interface:

- the layer graph: a layer's direct sub-layers, renaming built layers, a functional model's
  output layers and a layer's inbound layers (`lth_tf.pruning.structure` names and walks
  models with them);
- variables: a layer's weights as the variables training reads and assigns (`weights`,
  `trainable_weights`), a model's Inputs (`graph_inputs`: none for a subclassed model);
- prunable weights: which top-level layers carry a mask through the implementation's own
  wrapper (`is_prunable`, `wrap`, `wrapper_masks`, `unwrap`), and the weights a user's layer
  declares prunable (`declared_prunable`);
- optimizer state: the slot variables of a weight (`slots_of`);
- loss scaling under float16: the optimizer that scales the loss (`loss_scaling`), the one that
  owns the slots (`inner_optimizer`), the scaled loss and the unscaled gradients (`scale_loss`,
  `unscale_gradients`);
- export: the model without its wrappers (`strip`).

The implementation for Keras 2 (tf_keras with tfmot's pruning wrapper, frozen) is
`mechanism.tf_keras`; the one for Keras 3 models on its TensorFlow backend is
`mechanism.keras3`; `of(obj)` is the implementation of a model or layer. No module outside
this package and `lth_tf.compat` (which imports the libraries) reads tfmot, tf_keras's private
names or an optimizer's private names (tests/test_imports.py enforces it).
"""
from __future__ import annotations

import importlib
import sys
from typing import List, Optional

from lth_tf.errors import ConfigError
from lth_tf.registry import Registry

MECHANISMS: Registry["Mechanism"] = Registry("framework")


class Mechanism:
  """What lth_tf needs from one Keras implementation (see the module docstring)."""
  name = ""
  # The Keras module whose layers, `Model` and `Input` the implementation's models are made of.
  keras = None
  # The names Keras gives an unnamed model of its own class (`model`, `model_1`, ...).
  model_names: tuple = ()
  # Whether models are built under lth_tf's --mixed_precision policy (`lth_tf.precision`).
  mixed_precision = False
  # The backend its models train on (`tensorflow`; Keras 3: also `jax`).
  backend = "tensorflow"

  def owns(self, obj) -> bool:
    """Whether `obj` (a model, layer or optimizer) belongs to this implementation."""
    raise NotImplementedError

  # ---- variables --------------------------------------------------------------------------

  def variable(self, weight):
    """The variable training reads and assigns for `weight` (one of a layer's `weights`): a
    `tf.Variable` on TensorFlow (with `ref()`, `assign`, `numpy()`)."""
    raise NotImplementedError

  def weights(self, layer) -> List:
    """Every weight of `layer` (trainable and not), as `variable`s, in the layer's order."""
    return [self.variable(weight) for weight in layer.weights]

  def trainable_weights(self, model) -> List:
    """The trainable weights of `model`, as `variable`s, in the order an optimizer takes them."""
    return [self.variable(weight) for weight in model.trainable_weights]

  def new_mask(self, weight, name: str):
    """A new mask variable for `weight` (a `variable`), all ones, not trainable."""
    from lth_tf.compat import tf  # pylint: disable=import-outside-toplevel
    return tf.Variable(tf.ones(weight.shape, weight.dtype), trainable=False,
                       name=name.replace(":", "_"))

  def graph_inputs(self, model) -> List:
    """The Inputs of a functional or Sequential model; [] for a subclassed one."""
    raise NotImplementedError

  def input_shape(self, layer):
    """The shape of a built layer's (first) input, batch dimension first.

    Raises:
      AttributeError, RuntimeError or ValueError: the layer has no single known input."""
    raise NotImplementedError

  def output_shape(self, layer):
    """The shape of a built layer's output, batch dimension first (raises as `input_shape`)."""
    raise NotImplementedError

  def weight_name(self, layer, name: str) -> str:
    """The name lth_tf gives `layer`'s variable called `name`: the variable's own name, except
    where the two Kerases name the same weight differently (tickets name weights alike)."""
    return name

  def refusal(self, model) -> Optional[str]:
    """Why lth_tf cannot train `model` with this implementation, or None."""
    return None

  def set_random_seed(self, seed: int) -> None:
    """Seeds the implementation's global generators (Python's, NumPy's, its backend's)."""
    raise NotImplementedError

  # ---- the layer graph ------------------------------------------------------------------------

  def sublayers(self, layer) -> List:
    """The direct sub-layers of `layer` (a model's layers, an RNN's cell, attention's
    projections), wrappers not seen through."""
    raise NotImplementedError

  def rename_layers(self, root, names) -> None:
    """Renames built layers of the model `root` (`names`: (layer, new name) pairs), keeping
    every functional model in it consistent."""
    raise NotImplementedError

  def output_layers(self, model) -> List:
    """The layers whose outputs a functional or Sequential model returns ([] otherwise)."""
    raise NotImplementedError

  def inbound_layers(self, layer) -> List:
    """The layers that feed `layer` in the model it was first called in ([] for an input)."""
    raise NotImplementedError

  # ---- prunable weights and their masks -----------------------------------------------------

  def is_prunable(self, layer) -> bool:
    """Whether a top-level layer carries its masks through the implementation's wrapper."""
    raise NotImplementedError

  def wrap(self, model):
    """A copy of a functional or Sequential `model` (weights included) whose prunable
    top-level layers are wrapped, every mask all ones."""
    raise NotImplementedError

  def is_wrapper(self, layer) -> bool:
    raise NotImplementedError

  def unwrap(self, layer):
    """The layer a wrapper wraps, or `layer`."""
    raise NotImplementedError

  def wrapper_masks(self, model) -> List:
    """(weight, mask variable, wrapped layer) for every weight a wrapper of `model` masks."""
    raise NotImplementedError

  def wrapper_variables(self, model) -> List:
    """The wrappers' own variables (masks, bookkeeping): not weights of the model."""
    raise NotImplementedError

  def declared_prunable(self, layer, has_rule: bool) -> Optional[List]:
    """The weights `layer` declares prunable itself, or None (`has_rule`: lth_tf has a rule
    for its class, which then decides)."""
    raise NotImplementedError

  # ---- optimizer state and export -------------------------------------------------------------

  def slots_of(self, optimizer, variable) -> List:
    """The slot variables (momentum, Adam moments) of `variable` in `optimizer` (unwrapped)."""
    raise NotImplementedError

  def loss_scaling(self, optimizer):
    """`optimizer` with dynamic loss scaling (for float16)."""
    raise NotImplementedError

  def inner_optimizer(self, optimizer):
    """The optimizer that owns the slots (`optimizer`, or the one `loss_scaling` wrapped)."""
    raise NotImplementedError

  def scale_loss(self, optimizer, loss):
    """`loss` times the loss scale of `optimizer` (from `loss_scaling`)."""
    raise NotImplementedError

  def unscale_gradients(self, optimizer, gradients):
    """The gradients of a scaled loss, divided by the loss scale."""
    raise NotImplementedError

  def strip(self, model):
    """`model` without its wrappers, for export."""
    raise NotImplementedError


# name -> the library a model of that implementation is made of: an implementation is imported
# only once its library is (`of`, `set_random_seed`) or it is named (`named`), so a Keras 3 model
# on JAX never imports tf_keras, tfmot or TensorFlow.
_LIBRARIES = {"keras3": "keras", "tf_keras": "tf_keras"}
_NAMES = tuple(sorted(_LIBRARIES))


def _implementation(name: str) -> "Mechanism":
  if name not in MECHANISMS:
    importlib.import_module(f"{__name__}.{name}")
  return MECHANISMS.get(name)


def of(obj) -> Mechanism:
  """The implementation `obj` (a model, layer or optimizer) belongs to (of those whose library
  is imported: the others own nothing yet). Plain loops: it also runs inside traced functions.

  Raises:
    TypeError: no implementation owns it.
  """
  for name in _NAMES:
    if _LIBRARIES[name] in sys.modules:
      mechanism = _implementation(name)
      if mechanism.owns(obj):
        return mechanism
  raise TypeError(f"{type(obj).__module__}.{type(obj).__name__} belongs to no Keras lth_tf "
                  f"prunes ({', '.join(_NAMES)})")


def set_random_seed(seed: int) -> None:
  """Seeds every implementation's global generators (those whose library is imported): a user's
  model function that takes no seed of its own builds the same weights for the same seed,
  whichever Keras it uses."""
  for name in _NAMES:
    if _LIBRARIES[name] in sys.modules:
      _implementation(name).set_random_seed(seed)


DEFAULT = "tf_keras"


def names() -> tuple:
  """The implementations' names: the values of `ModelConfig.framework`."""
  return _NAMES


def named(name: str) -> Mechanism:
  """The implementation called `name` (`ModelConfig.framework`; empty: the default, tf_keras).

  Raises:
    ConfigError: an unknown name.
  """
  name = name or DEFAULT
  if name not in _LIBRARIES:
    raise ConfigError(f"unknown framework {name!r}; choose one of: {', '.join(names())}")
  return _implementation(name)


def default() -> Mechanism:
  """The implementation models are built with: tf_keras."""
  return named(DEFAULT)


__all__ = ["DEFAULT", "MECHANISMS", "Mechanism", "default", "named", "names", "of",
           "set_random_seed"]
