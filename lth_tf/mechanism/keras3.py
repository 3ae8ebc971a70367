"""The mechanism for Keras 3 models (`import keras`) on the TensorFlow backend: every pruned
weight is masked at its variable.

Keras 3 has no pruning wrapper (tfmot takes Keras 2 models only), and lth_tf needs none: it
prunes every weight of a Keras 3 model the way it prunes the weights tfmot cannot wrap in a
Keras 2 model. The mask is a variable kept beside the model (`lth_tf.pruning.structure`); the
one training loop (`lth_tf.training.loop`) zeroes the pruned weights and their optimizer slots
at the start of every training chunk and multiplies their gradients by the mask at every step,
so every update of a pruned weight is exactly zero and it stays exactly zero after every step
(the optimizers' contract, `lth_tf.training.optimizers`). `TicketSearch`, which does not own the
step of the user's `model.fit`, zeroes them after every step instead (`lth_tf.keras_fit`).

On the TensorFlow backend a Keras 3 variable holds a `tf.Variable`: that is what lth_tf trains,
captures, restores and masks, with its own optimizers built over those variables. A Keras 3
model therefore trains through the same engines, checkpoints and optimizer rules as a Keras 2
one, and the two give the same numbers for the same network, weights and data order
(tests/mechanism/test_keras3.py).

Which weights are pruned follows the layer rules of `lth_tf.pruning.structure` (the same layer
classes, from Keras 3). A user's own layer declares its prunable weights with a method
`get_prunable_weights()` returning some of its weights: tfmot's `PrunableLayer` protocol,
without its base class.

Keras 3 is imported only where a Keras 3 model exists: `owns` looks at `sys.modules`.
"""
import random
import sys
from typing import List, Optional

import numpy as np

from lth_tf.mechanism import MECHANISMS, Mechanism

_LOSS_SCALING = ("lth_tf's --mixed_precision builds tf_keras models only; a Keras 3 optimizer "
                 "is not given loss scaling")
# Per Keras 3 optimizer, the attributes that hold one slot variable per trained variable (Adam:
# `_momentums`, `_velocities` and with amsgrad `_velocity_hats`; SGD: `momentums`; RMSprop:
# `_velocities`, `_momentums`, `_average_gradients`).
_SLOT_LISTS = ("_momentums", "momentums", "_velocities", "_velocity_hats", "_average_gradients")


def on_jax() -> bool:
  """Whether Keras 3 models train on its JAX backend in this process (`lth_tf.compat.on_jax`)."""
  from lth_tf import compat  # pylint: disable=import-outside-toplevel
  return compat.on_jax()


def _keras():
  import keras  # pylint: disable=import-outside-toplevel  # Keras 3: tf_keras is `tf_keras`
  return keras


