"""Your own model, named `package.module:function`: imported, built with its seed, checked."""
from typing import Tuple

from lth_tf import user_code
from lth_tf.compat import keras
from lth_tf.config import ModelConfig
from lth_tf.errors import ConfigError


def build_user_model(config: ModelConfig, input_shape: Tuple[int, ...], num_classes: int,
                     seed: int) -> keras.Model:
  """Calls the user's `function(input_shape, num_classes, seed)` and checks what it returns.

  Keras' global seeds are set from `seed` first, so a function whose initialisers take no seed
  of their own still builds the same weights for the same seed.
  """
  user_code.check_pin("model", config.name, config.source_sha256)
  if config.dropout:
    raise ConfigError(f"model {config.name!r}: --dropout is for the built-in models; put "
                      "dropout layers in your model function")
  function = user_code.load(config.name, "model")
  keras.utils.set_random_seed(int(seed))
  model = function(tuple(input_shape), int(num_classes), int(seed))
  if not isinstance(model, keras.Model):
    raise ConfigError(f"model {config.name!r} returned {type(model).__name__}, not a tf_keras "
                      "model (import keras as tf_keras, or set TF_USE_LEGACY_KERAS=1)")
  if not model.inputs:
    raise ConfigError(f"model {config.name!r} is not built on an Input (a subclassed model?); "
                      "return a functional or Sequential model so that it can be wrapped")
  outputs = tuple(model.outputs[0].shape[1:]) if len(model.outputs) == 1 else ()
  if outputs != (int(num_classes),):
    raise ConfigError(f"model {config.name!r} must return one output of {num_classes} logits; "
                      f"it returns {[tuple(o.shape[1:]) for o in model.outputs]}")
  return model
