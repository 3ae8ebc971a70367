"""A model's and optimizer's state as named numpy arrays (masks excluded), and capturing/restoring it."""
from __future__ import annotations

from typing import Dict

import numpy as np

from lth_tf.compat import keras
from lth_tf.errors import TicketError
from lth_tf.pruning import structure


def named_variables(model: keras.Model):
  """(name, variable) for every weight, in model order (masks excluded): names are paths of
  canonical layer names (`lth_tf.pruning.structure.named_weights`), e.g. `fc1/kernel`."""
  return structure.named_weights(model)


def get_weights(model: keras.Model) -> Dict[str, np.ndarray]:
  """All weights (trainable and not, e.g. batch-norm statistics) by name."""
  return {name: variable.numpy() for name, variable in named_variables(model)}


def set_weights(model: keras.Model, weights: Dict[str, np.ndarray]) -> None:
  """Assigns weights saved by `get_weights`; names and shapes must match exactly."""
  variables = dict(named_variables(model))
  if set(variables) != set(weights):
    missing = sorted(set(variables) - set(weights))[:3]
    extra = sorted(set(weights) - set(variables))[:3]
    raise TicketError(f"weights do not fit the model: missing {missing}, unexpected {extra}")
  for name, variable in variables.items():
    if tuple(variable.shape) != tuple(np.shape(weights[name])):
      raise TicketError(
          f"weight {name!r} has shape {np.shape(weights[name])}, the model needs {tuple(variable.shape)}")
    variable.assign(weights[name])
