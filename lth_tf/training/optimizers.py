"""Optimizer registry (Adam, SGD with momentum, RMSprop), their fused updates for the training
paths that apply them (`FUSED_UPDATES`), and access to an optimizer's state by variable.

An optimizer is tf_keras's, which lth_tf's training loop applies to a tf_keras model or to the
tf.Variables of a Keras 3 model on TensorFlow, or (`library=` Keras 3) Keras 3's, which the JAX
trainer applies statelessly (`lth_tf.training.jax_trainer`): the same update rules and
hyperparameters.
"""
from __future__ import annotations

from typing import Callable, Dict, List

import numpy as np

from lth_tf import precision
from lth_tf import mechanism
from lth_tf.compat import keras, tf
from lth_tf.config import TrainingConfig
from lth_tf.registry import Registry

OPTIMIZERS: Registry[Callable[[TrainingConfig], keras.optimizers.Optimizer]] = Registry("optimizer")

# Contract of every registered optimizer (the training loop relies on it instead of re-masking
# after every step): a weight whose gradient and slots are exactly zero gets an update of
# exactly zero, and its slots stay zero.


@OPTIMIZERS.register("adam")
def _adam(config: TrainingConfig, library=keras):
  return library.optimizers.Adam(config.learning_rate)


@OPTIMIZERS.register("sgd")
def _sgd(config: TrainingConfig, library=keras):
  return library.optimizers.SGD(config.learning_rate, momentum=config.momentum)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(config: TrainingConfig, library=keras):
  return library.optimizers.RMSprop(config.learning_rate, momentum=config.momentum)


# ---- fused updates ----------------------------------------------------------------------------
# The training paths that apply an optimizer themselves (`Trainer` with `--fused_optimizer` or
# `--dense_shards`) take its update from `FUSED_UPDATES`: tf_keras's update as one TensorFlow
# kernel per variable (one pass over memory instead of about a dozen), equal to tf_keras's own
# update within float rounding. An entry is `(optimizer, learning_rate, steps) ->
# apply(variable, gradient, slots)`: it reads the hyperparameters of the (tf_keras) `optimizer`,
# computes the step's coefficients once, and `apply` updates one variable and its slots in place
# (`slots` as `slots_of` lists them). `steps` is the optimizer's step count before this step, a
# scalar. RMSprop trains through Keras's own `apply_gradients` only (its slots depend on
# `momentum`), so it has none.
FUSED_UPDATES: Registry[Callable] = Registry("fused optimizer")


def _adam_fused(optimizer, learning_rate, steps):
  local_step = tf.cast(steps + 1, tf.float32)
  beta_1 = tf.constant(optimizer.beta_1, tf.float32)
  beta_2 = tf.constant(optimizer.beta_2, tf.float32)
  beta_1_power, beta_2_power = tf.pow(beta_1, local_step), tf.pow(beta_2, local_step)

  def apply(variable, gradient, slots):
    m, v = slots
    tf.raw_ops.ResourceApplyAdam(
        var=variable.handle, m=m.handle, v=v.handle, beta1_power=beta_1_power,
        beta2_power=beta_2_power, lr=learning_rate, beta1=beta_1, beta2=beta_2,
        epsilon=tf.constant(optimizer.epsilon, tf.float32), grad=gradient)
  return apply


def _sgd_fused(optimizer, learning_rate, steps):
  # accum = accum * momentum - lr * grad; var += accum: tf_keras's SGD formula, same rounding.
  momentum = tf.constant(optimizer.momentum, tf.float32)

  def apply(variable, gradient, slots):
    (accumulator,) = slots
    tf.raw_ops.ResourceApplyKerasMomentum(
        var=variable.handle, accum=accumulator.handle, lr=learning_rate, grad=gradient,
        momentum=momentum, use_nesterov=False)
  return apply


FUSED_UPDATES.add("adam", _adam_fused)
FUSED_UPDATES.add("sgd", _sgd_fused)


def fused_step(update: Callable, optimizer, gradients, variables, slots) -> None:
  """One step of the Keras `optimizer` with its fused `update` (`FUSED_UPDATES`) on `variables`,
  reading and writing the given slots (the optimizer's own, so its state, checkpoints and
  `get_state` are unchanged) at its learning rate and step count; advances its iteration count
  once."""
  apply = update(optimizer, tf.cast(optimizer.learning_rate, tf.float32), optimizer.iterations)
  for gradient, variable, variable_slots in zip(gradients, variables, slots):
    apply(variable, gradient, variable_slots)
  optimizer.iterations.assign_add(1)


def build(config: TrainingConfig, variables, library=None) -> keras.optimizers.Optimizer:
  """Creates the configured optimizer (tf_keras's, or `library`'s: Keras 3) with its slots
  built for `variables`.

  Under `mixed_float16` it is wrapped in a `LossScaleOptimizer` (whose `variables` are the
  inner optimizer's).
  """
  optimizer = OPTIMIZERS.get(config.optimizer)(config, library or keras)
  optimizer.build(variables)
  return precision.wrap_optimizer(optimizer, config.mixed_precision)


def slots_of(optimizer, variable) -> List[tf.Variable]:
  """The slot variables (momentum, Adam moments) that belong to `variable`."""
  optimizer = precision.inner_optimizer(optimizer)
  return mechanism.of(optimizer).slots_of(optimizer, variable)


def get_state(optimizer) -> Dict[str, np.ndarray]:
  """Every optimizer variable (iteration count and slots), by position."""
  return {f"optimizer/{i:04d}": v.numpy() for i, v in enumerate(optimizer.variables)}


def set_state(optimizer, state: Dict[str, np.ndarray]) -> None:
  for i, variable in enumerate(optimizer.variables):
    variable.assign(state[f"optimizer/{i:04d}"])
