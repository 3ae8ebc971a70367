"""The model registry and the layer helpers every model family shares (naming, seeded init)."""
from __future__ import annotations

from typing import Callable, Tuple

from lth_tf import mechanism
from lth_tf.compat import keras
from lth_tf.config import ModelConfig
from lth_tf.errors import ConfigError
from lth_tf.registry import Registry

# A registered entry: (config, input_shape, num_classes, seed) -> a functional Keras model.
ModelBuilder = Callable[[ModelConfig, Tuple[int, ...], int, int], "keras.Model"]

MODELS: Registry[ModelBuilder] = Registry("model")

# Distinct per-layer seeds are `seed * SEED_STRIDE + layer_index`.
SEED_STRIDE = 1000


def keras_for(config: ModelConfig):
  """The Keras module a registered model is built in: `config.framework`'s (tf_keras by
  default, or Keras 3). Every family is written once against the module it is given."""
  return mechanism.named(config.framework).keras


class LayerFactory:
  """Creates the weighted layers of one model with deterministic, distinct per-layer seeds.

  Every Conv2D/Dense kernel gets its own `GlorotNormal` initializer seeded with
  `seed * SEED_STRIDE + index`, where `index` counts the weighted layers in creation order,
  so the same seed gives bit-identical weights and different seeds give different ones.
  Biases start at zero. Dropout layers take their op seeds from the top of the same range
  (`seed * SEED_STRIDE + SEED_STRIDE - 1 - k` for the k-th dropout) so adding dropout does
  not change any initial weight.

  Args:
    seed: the model seed.
    keras: the Keras module the layers are made of (tf_keras or Keras 3; `keras_for`).
  """

  def __init__(self, seed: int, keras=keras):  # pylint: disable=redefined-outer-name
    self.keras = keras
    self.seed = int(seed)
    self._index = 0
    self._dropout_index = 0

  def _check_capacity(self) -> None:
    if self._index + self._dropout_index >= SEED_STRIDE:
      raise ConfigError(f"models with more than {SEED_STRIDE} seeded layers are not supported")

  def next_seed(self) -> int:
    """Returns the seed of the next weighted layer and advances the layer index."""
    self._check_capacity()
    value = self.seed * SEED_STRIDE + self._index
    self._index += 1
    return self._backend_seed(value)

  def _backend_seed(self, value: int) -> int:
    """JAX's generators take seeds of 32 bits: there the larger ones (the re-init control's
    derived seeds) keep their low 32 bits. (TensorFlow takes them whole.)"""
    if self.keras is not keras and self.keras.backend.backend() == "jax":
      return value % 2**32
    return value

  def kernel_initializer(self) -> keras.initializers.Initializer:
    return self.keras.initializers.GlorotNormal(seed=self.next_seed())

  def conv(self, filters: int, kernel_size: int, name: str, strides: int = 1,
           padding: str = "same", activation=None, use_bias: bool = True) -> keras.layers.Conv2D:
    """A Conv2D layer with a seeded Glorot-normal kernel and zero bias."""
    return self.keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, activation=activation,
        use_bias=use_bias, kernel_initializer=self.kernel_initializer(),
        bias_initializer="zeros", name=name)

  def depthwise(self, kernel_size: int, name: str, strides: int = 1,
                padding: str = "same") -> keras.layers.DepthwiseConv2D:
    """A bias-free DepthwiseConv2D layer (depth multiplier 1) with a seeded Glorot-normal kernel."""
    return self.keras.layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding=padding, use_bias=False,
        depthwise_initializer=self.kernel_initializer(), name=name)

  def dense(self, units: int, name: str, activation=None) -> keras.layers.Dense:
    """A Dense layer with a seeded Glorot-normal kernel and zero bias."""
    return self.keras.layers.Dense(
        units, activation=activation, kernel_initializer=self.kernel_initializer(),
        bias_initializer="zeros", name=name)

  def dropout(self, rate: float, name: str) -> keras.layers.Dropout:
    """A Dropout layer whose op seed is derived from the model seed."""
    self._check_capacity()
    seed = self.seed * SEED_STRIDE + SEED_STRIDE - 1 - self._dropout_index
    self._dropout_index += 1
    return self.keras.layers.Dropout(rate, seed=self._backend_seed(seed), name=name)

  def batch_norm(self, name: str) -> keras.layers.BatchNormalization:
    """Batch normalisation over the channel axis with Keras defaults (gamma 1, beta 0)."""
    return self.keras.layers.BatchNormalization(name=name)


def batch_norm(name: str) -> keras.layers.BatchNormalization:
  """Batch normalisation over the channel axis with Keras defaults (gamma 1, beta 0), tf_keras."""
  return LayerFactory(0).batch_norm(name)


def check_image_shape(name: str, input_shape: Tuple[int, ...]) -> None:
  """Raises `ConfigError` unless `input_shape` is (height, width, channels)."""
  if len(input_shape) != 3:
    raise ConfigError(
        f"model {name!r} needs an image input shape (height, width, channels); got {input_shape}")


def check_no_dropout(config: ModelConfig) -> None:
  """Raises `ConfigError` for a dropout rate on a model family that has no dropout."""
  if config.dropout:
    raise ConfigError(
        f"model {config.name!r} does not support dropout; got dropout={config.dropout}")


def count_weights(model: keras.Model) -> int:
  """Returns the number of trainable parameters of `model`.

  Args:
    model: a built Keras model.

  Returns:
    The total size of the trainable variables (batch-norm moving statistics excluded).
  """
  return int(sum(int(variable.shape.num_elements()) for variable in model.trainable_weights))
