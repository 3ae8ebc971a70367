"""MobileNet-class networks: tf_keras's own MobileNetV2 and a MobileNet-v1-style network.

Both end in global average pooling and a Dense `output` layer returning logits. Their 1x1
(pointwise) convolutions are what `--scope=global --global_layers=pointwise` prunes; the
depthwise convolutions and the first convolution stay dense, the layers XNNPACK's sparse
inference keeps dense (`lth_tf.pruning.kinds`).

- `mobilenetv2_035`, `mobilenetv2_050`, `mobilenetv2_100`: `tf_keras.applications.MobileNetV2`
  (width multiplier 0.35, 0.5, 1.0; no pre-trained weights, no top) with our classifier. Its
  layers are renamed to this zoo's convention (`conv_...`, `bn_...`) and its kernels re-seeded
  Glorot-normal from the model seed, so a seed gives the same weights every time. Its first
  convolution and its stride-2 depthwise convolutions use TensorFlow's 'same' padding (0
  before, 1 after, at even sizes), which is not the symmetric padding XNNPACK's sparse
  subgraph needs at its entry.
- `mobilenetv1_025`, `mobilenetv1_050`, `mobilenetv1_100`: MobileNet v1 (Howard et al., 2017):
  a 3x3 stride-2 convolution, 13 depthwise-separable blocks (3x3 depthwise + batch norm + ReLU6,
  1x1 pointwise + batch norm + ReLU6), with every stride-2 convolution padded 1 on each side
  (`ZeroPadding2D` + 'valid'), the graph shape tfmot's `PruneForLatencyOnXNNPack` accepts.
"""
from __future__ import annotations

import functools
from typing import Tuple

from lth_tf import mechanism
from lth_tf.compat import keras
from lth_tf.config import ModelConfig
from lth_tf.errors import ConfigError
from lth_tf.models.base import (MODELS, LayerFactory, check_image_shape, keras_for,
                                check_no_dropout)

V2_ALPHAS = {"035": 0.35, "050": 0.5, "100": 1.0}
V1_ALPHAS = {"025": 0.25, "050": 0.5, "100": 1.0}
# MobileNet v1: (pointwise filters, depthwise stride) of each depthwise-separable block.
V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
             (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def _zoo_name(layer) -> str:
  """tf_keras's layer name in this zoo's convention: `conv_...` for convolutions (depthwise
  too), `bn_...` for batch norms, lower case."""
  name = layer.name.lower()
  if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
    return f"conv_{name}"
  if isinstance(layer, keras.layers.BatchNormalization):
    return name if name.startswith("bn_") else f"bn_{name}"
  return name


def mobilenet_v2(config: ModelConfig, input_shape: Tuple[int, ...], num_classes: int, seed: int,
                 alpha: float, name: str) -> keras.Model:
  """tf_keras's MobileNetV2 at width `alpha`, renamed and re-seeded, with a Dense `output`."""
  check_no_dropout(config)
  check_image_shape(name, input_shape)
  if mechanism.named(config.framework).keras is not keras:
    raise ConfigError(f"model {name!r} is tf_keras's MobileNetV2 application, built in "
                      "tf_keras only; drop --framework, or use mobilenetv1_* in Keras 3")
  base = keras.applications.MobileNetV2(
      input_shape=input_shape, alpha=alpha, include_top=False, weights=None, pooling="avg")
  layers = LayerFactory(seed)

  def clone(layer):
    layer_config = layer.get_config()
    layer_config["name"] = _zoo_name(layer)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
      layer_config["depthwise_initializer"] = keras.initializers.serialize(
          layers.kernel_initializer())
    elif isinstance(layer, keras.layers.Conv2D):
      layer_config["kernel_initializer"] = keras.initializers.serialize(layers.kernel_initializer())
    return layer.__class__.from_config(layer_config)

  body = keras.models.clone_model(base, clone_function=clone)
  inputs = keras.Input(shape=input_shape, name="input")
  outputs = layers.dense(num_classes, name="output")(body(inputs))
  flat = keras.Model(inputs, outputs)
  # Flatten the nested body so that every layer is a layer of the returned model.
  return keras.Model(body.input, flat.get_layer("output")(body.output), name=name)


def mobilenet_v1(config: ModelConfig, input_shape: Tuple[int, ...], num_classes: int, seed: int,
                 alpha: float, name: str) -> keras.Model:
  """MobileNet v1 at width `alpha`, every stride-2 convolution padded 1 on each side."""
  check_no_dropout(config)
  check_image_shape(name, input_shape)
  layers = LayerFactory(seed, keras_for(config))
  keras = layers.keras  # the config's Keras: tf_keras or Keras 3
  batch_norm = layers.batch_norm
  inputs = keras.Input(shape=input_shape, name="input")
  x = keras.layers.ZeroPadding2D(((1, 1), (1, 1)), name="pad_stem")(inputs)
  x = layers.conv(int(32 * alpha), 3, strides=2, padding="valid", use_bias=False,
                  name="conv_stem")(x)
  x = keras.layers.ReLU(6.0, name="relu_stem")(batch_norm("bn_stem")(x))
  for index, (filters, stride) in enumerate(V1_BLOCKS, start=1):
    if stride == 2:
      x = keras.layers.ZeroPadding2D(((1, 1), (1, 1)), name=f"pad_dw{index}")(x)
    x = layers.depthwise(3, strides=stride, padding="valid" if stride == 2 else "same",
                         name=f"conv_dw{index}")(x)
    x = keras.layers.ReLU(6.0, name=f"relu_dw{index}")(batch_norm(f"bn_dw{index}")(x))
    x = layers.conv(int(filters * alpha), 1, use_bias=False, name=f"conv_pw{index}")(x)
    x = keras.layers.ReLU(6.0, name=f"relu_pw{index}")(batch_norm(f"bn_pw{index}")(x))
  x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
  outputs = layers.dense(num_classes, name="output")(x)
  return keras.Model(inputs, outputs, name=name)


for _suffix, _alpha in V2_ALPHAS.items():
  MODELS.add(f"mobilenetv2_{_suffix}", functools.partial(
      mobilenet_v2, alpha=_alpha, name=f"mobilenetv2_{_suffix}"))
for _suffix, _alpha in V1_ALPHAS.items():
  MODELS.add(f"mobilenetv1_{_suffix}", functools.partial(
      mobilenet_v1, alpha=_alpha, name=f"mobilenetv1_{_suffix}"))
