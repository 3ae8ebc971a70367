"""Wrapping a whole model for pruning: its prunable top-level layers in the mechanism's
frozen-mask wrapper (`lth_tf.mechanism`: tfmot's wrapper for tf_keras models), the weights no
wrapper covers given masks of their own (`lth_tf.pruning.structure`).
"""
from __future__ import annotations

from lth_tf import mechanism
from lth_tf.errors import ConfigError
from lth_tf.pruning import structure


def is_prunable(layer) -> bool:
  """Whether a top-level layer is wrapped (`Mechanism.is_prunable`)."""
  return mechanism.of(layer).is_prunable(layer)


def wrap_model(model):
  """Returns `model` ready for pruning, every mask all ones.

  A functional or Sequential model is copied (weights included) with its prunable top-level
  layers wrapped (`Mechanism.wrap`); a subclassed model cannot be copied, so it is returned itself
  and every weight is pruned at its variable. Either way layer names are made canonical
  (`structure.canonicalise`), and the weights the wrappers do not cover get masks of their own.

  Raises:
    ConfigError: a subclassed model that has not been built (it holds no weights yet).
  """
  if structure.graph_inputs(model):
    wrapped = mechanism.of(model).wrap(model)
  else:
    if not model.built or not model.weights:
      raise ConfigError(f"{model.name} is a subclassed model with no weights yet: build it "
                        "(call it on a batch) before pruning it")
    wrapped = model
  structure.canonicalise(wrapped)
  structure.copy_head(model, wrapped)
  by_wrapper = {weight.ref(): mask
                for weight, mask, _ in mechanism.of(wrapped).wrapper_masks(wrapped)}
  pruned, _ = structure.classify(wrapped)
  entries = []
  for entry in pruned:
    mask = by_wrapper.get(entry.weight.ref())
    if mask is None:
      mask = mechanism.of(wrapped).new_mask(entry.weight, f"lth_mask/{entry.name}")
    entries.append(structure.Masked(entry.name, entry.weight, mask, entry.layer, entry.family))
  structure.attach_masks(wrapped, entries)
  return wrapped


def masked_layers(model):
  """The model's wrapped layers (`MaskFreezeWrapper`) in model order."""
  wrappers = mechanism.of(model)
  return [layer for layer in model.layers if wrappers.is_wrapper(layer)]


def __getattr__(name):
  # tfmot's wrapper class, from the tf_keras mechanism, which imports tfmot and TensorFlow.
  if name == "MaskFreezeWrapper":
    return mechanism.named("tf_keras").wrapper_class
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["is_prunable", "masked_layers", "wrap_model"]  # and MaskFreezeWrapper, on first use
