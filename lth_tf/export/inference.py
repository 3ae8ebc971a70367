"""The model a client runs: raw inputs in, what the user's model returned out; the input's
preprocessing inside, pruning wrappers stripped."""
import numpy as np

from lth_tf import mechanism
from lth_tf.data.modality import MODALITIES
from lth_tf.models import heads
from lth_tf.pruning import apply_mask

# The input's name in the exported model and its serving signature, by modality.
INPUT_NAMES = {"image": "pixels", "tokens": "tokens", "tabular": "features", "sequence": "features"}


def input_name(modality: str) -> str:
  return INPUT_NAMES[MODALITIES.get(modality).name]


def inference_model(model, mean, std, modality: str = "image", input_shape=None):
  """Strips the mask-freeze wrappers of a trained `model` (masks re-applied first: a checkpoint is
  not guaranteed sparse), prepends the modality's preprocessing (images: `(pixels / 255 - mean)
  / std`; tabular data and sequences: `(x - mean) / std`; token ids: none, int32 input) and
  puts back the head lth_tf took off the user's model (`lth_tf.models.heads`). `input_shape`
  (one example's) is needed for a subclassed model, which has no Input.
  """
  kind = MODALITIES.get(modality)
  apply_mask(model)
  implementation = mechanism.of(model)
  keras = implementation.keras  # the model's own Keras: tf_keras or Keras 3
  stripped = implementation.strip(model)
  shape = (tuple(implementation.graph_inputs(model)[0].shape[1:]) if input_shape is None
           else tuple(input_shape))
  inputs = keras.Input(shape, name=input_name(modality),
                       dtype="int32" if kind.integer else "float32")
  x = inputs
  if kind.normalised:
    if kind.scale != 1.0:
      x = keras.layers.Rescaling(1.0 / kind.scale, name="scale")(x)
    x = keras.layers.Normalization(
        mean=np.asarray(mean, np.float32), variance=np.square(np.asarray(std, np.float32)),
        name="normalise")(x)
  outputs = heads.restore_head(model, stripped(x))
  return keras.Model(inputs, outputs, name=f"{model.name}_inference")

