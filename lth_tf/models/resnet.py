"""CIFAR ResNet-N (N = 6n + 2) of He et al. (2016), laid out as open_lth's cifar_resnet."""
from __future__ import annotations

import functools
from typing import Tuple

from lth_tf.compat import keras
from lth_tf.config import ModelConfig
from lth_tf.models.base import (MODELS, LayerFactory, check_image_shape, check_no_dropout,
                                keras_for)

DEPTHS = (20, 32, 44, 56, 110)
STAGE_FILTERS = (16, 32, 64)


def _conv_bn(layers: LayerFactory, x, filters: int, kernel_size: int, strides: int, name: str):
  """A bias-free convolution and its batch norm, padded like PyTorch's `padding=k // 2`.

  TensorFlow's 'same' padding of a strided convolution pads only after the input, which
  shifts the sampling grid by one pixel against the 1x1 shortcut; explicit symmetric
  zero padding followed by a 'valid' convolution keeps both paths aligned, as in open_lth.
  """
  keras = layers.keras  # the config's Keras: tf_keras or Keras 3
  pad = kernel_size // 2
  if strides > 1 and pad:
    x = keras.layers.ZeroPadding2D(pad, name=f"pad{name}")(x)
    padding = "valid"
  else:
    padding = "same"
  x = layers.conv(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                  name=f"conv{name}")(x)
  return layers.batch_norm(f"bn{name}")(x)


def _block(layers: LayerFactory, x, filters: int, strides: int, name: str):
  """A basic residual block: conv-bn-relu, conv-bn, plus shortcut, relu."""
  keras = layers.keras  # the config's Keras: tf_keras or Keras 3
  shortcut = x
  out = _conv_bn(layers, x, filters, 3, strides, f"{name}_1")
  out = keras.layers.ReLU(name=f"relu{name}_1")(out)
  out = _conv_bn(layers, out, filters, 3, 1, f"{name}_2")
  if strides != 1 or x.shape[-1] != filters:
    shortcut = _conv_bn(layers, x, filters, 1, strides, f"{name}_shortcut")
  out = keras.layers.Add(name=f"add{name}")([out, shortcut])
  return keras.layers.ReLU(name=f"relu{name}_out")(out)


def cifar_resnet(config: ModelConfig, input_shape: Tuple[int, ...], num_classes: int, seed: int,
                 depth: int) -> keras.Model:
  """Builds ResNet-`depth` for CIFAR.

  A 3x3 stem convolution with 16 filters (+ batch norm + relu), three stages of
  n = (depth - 2) / 6 basic blocks with 16, 32 and 64 filters (stride 2 at the start of the
  second and third stages, 1x1 convolution + batch norm shortcut where the shape changes),
  global average pooling and a Dense output layer. Convolutions have no bias. Layers of
  stage s, block b are named `..._s{s}_b{b}...` (s from 1, b from 0).

  Args:
    config: the model config (dropout must be 0).
    input_shape: (height, width, channels).
    num_classes: number of output logits.
    seed: weight-initialisation seed.
    depth: N = 6n + 2.

  Returns:
    A functional model named `resnet{depth}`.
  """
  name = f"resnet{depth}"
  check_no_dropout(config)
  check_image_shape(name, input_shape)
  blocks_per_stage = (depth - 2) // 6
  layers = LayerFactory(seed, keras_for(config))
  keras = layers.keras  # the config's Keras: tf_keras or Keras 3
  inputs = keras.Input(shape=input_shape, name="input")
  x = _conv_bn(layers, inputs, STAGE_FILTERS[0], 3, 1, "_stem")
  x = keras.layers.ReLU(name="relu_stem")(x)
  for stage, filters in enumerate(STAGE_FILTERS, start=1):
    for block in range(blocks_per_stage):
      strides = 2 if stage > 1 and block == 0 else 1
      x = _block(layers, x, filters, strides, f"_s{stage}_b{block}")
  x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
  outputs = layers.dense(num_classes, name="output")(x)
  return keras.Model(inputs, outputs, name=name)


for _depth in DEPTHS:
  assert (_depth - 2) % 6 == 0, _depth
  MODELS.add(f"resnet{_depth}", functools.partial(cifar_resnet, depth=_depth))
