"""ImageNet ResNet-18 and ResNet-50 of He et al. (2016), for 224x224 inputs and as CIFAR variants.

Laid out as torchvision's `resnet18` / `resnet50` (the networks open_lth and Frankle et al.
(2021) prune, and the ResNet-50 of Sabatelli et al. (2020)), so the weight counts are theirs:
11,689,512 and 25,557,032 with 1000 classes. ResNet-50 is "v1.5": a bottleneck that
downsamples puts its stride on the 3x3 convolution, not on the first 1x1 convolution as the
original paper and `tf_keras.applications.ResNet50` ("v1") do; the weights have the same
shapes either way, only the sampling of the stride-2 layers differs. Convolutions have no bias
(each is followed by a batch norm); a shortcut that changes the shape is a strided 1x1
convolution and its batch norm (option B); strided convolutions pad symmetrically as PyTorch
does (`resnet._conv_bn`).

Two stems, registered under two names per depth:
- `resnet18`, `resnet50`: the ImageNet stem, a 7x7 stride-2 convolution with 64 filters, batch
  norm, relu and a 3x3 stride-2 max-pool (224x224 inputs reach the last stage at 7x7);
- `resnet18_cifar`, `resnet50_cifar`: the common CIFAR variant, a 3x3 stride-1 convolution with
  64 filters, batch norm and relu, no max-pool (32x32 inputs reach the last stage at 4x4).
Layers of stage s, block b are named `..._s{s}_b{b}...` (s from 1, b from 0), as in `resnet`.
"""
from __future__ import annotations

import functools
from typing import Callable, Dict, Tuple

from lth_tf.compat import keras
from lth_tf.config import ModelConfig
from lth_tf.models.base import (MODELS, LayerFactory, check_image_shape, check_no_dropout,
                                keras_for)
from lth_tf.models.resnet import _block as basic_block  # pylint: disable=protected-access
from lth_tf.models.resnet import _conv_bn as conv_bn  # pylint: disable=protected-access

STAGE_WIDTHS = (64, 128, 256, 512)
BOTTLENECK_EXPANSION = 4


def bottleneck_block(layers: LayerFactory, x, width: int, strides: int, name: str):
  """1x1 (width) - 3x3 (width, the stride) - 1x1 (4 x width) with batch norms, plus shortcut."""
  keras = layers.keras  # the config's Keras: tf_keras or Keras 3
  filters = BOTTLENECK_EXPANSION * width
  out = conv_bn(layers, x, width, 1, 1, f"{name}_1")
  out = keras.layers.ReLU(name=f"relu{name}_1")(out)
  out = conv_bn(layers, out, width, 3, strides, f"{name}_2")
  out = keras.layers.ReLU(name=f"relu{name}_2")(out)
  out = conv_bn(layers, out, filters, 1, 1, f"{name}_3")
  shortcut = x
  if strides != 1 or x.shape[-1] != filters:
    shortcut = conv_bn(layers, x, filters, 1, strides, f"{name}_shortcut")
  out = keras.layers.Add(name=f"add{name}")([out, shortcut])
  return keras.layers.ReLU(name=f"relu{name}_out")(out)


def imagenet_stem(layers: LayerFactory, x):
  """7x7 stride-2 convolution, batch norm, relu, 3x3 stride-2 max-pool (padded by 1)."""
  keras = layers.keras  # the config's Keras: tf_keras or Keras 3
  x = conv_bn(layers, x, STAGE_WIDTHS[0], 7, 2, "_stem")
  x = keras.layers.ReLU(name="relu_stem")(x)
  # Zero padding before the pool equals PyTorch's implicit -inf padding after a relu.
  x = keras.layers.ZeroPadding2D(1, name="pad_pool")(x)
  return keras.layers.MaxPooling2D(3, strides=2, name="pool_stem")(x)


def cifar_stem(layers: LayerFactory, x):
  """3x3 stride-1 convolution, batch norm, relu; no pooling."""
  keras = layers.keras  # the config's Keras: tf_keras or Keras 3
  x = conv_bn(layers, x, STAGE_WIDTHS[0], 3, 1, "_stem")
  return keras.layers.ReLU(name="relu_stem")(x)


# depth -> (block, blocks per stage)
PLANS: Dict[int, Tuple[Callable, Tuple[int, ...]]] = {
    18: (basic_block, (2, 2, 2, 2)),
    50: (bottleneck_block, (3, 4, 6, 3)),
}
# registered-name suffix -> stem
STEMS: Dict[str, Callable] = {"": imagenet_stem, "_cifar": cifar_stem}


def imagenet_resnet(config: ModelConfig, input_shape: Tuple[int, ...], num_classes: int,
                    seed: int, depth: int, suffix: str) -> keras.Model:
  """Builds ResNet-`depth` with the stem registered under `suffix` (see the module docstring).

  Args:
    config: the model config (dropout must be 0).
    input_shape: (height, width, channels).
    num_classes: number of output logits.
    seed: weight-initialisation seed.
    depth: 18 or 50.
    suffix: `""` (ImageNet stem) or `"_cifar"`.

  Returns:
    A functional model named `resnet{depth}{suffix}`.
  """
  name = f"resnet{depth}{suffix}"
  check_no_dropout(config)
  check_image_shape(name, input_shape)
  block, blocks_per_stage = PLANS[depth]
  layers = LayerFactory(seed, keras_for(config))
  keras = layers.keras  # the config's Keras: tf_keras or Keras 3
  inputs = keras.Input(shape=input_shape, name="input")
  x = STEMS[suffix](layers, inputs)
  for stage, (width, count) in enumerate(zip(STAGE_WIDTHS, blocks_per_stage), start=1):
    for index in range(count):
      strides = 2 if stage > 1 and index == 0 else 1
      x = block(layers, x, width, strides, f"_s{stage}_b{index}")
  x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
  outputs = layers.dense(num_classes, name="output")(x)
  return keras.Model(inputs, outputs, name=name)


for _depth in PLANS:
  for _suffix in STEMS:
    MODELS.add(f"resnet{_depth}{_suffix}",
               functools.partial(imagenet_resnet, depth=_depth, suffix=_suffix))
