"""A user's Keras 3 models and data for the JAX tests, as a user writes them (`import keras`,
unnamed layers, a softmax head), with one difference: the initial weights are drawn by NumPy
from the seed (`_numpy_weights`), not by Keras' generators. Keras' generators differ between
backends (TensorFlow's and JAX's), so only weights drawn outside Keras let the same experiment
start from the same weights on both backends and be compared number for number.

Each model function is `f(input_shape, num_classes, seed) -> keras.Model`; `images` is the
dataset function (`py:jax_models:images`).
"""
import keras
import numpy as np
from keras import layers


def _numpy_weights(model, seed):
  """Every trainable weight drawn from N(0, 1/fan_in) by NumPy's generator of `seed` (biases,
  batch-norm scales and offsets too: they train either way)."""
  rng = np.random.default_rng(seed)
  for weight in model.trainable_weights:
    fan_in = int(np.prod(weight.shape[:-1])) if len(weight.shape) > 1 else int(weight.shape[0])
    weight.assign(rng.normal(0.0, 1.0 / np.sqrt(fan_in), weight.shape).astype("float32"))
  return model


def functional_cnn(input_shape, num_classes, seed):
  """Conv-BN-ReLU, max-pool, Dense, softmax head (unnamed layers)."""
  inputs = keras.Input(shape=input_shape)
  x = layers.Conv2D(8, 3, padding="same")(inputs)
  x = layers.BatchNormalization()(x)
  x = layers.ReLU()(x)
  x = layers.MaxPooling2D()(x)
  x = layers.Flatten()(x)
  x = layers.Dense(32, activation="relu")(x)
  outputs = layers.Dense(num_classes, activation="softmax")(x)
  return _numpy_weights(keras.Model(inputs, outputs), seed)


def sequential_mlp(input_shape, num_classes, seed):
  """Flatten, two hidden Dense, logits (unnamed layers)."""
  return _numpy_weights(keras.Sequential([
      keras.Input(shape=input_shape),
      layers.Flatten(),
      layers.Dense(64, activation="relu"),
      layers.Dense(32, activation="relu"),
      layers.Dense(num_classes),
  ]), seed)


def mlp_dropout(input_shape, num_classes, seed):
  """Flatten, Dense, Dropout, logits: dropout's generator state is not a weight."""
  return _numpy_weights(keras.Sequential([
      keras.Input(shape=input_shape),
      layers.Flatten(),
      layers.Dense(64, activation="relu"),
      layers.Dropout(0.3),
      layers.Dense(num_classes),
  ]), seed)


class ResidualConvNet(keras.Model):
  """A convolution, a residual block of one more, pooling and a classifier, written as a
  keras.Model subclass."""

  def __init__(self, num_classes, **kwargs):
    super().__init__(**kwargs)
    self.stem = layers.Conv2D(8, 3, padding="same", activation="relu")
    self.block = layers.Conv2D(8, 3, padding="same")
    self.pool = layers.GlobalAveragePooling2D()
    self.classifier = layers.Dense(num_classes)

  def call(self, inputs, training=None):
    x = self.stem(inputs)
    x = keras.ops.relu(x + self.block(x))
    return self.classifier(self.pool(x))


def subclassed(input_shape, num_classes, seed):
  """A keras.Model subclass with a residual connection, built on one batch."""
  model = ResidualConvNet(num_classes)
  model(np.zeros((1,) + tuple(input_shape), "float32"))
  return _numpy_weights(model, seed)


def images():
  """uint8 (N, 8, 8, 1): dim noise plus a bright 4x4 patch in a per-class quadrant; 3 classes,
  300 training and 120 test examples."""
  rng = np.random.default_rng(7)
  corners = [(0, 0), (0, 4), (4, 2)]

  def make(count):
    labels = np.arange(count) % 3
    rng.shuffle(labels)
    x = rng.integers(0, 150, (count, 8, 8, 1))
    for label, (row, col) in enumerate(corners):
      x[labels == label, row:row + 4, col:col + 4, :] += 45
    return np.clip(x, 0, 255).astype(np.uint8), labels.astype(np.int64)

  x_train, y_train = make(300)
  x_test, y_test = make(120)
  return x_train, y_train, x_test, y_test
