"""A zoo of small networks written the way keras.io examples write them, for end-to-end tests.

Each function is `f(input_shape, num_classes, seed) -> tf_keras model`, written as a user would:
mostly default (unnamed) layer names, no lth_tf imports, the seed used through
`keras.utils.set_random_seed` or not at all. `ZOO` pairs each model with the function of
`tests/zoo/zoo_data.py` whose arrays it is built for; `PROBABILITY_HEADS` names the models whose
head is a softmax (the others output logits).
"""
import tensorflow as tf
import tf_keras as keras
from tf_keras import layers

VOCAB = 50  # token ids are in [0, VOCAB); shared with zoo_data.tokens


def mlp_softmax(input_shape, num_classes, seed):
  """Flatten, one hidden Dense, a softmax head; unnamed layers."""
  return keras.Sequential([
      keras.Input(shape=input_shape),
      layers.Flatten(),
      layers.Dense(32, activation="relu"),
      layers.Dense(num_classes, activation="softmax"),
  ])


def cnn_unnamed(input_shape, num_classes, seed):
  """Two valid 3x3 convolutions around a max-pool, a logits Dense; unnamed layers."""
  keras.utils.set_random_seed(seed)
  return keras.Sequential([
      keras.Input(shape=input_shape),
      layers.Conv2D(8, 3, activation="relu"),
      layers.MaxPooling2D(),
      layers.Conv2D(8, 3, activation="relu"),
      layers.Flatten(),
      layers.Dense(num_classes),
  ])


def residual_bn_sepconv(input_shape, num_classes, seed):
  """Conv-BN-ReLU, a separable conv + BN residual block (layers.add), depthwise conv, GAP head."""
  keras.utils.set_random_seed(seed)
  inputs = keras.Input(shape=input_shape)
  x = layers.Conv2D(16, 3, padding="same")(inputs)
  x = layers.BatchNormalization()(x)
  x = layers.ReLU()(x)
  shortcut = x
  x = layers.SeparableConv2D(16, 3, padding="same")(x)
  x = layers.BatchNormalization()(x)
  x = layers.add([x, shortcut])
  x = layers.ReLU()(x)
  x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
  x = layers.GlobalAveragePooling2D()(x)
  outputs = layers.Dense(num_classes)(x)
  return keras.Model(inputs, outputs)


class SmallConvNet(keras.Model):
  """A subclassed model: layers made in __init__, wired in call."""

  def __init__(self, num_classes, **kwargs):
    super().__init__(**kwargs)
    self.conv = layers.Conv2D(8, 3, activation="relu")
    self.flatten = layers.Flatten()
    self.hidden = layers.Dense(32, activation="relu")
    self.classifier = layers.Dense(num_classes)

  def call(self, inputs, training=None):
    x = self.conv(inputs)
    x = self.flatten(x)
    x = self.hidden(x)
    return self.classifier(x)


def subclassed(input_shape, num_classes, seed):
  """A keras.Model subclass (Conv2D, Flatten, Dense, Dense), returned unbuilt."""
  return SmallConvNet(num_classes)


def nested_sequential(input_shape, num_classes, seed):
  """A functional model using a keras.Sequential block of Dense layers as one layer, Dense head."""
  keras.utils.set_random_seed(seed)
  block = keras.Sequential([
      layers.Dense(16, activation="relu"),
      layers.Dense(16, activation="relu"),
  ])
  inputs = keras.Input(shape=input_shape)
  x = layers.Flatten()(inputs)
  x = block(x)
  outputs = layers.Dense(num_classes)(x)
  return keras.Model(inputs, outputs)


def two_tower(input_shape, num_classes, seed):
  """A conv branch and a Flatten-Dense branch of one input, concatenated, Dense head."""
  inputs = keras.Input(shape=input_shape)
  a = layers.Conv2D(8, 3, activation="relu")(inputs)
  a = layers.MaxPooling2D()(a)
  a = layers.Flatten()(a)
  b = layers.Flatten()(inputs)
  b = layers.Dense(16, activation="relu")(b)
  x = layers.concatenate([a, b])
  outputs = layers.Dense(num_classes)(x)
  return keras.Model(inputs, outputs)


def attention(input_shape, num_classes, seed):
  """Image rows as a sequence: Dense projection, self-attention + residual, LayerNorm, pooling."""
  keras.utils.set_random_seed(seed)
  height, width, channels = input_shape
  inputs = keras.Input(shape=input_shape)
  x = layers.Reshape((height, width * channels))(inputs)
  x = layers.Dense(16)(x)
  attended = layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x)
  x = layers.LayerNormalization()(x + attended)
  x = layers.GlobalAveragePooling1D()(x)
  outputs = layers.Dense(num_classes)(x)
  return keras.Model(inputs, outputs)


