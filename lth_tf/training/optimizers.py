"""Optimizer registry (Adam, SGD with momentum) and access to an optimizer's state by variable."""
from typing import Callable, Dict, List

import numpy as np

from lth_tf.compat import keras, tf
from lth_tf.config import TrainingConfig
from lth_tf.registry import Registry

OPTIMIZERS: Registry[Callable[[TrainingConfig], keras.optimizers.Optimizer]] = Registry("optimizer")

# Per optimizer, the attributes that hold one slot variable per trained variable (tf_keras's
# Adam keeps `_momentums`/`_velocities`, its SGD keeps `momentums`).
_SLOT_LISTS = ("_momentums", "momentums", "_velocities", "_velocity_hats")

# Contract of every registered optimizer (the training loop relies on it instead of re-masking
# after every step): a weight whose gradient and slots are exactly zero gets an update of
# exactly zero, and its slots stay zero.


@OPTIMIZERS.register("adam")
def _adam(config: TrainingConfig):
  return keras.optimizers.Adam(config.learning_rate)


@OPTIMIZERS.register("sgd")
def _sgd(config: TrainingConfig):
  return keras.optimizers.SGD(config.learning_rate, momentum=config.momentum)


def build(config: TrainingConfig, variables) -> keras.optimizers.Optimizer:
  """Creates the configured optimizer with its slots built for `variables`."""
  optimizer = OPTIMIZERS.get(config.optimizer)(config)
  optimizer.build(variables)
  return optimizer


def slots_of(optimizer, variable) -> List[tf.Variable]:
  """The slot variables (momentum, Adam moments) that belong to `variable`."""
  index = optimizer._index_dict[optimizer._var_key(variable)]  # pylint: disable=protected-access
  slots = []
  for attribute in _SLOT_LISTS:
    slot_list = getattr(optimizer, attribute, None)
    if slot_list:
      slots.append(slot_list[index])
  return slots


def get_state(optimizer) -> Dict[str, np.ndarray]:
  """Every optimizer variable (iteration count and slots), by position."""
  return {f"optimizer/{i:04d}": v.numpy() for i, v in enumerate(optimizer.variables)}


def set_state(optimizer, state: Dict[str, np.ndarray]) -> None:
  for i, variable in enumerate(optimizer.variables):
    variable.assign(state[f"optimizer/{i:04d}"])
