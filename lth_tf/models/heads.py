"""A user's model head: lth_tf trains logits, whatever the model's last activation.

lth_tf's loss is softmax cross-entropy on logits. A model that ends in a softmax (a Dense layer
with `activation="softmax"`, or a `Softmax` or `Activation("softmax")` layer) is trained on the
logits under that softmax: the same loss as cross-entropy on its probabilities, computed stably.
A model for two classes that ends in one sigmoid unit is trained on the logits `[0, z]`, whose
softmax is `[1 - sigmoid(z), sigmoid(z)]`: again the same loss. The head taken off is recorded
on the model (`lth_tf.pruning.structure.head`) and put back on export, so the exported model
returns what the user's model returned. Anything else that looks like probabilities (a sigmoid
over several classes, a subclassed model whose outputs sum to one) is refused in one line: its
loss would be silently wrong.
"""
from __future__ import annotations

import functools
from typing import Tuple

import numpy as np

from lth_tf import mechanism
from lth_tf import compat
from lth_tf.compat import tf
from lth_tf.errors import ConfigError
from lth_tf.pruning import structure

_PROBABILITIES = ("softmax", "sigmoid")
# The layer that puts a head back on an exported model -> the serving output it returns.
SERVING_OUTPUTS = {"softmax_head": "probabilities", "sigmoid_head": "probability"}


@functools.lru_cache(maxsize=None)
def _binary_layers(keras_module):
  """The two layers of a binary head, for the Keras module (tf_keras or Keras 3) of a model."""
  ops = getattr(keras_module, "ops", None)  # Keras 3's operations; tf_keras has none

  class BinaryLogits(keras_module.layers.Layer):
    """One logit z → the two logits [0, z] (softmax of them: [1 - sigmoid(z), sigmoid(z)])."""

    def call(self, inputs):
      if ops is None:
        return tf.concat([tf.zeros_like(inputs), inputs], axis=-1)
      return ops.concatenate([ops.zeros_like(inputs), inputs], axis=-1)

  class BinaryProbability(keras_module.layers.Layer):
    """The two logits [a, b] → sigmoid(b - a): the one sigmoid unit a binary model returned."""

    def call(self, inputs):
      if ops is None:
        return tf.sigmoid(inputs[..., 1:] - inputs[..., :1])
      return ops.sigmoid(inputs[..., 1:] - inputs[..., :1])

  return BinaryLogits, BinaryProbability


def _activation_name(layer) -> str:
  """`softmax` or `sigmoid` where `layer` ends in that activation, else ''."""
  if isinstance(layer, mechanism.of(layer).keras.layers.Softmax):
    return "softmax"
  activation = getattr(layer, "activation", None)
  name = getattr(activation, "__name__", "")
  return name if name in _PROBABILITIES else ""


def logits_model(model, input_shape: Tuple[int, ...], num_classes: int,
                 what: str) -> Tuple[object, str]:
  """(a model that returns logits, the head taken off: `logits`, `softmax` or `sigmoid`).

  Raises:
    ConfigError: a head whose loss lth_tf cannot match (see the module docstring).
  """
  implementation = mechanism.of(model)
  keras = implementation.keras
  layers = implementation.output_layers(model)
  if len(layers) > 1:
    return model, "logits"  # several outputs: refused by the output check
  head = _activation_name(layers[0]) if layers else ""
  if not head:  # a subclassed model, or a softmax written as an op (`tf.nn.softmax(x)`)
    _check_probabilities(model, input_shape, what)
    return model, "logits"
  layer = layers[0]
  units = int(model.outputs[0].shape[-1])
  if head == "sigmoid" and not (units == 1 and num_classes == 2):
    raise ConfigError(f"model {what} ends in a sigmoid over {units} outputs for {num_classes} "
                      "classes: lth_tf trains single-label classification (softmax "
                      "cross-entropy); return logits, a softmax, or one sigmoid unit for two "
                      "classes")
  if isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
    logits = layer.input
  else:
    layer.activation = keras.activations.linear
    logits = model.outputs[0]
  if head == "sigmoid":
    logits = _binary_layers(keras)[0](name="binary_logits")(logits)
  return keras.Model(model.inputs, logits, name=model.name), head


def _check_probabilities(model, input_shape: Tuple[int, ...], what: str) -> None:
  """Refuses a model whose head lth_tf cannot take off (a subclassed model, a softmax written as
  an op) when its outputs on a random batch look like probabilities (when built eagerly; a model
  built in a graph, to look at its layers, is not run)."""
  if compat.loaded() and not tf.executing_eagerly():  # (without TensorFlow: no graph)
    return
  probe = np.random.default_rng(0).uniform(size=(4,) + tuple(input_shape)).astype(np.float32)
  out = np.asarray(model(probe, training=False))
  if out.ndim == 2 and out.shape[1] > 1 and out.min() >= 0 and np.allclose(out.sum(1), 1, atol=1e-4):
    raise ConfigError(f"model {what} returns probabilities (its outputs sum to 1) from a head "
                      "lth_tf cannot take off (a subclassed model, or a softmax written as an op): "
                      "return logits, or end in a Dense layer with activation='softmax'")


def restore_head(model, logits) -> object:
  """`logits` (a tensor of `model`'s logits) with the head lth_tf took off `model` put back."""
  head = structure.head(model)
  keras = mechanism.of(model).keras
  if head == "softmax":
    return keras.layers.Softmax(name="softmax_head")(logits)
  if head == "sigmoid":
    return _binary_layers(keras)[1](name="sigmoid_head")(logits)
  return logits
