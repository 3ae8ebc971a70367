"""Early-bird tickets (You et al., ICLR 2020): the mask distance, the drawing rule, and a dense
training stopped at the draw whose levels continue from the drawn mask, resumably; the report's
distance curve and compute saved against a full run."""
import dataclasses
import os

import numpy as np
import pytest

from lth_tf import io, pruning
from lth_tf.config import (DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig, TrainingConfig)
from lth_tf.validation import validate
from lth_tf.errors import ConfigError, TicketError, WriteError
from lth_tf.lottery import LotteryExperiment
from lth_tf.pruning import Mask
from lth_tf.pruning.early_bird import EarlyBirdRule
from lth_tf.rundir import MASK_DISTANCE, BranchFiles

# ---- the distance ----------------------------------------------------------------------------


def _mask(seed, density=0.5):
  rng = np.random.default_rng(seed)
  return Mask.from_dict({"fc1/kernel": rng.random((8, 5)) < density,
                         "out/kernel": rng.random((5, 4)) < density})


def test_the_distance_is_the_fraction_of_entries_that_differ():
  a = _mask(0)
  assert a.hamming_distance(a) == 0.0
  complement = Mask.from_dict({name: ~a[name] for name in a})
  assert a.hamming_distance(complement) == 1.0
  # Equal density, complementary: 1 as well (a half-dense mask against its complement).
  half = Mask.from_dict({"fc1/kernel": np.arange(40).reshape(8, 5) % 2 == 0,
                         "out/kernel": np.arange(20).reshape(5, 4) % 2 == 0})
  other = Mask.from_dict({name: ~half[name] for name in half})
  assert half.weights_remaining() == other.weights_remaining() == 0.5
  assert half.hamming_distance(other) == 1.0
  # Three flips in one layer, over the 60 entries of both layers.
  flipped = a.to_arrays()
  flipped["out/kernel"].reshape(-1)[[0, 5, 19]] ^= True
  assert a.hamming_distance(Mask.from_dict(flipped)) == pytest.approx(3 / 60)
  assert Mask.from_dict(flipped).hamming_distance(a) == a.hamming_distance(Mask.from_dict(flipped))
  with pytest.raises(TicketError):
    a.hamming_distance(Mask.from_dict({"fc1/kernel": a["fc1/kernel"]}))


# ---- the rule --------------------------------------------------------------------------------

def _first_draw(rule, distances):
  """The index of the first evaluation after which `rule` draws, or None."""
  return next((i for i in range(len(distances)) if rule.draws(distances[:i + 1])), None)


@pytest.mark.parametrize("distances,expected", [
    ([None, 0.5, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2], 6),          # the fifth in a row below
    ([None, 0.2, 0.2, 0.2, 0.2, 0.2], 5),                     # from the first distance on
    ([None, 0.2, 0.2, 0.25, 0.2, 0.2, 0.2, 0.2, 0.2], 8),     # equal is not below
    ([None, 0.2, 0.2, 0.2, 0.2, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2], 10),  # one above restarts it
    ([None, 0.2, 0.2, 0.2, 0.2], None),                       # four are not enough
    ([None, 0.5, 0.4, 0.3, 0.3, 0.3, 0.3, 0.3], None),        # never below
])
def test_the_ticket_is_drawn_when_the_last_five_distances_are_below_the_threshold(distances,
                                                                                  expected):
  assert _first_draw(EarlyBirdRule(0.25, 5), distances) == expected


def test_threshold_zero_never_draws():
  assert not EarlyBirdRule(0.0).on
  assert _first_draw(EarlyBirdRule(0.0), [None] + [0.0] * 10) is None


# ---- through the level loop ------------------------------------------------------------------

ITERATIONS, EVERY, K = 100, 5, 10


# A watch that never draws: more distances asked for than the training has evaluations.
NEVER = ITERATIONS // EVERY + 1


def _config(root, threshold=0.0, levels=1, window=5, strategy="magnitude"):
  return ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=ITERATIONS, eval_every=EVERY, batch_size=50),
      pruning=PruningConfig(levels=levels, fc_rate=0.5, output_rate=0.2, rewind_iteration=K,
                            early_bird_threshold=threshold, early_bird_window=window,
                            strategy=strategy),
      runtime=RuntimeConfig(root_dir=str(root), data_dir=str(root), progress=False))


def _level(experiment, level):
  return BranchFiles(experiment.layout.branch_dir(0, level, "ticket"))


