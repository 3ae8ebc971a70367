"""Compute accounting: training FLOPs count kept weights only, per the rule in `lth_tf.compute`."""
import numpy as np
import pytest

from lth_tf import compute, pruning
from lth_tf.compat import keras
from lth_tf.pruning import Mask


def _dense_model():
  inputs = keras.Input((12,))
  hidden = keras.layers.Dense(8, activation="relu", name="fc1")(inputs)
  return pruning.wrap_model(keras.Model(inputs, keras.layers.Dense(3, name="output")(hidden)))


def _conv_model():
  inputs = keras.Input((10, 10, 2))
  x = keras.layers.Conv2D(4, 3, name="conv1")(inputs)  # valid padding: 8 x 8 outputs
  x = keras.layers.Flatten()(x)
  return pruning.wrap_model(keras.Model(inputs, keras.layers.Dense(3, name="output")(x)))


def _mask(model, densities, seed=0):
  rng = np.random.default_rng(seed)
  weights = pruning.prunable_weights(model)
  return Mask.from_dict({name: rng.random(np.shape(w)) < densities[name.split("/")[0]]
                         for name, w in weights.items()})


def test_a_dense_branch_counts_its_kept_kernel_weights_once_per_example():
  model = _dense_model()
  mask = _mask(model, {"fc1": 0.3, "output": 0.6})
  kept = mask["fc1/kernel"].sum() + mask["output/kernel"].sum()
  record = compute.branch_compute(model, mask, batch_size=5, iterations_trained=7, wall_time_s=1.5)
  assert record["forward_macs_per_example"] == kept
  assert record["dense_forward_macs_per_example"] == 12 * 8 + 8 * 3
  assert record["train_flops"] == 3 * 2 * kept * 5 * 7
  assert record["iterations_trained"] == 7 and record["wall_time_s"] == 1.5


def test_a_convolution_counts_each_kept_weight_at_every_output_position():
  model = _conv_model()
  assert compute.output_positions(model) == {"conv1": 64, "output": 1}
  mask = _mask(model, {"conv1": 0.5, "output": 0.25})
  record = compute.branch_compute(model, mask, batch_size=1, iterations_trained=1, wall_time_s=0)
  assert record["forward_macs_per_example"] == (mask["conv1/kernel"].sum() * 64
                                                + mask["output/kernel"].sum())


def test_the_estimated_search_is_exact_for_iterative_pruning_at_a_fixed_rate():
  model = _dense_model()
  level, rate = 3, 0.5
  weights = pruning.prunable_weights(model)
  # Every layer at density (1 - rate)^level (whole rows kept, so the densities are exact).
  mask = Mask.from_dict({name: np.arange(np.size(w)).reshape(np.shape(w)) < np.size(w) * (1 - rate) ** level
                         for name, w in weights.items()})
  estimate = compute.estimated_search(model, mask, level, iterations=100, rewind_iteration=10,
                                      batch_size=4, wall_time_per_level=2.0)
  expected = 0.0
  for current in range(level + 1):
    kept = sum(np.size(w) * (1 - rate) ** current for w in weights.values())
    expected += compute.train_flops(kept, 4, 100 if current == 0 else 90)
  assert estimate["train_flops"] == pytest.approx(expected, rel=1e-12)
  assert estimate["iterations_trained"] == 100 + 3 * 90
  assert estimate["wall_time_s"] == 8.0 and estimate["levels_trained"] == 4


def test_totals_sum_every_record_and_count_missing_values_as_zero():
  records = [{"iterations_trained": 10, "wall_time_s": 1.0, "train_flops": 5.0},
             {"iterations_trained": 3, "wall_time_s": None},
             {}]
  assert compute.total(records) == {"iterations_trained": 13, "wall_time_s": 1.0,
                                    "train_flops": 5.0, "runs": 3}
