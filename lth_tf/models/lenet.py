"""LeNet-300-100, the fully connected MNIST network of Frankle & Carbin (2019)."""
from __future__ import annotations

from typing import Tuple

from lth_tf.compat import keras
from lth_tf.config import ModelConfig
from lth_tf.models.base import MODELS, LayerFactory, check_no_dropout, keras_for


@MODELS.register("lenet300_100")
def lenet300_100(config: ModelConfig, input_shape: Tuple[int, ...], num_classes: int,
                 seed: int) -> keras.Model:
  """Flatten -> Dense 300 relu -> Dense 100 relu -> Dense `num_classes` logits.

  Args:
    config: the model config (dropout must be 0).
    input_shape: shape of one example, any rank.
    num_classes: number of output logits.
    seed: weight-initialisation seed.

  Returns:
    A functional model named `lenet300_100` (266,610 weights on 28x28x1).
  """
  check_no_dropout(config)
  layers = LayerFactory(seed, keras_for(config))
  keras = layers.keras  # the config's Keras: tf_keras or Keras 3
  inputs = keras.Input(shape=input_shape, name="input")
  x = keras.layers.Flatten(name="flatten")(inputs)
  x = layers.dense(300, activation="relu", name="fc1")(x)
  x = layers.dense(100, activation="relu", name="fc2")(x)
  outputs = layers.dense(num_classes, name="output")(x)
  return keras.Model(inputs, outputs, name="lenet300_100")