def _distances(experiment):
  curve = io.read_json(_level(experiment, 0).curve_json)
  return [row["iteration"] for row in curve], [row.get(MASK_DISTANCE) for row in curve]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """A full run watched by a rule that cannot draw (distances recorded, nothing drawn), then
  the same experiment with a threshold that the full run's distances cross halfway: the
  early-bird run."""
  root = tmp_path_factory.mktemp("early_bird")
  full = LotteryExperiment(_config(root / "full", 1.0, window=NEVER), log=lambda line: None)
  full.run()
  iterations, distances = _distances(full)
  # Just above the largest of five distances in the middle of the run: the rule draws there at
  # the latest, and not while the first (largest) distances are in its window.
  middle = len(distances) // 2
  threshold = max(distances[middle - 4:middle + 1]) * 1.0001
  bird = LotteryExperiment(_config(root / "bird", threshold), log=lambda line: None)
  bird.run()
  return full, bird, threshold


def _expected_stop(iterations, distances, threshold):
  """The index of the evaluation where the ticket should be drawn, computed here without the
  rule's code: the first at or after k whose last five distances are all below."""
  for index, iteration in enumerate(iterations):
    recent = [d for d in distances[1:index + 1]][-5:]
    if iteration >= K and len(recent) == 5 and max(recent) < threshold:
      return index
  return None


def test_the_dense_training_records_the_mask_distance_at_every_evaluation(runs):
  full, _, _ = runs
  iterations, distances = _distances(full)
  assert iterations == list(range(0, ITERATIONS + 1, EVERY))
  assert distances[0] is None and all(0.0 <= d <= 1.0 for d in distances[1:])
  assert distances[1] > distances[-1]  # the mask settles
  assert MASK_DISTANCE in open(_level(full, 0).curve_csv).readline()
  # The last mask watched is that of the final weights: level 1's mask.
  level1 = Mask.from_dict(io.read_arrays(_level(full, 1).mask))
  assert _by_hand(io.read_arrays(_level(full, 0).final_weights), level1) == level1


def _by_hand(weights, like):
  """Layerwise magnitude pruning of the dense network at the test's rates, written here: each
  layer keeps its n − round(rate · n) weights of largest |w|."""
  arrays = {}
  for name in like:
    magnitude = np.abs(weights[name]).reshape(-1)
    rate = 0.2 if name.startswith("output") else 0.5
    keep = magnitude.size - int(np.floor(rate * magnitude.size + 0.5))
    kept = np.zeros(magnitude.size, bool)
    kept[np.argsort(-magnitude, kind="stable")[:keep]] = True
    arrays[name] = kept.reshape(weights[name].shape)
  return Mask.from_dict(arrays)


def test_the_dense_training_stops_exactly_when_five_distances_are_below(runs):
  full, bird, threshold = runs
  iterations, distances = _distances(full)
  stop = _expected_stop(iterations, distances, threshold)
  assert stop is not None and stop > 5  # some distance above the threshold came first
  bird_iterations, bird_distances = _distances(bird)
  assert bird_iterations == iterations[:stop + 1]  # stopped at the first draw, not later
  assert bird_distances == distances[:stop + 1]  # the same training up to there
  metrics = io.read_json(_level(bird, 0).metrics)
  assert metrics["iterations_trained"] == iterations[stop] < ITERATIONS
  assert io.read_json(_level(full, 0).metrics)["iterations_trained"] == ITERATIONS


def test_the_levels_continue_from_the_drawn_mask(runs):
  full, bird, _ = runs
  final = io.read_arrays(_level(bird, 0).final_weights)
  level1 = Mask.from_dict(io.read_arrays(_level(bird, 1).mask))
  # The mask of the weights where the dense training stopped, computed without lth_tf's code;
  # its distance to the previous evaluation's mask is the last one the watch recorded, as in the
  # full run at that evaluation.
  assert level1 == _by_hand(final, level1)
  assert level1 != Mask.from_dict(io.read_arrays(_level(full, 1).mask))
  for name, density in level1.layer_densities().items():  # the density level 1 asks for
    assert density == pytest.approx(0.8 if name.startswith("output") else 0.5, abs=1e-2)
  # Level 1 is the ticket of the drawn mask: θk ⊙ m from k, trained to the end.
  rewind = io.read_arrays(bird.layout.rewind_file(0))
  start = io.read_arrays(_level(bird, 1).start_weights)
  np.testing.assert_array_equal(start["fc1/kernel"], rewind["w/fc1/kernel"] * level1["fc1/kernel"])
  curve = io.read_json(_level(bird, 1).curve_json)
  assert (curve[0]["iteration"], curve[-1]["iteration"]) == (K, ITERATIONS)


def test_a_run_interrupted_after_the_draw_resumes_to_the_same_result(runs, tmp_path,
                                                                       monkeypatch):
  _, bird, threshold = runs
  config = _config(tmp_path, threshold)
  # A full disk while level 0's final weights are written, right after the draw.
  monkeypatch.setattr(io, "_fault_hits", {})
  monkeypatch.setenv("LTH_FAULT_ENOSPC_AT", "write:final_weights.npz@1")
  with pytest.raises(WriteError):
    LotteryExperiment(config, log=lambda line: None).run()
  monkeypatch.delenv("LTH_FAULT_ENOSPC_AT")
  resumed = LotteryExperiment(config, log=lambda line: None)
  resumed.run()
  assert _distances(resumed) == _distances(bird)
  for level in (0, 1):
    got = io.read_arrays(_level(resumed, level).final_weights)
    for name, value in io.read_arrays(_level(bird, level).final_weights).items():
      np.testing.assert_array_equal(got[name], value)


