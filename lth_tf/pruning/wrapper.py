"""The mask-freeze extension of tfmot's pruning wrapper, and wrapping a whole model with it.

tfmot decides *which* weights are prunable (its prune registry and `PrunableLayer`) and
carries one mask variable per prunable weight. Its wrapper would recompute those masks by
top-k at every pruning step; `MaskFreezeWrapper` never does: its masks are set from outside
(`lth_tf.pruning.masked_model.set_mask`) and the training loop keeps pruned weights at
exactly zero (masked gradients and a re-mask after every optimizer step).
"""
import inspect

from lth_tf.compat import keras, prune_registry, prune_registry_weights, pruning_wrapper, tfmot


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


def is_prunable(layer) -> bool:
  """tfmot's rule: a registry-supported built-in layer, or one that declares prunable weights."""
  if isinstance(layer, keras.layers.InputLayer):
    return False
  if isinstance(layer, tfmot.sparsity.keras.PrunableLayer) or hasattr(layer, "get_prunable_weights"):
    return True
  if not prune_registry.PruneRegistry.supports(layer):
    return False
  # Supported layers without prunable weights (BatchNormalization, pooling) are not wrapped.
  listed = prune_registry_weights(layer.__class__)
  return True if listed is None else bool(listed)


def wrap_model(model: keras.Model) -> keras.Model:
  """Returns a copy of `model` whose prunable layers are wrapped in `MaskFreezeWrapper`.

  Weights are copied from `model`; every mask starts as all ones.
  """
  def clone(layer):
    fresh = layer.__class__.from_config(layer.get_config())
    return MaskFreezeWrapper(fresh) if is_prunable(layer) else fresh

  wrapped = keras.models.clone_model(model, clone_function=clone)
  for source, target in zip(model.layers, wrapped.layers):
    inner = target.layer if isinstance(target, MaskFreezeWrapper) else target
    inner.set_weights(source.get_weights())
  return wrapped


def masked_layers(model: keras.Model):
  """The model's `MaskFreezeWrapper` layers in model order."""
  return [layer for layer in model.layers if isinstance(layer, MaskFreezeWrapper)]
