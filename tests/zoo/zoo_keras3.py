"""Keras 3 networks written the way keras.io writes them in 2026 (`import keras`), for the
end-to-end tests of Keras 3 models: a functional CNN with batch normalisation and a softmax head,
a Sequential MLP with unnamed layers, a subclassed model, attention over a text sequence, and a
user's own layer that declares its prunable weight (`get_prunable_weights`). Each function is
`f(input_shape, num_classes, seed) -> keras.Model`; `ZOO` pairs it with its data function in
`tests/zoo/zoo_data.py`."""
import keras
from keras import layers, ops


class ScaledDense(layers.Layer):
  """x @ kernel * scale: the kernel is prunable, the per-unit scale is not."""

  def __init__(self, units, **kwargs):
    super().__init__(**kwargs)
    self.units = units

  def build(self, input_shape):
    self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_normal",
                                  name="kernel")
    self.scale = self.add_weight(shape=(self.units,), initializer="ones", name="scale")

  def call(self, x):
    return ops.matmul(x, self.kernel) * self.scale

  def get_prunable_weights(self):
    return [self.kernel]


def functional_cnn(input_shape, num_classes, seed):
  """Conv-BN-ReLU, max-pool, the user's ScaledDense, a softmax head; unnamed layers."""
  keras.utils.set_random_seed(seed)
  inputs = keras.Input(shape=input_shape)
  x = layers.Conv2D(8, 3, padding="same")(inputs)
  x = layers.BatchNormalization()(x)
  x = layers.ReLU()(x)
  x = layers.MaxPooling2D()(x)
  x = layers.Flatten()(x)
  x = ScaledDense(32)(x)
  x = layers.ReLU()(x)
  outputs = layers.Dense(num_classes, activation="softmax")(x)
  return keras.Model(inputs, outputs)


def sequential_mlp(input_shape, num_classes, seed):
  """Flatten, two hidden Dense, logits; unnamed layers."""
  keras.utils.set_random_seed(seed)
  return keras.Sequential([
      keras.Input(shape=input_shape),
      layers.Flatten(),
      layers.Dense(64, activation="relu"),
      layers.Dense(32, activation="relu"),
      layers.Dense(num_classes),
  ])


class SmallConvNet(keras.Model):
  def __init__(self, num_classes, **kwargs):
    super().__init__(**kwargs)
    self.conv = layers.Conv2D(8, 3, activation="relu")
    self.flatten = layers.Flatten()
    self.hidden = layers.Dense(32, activation="relu")
    self.classifier = layers.Dense(num_classes)

  def call(self, inputs, training=None):
    return self.classifier(self.hidden(self.flatten(self.conv(inputs))))


def subclassed(input_shape, num_classes, seed):
  """A keras.Model subclass (Conv2D, Flatten, Dense, Dense), returned unbuilt."""
  keras.utils.set_random_seed(seed)
  return SmallConvNet(num_classes)


def text_attention(input_shape, num_classes, seed):
  """Token ids: Embedding, self-attention + residual, LayerNorm, pooling, Dense head."""
  keras.utils.set_random_seed(seed)
  inputs = keras.Input(shape=input_shape, dtype="int32")
  x = layers.Embedding(50, 16)(inputs)
  attended = layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x)
  x = layers.LayerNormalization()(layers.Add()([x, attended]))
  x = layers.GlobalAveragePooling1D()(x)
  outputs = layers.Dense(num_classes)(x)
  return keras.Model(inputs, outputs)


ZOO = {
    "functional_cnn": "images",
    "sequential_mlp": "tabular",
    "subclassed": "images",
    "text_attention": "tokens",
}
