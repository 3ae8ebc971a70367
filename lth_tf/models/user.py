"""Your own model, named `package.module:function`: imported, built with its seed, checked."""
from __future__ import annotations

from typing import Tuple

import numpy as np

from lth_tf import mechanism, user_code
from lth_tf.compat import keras
from lth_tf.config import ModelConfig
from lth_tf.errors import ConfigError
from lth_tf.models import heads
from lth_tf.pruning import structure


def build_user_model(config: ModelConfig, input_shape: Tuple[int, ...], num_classes: int,
                     seed: int) -> keras.Model:
  """Calls the user's `function(input_shape, num_classes, seed)` and checks what it returns: a
  Keras 2 (tf_keras) or a Keras 3 model, each trained through its mechanism (`lth_tf.mechanism`).

  Keras' global seeds are set from `seed` first, so a function whose initialisers take no seed
  of their own still builds the same weights for the same seed. A subclassed model is built by
  calling it on one batch of `input_shape`. A softmax or binary sigmoid head is taken off
  (`lth_tf.models.heads`), and layer names are made canonical (`lth_tf.pruning.structure`), so
  that building the same function twice gives the same weight names.
  """
  user_code.check_pin("model", config.name, config.source_sha256)
  if config.dropout:
    raise ConfigError(f"model {config.name!r}: --dropout is for the built-in models; put "
                      "dropout layers in your model function")
  function = user_code.load(config.name, "model")
  mechanism.set_random_seed(int(seed))
  what = repr(config.name)
  model = _call(function, what, tuple(input_shape), int(num_classes), int(seed))
  implementation = _implementation(model)
  if implementation is None or not isinstance(model, implementation.keras.Model):
    raise ConfigError(f"model {what} returned {type(model).__name__}, not a Keras model "
                      "(a Keras 3 `keras.Model`, or a Keras 2 `tf_keras.Model`)")
  if not implementation.graph_inputs(model):
    _build_subclassed(model, tuple(input_shape), what)
  model, head = heads.logits_model(model, tuple(input_shape), int(num_classes), what)
  outputs = _output_shapes(model, tuple(input_shape))
  if outputs != [(int(num_classes),)]:
    raise ConfigError(f"model {what} must return one output of {num_classes} logits; "
                      f"it returns {outputs}")
  _check_layer_names(model, what)
  structure.canonicalise(model)
  structure.set_head(model, head)
  return model


def _implementation(model):
  """The mechanism of `model`, or None for an object no Keras lth_tf prunes owns."""
  try:
    return mechanism.of(model)
  except TypeError:
    return None


def _check_layer_names(model: keras.Model, what: str) -> None:
  """Refuses a layer name holding `/`: weight names are layer paths joined by `/`
  (`encoder/dense/kernel`), so `a/b` would read as a layer `b` inside a layer `a`."""
  for layer in structure.descendants(model):
    if "/" in layer.name:
      raise ConfigError(f"model {what}: layer name {layer.name!r} holds '/', which lth_tf's "
                        "weight names use between a layer and what it holds; rename the layer "
                        f"(e.g. {layer.name.replace('/', '_')!r})")


def _call(function, what: str, *args):
  try:
    return function(*args)
  except Exception as error:  # the user's function failed: one line, its own message
    raise ConfigError(f"model {what}: the function raised {type(error).__name__}: "
                      f"{error}") from None


def _build_subclassed(model: keras.Model, input_shape: Tuple[int, ...], what: str) -> None:
  """Builds a subclassed model by calling it on one batch (it has no Input to be built on)."""
  try:
    model(np.zeros((1,) + input_shape, np.float32), training=False)
  except Exception as error:  # the user's call failed on this input: one line
    raise ConfigError(f"model {what} is subclassed and could not be built on inputs of shape "
                      f"{input_shape}: {type(error).__name__}: {error}") from None
  if not model.weights:
    raise ConfigError(f"model {what} holds no weights after being called")


def _output_shapes(model: keras.Model, input_shape: Tuple[int, ...]):
  if structure.graph_inputs(model):
    return [tuple(o.shape[1:]) for o in model.outputs]
  out = model(np.zeros((1,) + input_shape, np.float32), training=False)
  return [tuple(o.shape[1:]) for o in (out if isinstance(out, (list, tuple)) else [out])]