class Keras3(Mechanism):
  """Keras 3 models and layers on the TensorFlow backend."""
  name = "keras3"
  model_names = ("functional", "sequential", "model")

  @property
  def keras(self):  # pylint: disable=invalid-overridden-method
    return _keras()

  def owns(self, obj) -> bool:
    module = sys.modules.get("keras")
    if module is None or not hasattr(module, "ops"):  # not imported, or not Keras 3
      return False
    return isinstance(obj, (module.layers.Layer, module.optimizers.Optimizer))

  # ---- variables --------------------------------------------------------------------------

  @property
  def backend(self) -> str:
    """The Keras 3 backend models train on: `tensorflow` or `jax`."""
    return self.keras.backend.backend()

  def variable(self, weight):
    if self.backend == "jax":
      return JaxVariable.of(weight)
    # The backend's own variable: a tf.Variable on TensorFlow (read and assigned by the layer's
    # calls, so a gradient taken with respect to it is the weight's).
    return weight._value  # pylint: disable=protected-access

  def new_mask(self, weight, name: str):
    if self.backend == "jax":
      return JaxVariable.of(self.keras.Variable(np.ones(weight.shape, weight.dtype),
                                                trainable=False,
                                                name=name.replace("/", "-")))
    return super().new_mask(weight, name)

  def weight_name(self, layer, name: str) -> str:
    """Keras 3 calls a depthwise convolution's kernel `kernel`; tf_keras (and every ticket)
    `depthwise_kernel`."""
    layers = self.keras.layers
    if name == "kernel" and isinstance(layer, (layers.DepthwiseConv1D, layers.DepthwiseConv2D)):
      return "depthwise_kernel"
    return name

  def input_shape(self, layer):
    inputs = layer.input
    return (inputs[0] if isinstance(inputs, (list, tuple)) else inputs).shape

  def output_shape(self, layer):
    return layer.output.shape

  def graph_inputs(self, model) -> List:
    try:
      return list(model.inputs or [])
    except (AttributeError, ValueError):  # a subclassed model (or an unbuilt Sequential)
      return []

  def refusal(self, model) -> Optional[str]:
    backend = self.backend
    if backend not in ("tensorflow", "jax"):
      return (f"Keras 3 runs on its {backend!r} backend here; lth_tf trains Keras 3 models on "
              "the TensorFlow or the JAX backend (set KERAS_BACKEND to tensorflow or jax)")
    return None

  # ---- the layer graph ------------------------------------------------------------------------

  def sublayers(self, layer) -> List:
    return list(layer._flatten_layers(include_self=False, recursive=False))  # pylint: disable=protected-access

  def rename_layers(self, root, names) -> None:
    """A Keras 3 functional model refers to its layers, not their names: renaming is setting
    the name."""
    for layer, name in names:
      layer.name = name

  def output_layers(self, model) -> List:
    """The layers behind a functional model's outputs; an output made by an operation that is
    not a layer (`keras.ops.softmax(x)`, `keras.ops.cast`) stands for the layers feeding it."""
    outputs = self.graph_inputs(model) and model.outputs
    found = []
    for tensor in outputs or []:
      found += self._layers_behind(tensor._keras_history.operation)  # pylint: disable=protected-access
    return found

  def inbound_layers(self, layer) -> List:
    return [found for operation in self._inbound_operations(layer)
            for found in self._layers_behind(operation)]

  def _inbound_operations(self, operation) -> List:
    nodes = getattr(operation, "_inbound_nodes", None) or []
    if not nodes:
      return []
    return [parent.operation for parent in nodes[0].parent_nodes]

  def _layers_behind(self, operation) -> List:
    """`operation` if it is a layer, else the layers feeding it (through other operations)."""
    if isinstance(operation, self.keras.layers.Layer):
      return [operation]
    return [found for parent in self._inbound_operations(operation)
            for found in self._layers_behind(parent)]

  # ---- prunable weights and their masks -----------------------------------------------------
  # No wrapper: every pruned weight is masked at its variable.

  def is_prunable(self, layer) -> bool:
    return False

  def wrap(self, model):
    return model

  def is_wrapper(self, layer) -> bool:
    return False

  def unwrap(self, layer):
    return layer

  def wrapper_masks(self, model) -> List:
    return []

  def wrapper_variables(self, model) -> List:
    return []

  def declared_prunable(self, layer, has_rule: bool) -> Optional[List]:
    """A layer with `get_prunable_weights()` (no Keras 3 layer has one: it is the user's)."""
    if hasattr(layer, "get_prunable_weights"):
      return [self.variable(weight) for weight in layer.get_prunable_weights()]
    return None

  # ---- optimizer state and export -------------------------------------------------------------

  # lth_tf's own training trains a Keras 3 model with lth_tf's optimizers (tf_keras's, over the
  # model's tf.Variables); a Keras 3 optimizer is the user's, under `TicketSearch`.

  def slots_of(self, optimizer, variable) -> List:
    """`variable`: the tf.Variable of one of the optimizer's trained Keras 3 variables."""
    trained = optimizer._trainable_variables  # pylint: disable=protected-access
    index = next(i for i, weight in enumerate(trained) if self.variable(weight) is variable)
    slots = []
    for attribute in _SLOT_LISTS:
      slot_list = getattr(optimizer, attribute, None)
      if slot_list:
        slots.append(self.variable(slot_list[index]))
    return slots

  def loss_scaling(self, optimizer):
    raise TypeError(_LOSS_SCALING)

  def inner_optimizer(self, optimizer):
    # Keras 3 wraps a compiled model's optimizer in its LossScaleOptimizer under mixed_float16.
    return getattr(optimizer, "inner_optimizer", optimizer)

  def scale_loss(self, optimizer, loss):
    raise TypeError(_LOSS_SCALING)

  def unscale_gradients(self, optimizer, gradients):
    raise TypeError(_LOSS_SCALING)

  def strip(self, model):
    return model

  def set_random_seed(self, seed: int) -> None:
    module = sys.modules.get("keras")
    if module is None or not hasattr(module, "ops"):
      return
    if module.backend.backend() == "tensorflow":
      module.utils.set_random_seed(int(seed))
      return
    # `keras.utils.set_random_seed` without its TensorFlow seed, which would import TensorFlow
    # (where it is installed) on a backend that needs none: Python's, NumPy's and Keras' own
    # global seed, and a fresh global seed generator.
    from keras.src.backend.common import global_state  # pylint: disable=import-outside-toplevel
    from keras.src.random import seed_generator  # pylint: disable=import-outside-toplevel
    from keras.src.utils import rng_utils  # pylint: disable=import-outside-toplevel
    random.seed(int(seed))
    np.random.seed(int(seed))
    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, int(seed))
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)


class JaxVariable:
  """A Keras 3 variable on the JAX backend, as lth_tf reads and assigns variables: `numpy()`,
  `assign`, `shape`, `dtype`, `name`, and `ref()` (a hashable key: one view per variable, so the
  view itself). `keras_variable` is the Keras 3 variable, which the JAX trainer
  (`lth_tf.training.jax_trainer`) trains statelessly and writes back after every chunk."""

  def __init__(self, keras_variable):
    self.keras_variable = keras_variable

  @classmethod
  def of(cls, keras_variable) -> "JaxVariable":
    view = keras_variable.__dict__.get("_lth_view")
    if view is None:
      view = keras_variable.__dict__["_lth_view"] = cls(keras_variable)
    return view

  def ref(self) -> "JaxVariable":
    return self

  @property
  def shape(self):
    return tuple(self.keras_variable.shape)

  @property
  def dtype(self) -> np.dtype:
    return np.dtype(self.keras_variable.dtype)

  @property
  def name(self) -> str:
    return self.keras_variable.name

  @property
  def trainable(self) -> bool:
    return self.keras_variable.trainable

  def numpy(self) -> np.ndarray:
    return np.array(self.keras_variable.value)

  def assign(self, value) -> None:
    if isinstance(value, JaxVariable):
      value = value.keras_variable.value
    self.keras_variable.assign(np.asarray(value, self.dtype)
                               if isinstance(value, (np.ndarray, float, int)) else value)

  def zero_pruned(self, mask) -> None:
    """Sets the entries where `mask` (a mask variable or array) is zero to exactly zero."""
    mask = mask.numpy() if isinstance(mask, JaxVariable) else np.asarray(mask)
    self.keras_variable.assign(self.numpy() * mask.astype(self.dtype))


MECHANISMS.add("keras3", Keras3())