def lstm_rows(input_shape, num_classes, seed):
  """Image rows as a sequence read by an LSTM, Dense head."""
  height, width, channels = input_shape
  return keras.Sequential([
      keras.Input(shape=input_shape),
      layers.Reshape((height, width * channels)),
      layers.LSTM(16),
      layers.Dense(num_classes),
  ])


def bidirectional_gru(input_shape, num_classes, seed):
  """Sequences (T, F) read by a bidirectional GRU, Dense head."""
  keras.utils.set_random_seed(seed)
  inputs = keras.Input(shape=input_shape)
  x = layers.Bidirectional(layers.GRU(8))(inputs)
  outputs = layers.Dense(num_classes)(x)
  return keras.Model(inputs, outputs)


def timedistributed_rnn(input_shape, num_classes, seed):
  """Sequences (T, F): a per-step Dense (TimeDistributed), a SimpleRNN, Dense head."""
  return keras.Sequential([
      keras.Input(shape=input_shape),
      layers.TimeDistributed(layers.Dense(8, activation="relu")),
      layers.SimpleRNN(8),
      layers.Dense(num_classes),
  ])


def text_cnn(input_shape, num_classes, seed):
  """Token ids: Embedding, Conv1D, global max-pool, Dense head."""
  keras.utils.set_random_seed(seed)
  inputs = keras.Input(shape=input_shape, dtype="int32")
  x = layers.Embedding(VOCAB, 8)(inputs)
  x = layers.Conv1D(8, 3, activation="relu")(x)
  x = layers.GlobalMaxPooling1D()(x)
  outputs = layers.Dense(num_classes)(x)
  return keras.Model(inputs, outputs)


def tabular_mlp(input_shape, num_classes, seed):
  """Features (F,): Dense, Dropout, Dense, logits head."""
  return keras.Sequential([
      keras.Input(shape=input_shape),
      layers.Dense(16, activation="relu"),
      layers.Dropout(0.1),
      layers.Dense(8, activation="relu"),
      layers.Dense(num_classes),
  ])


def conv_transpose_3d_mix(input_shape, num_classes, seed):
  """Strided Conv2D, Conv2DTranspose back up, a Conv3D over the feature maps, Conv1D, pooling."""
  keras.utils.set_random_seed(seed)
  height, width, _ = input_shape
  inputs = keras.Input(shape=input_shape)
  x = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inputs)
  x = layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu")(x)
  x = layers.Reshape((height, width, 4, 1))(x)  # the channels as a depth axis
  x = layers.Conv3D(2, 3, padding="same", activation="relu")(x)
  x = layers.Reshape((height * width, 8))(x)
  x = layers.Conv1D(8, 3, activation="relu")(x)
  x = layers.GlobalAveragePooling1D()(x)
  outputs = layers.Dense(num_classes)(x)
  return keras.Model(inputs, outputs)


def einsum_dense(input_shape, num_classes, seed):
  """Image rows projected by an EinsumDense ("abc,cd->abd"), Flatten, Dense head."""
  height, width, channels = input_shape
  inputs = keras.Input(shape=input_shape)
  x = layers.Reshape((height, width * channels))(inputs)
  x = layers.EinsumDense("abc,cd->abd", output_shape=(None, 8), bias_axes="d",
                         activation="relu")(x)
  x = layers.Flatten()(x)
  outputs = layers.Dense(num_classes)(x)
  return keras.Model(inputs, outputs)


def binary_sigmoid(input_shape, num_classes, seed):
  """Two classes, one sigmoid unit (as keras.io's binary classifiers end): features (F,)."""
  del num_classes  # a binary classifier returns one probability
  return keras.Sequential([
      keras.Input(shape=input_shape),
      layers.Dense(16, activation="relu"),
      layers.Dense(1, activation="sigmoid"),
  ])


# Model function name -> the zoo_data function whose arrays it is built for.
ZOO = {
    "mlp_softmax": "images",
    "cnn_unnamed": "images",
    "residual_bn_sepconv": "images_rgb",
    "subclassed": "images",
    "nested_sequential": "tabular",
    "two_tower": "images_rgb",
    "attention": "images",
    "lstm_rows": "images",
    "bidirectional_gru": "sequences",
    "timedistributed_rnn": "sequences",
    "text_cnn": "tokens",
    "tabular_mlp": "tabular",
    "conv_transpose_3d_mix": "images_rgb",
    "einsum_dense": "images_rgb",
    "binary_sigmoid": "tabular_binary",
}

# Models whose head is a softmax (probabilities); every other model outputs logits.
PROBABILITY_HEADS = frozenset({"mlp_softmax", "binary_sigmoid"})
