"""One replicate's model: the wrapped network, its trainer and its start states, reused by every
branch the replicate trains.

The trainer is the training loop's (`lth_tf.training.loop.Trainer`, TensorFlow), or on the JAX
strategy (`lth_tf.distribute.JAX_DEVICE`: a Keras 3 model with `KERAS_BACKEND=jax`) the JAX
trainer (`lth_tf.training.jax_trainer`), which imports no TensorFlow.
"""
from __future__ import annotations

import importlib
from typing import Dict

import numpy as np

from lth_tf import data as data_lib
from lth_tf import distribute, mechanism, models, precision, pruning
from lth_tf.config import ExperimentConfig
from lth_tf.training import get_weights, optimizers, set_weights


def trainer_class(strategy):
  """The trainer for models built under `strategy`."""
  if isinstance(strategy, distribute.JaxDevice):
    return importlib.import_module("lth_tf.training.jax_trainer").JaxTrainer
  return importlib.import_module("lth_tf.training.loop").Trainer


def seeding(strategy) -> mechanism.Mechanism:
  """The implementation whose global generators are seeded before a replicate's model is
  built: Keras 3's on the JAX strategy, tf_keras's (TensorFlow's) otherwise."""
  return mechanism.named("keras3" if isinstance(strategy, distribute.JaxDevice) else "tf_keras")


class ReplicateModel:
  """One wrapped model and its trainer, reused by every branch of a replicate."""

  def __init__(self, config: ExperimentConfig, data: data_lib.Splits, seed: int,
               strategy):
    self.config = config
    self.data = data
    self.strategy = strategy
    with strategy.scope(), precision.policy(config.training.mixed_precision):
      seeding(strategy).set_random_seed(seed)
      self.model = pruning.wrap_model(self.build_plain(seed))
      self.trainer = trainer_class(strategy)(self.model, data, config.training, config.runtime,
                                             seed, strategy)
    self.initial_weights = get_weights(self.model)
    self.fresh_optimizer = optimizers.get_state(self.trainer.optimizer)
    self.kinds = pruning.layer_kinds(self.model)
    self.seed = seed

  def build_plain(self, seed: int):
    return models.build(self.config.model, self.data.input_shape, self.data.num_classes, seed)

  def fresh_weights(self, seed: int) -> Dict[str, np.ndarray]:
    """Weights of a newly initialised network (the re-init control)."""
    with self.strategy.scope(), precision.policy(self.config.training.mixed_precision):
      return get_weights(self.build_plain(seed))

  def set_data_order(self, seed: int) -> None:
    """Makes the trainings that follow draw their batches in the order of `seed`, and augment
    them with its draws (the replicate seed until then): the SGD noise of Frankle et al. 2020,
    "random data order and augmentation". The initial weights and start states are unchanged."""
    self.trainer.seed = seed

  def load_state(self, weights, mask: pruning.Mask, optimizer_state) -> None:
    """Sets weights, the frozen mask, and the optimizer state (slots of pruned weights zeroed)."""
    set_weights(self.model, weights)
    pruning.set_mask(self.model, mask)
    optimizers.set_state(self.trainer.optimizer,
                         self.fresh_optimizer if optimizer_state is None else optimizer_state)
    for _, weight, mask_var in pruning.mask_pairs(self.model):
      pruning.zero_pruned(optimizers.slots_of(self.trainer.optimizer, weight), mask_var)
