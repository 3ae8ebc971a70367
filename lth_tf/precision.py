"""Mixed precision: the tf_keras policy models are built under, float32 logits, loss scaling.

Under `mixed_float16` or `mixed_bfloat16` layers compute in 16 bits while their variables
(and therefore the pruning masks, which have the dtype of their weight) stay float32, so a
mask is exact and the re-mask after every step sets pruned weights to exactly zero. The model's
logits are cast back to float32 and `mixed_float16` trains with a `LossScaleOptimizer`.
"""
import contextlib
from typing import Iterator

from lth_tf.compat import keras

NONE = "none"

# The layer that returns float32 logits from a mixed-precision model (it has no weights).
LOGITS_LAYER = "logits_float32"


@contextlib.contextmanager
def policy(name: str) -> Iterator[None]:
  """Sets the global tf_keras dtype policy `name` for the models built inside; restores it."""
  if name == NONE:
    yield
    return
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(name)
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy(previous)


def float32_logits(model: keras.Model) -> keras.Model:
  """`model` with its outputs cast to float32 (unchanged if they already are)."""
  if model.output.dtype == "float32":
    return model
  logits = keras.layers.Activation("linear", dtype="float32", name=LOGITS_LAYER)(model.output)
  return keras.Model(model.inputs, logits, name=model.name)


def needs_loss_scaling(name: str) -> bool:
  return name == "mixed_float16"


def wrap_optimizer(optimizer, name: str):
  """A `LossScaleOptimizer` around `optimizer` for float16; `optimizer` itself otherwise."""
  if needs_loss_scaling(name):
    return keras.mixed_precision.LossScaleOptimizer(optimizer)
  return optimizer


def inner_optimizer(optimizer):
  """The optimizer that owns the slots (unwraps a `LossScaleOptimizer`)."""
  return getattr(optimizer, "inner_optimizer", optimizer)
