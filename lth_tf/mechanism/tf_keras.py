"""The mechanism for Keras 2 (tf_keras) models: tfmot's pruning wrapper with its mask frozen.

tfmot decides *which* weights of a top-level layer are prunable (its prune registry and
`PrunableLayer`) and carries one mask variable per prunable weight. Its wrapper would recompute
those masks by top-k at every pruning step; `MaskFreezeWrapper` never does: its masks are set
from outside (`lth_tf.pruning.masked_model.set_mask`) and the training loop keeps pruned weights
at exactly zero (masked gradients; the optimizers' contract keeps their slots zero). Weights
tfmot cannot wrap (inside nested models, `Bidirectional`, `TimeDistributed` and attention, or in
a subclassed model) are pruned at their variables by the same loop, with masks kept beside the
model (`lth_tf.pruning.structure`).

The private names of tf_keras and tfmot that lth_tf needs are read here and nowhere else. They
hold for the versions setup.py pins (tf-keras 2.21.0, tensorflow-model-optimization 0.8.1); the
tests that use them (slots zeroed with the mask, BatchNormalization left unwrapped, layer
renaming) fail first when an upgrade changes them.
"""
from __future__ import annotations

import inspect
from typing import List, Optional

from lth_tf.compat import keras, tfmot
from lth_tf.mechanism import MECHANISMS, Mechanism
# tfmot's prune registry and wrapper are not exported by its public API.
from tensorflow_model_optimization.python.core.sparsity.keras import (  # noqa: E402
    prune_registry, pruning_wrapper)

# Per optimizer, the attributes that hold one slot variable per trained variable (tf_keras's
# Adam keeps `_momentums`/`_velocities`, its SGD keeps `momentums`, its RMSprop `_velocities`,
# `_momentums` and `_average_gradients`).
_SLOT_LISTS = ("_momentums", "momentums", "_velocities", "_velocity_hats", "_average_gradients")


class MaskFreezeWrapper(pruning_wrapper.PruneLowMagnitude):
  """A `PruneLowMagnitude` whose mask is frozen: set from outside, never recomputed."""

  def __init__(self, layer, **kwargs):
    kwargs.pop("pruning_schedule", None)
    # The schedule never fires: the mask is ours.
    super().__init__(
        layer,
        pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.0, begin_step=2**62, frequency=1),
        **kwargs)
    self._inner_takes_training = "training" in inspect.signature(self.layer.call).parameters

  def call(self, inputs, training=None, **kwargs):
    # No pruning-step bookkeeping and no mask update: the mask stays as it was set.
    if self._inner_takes_training:
      return self.layer.call(inputs, training=training, **kwargs)
    return self.layer.call(inputs, **kwargs)


# Registry-supported layers that tfmot's wrapper cannot take: it reads the attention
# projections' kernels before they are built. Their weights are pruned at the variables.
_NOT_WRAPPED = (keras.layers.MultiHeadAttention,)


