"""The mask-freeze extension of tfmot's pruning wrapper, and wrapping a whole model for pruning.

tfmot decides *which* weights of a top-level layer are prunable (its prune registry and
`PrunableLayer`) and carries one mask variable per prunable weight. Its wrapper would recompute
those masks by top-k at every pruning step; `MaskFreezeWrapper` never does: its masks are set from
outside (`lth_tf.pruning.masked_model.set_mask`) and the training loop keeps pruned weights at
exactly zero (masked gradients and a re-mask after every optimizer step). Weights tfmot cannot
wrap (inside nested models, `Bidirectional`, `TimeDistributed` and attention, or in a subclassed
model) are pruned at their variables by the same loop, with masks kept beside the model
(`lth_tf.pruning.structure`).
"""
import inspect

from lth_tf.compat import keras, prune_registry, prune_registry_weights, pruning_wrapper, tf, tfmot
from lth_tf.errors import ConfigError
from lth_tf.pruning import structure


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


def is_prunable(layer) -> bool:
  """Whether a top-level layer is wrapped: tfmot's rule (a registry-supported built-in layer with
  prunable weights, or one that declares them), except the layers in `_NOT_WRAPPED`."""
  if isinstance(layer, (keras.layers.InputLayer,) + _NOT_WRAPPED):
    return False
  if isinstance(layer, tfmot.sparsity.keras.PrunableLayer) or hasattr(layer, "get_prunable_weights"):
    return True
  if not prune_registry.PruneRegistry.supports(layer):
    return False
  # Supported layers without prunable weights (BatchNormalization, pooling) are not wrapped.
  listed = prune_registry_weights(layer.__class__)
  return True if listed is None else bool(listed)


def _clone_wrapped(model: keras.Model) -> keras.Model:
  def clone(layer):
    fresh = layer.__class__.from_config(layer.get_config())
    return MaskFreezeWrapper(fresh) if is_prunable(layer) else fresh

  wrapped = keras.models.clone_model(model, clone_function=clone)
  for source, target in zip(model.layers, wrapped.layers):
    inner = target.layer if isinstance(target, MaskFreezeWrapper) else target
    inner.set_weights(source.get_weights())
  return wrapped


def wrap_model(model: keras.Model) -> keras.Model:
  """Returns `model` ready for pruning, every mask all ones.

  A functional or Sequential model is copied (weights included) with its prunable top-level
  layers in `MaskFreezeWrapper`; a subclassed model cannot be copied, so it is returned itself
  and every weight is pruned at its variable. Either way layer names are made canonical
  (`structure.canonicalise`), and the weights the wrappers do not cover get masks of their own.

  Raises:
    ConfigError: a subclassed model that has not been built (it holds no weights yet).
  """
  if model.inputs:
    wrapped = _clone_wrapped(model)
  else:
    if not model.built or not model.weights:
      raise ConfigError(f"{model.name} is a subclassed model with no weights yet: build it "
                        "(call it on a batch) before pruning it")
    wrapped = model
  structure.canonicalise(wrapped)
  structure.copy_head(model, wrapped)
  by_wrapper = {}
  for layer in masked_layers(wrapped):
    for weight, mask, _ in layer.pruning_vars:
      by_wrapper[weight.ref()] = mask
  pruned, _ = structure.classify(wrapped)
  entries = []
  for entry in pruned:
    mask = by_wrapper.get(entry.weight.ref())
    if mask is None:
      mask = tf.Variable(tf.ones(entry.weight.shape, entry.weight.dtype), trainable=False,
                         name=f"lth_mask/{entry.name}".replace(":", "_"))
    entries.append(structure.Masked(entry.name, entry.weight, mask, entry.layer, entry.family))
  structure.attach_masks(wrapped, entries)
  return wrapped


def masked_layers(model: keras.Model):
  """The model's `MaskFreezeWrapper` layers in model order."""
  return [layer for layer in model.layers if isinstance(layer, MaskFreezeWrapper)]
