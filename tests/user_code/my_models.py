"""A user's model: a small CNN with batch normalisation and a custom PrunableLayer."""
import tensorflow as tf
import tf_keras as keras
import tensorflow_model_optimization as tfmot


class ScaledDense(keras.layers.Layer, tfmot.sparsity.keras.PrunableLayer):
  def __init__(self, units, **kwargs):
    super().__init__(**kwargs)
    self.units = units

  def build(self, input_shape):
    self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), initializer="glorot_normal")
    self.scale = self.add_weight("scale", (self.units,), initializer="ones")

  def call(self, x):
    return tf.matmul(x, self.kernel) * self.scale

  def get_prunable_weights(self):
    return [self.kernel]

  def get_config(self):
    return {**super().get_config(), "units": self.units}


def small_cnn(input_shape, num_classes, seed):
  inputs = keras.Input(input_shape)
  x = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inputs)
  x = keras.layers.BatchNormalization(name="bn1")(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.MaxPool2D()(x)
  x = keras.layers.Flatten()(x)
  x = ScaledDense(32, name="fc1")(x)
  x = keras.layers.ReLU()(x)
  outputs = keras.layers.Dense(num_classes, name="output")(x)
  return keras.Model(inputs, outputs)
