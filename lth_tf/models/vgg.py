"""VGG-16 and VGG-19 for CIFAR with batch norm, as in Frankle & Carbin (2019) and open_lth."""
from __future__ import annotations

import functools
from typing import Tuple

from lth_tf.compat import keras
from lth_tf.config import ModelConfig
from lth_tf.models.base import (MODELS, LayerFactory, check_image_shape, check_no_dropout,
                                keras_for)

POOL = "M"
# Convolution filters in order; POOL is 2x2 max pooling. No pooling after the last stage.
PLANS = {
    "vgg16": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL,
              512, 512, 512),
    "vgg19": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL, 512, 512, 512, 512, POOL,
              512, 512, 512, 512),
}


def vgg(config: ModelConfig, input_shape: Tuple[int, ...], num_classes: int, seed: int,
        name: str) -> keras.Model:
  """Builds the CIFAR VGG network `name`.

  Each convolution is 3x3 'same' with bias, then batch norm, then relu; the features are
  global-average pooled into a single Dense output layer (no hidden FC layers).

  Args:
    config: the model config (dropout must be 0).
    input_shape: (height, width, channels).
    num_classes: number of output logits.
    seed: weight-initialisation seed.
    name: `vgg16` or `vgg19`.

  Returns:
    A functional model named `name`.
  """
  check_no_dropout(config)
  check_image_shape(name, input_shape)
  layers = LayerFactory(seed, keras_for(config))
  keras = layers.keras  # the config's Keras: tf_keras or Keras 3
  inputs = keras.Input(shape=input_shape, name="input")
  x = inputs
  conv_index = pool_index = 0
  for spec in PLANS[name]:
    if spec == POOL:
      pool_index += 1
      x = keras.layers.MaxPooling2D(2, name=f"pool{pool_index}")(x)
      continue
    conv_index += 1
    x = layers.conv(spec, 3, name=f"conv{conv_index}")(x)
    x = layers.batch_norm(f"bn{conv_index}")(x)
    x = keras.layers.ReLU(name=f"relu{conv_index}")(x)
  x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
  outputs = layers.dense(num_classes, name="output")(x)
  return keras.Model(inputs, outputs, name=name)


for _name in PLANS:
  MODELS.add(_name, functools.partial(vgg, name=_name))