class TfKeras(Mechanism):
  """tf_keras models, layers and optimizers (`TF_USE_LEGACY_KERAS`, set by `lth_tf.compat`)."""
  name = "tf_keras"
  wrapper_class = MaskFreezeWrapper
  keras = keras
  model_names = ("model",)
  mixed_precision = True

  def owns(self, obj) -> bool:
    return isinstance(obj, (keras.layers.Layer, keras.optimizers.Optimizer,
                            keras.mixed_precision.LossScaleOptimizer))

  def variable(self, weight):
    return weight

  def weights(self, layer) -> List:
    return list(layer.weights)

  def trainable_weights(self, model) -> List:
    return list(model.trainable_variables)

  def graph_inputs(self, model) -> List:
    return list(model.inputs or [])

  def set_random_seed(self, seed: int) -> None:
    keras.utils.set_random_seed(int(seed))

  def input_shape(self, layer):
    return layer.input_shape

  def output_shape(self, layer):
    return layer.output_shape

  # ---- the layer graph ------------------------------------------------------------------------

  def sublayers(self, layer) -> List:
    return list(layer._flatten_layers(include_self=False, recursive=False))  # pylint: disable=protected-access

  def rename_layers(self, root, names) -> None:
    """Layer names are set once at construction; a functional model also keys its graph's
    nodes by layer name + node index, which are rewritten too."""
    old = {id(layer): layer.name for layer, _ in names}
    for layer, name in names:
      layer._name = name  # pylint: disable=protected-access
    for model in [root] + list(root._flatten_layers(include_self=False)):  # pylint: disable=protected-access
      nodes = getattr(model, "_network_nodes", None)
      if not nodes:
        continue
      renamed = {old[id(layer)]: layer.name for layer in model.layers if id(layer) in old}
      if not renamed:
        continue

      def rekey(key, renamed=renamed):
        name, _, index = key.rpartition("_ib-")
        return f"{renamed.get(name, name)}_ib-{index}"

      model._network_nodes = {rekey(key) for key in nodes}  # pylint: disable=protected-access

  def output_layers(self, model) -> List:
    return list(getattr(model, "_output_layers", None) or [])

  def inbound_layers(self, layer) -> List:
    nodes = getattr(layer, "_inbound_nodes", None) or []
    if not nodes:
      return []
    inbound = nodes[0].inbound_layers
    return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]

  # ---- prunable weights and their masks -----------------------------------------------------

  def is_prunable(self, layer) -> bool:
    """tfmot's rule (a registry-supported built-in layer with prunable weights, or one that
    declares them), except the layers in `_NOT_WRAPPED`."""
    if isinstance(layer, (keras.layers.InputLayer,) + _NOT_WRAPPED):
      return False
    if isinstance(layer, tfmot.sparsity.keras.PrunableLayer) or hasattr(layer, "get_prunable_weights"):
      return True
    if not prune_registry.PruneRegistry.supports(layer):
      return False
    # Supported layers without prunable weights (BatchNormalization, pooling) are not wrapped.
    listed = prune_registry.PruneRegistry._LAYERS_WEIGHTS_MAP.get(layer.__class__)  # pylint: disable=protected-access
    return True if listed is None else bool(listed)

  def wrap(self, model):
    def clone(layer):
      fresh = layer.__class__.from_config(layer.get_config())
      return MaskFreezeWrapper(fresh) if self.is_prunable(layer) else fresh

    wrapped = keras.models.clone_model(model, clone_function=clone)
    for source, target in zip(model.layers, wrapped.layers):
      self.unwrap(target).set_weights(source.get_weights())
    return wrapped

  def is_wrapper(self, layer) -> bool:
    return isinstance(layer, pruning_wrapper.PruneLowMagnitude)

  def unwrap(self, layer):
    return layer.layer if self.is_wrapper(layer) else layer

  def wrapper_masks(self, model) -> List:
    return [(weight, mask, layer.layer) for layer in model.layers if self.is_wrapper(layer)
            for weight, mask, _ in layer.pruning_vars]

  def wrapper_variables(self, model) -> List:
    return [v for layer in model.layers if self.is_wrapper(layer) for v in layer.weights]

  def declared_prunable(self, layer, has_rule: bool) -> Optional[List]:
    """A `PrunableLayer`, or a layer without a rule that has `get_prunable_weights`. (tfmot
    gives the built-in layers it wraps a `get_prunable_weights` of their own; their rule
    decides.)"""
    if isinstance(layer, tfmot.sparsity.keras.PrunableLayer) or (
        not has_rule and hasattr(layer, "get_prunable_weights")):
      return list(layer.get_prunable_weights())
    return None

  # ---- optimizer state and export -------------------------------------------------------------

  def slots_of(self, optimizer, variable) -> List:
    index = optimizer._index_dict[optimizer._var_key(variable)]  # pylint: disable=protected-access
    slots = []
    for attribute in _SLOT_LISTS:
      slot_list = getattr(optimizer, attribute, None)
      if slot_list:
        slots.append(slot_list[index])
    return slots

  def loss_scaling(self, optimizer):
    return keras.mixed_precision.LossScaleOptimizer(optimizer)

  def inner_optimizer(self, optimizer):
    return getattr(optimizer, "inner_optimizer", optimizer)

  def scale_loss(self, optimizer, loss):
    return optimizer.get_scaled_loss(loss)

  def unscale_gradients(self, optimizer, gradients):
    return optimizer.get_unscaled_gradients(gradients)

  def strip(self, model):
    return tfmot.sparsity.keras.strip_pruning(model) if model.inputs else model


MECHANISMS.add("tf_keras", TfKeras())
