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
import sys
from typing import List, Optional

from lth_tf.mechanism import MECHANISMS, Mechanism

_LOSS_SCALING = ("lth_tf's --mixed_precision builds tf_keras models only; a Keras 3 optimizer "
                 "is not given loss scaling")
# Per Keras 3 optimizer, the attributes that hold one slot variable per trained variable (Adam:
# `_momentums`, `_velocities` and with amsgrad `_velocity_hats`; SGD: `momentums`; RMSprop:
# `_velocities`, `_momentums`, `_average_gradients`).
_SLOT_LISTS = ("_momentums", "momentums", "_velocities", "_velocity_hats", "_average_gradients")


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

  def variable(self, weight):
    # The backend's own variable: a tf.Variable on TensorFlow (read and assigned by the layer's
    # calls, so a gradient taken with respect to it is the weight's).
    return weight._value  # pylint: disable=protected-access

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
    backend = self.keras.backend.backend()
    if backend != "tensorflow":
      return (f"Keras 3 runs on its {backend!r} backend here; lth_tf trains Keras 3 models on "
              "the TensorFlow backend (unset KERAS_BACKEND, or set it to tensorflow)")
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
    if module is not None and hasattr(module, "ops"):
      module.utils.set_random_seed(int(seed))


MECHANISMS.add("keras3", Keras3())
