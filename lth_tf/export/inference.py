"""The model a client runs: raw pixels in, logits out; normalisation inside, pruning wrappers stripped."""
import numpy as np

from lth_tf.compat import keras, tfmot
from lth_tf.pruning import apply_mask


def inference_model(model: keras.Model, mean, std) -> keras.Model:
  """Strips the mask-freeze wrappers of a trained `model` (masks re-applied first: a checkpoint is
  not guaranteed sparse) and prepends `(pixels / 255 - mean) / std`.
  """
  apply_mask(model)
  stripped = tfmot.sparsity.keras.strip_pruning(model)
  inputs = keras.Input(stripped.input_shape[1:], name="pixels", dtype="float32")
  scaled = keras.layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
  normalised = keras.layers.Normalization(
      mean=np.asarray(mean, np.float32), variance=np.square(np.asarray(std, np.float32)),
      name="normalise")(scaled)
  return keras.Model(inputs, stripped(normalised), name=f"{model.name}_inference")
