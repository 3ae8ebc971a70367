"""Conv-2, Conv-4 and Conv-6, the small VGG-like CIFAR networks of Frankle & Carbin (2019)."""
from __future__ import annotations

import functools
from typing import Tuple

from lth_tf.compat import keras
from lth_tf.config import ModelConfig
from lth_tf.models.base import MODELS, LayerFactory, check_image_shape, keras_for

# Filters per stage; each stage is two 3x3 convolutions followed by 2x2 max pooling.
PLANS = {
    "conv2": (64,),
    "conv4": (64, 128),
    "conv6": (64, 128, 256),
}
HIDDEN_UNITS = (256, 256)


def conv_net(config: ModelConfig, input_shape: Tuple[int, ...], num_classes: int, seed: int,
             name: str) -> keras.Model:
  """Builds the Conv-N network `name`.

  Convolutions are 3x3, 'same' padding, relu; after the convolutional stages come two fully
  connected layers of 256 relu units and the output layer. With `config.dropout > 0` a
  Dropout layer follows each hidden fully connected layer, as in the paper's dropout
  experiments.

  Args:
    config: the model config; `config.dropout` is the rate on the hidden FC layers.
    input_shape: (height, width, channels).
    num_classes: number of output logits.
    seed: weight-initialisation seed.
    name: `conv2`, `conv4` or `conv6`.

  Returns:
    A functional model named `name`.
  """
  check_image_shape(name, input_shape)
  layers = LayerFactory(seed, keras_for(config))
  keras = layers.keras  # the config's Keras: tf_keras or Keras 3
  inputs = keras.Input(shape=input_shape, name="input")
  x = inputs
  conv_index = 0
  for stage, filters in enumerate(PLANS[name], start=1):
    for _ in range(2):
      conv_index += 1
      x = layers.conv(filters, 3, activation="relu", name=f"conv{conv_index}")(x)
    x = keras.layers.MaxPooling2D(2, name=f"pool{stage}")(x)
  x = keras.layers.Flatten(name="flatten")(x)
  for index, units in enumerate(HIDDEN_UNITS, start=1):
    x = layers.dense(units, activation="relu", name=f"fc{index}")(x)
    if config.dropout > 0:
      x = layers.dropout(config.dropout, name=f"dropout{index}")(x)
  outputs = layers.dense(num_classes, name="output")(x)
  return keras.Model(inputs, outputs, name=name)


for _name in PLANS:
  MODELS.add(_name, functools.partial(conv_net, name=_name))