def test_the_report_shows_the_distance_curve_and_the_compute_saved(runs, tmp_path):
  from lth_tf.report import report  # pylint: disable=import-outside-toplevel
  full, bird, threshold = runs
  out = report.build([full.layout.directory, bird.layout.directory], str(tmp_path / "report"))
  assert os.path.getsize(out["mask_distance.png"]) > 0
  text = open(out["report.md"]).read()
  stop = io.read_json(_level(bird, 0).metrics)["iterations_trained"]
  dense_flops = io.read_json(_level(full, 0).metrics)["train_flops"]
  bird_flops = io.read_json(_level(bird, 0).metrics)["train_flops"]
  saved = dense_flops - bird_flops
  assert saved > 0
  assert (f"Early-bird ticket (threshold {threshold:.4g}, 5 distances): drawn at iteration "
          f"{stop} of {ITERATIONS}") in text
  assert f"saved {saved:.3g} training FLOPs against full dense training" in text
  assert "(no early-bird draw: dense training ran its full length)" in text


@pytest.mark.parametrize("changes,message", [
    ({"early_bird_threshold": -0.1}, r"early_bird_threshold must be in \[0, 1\]"),
    ({"early_bird_threshold": 1.5}, r"early_bird_threshold must be in \[0, 1\]"),
    ({"early_bird_window": 0}, "early_bird_window must be >= 1"),
    ({"early_bird_threshold": 0.1, "levels": 0}, "early_bird_threshold draws level 1's mask"),
])
def test_bad_early_bird_settings_are_refused(changes, message):
  config = _config("runs")
  with pytest.raises(ConfigError, match=message):
    validate(config.replace(pruning=dataclasses.replace(config.pruning, **changes)))


@pytest.mark.parametrize("strategy", ["magnitude_init", "snip", "grasp", "synflow", "random",
                                      "erk", "uniform"])
def test_a_threshold_is_refused_where_level_1_does_not_prune_the_trained_weights(strategy,
                                                                                 tmp_path):
  """Strategies that score θk, or no weight value at all, give level 1 the same mask wherever
  the dense training stops: no ticket to draw. Refused in one line, nothing written."""
  config = _config(tmp_path, 0.1, strategy=strategy)
  with pytest.raises(ConfigError, match="no early-bird ticket to draw"):
    LotteryExperiment(config, log=lambda line: None)
  assert not os.path.exists(os.path.join(tmp_path, config.experiment_hash()))


def _calls_to(monkeypatch, name):
  """Counts the calls to strategy `name` (a magnitude strategy that counts)."""
  calls = []

  def counting(request):
    calls.append(request.mask.num_remaining())
    return pruning.STRATEGIES.get("magnitude")(request)

  monkeypatch.setitem(pruning.STRATEGIES._entries, name,  # pylint: disable=protected-access
                      counting)
  return calls


def test_without_a_threshold_the_dense_training_scores_nothing(tmp_path, monkeypatch):
  calls = _calls_to(monkeypatch, "counted")
  config = _config(tmp_path, strategy="counted", levels=2)
  experiment = LotteryExperiment(config, log=lambda line: None)
  experiment.run()
  assert len(calls) == 2  # level 1 and level 2 only, not the 21 evaluations of level 0
  assert all(MASK_DISTANCE not in row for row in io.read_json(_level(experiment, 0).curve_json))


def test_a_multi_step_strategy_leaves_the_dense_training_dense(tmp_path):
  """SynFlow scores in steps on the model; level 0 of an experiment with levels to follow is
  the same dense training as without them, with no weight at zero."""
  runs = {}
  for levels in (0, 1):
    config = _config(tmp_path / str(levels), levels=levels, strategy="synflow")
    config = config.replace(pruning=dataclasses.replace(config.pruning, score_iterations=10))
    experiment = LotteryExperiment(config, log=lambda line: None)
    experiment.run()
    runs[levels] = io.read_arrays(_level(experiment, 0).final_weights)
  assert runs[1].keys() == runs[0].keys()
  for name, value in runs[0].items():
    np.testing.assert_array_equal(runs[1][name], value)
  assert np.count_nonzero(runs[1]["fc1/kernel"] == 0) == 0


def test_the_hash_is_unchanged_when_off():
  base = ExperimentConfig()
  assert base.replace(pruning=PruningConfig(early_bird_threshold=0.0)).experiment_hash() == \
      base.experiment_hash()
  assert base.replace(pruning=PruningConfig(early_bird_threshold=0.1)).experiment_hash() != \
      base.experiment_hash()
