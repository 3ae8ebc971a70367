"""Trains a Keras 3 CNN under a random mask with the JAX trainer, with each optimizer, and
prints what the test checks (run through tests/on_jax/without_tensorflow.py).

For Adam, SGD with momentum and RMSprop with momentum, with weight decay and a decaying rate:
two chunks of training, and after each the pruned weights and their optimizer slots must be
exactly zero (every slot list the optimizer keeps), the unpruned ones must have moved, and the
masks must be those set. Prints one JSON line: per optimizer, the largest pruned entry of a weight
and of a slot, the smallest change of an unpruned weight, and the slot lists found.
"""
import json
import sys

import keras
import numpy as np
from keras import layers

from lth_tf import mechanism, pruning
from lth_tf.config import RuntimeConfig, TrainingConfig
from lth_tf.data import Splits
from lth_tf.training.jax_trainer import JaxTrainer


def _model():
  inputs = keras.Input((8, 8, 1))
  x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
  x = layers.BatchNormalization()(x)
  x = layers.Flatten()(x)
  x = layers.Dense(16, activation="relu")(x)
  return keras.Model(inputs, layers.Dense(3)(x))


def _data():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(200, 8, 8, 1)).astype("float32")
  y = rng.integers(0, 3, 200).astype("int32")
  return Splits(x[:120], y[:120], x[120:160], y[120:160], x[160:], y[160:], 3, (8, 8, 1),
                np.zeros(1, "float32"), np.ones(1, "float32"), "random")


def check(optimizer: str):
  keras.utils.set_random_seed(0)
  model = pruning.wrap_model(_model())
  names = [name for name, _, _ in pruning.mask_pairs(model)]
  rng = np.random.default_rng(1)
  mask = pruning.Mask.from_dict({name: rng.random(shape) < 0.5 for name, shape in
                                 pruning.prunable_shapes(model).items()})
  pruning.set_mask(model, mask)
  training = TrainingConfig(optimizer=optimizer, learning_rate=0.01, weight_decay=1e-3,
                            batch_size=20, iterations=12, eval_every=6, lr_schedule="step",
                            lr_decay_steps=(4,), warmup_iterations=2)
  trainer = JaxTrainer(model, _data(), training, RuntimeConfig(progress=False), seed=3)
  before = {name: weight.numpy() for name, weight, _ in pruning.mask_pairs(model)}
  implementation = mechanism.of(trainer.optimizer)
  worst_weight = worst_slot = 0.0
  moved = np.inf
  slot_count = 0

  def look():
    nonlocal worst_weight, worst_slot, moved, slot_count
    for name, weight, _ in pruning.mask_pairs(model):
      keep = mask[name]
      value = weight.numpy()
      worst_weight = max(worst_weight, float(np.max(np.abs(value[~keep]), initial=0.0)))
      moved = min(moved, float(np.mean(value[keep] != before[name][keep])))
      slots = implementation.slots_of(trainer.optimizer, weight)
      slot_count = len(slots)
      for slot in slots:
        worst_slot = max(worst_slot, float(np.max(np.abs(slot.numpy()[~keep]), initial=0.0)))

  result = trainer.fit(0, boundaries=(3,), on_boundary=lambda i, rows: look() or False)
  look()
  return {"pruned_weight": worst_weight, "pruned_slot": worst_slot, "unpruned_moved": moved,
          "slots_per_weight": slot_count, "masks_kept": bool(pruning.get_mask(model) == mask),
          "iterations": result.iterations, "weights": names}


if __name__ == "__main__":
  print(json.dumps({name: check(name) for name in sys.argv[1:]}))
