"""`TicketSearch` around a user's own `model.fit` on Keras 3's JAX backend (run through
tests/on_jax/without_tensorflow.py, in a directory holding jax_models.py): the user's Sequential
MLP compiled with the optimizer named on the command line, as keras.io writes it.

Dense training captures θk at k = 5, then two rounds of prune, rewind and fit. A checking callback
after the search's own reads, after every step of the pruned trainings, the largest pruned entry
of every weight and of every optimizer slot. Then the ticket is saved. Prints one JSON line,
per optimizer named on the command line.
"""
import json
import sys

import keras
import numpy as np

import jax_models
from lth_tf import TicketSearch, mechanism


def main(optimizer: str, out_dir: str) -> dict:
  x, y, _, _ = jax_models.images()
  x = x.astype("float32") / 255.0
  model = jax_models.sequential_mlp((8, 8, 1), 3, 0)
  settings = {"sgd": {"learning_rate": 0.05, "momentum": 0.9},
              "rmsprop": {"learning_rate": 0.01, "momentum": 0.9}}
  model.compile(optimizer=keras.optimizers.get({
      "class_name": optimizer, "config": settings.get(optimizer, {"learning_rate": 0.01})}),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  search = TicketSearch(model, rewind_iteration=5)
  worst = {"weight": 0.0, "slot": 0.0, "steps_checked": 0, "slots": 0}

  class Check(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      self.model  # pylint: disable=pointless-statement  # (on JAX: the state synced to the variables)
      mask = search.mask
      implementation = mechanism.of(search.optimizer)
      for name, weight, _ in _pairs(search.model):
        pruned = ~mask[name]
        worst["weight"] = max(worst["weight"], float(np.abs(weight.numpy()[pruned]).max(initial=0)))
        slots = implementation.slots_of(search.optimizer, weight)
        worst["slots"] = len(slots)
        for slot in slots:
          worst["slot"] = max(worst["slot"], float(np.abs(slot.numpy()[pruned]).max(initial=0)))
      worst["steps_checked"] += 1

  search.model.fit(x, y, batch_size=30, epochs=1, verbose=0, callbacks=search.callbacks())
  captured = search.rewind_weights is not None
  accuracies = []
  for _ in range(2):
    search.prune(fc_rate=0.5, conv_rate=0.3, output_rate=0.2)
    search.rewind()
    history = search.model.fit(x, y, batch_size=30, epochs=2, verbose=0,
                               callbacks=search.callbacks() + [Check()])
    accuracies.append(history.history["accuracy"][-1])
  search.save(out_dir, model_spec="jax_models:sequential_mlp", dataset="py:jax_models:images")
  return {"captured_at_5": captured, "pruned_weight": worst["weight"],
          "pruned_slot": worst["slot"], "steps_checked": worst["steps_checked"],
          "slots_per_weight": worst["slots"],
          "weights_remaining": search.weights_remaining(), "accuracies": accuracies,
          "iterations": search.iteration}


def _pairs(model):
  from lth_tf import pruning  # pylint: disable=import-outside-toplevel
  return pruning.mask_pairs(model)


if __name__ == "__main__":  # fit_on_jax.py OUT_DIR OPTIMIZER...: one ticket per optimizer
  print(json.dumps({name: main(name, f"{sys.argv[1]}/{name}") for name in sys.argv[2:]}))
